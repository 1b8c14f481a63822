"""``pevm bench``: speedups measured side by side, with the ideal for comparison."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pevm.analysis import analyze_case, analyze
from pevm.bench import MAX_LOOPS, MIN_SAMPLE_S, BlockBench, bench_case
from pevm.bench_report import (format_ratio as _fmt, paired_cell, plot, plot_format,
                               same_path_note, speed_note, workers_cell)
from pevm.cli.arguments import engine_options, positive_ints
from pevm.engines.options import tunable_options
from pevm.engines.timeline import Trace
from pevm.cli.info import describe_machine, machine_info
from pevm.cli.main import print_case_error
from pevm.errors import PevmError, ResultMismatch
from pevm.host import machine_slowness, probe_slowness
from pevm.output_files import check_writable, write_atomically
from pevm.inputs.discover import CaseRef, list_cases, skips_text
from pevm.state.backend import StateBackend


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure speedups: reference vs engine at each worker count",
        description="Run py-evm's reference, the engine in one process and the engine "
                    "at each worker count on the same blocks, interleaved, after a "
                    "warm-up, and report wall-clock times, throughput, speedups and "
                    "the ideal speedup the block's dependency graph allows. Speedups "
                    "are ratios of medians; 'paired (range)' is the transaction "
                    "phase's ratio over 1 worker taken round by round (the two runs "
                    "of a round share the machine's state): median (fastest-slowest).")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="fixture files / snapshot directories to measure")
    parser.add_argument("--workload", metavar="W",
                        help="generate a block of this workload instead (see pevm gen)")
    parser.add_argument("--txs", type=int, default=1000, help="transactions (--workload)")
    parser.add_argument("--conflict", type=float, default=0.0,
                        help="share of conflicting transactions (--workload)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (--workload)")
    parser.add_argument("--workers", type=positive_ints("worker counts"), default="1,2",
                        metavar="LIST",
                        help="comma-separated worker counts (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed rounds (default 3); the engines' order after "
                             "py-evm's run is reversed every other round, so an even "
                             "count gives each engine each place equally")
    parser.add_argument("--min-time", type=float, default=MIN_SAMPLE_S, metavar="SECONDS",
                        help="a timed sample spans at least this long: a shorter "
                             f"import is repeated (at most {MAX_LOOPS} times, on "
                             "fresh pre-states) and the sample is their mean, as "
                             "timeit's autorange does, the engines' imports "
                             "alternating one by one; 0 times each import once "
                             "(default: %(default)s)")
    parser.add_argument("--state", choices=[b.value for b in StateBackend],
                        default=StateBackend.FLAT.value,
                        help="the parallel engine's state layer (default: %(default)s; "
                             "the reference runs on py-evm's trie)")
    parser.add_argument("--filter", metavar="TEXT", help="only cases containing TEXT")
    parser.add_argument("--json", metavar="FILE", help="write every measurement as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="plot speedup vs workers")
    parser.add_argument("--memory", action="store_true",
                        help="also report the peak memory of pevm and its worker "
                             "processes together (PSS and summed RSS, Linux)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure the machine's ceiling at each worker count "
                             "K above 1: K copies of the in-process import of the "
                             "block run at once in K processes, K x (one alone) / "
                             "(slowest of the K) -- the best speedup K processes "
                             "give this block's work here, whatever the engine; "
                             "reported beside the engine's ('of ceiling')")
    parser.add_argument("--variant", type=engine_options, action="append", default=[],
                        metavar="NAME=VALUE[,...]",
                        help="also time the parallel engine with these tuning options "
                             "changed, at each --workers count, in the same rounds, "
                             "and report its transaction phase against the engine as "
                             "it ships at the same count (ratio of medians and paired "
                             "per round; above 1: the variant is faster); repeat for "
                             "more variants. Options: "
                             f"{', '.join(tunable_options())} (see the "
                             "ParallelEngine docstring), each VALUE a Python literal "
                             "(True, false, None, 96) or a word; e.g. --variant "
                             "worker_nice=0 --variant chunk_size=96,max_outstanding=1 "
                             "--variant sender_pipeline=false")
    parser.add_argument("--trace", metavar="FILE.json",
                        help="write where the parallel engine's time went in the last "
                             "timed round, at every worker count, as a Chrome "
                             "trace-event file (open it in https://ui.perfetto.dev or "
                             "chrome://tracing): one track per process, one slice per "
                             "execute, re-execute, validate, commit, message, wait or "
                             "sender recovery, with the transaction and incarnation")
    parser.set_defaults(func=bench_command)


def _cases(args: argparse.Namespace, scratch: str) -> list[CaseRef]:
    paths = list(args.paths)
    if args.workload:
        from pevm.workloads import generate, write_fixture
        path = os.path.join(scratch, f"{args.workload}.json")
        fixture = generate(args.workload, txs=args.txs, conflict=args.conflict,
                           seed=args.seed)
        write_fixture(fixture, path)
        paths.append(path)
    if not paths:
        raise PevmError("nothing to measure: give PATHs or --workload")
    listing = list_cases(paths)
    listing.raise_for_named()
    cases = listing.matching(args.filter)
    if not cases:  # nothing timed must not read as a finished benchmark
        skipped = skips_text(listing.skip_reasons())
        raise PevmError(f"no block to benchmark under {' '.join(paths)}"
                        + (f" matching --filter {args.filter}" if args.filter else "")
                        + (f" ({skipped})" if skipped else ""))
    return cases


def bench_command(args: argparse.Namespace) -> int:
    workers = args.workers
    if args.repeat < 1:
        raise PevmError("--repeat must be at least 1")
    if args.min_time < 0:
        raise PevmError("--min-time must be 0 or more")
    for path in (args.json, args.trace):
        if path:
            check_writable(path)  # before the measurements, not after them
    if args.plot:
        plot_format(args.plot)  # writable, and a format matplotlib writes
    # Tables are wide: do not squeeze them to 80 columns when output is redirected.
    console = Console(width=None if sys.stdout.isatty() else 200)
    benches: list[BlockBench] = []
    failed: list[BaseException] = []
    trace = Trace() if args.trace else None
    probes = [machine_slowness()]  # the speed the engine's cost model runs on
    with tempfile.TemporaryDirectory(prefix="pevm-bench-") as scratch:
        cases = _cases(args, scratch)
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TimeElapsedColumn(), console=Console(file=sys.stderr),
                            transient=True, disable=not sys.stderr.isatty())
        with progress:
            bar = progress.add_task("measuring", total=len(cases) * (args.repeat + 1))
            for ref in cases:
                try:
                    analyses = analyze_case(ref)
                    ideal = analyze(analyses[0].graph).ideal_speedup \
                        if len(analyses) == 1 else None
                    benches.append(bench_case(
                        ref, workers, args.repeat, ideal=ideal,
                        progress=lambda name, done, total: progress.update(
                            bar, advance=1, description=f"{name} {done}/{total}"),
                        memory=args.memory, trace=trace,
                        state_backend=StateBackend(args.state),
                        ceiling=args.ceiling, min_time=args.min_time,
                        variants=args.variant))
                except Exception as exc:  # noqa: BLE001 - contained: this case's
                    failed.append(exc)    # error; the other cases are measured
                    print_case_error(f"{ref.source} :: {ref.name}", exc,
                                     getattr(args, "debug", False))
                probes.append(probe_slowness())
    machine = machine_info()
    machine["slowness_probes"] = [round(p, 3) for p in probes]
    if benches:
        console.print(f"machine: {describe_machine(machine)}")
    for bench in benches:
        _print(console, bench)
    for note in (speed_note(probes), same_path_note(benches)):
        if benches and note:
            console.print(note)
    if args.json:
        document = {"machine": machine,
                    "date": datetime.datetime.now(datetime.UTC).isoformat(),
                    "command": getattr(args, "command_line", None),
                    "repeat": args.repeat, "blocks": [b.to_json() for b in benches]}
        write_atomically(args.json, json.dumps(document, indent=2))
        console.print(f"wrote {args.json}")
    if args.plot:
        plot(benches, args.plot)
        console.print(f"wrote {args.plot}")
    if trace is not None:
        trace.write(args.trace)
        console.print(f"wrote {args.trace} ({len(trace.events)} events)")
    if failed:
        # a wrong result (1) outranks a case that could not be measured (2)
        return 1 if any(isinstance(e, ResultMismatch) for e in failed) else 2
    return 0


def _print(console: Console, bench: BlockBench) -> None:
    loops = f", each sample the mean of {bench.loops} imports" if bench.loops > 1 else ""
    table = Table(title=f"{bench.name}: {bench.txs} txs, {bench.gas:,} gas{loops}")
    for column in ("engine", "workers", "median s", "min s", "max s", "tx/s", "Mgas/s",
                   "vs reference", "vs 1 process", "ideal", "efficiency",
                   "tx phase s", "phase vs ref", "phase vs 1", "paired (range)"):
        table.add_column(column, justify="right")
    if bench.ceiling:
        table.add_column("ceiling", justify="right")
        table.add_column("of ceiling", justify="right")
    if bench.reference.peak is not None:
        table.add_column("peak MiB (PSS)", justify="right")
    blank = ["", ""] if bench.ceiling else []  # the reference has no ceiling
    ref = bench.reference
    table.add_row("reference", "1", f"{ref.median:.3f}", f"{min(ref.samples):.3f}",
                  f"{max(ref.samples):.3f}", f"{bench.txs / ref.median:,.0f}",
                  f"{bench.gas / ref.median / 1e6:.2f}", "1.00", "", "", "",
                  f"{ref.phase_median:.3f}", "1.00", "", "", *blank, *_memory(ref.peak))
    for timing, row in zip(bench.engine, bench.rows()):
        table.add_row(
            "parallel", workers_cell(row), f"{timing.median:.3f}",
            f"{min(timing.samples):.3f}", f"{max(timing.samples):.3f}",
            f"{row['tx_per_s']:,.0f}", f"{row['gas_per_s'] / 1e6:.2f}",
            f"{row['speedup_vs_reference']:.2f}",
            _fmt(row["speedup_vs_one_process"]), _fmt(row["ideal_speedup"]),
            _fmt(row["efficiency"], percent=True), f"{timing.phase_median:.3f}",
            _fmt(row["transaction_phase"]["speedup_vs_reference"]),
            _fmt(row["transaction_phase"]["speedup_vs_one_process"]),
            paired_cell(row["transaction_phase"]["paired_vs_one_process"]),
            *([] if not bench.ceiling else
              [_fmt(row["transaction_phase"]["ceiling"]),
               _fmt(row["transaction_phase"]["of_ceiling"], percent=True)]),
            *_memory(timing.peak))
    console.print(table)
    if bench.variants:
        _print_variants(console, bench)


def _print_variants(console: Console, bench: BlockBench) -> None:
    table = Table(title=f"{bench.name}: variants against the engine as it ships "
                        "(transaction phase; above 1: the variant is faster)")
    for column in ("variant", "workers", "tx phase s", "as shipped s", "vs as shipped",
                   "paired (range)", "phase vs 1"):
        table.add_column(column, justify="right")
    shipped = {t.workers: t for t in bench.engine}
    for timing, row in zip(bench.variants, bench.variant_rows()):
        phase = row["transaction_phase"]
        table.add_row(row["variant"], workers_cell(row), f"{timing.phase_median:.3f}",
                      f"{shipped[timing.workers].phase_median:.3f}",
                      _fmt(phase["speedup_vs_base"]), paired_cell(phase["paired_vs_base"]),
                      _fmt(phase["speedup_vs_one_process"]))
    console.print(table)


def _memory(peak: Any) -> list[str]:
    return [] if peak is None else [f"{peak.to_json()['pss_mib']:,.0f}"]
