"""Runs cases with an engine and judges every block: the core of ``pevm run``.

For each block the runner executes the task with the chosen engine, compares the
result with what the input expects (header fields, rejection, post-state), and with
``check`` also runs py-evm's sequential reference on an identical pre-state and
compares the two results field by field. It yields one :class:`BlockReport` per
block; rendering is the CLI's business.
"""
from __future__ import annotations

import time
import traceback as tb
from enum import StrEnum
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator

from pevm.compare import Mismatch, compare_expectations, compare_results
from pevm.errors import InputError, PevmError, describe
from pevm.abc import Case, Engine
from pevm.inputs.discover import CaseRef
from pevm.pipeline import BlockOutcome
from pevm.result import BlockResult, EngineStats
from pevm.state.backend import backend_of
from pevm.task import BlockTask

class Status(StrEnum):
    """A block's verdict (a string enum: JSON and comparisons see the text)."""

    #: the result equals everything it was compared with
    PASSED = "passed"
    #: a field differs (``mismatches``), or a rejection was expected and not made
    FAILED = "failed"
    #: rejected where the input expects a rejection
    REJECTED = "rejected"
    #: the case could not run: unreadable input or an exception (``error``)
    ERROR = "error"


PASSED, FAILED, REJECTED, ERROR = Status.PASSED, Status.FAILED, Status.REJECTED, \
    Status.ERROR


@dataclass
class BlockReport:
    """The verdict on one block (or on a case that could not start)."""

    source: str
    case: str
    block: int | None
    status: Status
    network: str = ""
    number: int | None = None
    txs: int = 0
    gas_used: int | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    stats: EngineStats | None = None
    result: BlockResult | None = None
    #: for an unexpected exception: where it was raised (``pevm --debug`` shows it)
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (PASSED, REJECTED)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source, "case": self.case, "block": self.block,
            "number": self.number, "network": self.network, "txs": self.txs,
            "gas_used": self.gas_used, "ok": self.ok, "status": self.status,
            "mismatches": [m.to_json() for m in self.mismatches],
            "seconds": {k: round(v, 6) for k, v in self.seconds.items()},
            "error": self.error,
        }
        if self.traceback is not None:
            out["traceback"] = self.traceback
        if self.stats is not None:
            out.update(self.stats.to_json())
            out["phases"] = {k: round(v, 6) for k, v in self.stats.seconds.items()}
        return out


def failure_text(exc: BaseException) -> str:
    """One line for an exception that ended a case: pevm's own errors say what
    went wrong; anything else is named by its type."""
    if isinstance(exc, PevmError):
        return str(exc)
    return describe(exc)


def error_report(source: str, case: str, network: str, exc: BaseException,
                 block: int | None = None) -> BlockReport:
    """The report of a case that ended with ``exc`` (at ``block`` if known)."""
    unexpected = not isinstance(exc, InputError)
    return BlockReport(source, case, block, ERROR, network=network,
                       error=failure_text(exc),
                       traceback=tb.format_exc() if unexpected else None)


def run_case(case: Case, engine: Engine, reference: Engine | None = None
             ) -> Iterator[BlockReport]:
    """Run every block of ``case``; with ``reference``, check against it too.

    Whatever a block throws stays inside its case: unreadable input or any
    exception -- py-evm's, an engine failure, a bug -- ends the case with an
    ``error`` report (the blocks before it keep their verdicts) and the caller
    goes on with the next case.
    """
    try:
        run = case.start(backend_of(engine))
        ref_run = case.start(backend_of(reference)) if reference is not None else None
    except Exception as exc:  # noqa: BLE001 - contained: this case's error
        yield error_report(case.source, case.name, case.network, exc)
        return
    ref_tasks = ref_run.tasks() if ref_run is not None else None
    last: BlockReport | None = None  # the latest verdict, not yet yielded
    running: int | None = None  # the block being executed
    try:
        for task in run.tasks():
            ref_task = next(ref_tasks) if ref_tasks is not None else None
            if last is not None:
                yield last
                last = None
            running = task.index
            last = run_block(task, engine, ref_task, reference)
            running = None
        final = run.final_mismatches()
        if ref_run is not None:
            final += [_prefixed(m, "reference ") for m in ref_run.final_mismatches()]
    except Exception as exc:  # noqa: BLE001 - contained: this case's error
        if last is not None:
            yield last
        yield error_report(case.source, case.name, case.network, exc, running)
        return
    if last is None:
        last = BlockReport(case.source, case.name, None, PASSED, network=case.network)
    if final:
        last.mismatches.extend(final)
        if last.status in (PASSED, REJECTED):
            last.status = FAILED
    yield last


