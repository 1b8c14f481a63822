"""``pevm run``: execute blocks, check them, report.

Streams cases from the given paths through the chosen engine. On a terminal it
shows a progress bar; at the end a summary table. ``--json`` prints one JSON object
per executed block on stdout (the summary then goes to stderr). Exit status: 0 when
every block matched, 1 when one did not, 2 when an input could not be read.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pevm.cli.arguments import positive_int
from pevm.engines import ENGINE_NAMES, default_engine_name, make_engine
from pevm.state.backend import StateBackend
from pevm.host import usable_cores
from pevm.engines.hooks import FaultHooks
from pevm.engines.parallel import ParallelEngine
from pevm.engines.timeline import Trace
from pevm.errors import PevmError
from pevm.output_files import check_writable
from pevm.forks import UnknownNetwork, canonical_network
from pevm.inputs.discover import CaseRef, list_cases, skips_text
from pevm.runner import ERROR, FAILED, PASSED, REJECTED, BlockReport, run_case_ref

EXIT_OK, EXIT_MISMATCH, EXIT_INPUT = 0, 1, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="execute blocks and check them",
        description="Execute blocks from BlockchainTests fixtures or mainnet snapshot "
                    "directories and check every result against the block's own "
                    "expectations (header, post-state); with --check also against "
                    "py-evm's sequential execution.",
        epilog="Exit status: 0 every block matched, 1 a block did not match, "
               "2 unreadable or malformed input, or a case that ended with an "
               "error (the run goes on with the next case; --debug shows the "
               "traceback). Fault hooks for testing the parallel engine under "
               "adversarial schedules (results must not change): "
               "PEVM_TEST_DELAY=SECONDS (random sleeps in workers), "
               "PEVM_TEST_FORCE_ABORT=P (validated results re-executed anyway), "
               "PEVM_TEST_KILL_WORKER=W:N (worker W dies on its N-th chunk), "
               "PEVM_TEST_SEED=N; not with --cluster.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="fixture file, mainnet snapshot directory, or a directory "
                             "searched recursively for both")
    parser.add_argument("--engine", choices=ENGINE_NAMES, default=default_engine_name(),
                        help="transaction engine (default: %(default)s)")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="processes that execute transactions in the parallel "
                             "engine: the coordinator and N-1 forked workers "
                             "(default: the CPUs this process may use, at most 4; "
                             "1 = in-process)")
    parser.add_argument("--state", choices=[b.value for b in StateBackend],
                        default=StateBackend.FLAT.value,
                        help="the parallel engine's state layer: pevm's flat layers with "
                             "the incremental batched state root, or py-evm's trie "
                             "(default: %(default)s; the reference always runs on "
                             "py-evm's)")
    parser.add_argument("--check", action="store_true",
                        help="also run py-evm's sequential reference on each block and "
                             "compare the results field by field")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per block on stdout")
    parser.add_argument("--filter", metavar="TEXT",
                        help="only cases whose name or file path contains TEXT")
    parser.add_argument("--exclude", metavar="TEXT", action="append", default=[],
                        help="skip cases whose name or file path contains TEXT "
                             "(repeatable)")
    parser.add_argument("--network", metavar="NAME",
                        help="only cases of this network/fork (e.g. Cancun, Prague, "
                             "CancunToPragueAtTime15k); others are skipped")
    parser.add_argument("--trace", metavar="FILE.json",
                        help="write where the parallel engine's time went, block by "
                             "block, as a Chrome trace-event file (open it in "
                             "https://ui.perfetto.dev or chrome://tracing): one track "
                             "per process, one slice per execute, re-execute, "
                             "validate, commit, message, wait or sender recovery, "
                             "with the transaction, incarnation, block and case; "
                             "not with --cluster")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no per-failure lines")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run the cases on a Dask cluster, one task per case: "
                             "'local' or 'local:N' starts N worker processes on this "
                             "machine (default: the CPUs this process may use); "
                             "anything else is the "
                             "address of a running Dask scheduler (e.g. "
                             "tcp://host:8786) whose workers have pevm installed with "
                             "the 'cluster' extra and the inputs at the same absolute "
                             "paths. --workers then sizes the engine inside each "
                             "worker. Results arrive in completion order, not input "
                             "order; a case whose task fails is an error. Needs "
                             "pip install \"pevm[cluster]\"")
    parser.set_defaults(func=run_command)


def default_workers() -> int:
    """The CPUs this process may use, at most 4. On a 16-core machine (session 27,
    docs/results.md) the engine's transaction phase over three large mainnet blocks
    was 1.79x one process's at 4 workers, 1.68x at 8 and 1.28x at 16; a block of
    costly transactions gains from more (compute: 7.4x at 16), and ``--workers``
    asks for them. The engine starts fewer where its warm-up says fewer pay."""
    return max(1, min(4, usable_cores()))


def _network_key(name: str) -> str:
    try:
        name = canonical_network(name)
    except UnknownNetwork:
        pass
    return name.lower().replace("-", "").replace("_", "")


def run_command(args: argparse.Namespace) -> int:
    network = None
    if args.network:
        try:
            network = _network_key(canonical_network(args.network))
        except UnknownNetwork as exc:
            raise PevmError(str(exc)) from exc
    workers = args.workers or default_workers()
    if args.cluster is not None:
        from pevm.cluster import check_cluster_args
        check_cluster_args(args.cluster)
    try:
        # the only place the engine's fault hooks are read from the environment
        hooks = FaultHooks.from_environment(os.environ)
        engine = make_engine(args.engine, workers=workers, hooks=hooks,
                             state_backend=StateBackend(args.state))
        reference = make_engine("reference") if args.check else None
    except ValueError as exc:
        raise PevmError(str(exc)) from exc
    trace = _trace(args, engine)
    start = time.perf_counter()
    listing = list_cases(args.paths)
    reports: list[BlockReport] = []
    unreadable: list[BlockReport] = []
    skip_reasons = listing.skip_reasons()
    for path, message, explicit in listing.problems:
        if explicit:
            unreadable.append(BlockReport(path, "", None, ERROR, error=f"{path}: {message}"))
    cases = []
    for ref in listing.matching(args.filter):
        if any(p in ref.name or p in ref.source for p in args.exclude):
            skip_reasons["excluded by --exclude"] += 1
        elif network and _network_key(ref.network) != network:
            skip_reasons[f"network is not {args.network}"] += 1
        else:
            cases.append(ref)

    out = sys.stdout
    console = Console(file=sys.stderr if args.json else sys.stdout)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(file=sys.stderr),
                        transient=True,
                        disable=args.quiet or not sys.stderr.isatty())

    def emit(report: BlockReport) -> None:
        reports.append(report)
        if args.json:
            out.write(json.dumps(report.to_json()) + "\n")
            out.flush()
        if report.status == ERROR:
            # Always one plain line on stderr, whatever the terminal width.
            progress.console.print(f"pevm: error: {_error_line(report)}",
                                   soft_wrap=True, markup=False, highlight=False)
            if getattr(args, "debug", False) and report.traceback:
                progress.console.print(report.traceback, soft_wrap=True,
                                       markup=False, highlight=False)
        elif not report.ok and not args.quiet and not args.json:
            progress.console.print(_failure_text(report), soft_wrap=True, markup=False,
                                   highlight=False)

    with progress:
        for report in unreadable:
            emit(report)
        bar = progress.add_task("running", total=len(cases))
        for case_reports in _execute(cases, engine, reference, args):
            for report in case_reports:
                emit(report)
            if case_reports:
                progress.update(bar, description=_short(case_reports[-1].case))
            progress.advance(bar)
    elapsed = time.perf_counter() - start
    _summary(console, reports, len(cases), skip_reasons, elapsed, engine, args)
    if trace is not None:
        trace.write(args.trace)
        console.print(f"wrote {args.trace} ({len(trace.events)} events)")
    if not reports:
        # a run that checked nothing must not read as a pass (a CI job given the
        # wrong directory, a --filter that matches no case)
        skipped = skips_text(skip_reasons)
        progress.console.print(
            f"pevm: error: no block to run under {' '.join(args.paths)}"
            + (f" matching --filter {args.filter}" if args.filter else "")
            + (f" ({skipped})" if skipped else ""),
            soft_wrap=True, markup=False, highlight=False)
        return EXIT_INPUT
    if any(r.status == ERROR for r in reports):
        return EXIT_INPUT
    if any(not r.ok for r in reports):
        return EXIT_MISMATCH
    return EXIT_OK


def _trace(args: argparse.Namespace, engine: Any) -> Trace | None:
    """The trace ``--trace`` asks for, attached to the engine."""
    if not args.trace:
        return None
    check_writable(args.trace)  # before the run, not after it
    if args.cluster is not None:
        raise PevmError("--trace records this machine's processes: not with --cluster")
    if not isinstance(engine, ParallelEngine):
        raise PevmError("--trace records the parallel engine: not with --engine "
                        f"{args.engine}")
    engine.trace = Trace()
    return engine.trace


def _execute(cases: list[CaseRef], engine: Any, reference: Any,
             args: argparse.Namespace) -> Iterator[list[BlockReport]]:
    """Run the cases; yields each case's reports as it completes."""
    if getattr(args, "cluster", None) is not None:
        from pevm.cluster import run_on_cluster
        yield from run_on_cluster(cases, args.cluster, args.engine,
                                  args.workers or default_workers(), args.check)
        return
    trace = getattr(engine, "trace", None)
    for ref in cases:
        if trace is not None:
            trace.case = ref.name  # a corpus' blocks share numbers: name the case too
        yield run_case_ref(ref, engine, reference)


