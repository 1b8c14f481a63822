"""``pevm analyze``: the dependency graph of a block and the speedup it allows."""
from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from pevm.analysis import BlockAnalysis, analyze_case, to_dot
from pevm.engines.locations import location_text
from pevm.cli.main import print_case_error
from pevm.inputs.discover import list_cases


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
    parser.set_defaults(func=analyze_command)


def analysis_json(item: BlockAnalysis) -> dict[str, Any]:
    s = item.summary
    return {"source": item.source, "case": item.case, "block": item.block,
            "txs": s.txs, "edges": s.edges, "conflict_rate": s.conflict_rate,
            "total_gas": s.total_gas,
            "critical_path": {"gas": s.critical_path_gas, "count": s.critical_path_count},
            "ideal_speedup": s.ideal_speedup,
            "hottest": [{"location": location_text(loc), "txs": n} for loc, n in s.hottest]}


def analyze_command(args: argparse.Namespace) -> int:
    listing = list_cases(args.paths)
    listing.raise_for_named()
    console = Console()
    dot_written = False
    found = 0
    failed = 0
    for ref in listing.matching(args.filter):
        try:
            items = analyze_case(ref)
        except Exception as exc:  # noqa: BLE001 - contained: this case's error
            failed += 1
            print_case_error(f"{ref.source} :: {ref.name}", exc,
                             getattr(args, "debug", False))
            continue
        for item in items:
            found += 1
            if args.json:
                print(json.dumps(analysis_json(item)))
            else:
                _print(console, item)
            if args.dot and not dot_written:
                with open(args.dot, "w") as handle:
                    handle.write(to_dot(item))
                dot_written = True
    if failed:
        return 2
    if not found:
        console.print("no valid block to analyse", style="yellow")
        return 1
    return 0


def _print(console: Console, item: BlockAnalysis) -> None:
    s = item.summary
    console.print(f"[bold]{item.case}[/bold] block {item.block}: {s.txs} txs, "
                  f"{s.edges} dependencies, conflict rate {s.conflict_rate:.1%}, "
                  f"critical path {s.critical_path_count} txs / {s.critical_path_gas} gas "
                  f"of {s.total_gas}", highlight=False)
    table = Table(title="ideal speedup")
    for workers in s.ideal_speedup:
        table.add_column(f"{workers} w" if workers != "inf" else "∞", justify="right")
    table.add_row(*(f"{v:.2f}" for v in s.ideal_speedup.values()))
    console.print(table)
    if s.hottest:
        hot = Table(title="hottest locations")
        hot.add_column("location")
        hot.add_column("txs", justify="right")
        for loc, count in s.hottest:
            hot.add_row(location_text(loc), str(count))
        console.print(hot)
