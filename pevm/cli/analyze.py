"""``pevm analyze``: the dependency graph of a block and the speedup it allows.

With ``--simulate``, also the speedup the parallel engine is predicted to reach
at each worker count on this machine (:mod:`pevm.simulation`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from pevm.analysis import BlockAnalysis, analyze_case, to_dot
from pevm.engines.locations import location_text
from pevm.cli.arguments import positive_ints
from pevm.cli.main import print_case_error
from pevm.errors import PevmError
from pevm.output_files import check_writable, write_atomically
from pevm.inputs.discover import list_cases
from pevm.simulation.calibration import CHECK_TOLERANCE, DRIFT_TOLERANCE, consistent


#: in-process runs per block whose median per-transaction costs feed --simulate
PROFILE_REPEAT = 3

#: options that only shape ``--simulate``, with the attribute each sets and its
#: default: given without ``--simulate`` they would change nothing, silently
_SIMULATE_ONLY = (("--cores", "cores", None), ("--background-load", "background_load", None),
                  ("--recalibrate", "recalibrate", False),
                  ("--profile-repeat", "profile_repeat", PROFILE_REPEAT))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analyze", help="dependency graph, critical path and ideal speedup of blocks",
        description="Execute blocks with py-evm while recording each transaction's "
                    "reads and writes; report the dependency graph between "
                    "transactions (lazy fee/value credits excluded), its critical path "
                    "by gas and by count, the ideal speedup at 1-16 and unlimited "
                    "workers, the conflict rate and the hottest locations.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="fixture file, mainnet snapshot directory, or directory")
    parser.add_argument("--filter", metavar="TEXT", help="only cases containing TEXT")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per block")
    parser.add_argument("--dot", metavar="FILE",
                        help="write the (first) block's graph for Graphviz")
    parser.add_argument(
        "--simulate", metavar="LIST", type=positive_ints("worker counts"),
        help="also predict the parallel engine's speedup over one process at these "
             "worker counts (comma-separated, e.g. 1,2,4,8,16,32,64): a simulation "
             "of the engine's scheduling policy on the block's dependency graph, "
             "with each transaction's cost measured by running the block in-process "
             "(a few repeats) and the engine's overheads calibrated once per machine "
             "(a forked echo process and a generated block; about half a minute, "
             "measured again up to twice while its self-check is off, then cached "
             "under the user cache directory; a cached one is first checked against "
             "the machine as it is now -- its block at 1 and 2 workers, about ten "
             "seconds -- and measured again where that block's speedup moved more "
             f"than {DRIFT_TOLERANCE * 100:.0f}%%); the coordinator and the workers "
             "share this machine's cores. JSON: key simulated_speedup "
             "(worker count -> predicted speedup), and ideal_speedup_by_time: the "
             "ideal speedup's schedule with each transaction weighed by its measured "
             "time instead of its gas; and calibration: the machine constants used, "
             "with their self-check. The calibration is printed to stderr, with a "
             f"warning where its self-check is more than {CHECK_TOLERANCE * 100:.0f}%% "
             "off")
    parser.add_argument("--cores", type=int, metavar="N",
                        help="with --simulate: assume N cores instead of this "
                             "machine's (the per-process costs stay this machine's)")
    parser.add_argument("--background-load", metavar="LIST|auto", type=_background,
                        help="with --simulate: cores other programs keep busy while "
                             "the engine runs, per session, comma-separated (default: "
                             "none, a quiet machine); 'auto' samples this machine "
                             "for a second first. Under Linux autogroup scheduling "
                             "CPU is shared between sessions, so a busy session "
                             "takes as much from the engine's 3 processes as from 1")
    parser.add_argument("--recalibrate", action="store_true",
                        help="with --simulate: measure the machine's overheads again "
                             "instead of using the cached calibration")
    parser.add_argument("--profile-repeat", type=int, default=PROFILE_REPEAT, metavar="N",
                        help="with --simulate: in-process runs per block whose "
                             "median per-transaction costs feed the simulation "
                             "(default %(default)s)")
    parser.set_defaults(func=analyze_command)


def _background(text: str) -> tuple[float, ...] | str:
    if text == "auto":
        return text
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected busy cores per session like 1,0.5, or 'auto', got {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected 0 or more cores, got {text!r}")
    return values


def analysis_json(item: BlockAnalysis) -> dict[str, Any]:
    s = item.summary
    return {"source": item.source, "case": item.case, "block": item.block,
            "txs": s.txs, "edges": s.edges, "conflict_rate": s.conflict_rate,
            "total_gas": s.total_gas,
            "critical_path": {"gas": s.critical_path_gas, "count": s.critical_path_count},
            "ideal_speedup": s.ideal_speedup,
            "hottest": [{"location": location_text(loc), "txs": n} for loc, n in s.hottest]}


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse options that cannot take effect, before any block runs."""
    if not args.simulate:
        for flag, name, default in _SIMULATE_ONLY:
            if getattr(args, name) != default:
                raise PevmError(f"{flag} shapes the simulation: add --simulate LIST")
    if args.cores is not None and args.cores < 1:
        raise PevmError("--cores must be at least 1")
    if args.profile_repeat < 1:
        raise PevmError("--profile-repeat must be at least 1")


