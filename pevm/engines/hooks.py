"""Fault and schedule hooks of the parallel engine, in one record.

The engine's correctness claim is that the block's result does not depend on the
schedule: which process executes what, when, how often, or whether a worker dies
mid-block. The tests make that claim fail loudly if it is false by forcing the
schedules a quiet machine rarely produces -- random delays in workers, validated
results declared invalid anyway, workers that kill themselves holding work, a
fork at an exact point of the block. :class:`FaultHooks` holds all of them; the
engine takes one record (``ParallelEngine(hooks=FaultHooks(...))``) and reads no
environment itself. For runs through the command line, ``pevm run`` builds the
record from ``PEVM_TEST_*`` variables with :meth:`FaultHooks.from_environment`.
None of the hooks changes a result; all are off by default.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pevm.errors import InputError

#: ``PEVM_TEST_*`` variable -> (the :class:`FaultHooks` field it sets, its format)
ENVIRONMENT = {
    "PEVM_TEST_DELAY": ("delay", "a number of seconds, e.g. 0.002"),
    "PEVM_TEST_FORCE_ABORT": ("force_abort", "a probability from 0 to 1"),
    "PEVM_TEST_KILL_WORKER": ("kill_worker", "WORKER:N, e.g. 0:1"),
    "PEVM_TEST_SEED": ("seed", "an integer"),
}


@dataclass(frozen=True)
class FaultHooks:
    """Adversarial-schedule hooks (all off by default)."""

    #: maximum random sleep (seconds) before each transaction a worker executes
    delay: float = 0.0
    #: probability that a transaction gets a delay at all
    delay_probability: float = 1.0
    #: probability that a validated result is declared invalid anyway (forcing a
    #: re-execution)
    force_abort: float = 0.0
    #: worker id -> n: the worker kills itself (``os._exit``) on receiving its n-th
    #: message of work (a chunk to run, or senders to recover), holding that work
    kill_worker: Mapping[int, int] = field(default_factory=dict)
    #: seed of the delays and forced aborts (with the block's ordinal in the run)
    seed: int = 0
    #: fork the workers after exactly this many in-process transactions, instead of
    #: after the engine's warm-up time
    fork_at_tx: int | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> FaultHooks:
        """The hooks the ``PEVM_TEST_*`` variables ask for (see :data:`ENVIRONMENT`):
        ``PEVM_TEST_DELAY=0.002``, ``PEVM_TEST_FORCE_ABORT=0.3``,
        ``PEVM_TEST_KILL_WORKER=worker:n`` (n defaults to 1), ``PEVM_TEST_SEED=7``.
        A malformed value is an :class:`~pevm.errors.InputError` naming it."""
        values: dict[str, Any] = {}
        for name, (attribute, expected) in ENVIRONMENT.items():
            text = environ.get(name, "").strip()
            if not text:
                continue
            try:
                if attribute == "kill_worker":
                    worker, _, runs = text.partition(":")
                    value: Any = {int(worker): int(runs or "1")}
                    ok = int(worker) >= 0 and int(runs or "1") >= 1
                elif attribute == "seed":
                    value, ok = int(text), True
                else:
                    value = float(text)
                    ok = value >= 0 and (attribute != "force_abort" or value <= 1)
            except ValueError:
                ok = False
            if not ok:
                raise InputError(name, f"{text!r} is not {expected}")
            values[attribute] = value
        return cls(**values)

    @property
    def active(self) -> bool:
        """Whether any hook would change the schedule."""
        return bool(self.delay or self.force_abort or self.kill_worker
                    or self.fork_at_tx is not None)
