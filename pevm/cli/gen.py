"""``pevm gen``: generate a workload block as a BlockchainTests fixture.

The block is built and executed with py-evm (the reference), so its header roots
and ``postState`` are py-evm's. Same arguments, same file, byte for byte.
"""
from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
    TimeRemainingColumn,
)

from pevm.workloads import WORKLOADS, generate_block, write_fixture
from pevm.output_files import check_writable
from pevm.workloads.scenario import SUPPORTED_NETWORKS, WorkloadError

#: Show a progress bar on a terminal from this many transactions up.
PROGRESS_FROM = 500


def register(subparsers: Any) -> None:
    workloads = "\n".join(f"  {w.name:10s} {w.summary} (default --conflict "
                          f"{w.default_conflict:g})" for w in WORKLOADS.values())
    parser = subparsers.add_parser(
        "gen", help="generate a workload block as a BlockchainTests fixture",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Generate one block of signed transactions over the project's workload "
            "contracts, execute it with py-evm and write it as a BlockchainTests "
            "fixture (genesis with the contracts and funded accounts, the block, "
            "postState). Deterministic: the same arguments give a byte-identical "
            "file.", 78) + "\n\nworkloads:\n" + workloads,
        epilog="--conflict P is the share of transactions that touch the workload's "
               "shared location: 0 makes every transaction independent, 1 one serial "
               "chain. Exit status: 0 written, 2 bad arguments or unwritable output.")
    parser.add_argument("workload", metavar="WORKLOAD",
                        help=f"one of: {', '.join(WORKLOADS)}")
    parser.add_argument("--txs", type=_integer, required=True, metavar="N",
                        help="transactions in the block")
    parser.add_argument("--accounts", type=_integer, default=None, metavar="M",
                        help="size of the sender/recipient account pool, reused "
                             "round-robin (default: a fresh account for every role; "
                             "a small pool adds dependencies beyond --conflict)")
    parser.add_argument("--conflict", type=_number, default=None, metavar="P",
                        help="share of transactions on the shared location, 0..1 "
                             "(default: per workload)")
    parser.add_argument("--seed", type=_integer, default=0, metavar="S",
                        help="seed of keys, amounts and positions (default: 0)")
    parser.add_argument("--fork", default="Prague", metavar="NAME",
                        help=f"fork rules: {', '.join(SUPPORTED_NETWORKS)} "
                             f"(default: %(default)s)")
    parser.add_argument("--pools", type=_integer, default=None, metavar="K",
                        help="amm: pools in all (pool 0 is the hot one; default: a "
                             "private pool per cold transaction); mixed: hot pools "
                             "(default: 3)")
    parser.add_argument("--slots", type=_integer, default=None, metavar="N",
                        help="storage: slots written per call (default: 8)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="where to write the fixture ('-' for stdout)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no summary line")
    parser.set_defaults(func=gen_command)


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError("expected a number, got NaN")
    return value


def gen_command(args: argparse.Namespace) -> int:
    if args.workload not in WORKLOADS:
        raise WorkloadError(f"unknown workload {args.workload!r} (choose from: "
                            f"{', '.join(WORKLOADS)})")
    # Fail on an unwritable output before the (possibly long) generation.
    check_writable(args.output)
    console = Console(stderr=True)
    show_progress = (not args.quiet and console.is_terminal
                     and args.txs >= PROGRESS_FROM)
    start = time.perf_counter()
    if show_progress:
        with Progress(TextColumn("{task.description:10s}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            generated = generate_block(**_generate_kwargs(args),
                                       progress=_progress_callback(bar))
    else:
        generated = generate_block(**_generate_kwargs(args))
    size = write_fixture(generated.fixture, args.output)
    seconds = time.perf_counter() - start
    if not args.quiet:
        header = generated.built.block.header
        where = "stdout" if args.output == "-" else args.output
        print(f"pevm gen: wrote {where}: case {generated.name}, "
              f"{len(generated.built.transactions)} txs ({generated.hot_count} hot), "
              f"gas used {header.gas_used:,}, {size:,} bytes, {seconds:.1f} s",
              file=sys.stderr)
    return 0


def _generate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"workload": args.workload, "txs": args.txs, "accounts": args.accounts,
            "conflict": args.conflict, "seed": args.seed, "fork": args.fork,
            "pools": args.pools, "slots": args.slots}


def _progress_callback(bar: Progress) -> Callable[[str, int, int], None]:
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        task = tasks.get(phase)
        if task is None:
            task = tasks[phase] = bar.add_task(phase, total=total)
        if done == total or done % 50 == 0:
            bar.update(task, completed=done)

    return update