def _calibration(args: argparse.Namespace) -> Any:
    from pevm.simulation import autogroup_enabled, calibrate, sample_background
    calibration = calibrate(refresh=args.recalibrate, status=_status)
    _status(calibration.describe())
    if not consistent(calibration):
        _status(f"warning: the calibration's self-check is off by "
                f"{calibration.check_error:+.0%}: the "
                "machine was busy, or its speed drifted, while it was measured, and "
                "the predictions inherit that; --recalibrate on a quiet machine")
    if args.cores is not None:
        calibration = dataclasses.replace(calibration, cores=args.cores)
    background = args.background_load
    if background == "auto":
        background = sample_background(1.0) or ()
        _status("background load: " + (", ".join(f"{b:.2f}" for b in background) +
                                       " busy cores per session" if background
                                       else "none"))
    if background:
        calibration = dataclasses.replace(calibration, background=background,
                                          autogroup=autogroup_enabled())
    return calibration


def _simulated(args: argparse.Namespace, ref: Any, items: list[BlockAnalysis],
               calibration: Any) -> dict[int, tuple[dict[str, float], dict[str, float]]]:
    """Per block index of the case: the predicted speedups, and the graph's ideal
    with each transaction weighed by its measured time instead of its gas."""
    from pevm.simulation import predict, profile_case
    if not items:
        return {}
    start = time.perf_counter()
    if sys.stderr.isatty():
        _status(f"simulating {ref.name}: {args.profile_repeat} in-process run(s)...")
    profiles = profile_case(ref, args.profile_repeat)
    out = {}
    for item in items:
        profile = profiles.get(item.block)
        if profile is not None and profile.size == item.graph.size:
            predicted = predict(profile, item.graph.deps, args.simulate, calibration)
            out[item.block] = ({str(w): v for w, v in predicted.items()},
                               item.graph.ideal_speedups(profile.exec_s, args.simulate))
    if sys.stderr.isatty() and time.perf_counter() - start > 2:
        _status(f"simulated {ref.name} in {time.perf_counter() - start:.1f} s")
    return out


def analyze_command(args: argparse.Namespace) -> int:
    if args.dot:
        check_writable(args.dot)
    _check_options(args)
    listing = list_cases(args.paths)
    listing.raise_for_named()
    console = Console()
    dot_written = False
    found = 0
    failed = 0
    #: cases with no block py-evm accepts (a rejected block has no graph)
    empty: list[str] = []
    if args.simulate:
        args.simulate = sorted(set(args.simulate))
    calibration = _calibration(args) if args.simulate else None
    for ref in listing.matching(args.filter):
        try:
            items = analyze_case(ref)
            simulated = _simulated(args, ref, items, calibration) \
                if calibration is not None else {}
        except Exception as exc:  # noqa: BLE001 - contained: this case's error
            failed += 1
            print_case_error(f"{ref.source} :: {ref.name}", exc,
                             getattr(args, "debug", False))
            continue
        if not items:
            empty.append(f"{ref.source} :: {ref.name}")
        for item in items:
            found += 1
            predicted, by_time = simulated.get(item.block, (None, None))
            if args.json:
                row = analysis_json(item)
                if calibration is not None:
                    row["simulated_speedup"] = predicted
                    row["ideal_speedup_by_time"] = by_time
                    row["calibration"] = calibration.to_json()
                print(json.dumps(row))
            else:
                _print(console, item, predicted, by_time)
            if args.dot and not dot_written:
                write_atomically(args.dot, to_dot(item))
                dot_written = True
    if empty and found:
        _status(f"{len(empty)} case(s) left out: no block py-evm accepts (a rejected "
                f"block has no dependency graph); first: {empty[0]}")
    if failed:
        return 2
    if not found:
        console.print("no valid block to analyse", style="yellow")
        return 1
    return 0


def _print(console: Console, item: BlockAnalysis,
           simulated: dict[str, float] | None = None,
           by_time: dict[str, float] | None = None) -> None:
    s = item.summary
    console.print(f"[bold]{item.case}[/bold] block {item.block}: {s.txs} txs, "
                  f"{s.edges} dependencies, conflict rate {s.conflict_rate:.1%}, "
                  f"critical path {s.critical_path_count} txs / {s.critical_path_gas} gas "
                  f"of {s.total_gas}", highlight=False)
    if simulated is None:
        table = Table(title="ideal speedup")
        for workers in s.ideal_speedup:
            table.add_column(f"{workers} w" if workers != "inf" else "∞", justify="right")
        table.add_row(*(f"{v:.2f}" for v in s.ideal_speedup.values()))
    else:
        # the simulated worker counts beside the graph's ideal at the same counts
        counts = sorted({int(w) for w in simulated} |
                        {int(key) for key in s.ideal_speedup if key != "inf"})
        table = Table(title="speedup over one process: ideal (dependency graph, by gas "
                            "and by measured time) and simulated (this machine)")
        table.add_column("")
        for count in counts:
            table.add_column(f"{count} w", justify="right")
        table.add_column("∞", justify="right")
        ideal = [s.ideal_speedup.get(str(w), item.graph.ideal_speedup(w))
                 for w in counts]
        table.add_row("ideal", *(f"{v:.2f}" for v in ideal),
                      f"{s.ideal_speedup['inf']:.2f}")
        if by_time is not None:
            timed = [by_time.get(str(w)) for w in counts]
            table.add_row("ideal by time", *(f"{v:.2f}" if v is not None else ""
                                             for v in timed), f"{by_time['inf']:.2f}")
        table.add_row("simulated", *(f"{simulated[str(w)]:.2f}" if str(w) in simulated
                                     else "" for w in counts), "")
    console.print(table)
    if s.hottest:
        hot = Table(title="hottest locations")
        hot.add_column("location")
        hot.add_column("txs", justify="right")
        for loc, count in s.hottest:
            hot.add_row(location_text(loc), str(count))
        console.print(hot)
