"""``pevm fetch``: download mainnet blocks from a JSON-RPC node as verified snapshots.

The work is :mod:`pevm.inputs.fetch` (snapshots) and :mod:`pevm.inputs.merge`
(``--merge``); this module parses the command, shows a progress bar over blocks
(on a terminal), one line per block not kept, and a summary. Exit status: 0 every
block was written (or already there), 1 a block did not reproduce its header (or a
merge failed), 2 the node could not be used (unreachable, not an archive node, a
block it does not have).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pevm.cli.arguments import positive_int
from pevm.errors import PevmError
from pevm.inputs.fetch import (FAILED, MERGED_DIR, PRESENT, WRITTEN, BlockOutcome, block_dir,
                               fetch_blocks, parse_range)
from pevm.inputs.mainnet import is_snapshot_dir
from pevm.inputs.merge import merge_snapshots
from pevm.inputs.rpc import RetryPolicy, RpcClient

EXIT_OK, EXIT_FAILED = 0, 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fetch", help="download mainnet blocks from a JSON-RPC node as snapshots",
        description="Download blocks from an Ethereum JSON-RPC node (your own archive "
                    "node or a provider) as snapshot directories that pevm run, bench "
                    "and analyze read: DIR/<number>/ with block.json, pre_state.json "
                    "and, when the block reads BLOCKHASH, block_hashes.json. Per block "
                    "it calls eth_getBlockByNumber and debug_traceBlockByNumber with "
                    "geth's prestateTracer (one batched request), plus one batched "
                    "request for the ancestors BLOCKHASH reads. Every block is run "
                    "through py-evm before it is kept, and kept only when it "
                    "reproduces its header's gasUsed, logsBloom and (from Byzantium) "
                    "receiptsRoot. Blocks already in DIR are skipped, so an "
                    "interrupted fetch resumes.",
        epilog="The node needs the debug API and historical state (an archive node: "
               "geth --gcmode archive, erigon, reth, or a provider's archive/trace "
               "plan). Exit status: 0 every block written or already present, 1 a "
               "block did not reproduce its header or a merge failed, 2 the node "
               "could not be used (unreachable, no debug API, pruned state, no such "
               "block).")
    parser.add_argument("blocks", nargs="+", metavar="BLOCK[..BLOCK]",
                        help="a block number or an inclusive range A..B (decimal or "
                             "0x-hex); several may be given")
    parser.add_argument("--rpc", metavar="URL", default=os.environ.get("PEVM_RPC"),
                        help="the node's HTTP JSON-RPC endpoint (default: $PEVM_RPC, "
                             "which keeps a provider's API key out of shell history)")
    parser.add_argument("-o", "--output", metavar="DIR", required=True,
                        help="directory to write DIR/<number>/ into (created)")
    parser.add_argument("--concurrency", type=positive_int, default=4, metavar="N",
                        help="blocks downloaded at once, on N threads (default: "
                             "%(default)s); verification runs one block at a time")
    parser.add_argument("--merge", type=positive_int, default=None, metavar="K",
                        help="also merge each K consecutive blocks into one big block, "
                             "DIR/merged/<first>-<last>/ (see pevm merge)")
    parser.add_argument("--retries", type=positive_int, default=5, metavar="N",
                        help="retries of a request that failed in a way worth retrying "
                             "(connection errors, timeouts, HTTP 429/5xx, rate limits), "
                             "with exponential backoff (default: %(default)s)")
    parser.add_argument("--retry-delay", type=float, default=0.5, metavar="SECONDS",
                        help="first backoff; doubles each retry (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="socket timeout per request (default: %(default)s)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no per-block lines")
    parser.set_defaults(func=fetch_command)


def fetch_command(args: argparse.Namespace) -> int:
    if not args.rpc:
        raise PevmError("--rpc: no node given (pass --rpc URL or set $PEVM_RPC)")
    numbers = sorted({n for text in args.blocks for n in parse_range(text)})
    client = RpcClient(args.rpc, RetryPolicy(attempts=args.retries + 1,
                                             base_delay=args.retry_delay,
                                             timeout=args.timeout))
    start = time.perf_counter()
    console = Console(file=sys.stderr)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True,
                        disable=args.quiet or not sys.stderr.isatty())

    def say(text: str) -> None:
        if not args.quiet:
            progress.console.print(text, soft_wrap=True, markup=False, highlight=False)

    with progress:
        bar = progress.add_task("fetching", total=len(numbers))

        def report(outcome: BlockOutcome) -> None:
            if outcome.status == FAILED:
                progress.console.print(f"block {outcome.number}: not kept: "
                                       f"{outcome.reason}", soft_wrap=True,
                                       markup=False, highlight=False)
            progress.update(bar, description=f"block {outcome.number}")
            progress.advance(bar)

        outcomes = fetch_blocks(client, numbers, args.output, args.concurrency, report)
    present = [o.number for o in outcomes if o.status == PRESENT]
    if present:
        say(f"already in {args.output}, skipped: {_ranges(present)}")
    merged = merge_failed = 0
    if args.merge:
        merged, merge_failed = _merge_groups(outcomes, args.output, args.merge, say)
    counts = {status: sum(1 for o in outcomes if o.status == status)
              for status in (WRITTEN, PRESENT, FAILED)}
    merges = f"; {merged} merged, {merge_failed} not merged" if args.merge else ""
    print(f"pevm fetch from {client.name}: {len(numbers)} block(s): {counts[WRITTEN]} "
          f"written, {counts[PRESENT]} already present, {counts[FAILED]} not kept"
          f"{merges}; {client.counters.requests} request(s), {client.counters.retries} "
          f"retried, {time.perf_counter() - start:.2f} s")
    return EXIT_FAILED if counts[FAILED] or merge_failed else EXIT_OK


def _merge_groups(outcomes: list[BlockOutcome], out_dir: str, size: int,
                  say: Callable[[str], None]) -> tuple[int, int]:
    """Merge each ``size`` consecutive blocks; (merged or present, failed)."""
    by_number = {o.number: o for o in outcomes}
    numbers = sorted(by_number)
    runs: list[list[int]] = []
    for number in numbers:
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    merged = failed = 0
    for run in runs:
        for start in range(0, len(run), size):
            group = run[start:start + size]
            name = f"{group[0]}-{group[-1]}"
            if len(group) < size:
                say(f"block(s) {_ranges(group)}: fewer than {size} in a row, not merged")
                continue
            out = os.path.join(out_dir, MERGED_DIR, name)
            if is_snapshot_dir(out):
                merged += 1
                continue
            if any(by_number[n].status == FAILED for n in group):
                say(f"blocks {name}: not merged (a block of the group was not kept)")
                failed += 1
                continue
            try:
                report = merge_snapshots([block_dir(out_dir, n) for n in group], out,
                                         [by_number[n].touched for n in group])
            except PevmError as exc:
                say(f"blocks {name}: not merged: {exc}")
                failed += 1
                continue
            merged += 1
            say(f"merged {name}: {report.txs} transaction(s), {report.gas_used:,} gas "
                f"-> {out}")
    return merged, failed


def _ranges(numbers: list[int]) -> str:
    """``1, 3..7, 9``: a compact list of sorted block numbers."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in spans)
