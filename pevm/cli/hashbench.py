"""``pevm hashbench``: Keccak-256 throughput and state-root time, CPU and GPU.

Thin CLI over :mod:`pevm.gpu.bench`: parses the settings, prints tables to
stdout (progress to stderr) and optionally writes the full report as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pevm.cli.arguments import positive_int, positive_ints
from pevm.errors import InputError
from pevm.output_files import check_writable, write_atomically


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hashbench", help="measure Keccak-256 throughput and state-root time (CPU/GPU)",
        description="Measure batch Keccak-256 throughput (hashes/s and GB/s) per message "
                    "size and batch size for each method (eth-hash per message as the "
                    "baseline, pevm's CPU loop and NumPy paths, CUDA when present), and "
                    "the time of a batched state root against py-evm's AccountDB. "
                    "Measurements predicted to exceed --max-seconds, or to end past "
                    "the run's --budget, are skipped, never extrapolated.")
    parser.add_argument("--sizes", type=positive_ints(), default=[32, 64, 136, 532],
                        help="message sizes in bytes (default 32,64,136,532)")
    parser.add_argument("--min-batch", type=positive_int, default=1000,
                        help="smallest batch (default 1000)")
    parser.add_argument("--max-batch", type=positive_int, default=None,
                        help="largest batch (default 1,000,000 on CPU, 10,000,000 on GPU)")
    parser.add_argument("--accounts", type=positive_ints(), default=[10_000, 100_000],
                        help="account counts for the state-root benchmark "
                             "(default 10000,100000)")
    parser.add_argument("--update", type=positive_ints("update count"), default=None,
                        metavar="K[,K...]",
                        help="also measure the incremental state root: K accounts (and "
                             "storage slots of the contracts among them) updated in each "
                             "--accounts state, pevm's StateCommitment against py-evm's "
                             "AccountDB on the same state (JSON key incremental_root)")
    parser.add_argument("--only-update", action="store_true",
                        help="with --update: skip the Keccak and from-scratch state-root "
                             "measurements")
    parser.add_argument("--no-pyevm", action="store_true",
                        help="skip the py-evm AccountDB baselines")
    parser.add_argument("--backend", choices=("auto", "cpu", "cuda"), default=None,
                        help="backend (default: PEVM_GPU, else auto-detect)")
    parser.add_argument("--max-seconds", type=float, default=8.0,
                        help="skip a measurement predicted to take longer (default 8; "
                             "0: never skip)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="seconds for the Keccak and state-root measurements in all: "
                             "one that would start, or is predicted to end, after them is "
                             "skipped and reported so (default: no limit; for a run under "
                             "a time limit, such as a device check's step)")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="each timed round lasts at least this long (default 0.2 s)")
    parser.add_argument("--rounds", type=positive_int, default=3,
                        help="interleaved rounds per measurement, best counts (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=hashbench_command)


def _describe() -> dict[str, Any]:
    from pevm.gpu import describe
    return describe()


def hashbench_command(args: argparse.Namespace) -> int:
    from pevm.gpu import bench

    if args.json is not None:
        check_writable(str(args.json))  # before the measurements, not after them

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.budget is not None and args.budget <= 0:
        raise InputError("--budget", "must be a positive number of seconds")
    if args.only_update and args.update is None:
        raise InputError("--only-update", "needs --update K")
    shown = None if args.quiet else progress
    if args.only_update:
        report: dict[str, Any] = {"machine": bench.machine(), "backend": _describe(),
                                  "keccak": [], "state_root": []}
    else:
        report = bench.run(sizes=args.sizes, min_batch=args.min_batch,
                           max_batch=args.max_batch, accounts=args.accounts,
                           backend=args.backend, pyevm=not args.no_pyevm,
                           max_seconds=args.max_seconds, min_time=args.min_time,
                           rounds=args.rounds, seed=args.seed, progress=shown,
                           budget=args.budget)
        print(bench.format_report(report))
    if args.update is not None:
        from pevm.state.bench import bench_incremental_root, format_records

        report["incremental_root"] = bench_incremental_root(
            args.accounts, args.update, backend=args.backend, pyevm=not args.no_pyevm,
            rounds=args.rounds, seed=args.seed, progress=shown)
        print(format_records(report["incremental_root"]))
    if args.json is not None:
        write_atomically(str(args.json), json.dumps(report, indent=2) + "\n")
    mismatched = [r["accounts"] for r in report["state_root"] + report.get("incremental_root", [])
                  if r.get("roots_match") is False]
    if mismatched:
        print(f"pevm: state roots differ from py-evm at {mismatched} accounts", file=sys.stderr)
        return 1
    return 0
