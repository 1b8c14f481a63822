"""One mutant through both engines: the verdicts, and what is wrong with them.

:func:`check_mutant` writes the mutant to a temporary path, lists it with
:func:`pevm.inputs.discover.list_cases` and runs each case with
:func:`pevm.runner.run_case` -- the code path of ``pevm run`` -- once with py-evm's
reference engine and once per worker count with the parallel engine, in this
process. Every block's :class:`Verdict` keeps the runner's status, error and
mismatches, the engine's result and the rejection the block import gave.

The problems (:class:`Problem`) it looks for:

``crash``          an exception escaped pevm (its traceback is the detail);
``internal-error`` an exception other than an input error ended the case: the
                   runner contained it as an ``error`` report, but a mutated block
                   deserves a verdict (passed, failed or rejected) and bad input a
                   clear :class:`~pevm.errors.InputError` (the report's traceback
                   is the detail);
``no-verdict``     a block got no report and no error report ends the case first;
``unclear-error``  an unknown status, or an error report without a message;
``differs``        the parallel engine's status, rejection, error, mismatches or
                   result differ from the reference's on the same input.
"""
from __future__ import annotations

import os
import re
import signal
import tempfile
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator, Sequence

from pevm.compare import compare_results
from pevm.engines.hooks import FaultHooks
from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.errors import InputError
from pevm.abc import Case, CaseRun, Engine
from pevm.inputs.discover import list_cases
from pevm.mutations.sources import SNAPSHOT, Mutant
from pevm.pipeline import BlockOutcome
from pevm.result import BlockResult
from pevm.runner import ERROR, FAILED, PASSED, REJECTED, run_case
from pevm.state.backend import StateBackend
from pevm.task import BlockTask

CRASH, INTERNAL, NO_VERDICT = "crash", "internal-error", "no-verdict"
UNCLEAR, DIFFERS = "unclear-error", "differs"
REFERENCE = "reference"
STATUSES = (PASSED, FAILED, REJECTED, ERROR)
#: Seconds one engine may take on one mutant before the check calls it a hang.
DEFAULT_TIMEOUT = 120.0


@dataclass
class Verdict:
    """One engine's verdict on one block (``block`` None: on the whole case)."""

    block: int | None
    status: str
    rejection: str | None = None
    error: str | None = None
    mismatches: tuple[str, ...] = ()
    result: BlockResult | None = field(default=None, repr=False, compare=False)
    #: the runner's traceback of an unexpected exception that ended the case
    traceback: str | None = field(default=None, repr=False, compare=False)

    @property
    def reason(self) -> str | None:
        """The class of the rejection ("ValidationError", ...), if rejected."""
        if self.rejection is None:
            return None
        found = re.match(r"(?:transaction \d+: )?([A-Za-z_][\w.]*): ", self.rejection)
        return found.group(1) if found else "BlockRejected"

    def label(self) -> str:
        """``status`` or ``status/RejectionClass``, for summaries."""
        return f"{self.status}/{self.reason}" if self.reason else self.status


@dataclass
class Problem:
    kind: str
    engine: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} [{self.engine}]: {self.detail}"


@dataclass
class CheckRecord:
    """What one mutant gave: verdicts per engine and the problems found."""

    mutant: Mutant
    verdicts: dict[str, list[Verdict]]
    problems: list[Problem]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


def parallel_engine(workers: int) -> ParallelEngine:
    """The parallel engine set to fork its workers at once, even for two
    transactions, so that small mutated blocks still run in worker processes."""
    return ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=0,
                          hooks=FaultHooks(fork_at_tx=0))


def check_mutant(mutant: Mutant, workers: Sequence[int] = (1, 2),
                 timeout: float | None = DEFAULT_TIMEOUT,
                 directory: str | None = None) -> CheckRecord:
    """Run ``mutant`` with the reference and the parallel engine at each worker
    count and judge the verdicts (see module docstring). Never raises for what
    pevm does: an escaping exception is a ``crash`` problem."""
    start = time.perf_counter()
    verdicts: dict[str, list[Verdict]] = {}
    problems: list[Problem] = []
    engines: list[tuple[str, Any]] = [(REFERENCE, ReferenceEngine)] + [
        (f"parallel-w{w}", lambda w=w: parallel_engine(w)) for w in workers]
    with tempfile.TemporaryDirectory(prefix="pevm-mutant-", dir=directory) as folder:
        path = mutant.write(folder)
        for name, make in engines:
            try:
                with _deadline(timeout):
                    verdicts[name] = run_verdicts(path, make())
            except Exception:  # noqa: BLE001 - an escaping exception is the finding
                problems.append(Problem(CRASH, name, traceback.format_exc()))
    blocks = _block_count(mutant)
    for name, got in verdicts.items():
        problems += _completeness(name, got, blocks)
    if REFERENCE in verdicts:
        for name, got in verdicts.items():
            if name != REFERENCE:
                problems += [Problem(DIFFERS, name, text)
                             for text in differences(verdicts[REFERENCE], got)]
    return CheckRecord(mutant, verdicts, problems, time.perf_counter() - start)


