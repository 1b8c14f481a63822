"""``pevm merge``: one big block from several snapshot directories.

The work is :mod:`pevm.inputs.merge`; this module parses the command and says what
it made. Exit status: 0 merged, 2 the snapshots could not be merged (unreadable,
different forks, the merged block does not run).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from pevm.inputs.merge import merge_snapshots


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "merge", help="merge consecutive mainnet snapshots into one big block",
        description="Build one snapshot from several (normally consecutive blocks, "
                    "e.g. from pevm fetch): all their transactions in block order, "
                    "the first block's header context (number, timestamp, coinbase) "
                    "with the gas limit raised to the sum and the lowest base fee of "
                    "the range, the pre-state from each location's first occurrence "
                    "(leaving out what an earlier block created), and the union of "
                    "their ancestor hashes. The merged block's header has no "
                    "Ethereum values to check (it is marked \"pevmMerged\", so pevm run "
                    "checks only its transactionsRoot); use pevm run OUT --check to "
                    "compare the engine with py-evm, or pevm bench / pevm analyze.",
        epilog="Blocks must run under the same fork. Blocks that are not consecutive "
               "merge too (a note says so), but a sender that appears in both with a "
               "nonce gap makes the merged block invalid. The merged block is run "
               "through py-evm before OUT is written. Exit status: 0 merged, 2 not.")
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="snapshot directories (block.json + pre_state.json), in "
                             "any order: they are sorted by block number")
    parser.add_argument("-o", "--output", metavar="OUT", required=True,
                        help="directory to write the merged snapshot to (must not exist)")
    parser.set_defaults(func=merge_command)


def merge_command(args: argparse.Namespace) -> int:
    report = merge_snapshots(args.dirs, args.output)
    numbers = report.numbers
    print(f"merged blocks {numbers[0]}..{numbers[-1]} ({len(numbers)} blocks, "
          f"{report.txs} transactions) into {report.path}: py-evm's reference uses "
          f"{report.gas_used:,} gas (the blocks' own headers: "
          f"{report.headers_gas_used:,})", flush=True)
    if not report.consecutive:
        print(f"pevm: note: blocks {', '.join(map(str, numbers))} are not consecutive: "
              "later blocks' pre-states are taken where earlier blocks do not reach",
              file=sys.stderr)
    return 0