def _error_line(report: BlockReport) -> str:
    """Where an error happened (unless the message says it already) and what."""
    error = report.error or "unknown error"
    if not report.case or error.startswith(report.source):
        return error
    where = f"{report.source} :: {report.case}"
    if report.block is not None:
        where += f" :: block {report.block}"
    return f"{where}: {error}"


def _short(path: str, width: int = 48) -> str:
    return path if len(path) <= width else "..." + path[-(width - 3):]


def _failure_text(report: BlockReport) -> str:
    where = f"{report.source} :: {report.case}"
    if report.block is not None:
        where += f" :: block {report.block}"
        if report.number is not None:
            where += f" (#{report.number})"
    lines = [f"{report.status.upper()} {where}"]
    if report.error:
        lines.append(f"    {report.error}")
    lines.extend(f"    {m}" for m in report.mismatches[:10])
    if len(report.mismatches) > 10:
        lines.append(f"    ... {len(report.mismatches) - 10} more")
    return "\n".join(lines)


def _summary(console: Console, reports: Iterable[BlockReport], cases: int,
             skip_reasons: Counter[str], elapsed: float, engine: Any,
             args: argparse.Namespace) -> None:
    reports = list(reports)
    counts = Counter(r.status for r in reports)
    engine_seconds = sum(r.seconds.get("engine", 0.0) for r in reports)
    ref_seconds = sum(r.seconds.get("reference", 0.0) for r in reports)
    title = f"pevm run: engine {engine.name}"
    if engine.name == "parallel":
        title += f", {getattr(engine, 'workers', 1)} worker(s)"
    if args.check:
        title += ", checked against the py-evm reference"
    table = Table(title=title)
    for column in ("cases", "blocks", "passed", "failed", "rejected as expected",
                   "errors", "skipped", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(str(cases), str(len(reports)), str(counts[PASSED]), str(counts[FAILED]),
                  str(counts[REJECTED]), str(counts[ERROR]),
                  str(sum(skip_reasons.values())), f"{elapsed:.2f}")
    console.print(table)
    timing = f"engine {engine_seconds:.2f} s"
    if args.check:
        timing += f", reference {ref_seconds:.2f} s"
    console.print(f"time in block execution: {timing}", highlight=False)
    for reason, count in sorted(skip_reasons.items()):
        console.print(f"skipped {count}: {reason}", highlight=False)
    bad = [r for r in reports if not r.ok]
    if bad:
        first = bad[0]
        where = f"{first.source} :: {first.case}" if first.case else first.source
        console.print(f"{len(bad)} block(s) did not match or could not be read; "
                      f"first: {where}", highlight=False, soft_wrap=True)