def run_verdicts(path: str, engine: Engine) -> list[Verdict]:
    """Every case under ``path`` run by ``engine`` through the runner."""
    listing = list_cases([path])
    if not listing.cases:
        # The loader refused the file: an input error before any engine ran.
        messages = [message for _, message, _ in listing.problems]
        return [Verdict(None, ERROR, error="; ".join(messages) or "no case found")]
    verdicts = []
    for ref in listing.cases:
        try:
            case = ref.load()
        except InputError as exc:
            verdicts.append(Verdict(None, ERROR, error=str(exc)))
            continue
        recorded = _RecordingCase(case)
        for report in run_case(recorded, engine):
            outcome = recorded.outcomes.get(report.block) \
                if report.block is not None else None
            rejection = outcome.rejection if outcome is not None else None
            verdicts.append(Verdict(
                report.block, report.status,
                rejection=str(rejection) if rejection is not None else None,
                error=report.error,
                mismatches=tuple(str(m) for m in report.mismatches),
                result=report.result, traceback=getattr(report, "traceback", None)))
    return verdicts


def differences(reference: list[Verdict], got: list[Verdict]) -> list[str]:
    """Where ``got``'s verdicts part from ``reference``'s, as text."""
    out = []
    if len(reference) != len(got):
        out.append(f"{len(reference)} reports from the reference, {len(got)} here: "
                   f"{[v.label() for v in reference]} vs {[v.label() for v in got]}")
    for want, have in zip(reference, got):
        where = f"block {want.block}"
        for name in ("block", "status", "rejection", "error"):
            a, b = getattr(want, name), getattr(have, name)
            if a != b:
                out.append(f"{where}: {name} {a!r} vs {b!r}")
        if want.mismatches != have.mismatches:
            out.append(f"{where}: mismatches with the input "
                       f"{sorted(set(want.mismatches) - set(have.mismatches))} vs "
                       f"{sorted(set(have.mismatches) - set(want.mismatches))}")
        if (want.result is None) != (have.result is None):
            out.append(f"{where}: result {'present' if want.result else 'none'} vs "
                       f"{'present' if have.result else 'none'}")
        elif want.result is not None and have.result is not None:
            out.extend(f"{where}: {m}" for m in compare_results(want.result, have.result))
    return out


def _completeness(engine: str, got: list[Verdict], blocks: int | None) -> list[Problem]:
    problems = []
    for verdict in got:
        if verdict.status not in STATUSES:
            problems.append(Problem(UNCLEAR, engine, f"block {verdict.block}: unknown "
                                                     f"status {verdict.status!r}"))
        if verdict.status == ERROR and not (verdict.error or "").strip():
            problems.append(Problem(UNCLEAR, engine, f"block {verdict.block}: an error "
                                                     f"report without a message"))
        if verdict.traceback:
            problems.append(Problem(INTERNAL, engine, f"block {verdict.block}: "
                                    f"{verdict.error}\n{verdict.traceback}"))
    if not got:
        return problems + [Problem(NO_VERDICT, engine, "no report at all")]
    if any(v.status == ERROR for v in got):
        return problems  # an error report ends its case: later blocks never run
    judged = [v.block for v in got if v.block is not None]
    missing = sorted(set(range(blocks or 0)) - set(judged))
    if missing:
        problems.append(Problem(NO_VERDICT, engine, f"no verdict on block(s) {missing}"))
    repeated = sorted({b for b in judged if judged.count(b) > 1})
    if repeated:
        problems.append(Problem(UNCLEAR, engine, f"several verdicts on {repeated}"))
    return problems


def _block_count(mutant: Mutant) -> int | None:
    if mutant.source.kind == SNAPSHOT:
        return 1
    blocks = mutant.data.get("blocks")
    return len(blocks) if isinstance(blocks, list) else None


class _RecordingCase:
    """A case whose tasks keep their import outcome: the runner's reports say
    whether a block was rejected, not why, and the check compares the why too."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.source = case.source
        self.name = case.name
        self.outcomes: dict[int, BlockOutcome] = {}

    @property
    def network(self) -> str:
        return self.case.network

    def start(self, backend: StateBackend = StateBackend.PYEVM) -> _RecordingRun:
        return _RecordingRun(self.case.start(backend), self.outcomes)


class _RecordingRun:
    def __init__(self, run: CaseRun, outcomes: dict[int, BlockOutcome]) -> None:
        self.run = run
        self.outcomes = outcomes

    def tasks(self) -> Iterator[BlockTask]:
        for task in self.run.tasks():
            execute = task.execute

            def recording(engine: Engine, task: BlockTask = task,
                          execute: Any = execute) -> BlockOutcome:
                outcome = execute(engine)
                self.outcomes[task.index] = outcome
                return outcome

            task.execute = recording  # type: ignore[method-assign]
            yield task

    def final_mismatches(self) -> list[Any]:
        return self.run.final_mismatches()


class CheckTimeout(Exception):
    """An engine ran past the check's time limit on one mutant (a hang)."""


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CheckTimeout` in this thread after ``seconds`` (POSIX main
    thread only; elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer") or os.name != "posix":
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"no verdict after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
