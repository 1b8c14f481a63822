"""The simulation's records: the machine's constants (:class:`Calibration`), one
block's per-transaction costs (:class:`BlockProfile`) and one simulated run
(:class:`SimResult`) -- what :mod:`pevm.simulation.profile` measures,
:mod:`pevm.simulation.calibration` fits and caches, and
:mod:`pevm.simulation.model` replays (see :mod:`pevm.simulation`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Calibration:
    """Machine constants of the engine (seconds unless said otherwise)."""

    cores: int
    #: one end of a message (a send, or a receive with its wake-up); four per chunk
    message_s: float = 0.0
    #: a worker's CPU per transaction it executes over the in-process execution
    #: time (execution itself slower in a forked process, plus replica upkeep)
    worker_factor: float = 1.0
    #: coordinator time to fork one worker; a worker's start-up before its first
    #: chunk; coordinator time to stop and reap one worker
    fork_s: float = 0.0
    ready_s: float = 0.0
    stop_s: float = 0.0
    #: the coordinator's CPU per worker result beyond what the profile prices
    #: (pre-state loads absorbed, bookkeeping, run messages), in multiples of
    #: unpickling that result: relative, so that it holds on a faster machine too
    coordinator_factor: float = 0.0
    #: cores kept busy by other programs, per session (empty: a quiet machine), and
    #: whether the OS shares CPU between sessions (Linux autogroup: the engine's
    #: processes together get one session's share) rather than between processes
    background: tuple[float, ...] = ()
    autogroup: bool = False
    #: self-check: the calibration block's measured and simulated 2-worker speedup
    #: (the latter with ``check_background``, sampled just before)
    check_measured: float | None = None
    check_simulated: float | None = None
    check_background: tuple[float, ...] | None = None
    source: str = "fixed"

    def __post_init__(self) -> None:  # JSON gives lists
        object.__setattr__(self, "background", tuple(self.background))
        if self.check_background is not None:
            object.__setattr__(self, "check_background", tuple(self.check_background))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def check_error(self) -> float | None:
        """The self-check's simulated speedup over its measured one, less 1 (None
        without a self-check): how far this calibration's own block is off."""
        if not self.check_measured or self.check_simulated is None:
            return None
        return self.check_simulated / self.check_measured - 1.0

    def describe(self) -> str:
        """One line: the fitted factors and the self-check."""
        text = (f"calibration ({self.source}, {self.cores} cores): worker factor "
                f"{self.worker_factor:.2f}, coordinator factor "
                f"{self.coordinator_factor:.1f}, message {self.message_s * 1e6:.0f} us")
        error = self.check_error
        if error is not None:
            text += (f"; self-check at 2 workers: measured {self.check_measured:.2f}x, "
                     f"simulated {self.check_simulated:.2f}x ({error:+.0%})")
        return text


COSTS = ("exec_s", "recover_s", "validate_s", "commit_s", "result_dump_s",
         "result_load_s", "writes_dump_s", "writes_load_s", "tx_dump_s", "tx_load_s")


@dataclass
class BlockProfile:
    """Per-transaction CPU seconds of one block in the engine's in-process path."""

    exec_s: list[float]         # execution, sender recovery included
    recover_s: list[float]      # of which sender recovery
    validate_s: list[float]     # validating its read set at the commit point
    commit_s: list[float]       # folding its writes into the committed memory
    result_dump_s: list[float]  # pickling its result and pre-state loads (worker)
    result_load_s: list[float]  # ... unpickling them (coordinator)
    writes_dump_s: list[float]  # pickling its writes into a run message
    writes_load_s: list[float]  # ... unpickling them (worker)
    tx_dump_s: list[float]      # pickling the transaction for the recovery helper
    tx_load_s: list[float]      # ... unpickling it there
    #: the transaction phase outside the per-transaction loop (set-up, merge)
    fixed_s: float = 0.0
    #: each transaction's gas limit (what the engine's costly guess reads)
    gas_limits: list[int] = field(default_factory=list)
    #: each transaction's weight in the engine's estimate of the work left after
    #: its warm-up (:func:`~pevm.engines.cost_model.work_weights`)
    weights: list[int] = field(default_factory=list)
    #: each transaction's target, the account it calls (None: a creation), which
    #: the engine's hot targets follow (:class:`~pevm.engines.scheduler.Scheduler`)
    targets: list[bytes | None] = field(default_factory=list)
    #: each transaction's sender (None: not recoverable), from which the engine
    #: predicts hot targets before its workers start
    senders: list[bytes | None] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.exec_s)

    @classmethod
    def uniform(cls, exec_s: Sequence[float], overhead_s: float = 0.0) -> BlockProfile:
        """Synthetic: these execution times, ``overhead_s`` for every other cost."""
        return cls._of([list(exec_s), [0.0] * len(exec_s)] +
                       [[overhead_s] * len(exec_s) for _ in COSTS[2:]])

    @classmethod
    def _of(cls, columns: list[list[float]], fixed_s: float = 0.0) -> BlockProfile:
        """From the cost columns in field order (``COSTS``)."""
        c = columns
        return cls(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], fixed_s)


@dataclass
class SimResult:
    """One simulated run of a block at one worker count."""

    workers: int
    seconds: float
    inline: int = 0
    validation_failures: int = 0
    chunks: int = 0
    pauses: int = 0
    #: CPU seconds the coordinator (fixed part included) and the workers spent
    coordinator_cpu_s: float = 0.0
    worker_cpu_s: float = 0.0
    #: transactions the workers executed, and the in-process seconds of those
    #: executions (senders they did not recover left out) before the worker factor
    worker_runs: int = 0
    worker_run_s: float = 0.0