def run_case_ref(ref: CaseRef, engine: Engine, reference: Engine | None = None
                 ) -> list[BlockReport]:
    """Load a listed case and run it; a case that cannot load is an error report."""
    try:
        case = ref.load()
    except Exception as exc:  # noqa: BLE001 - contained: this case's error
        return [error_report(ref.source, ref.name, ref.network, exc)]
    reports = []
    for report in run_case(case, engine, reference):
        report.result = None  # results are large; callers keep verdicts
        reports.append(report)
    return reports


def _prefixed(mismatch: Mismatch, prefix: str) -> Mismatch:
    return Mismatch(prefix + mismatch.field, mismatch.expected, mismatch.actual,
                    mismatch.tx)


def run_block(task: BlockTask, engine: Engine, ref_task: BlockTask | None = None,
              reference: Engine | None = None) -> BlockReport:
    """Execute one block and judge it (see module docstring)."""
    report = BlockReport(task.source, task.case, task.index, PASSED,
                         network=task.network, number=task.number,
                         txs=len(task.transactions))
    if task.block is None:
        if task.expect.rejected:
            report.status = REJECTED
        else:
            report.status, report.error = FAILED, task.decode_error
        return report
    start = time.perf_counter()
    outcome = task.execute(engine)
    report.seconds["engine"] = outcome.seconds
    _judge(report, task, outcome, prefix="")
    if reference is not None and ref_task is not None and ref_task.block is not None:
        ref_outcome = ref_task.execute(reference)
        report.seconds["reference"] = ref_outcome.seconds
        reference_view = BlockReport(task.source, task.case, task.index, PASSED)
        _judge(reference_view, ref_task, ref_outcome, prefix="reference ")
        report.mismatches.extend(reference_view.mismatches)
        report.mismatches.extend(_compare_outcomes(ref_outcome, outcome))
        if report.mismatches and report.status != FAILED:
            report.status = FAILED
    report.seconds["total"] = time.perf_counter() - start
    return report


def _judge(report: BlockReport, task: BlockTask, outcome: BlockOutcome,
           prefix: str) -> None:
    """Compare one outcome with the input's expectations, filling ``report``."""
    result = outcome.result
    if result is not None:
        report.gas_used = result.gas_used
        report.stats = result.stats
        report.result = result
    if task.expect.rejected:
        if outcome.rejection is not None:
            report.status = REJECTED
        else:
            report.status = FAILED
            report.mismatches.append(Mismatch(
                prefix + "block", f"rejected ({task.expect.rejected})", "accepted"))
        return
    if outcome.rejection is not None:
        report.status = FAILED
        report.error = f"{prefix}rejected a valid block: {outcome.rejection}"
        report.mismatches.append(Mismatch(prefix + "block", "accepted",
                                          f"rejected ({outcome.rejection})",
                                          outcome.rejection.tx_index))
    if result is not None:
        found = compare_expectations(task.expect, result)
        report.mismatches.extend(_prefixed(m, prefix) for m in found)
        if found:
            report.status = FAILED


def _compare_outcomes(ref: BlockOutcome, got: BlockOutcome) -> list[Mismatch]:
    """The engine's outcome against the reference's: rejection, then every field."""
    out = []
    if (ref.rejection is None) != (got.rejection is None):
        out.append(Mismatch(
            "engine vs reference: rejected",
            str(ref.rejection) if ref.rejection else "accepted",
            str(got.rejection) if got.rejection else "accepted"))
    if ref.result is not None and got.result is not None:
        out.extend(_prefixed(m, "engine vs reference: ")
                   for m in compare_results(ref.result, got.result))
    elif (ref.result is None) != (got.result is None):
        out.append(Mismatch("engine vs reference: result",
                            "present" if ref.result else "none",
                            "present" if got.result else "none"))
    return out
