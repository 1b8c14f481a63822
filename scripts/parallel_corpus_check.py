"""Differential check of the parallel engine against py-evm over BlockchainTests files.

    python scripts/parallel_corpus_check.py PATH [PATH ...] [--workers 1,2,4]
        [--force-workers] [--limit N] [--force-abort P] [--delay S]
        [--sender-pipeline auto|always|never]

Every case of every file (directories are walked for ``*.json``) runs once with
py-evm's reference engine and once per worker count with the parallel engine, each
on a fresh chain from the case's genesis; block by block, the rejection status and
:func:`pevm.compare.compare_results` must agree. ``--force-workers`` makes even
tiny blocks use worker processes (``min_parallel_txs=2``). Exit status 1 on any
disagreement. Not a test (it needs the external corpus); a sanity run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from pevm.compare import compare_results
from pevm.engines.hooks import FaultHooks
from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.errors import PevmError
from pevm.inputs.blockchain_tests import load_cases


def run_case(case, engine) -> list[tuple]:
    """(rejected?, result or None, error text) per block of one case."""
    out: list[tuple[Any, ...]] = []
    try:
        run = case.start()
    except PevmError as exc:
        return [("setup-error", None, str(exc))]
    for task in run.tasks():
        if task.block is None:
            out.append(("undecodable", None, task.decode_error))
            continue
        outcome = task.execute(engine)
        out.append((outcome.rejection is not None, outcome.result,
                    str(outcome.rejection) if outcome.rejection else ""))
    return out


def files_under(paths: list[str]) -> list[str]:
    from pevm.inputs.mainnet import is_snapshot_dir
    found = []
    for path in paths:
        if os.path.isdir(path) and is_snapshot_dir(path):
            found.append(path)
        elif os.path.isdir(path) and any(is_snapshot_dir(os.path.join(path, p))
                                         for p in os.listdir(path)):
            found.extend(sorted(os.path.join(path, p) for p in os.listdir(path)
                                if is_snapshot_dir(os.path.join(path, p))))
        elif os.path.isdir(path):
            found.extend(str(p) for p in sorted(Path(path).rglob("*.json")))
        else:
            found.append(path)
    return found


def _engine(workers: int, args: Any) -> ParallelEngine:
    return ParallelEngine(
        workers=workers, min_parallel_txs=2 if args.force_workers else None,
        fork_after=0 if args.force_workers else None,
        sender_pipeline=_PIPELINE[args.sender_pipeline],
        hooks=FaultHooks(force_abort=args.force_abort, delay=args.delay))


#: ``--sender-pipeline``: the engine's ``sender_pipeline`` option
_PIPELINE = {"auto": None, "always": True, "never": False}


def check_snapshot(path: str, worker_counts: list[int], args: Any) -> int:
    """A mainnet snapshot: reference vs parallel; returns the disagreements."""
    from pevm.inputs.mainnet import load_snapshot
    want = load_snapshot(path).execute(ReferenceEngine())
    bad = 0
    for workers in worker_counts:
        engine = _engine(workers, args)
        started = time.perf_counter()
        got = load_snapshot(path).execute(engine)
        took = time.perf_counter() - started
        problems = []
        if (want.rejection is None) != (got.rejection is None):
            problems.append(f"rejected {want.rejection} vs {got.rejection}")
        if want.result is not None and got.result is not None:
            problems.extend(str(m) for m in compare_results(want.result, got.result))
        status = "DIFF" if problems else "ok  "
        txs = want.result.tx_count if want.result else "?"
        print(f"{status} {path} workers={workers} txs={txs} {took:.2f}s "
              f"aborts={got.result.stats.aborts if got.result else '-'} "
              f"{'; '.join(problems[:5])}")
        bad += bool(problems)
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--force-workers", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="at most N files")
    parser.add_argument("--force-abort", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--sender-pipeline", choices=sorted(_PIPELINE), default="auto",
                        help="run the rest after the fork as a sender pipeline: where "
                             "the warm-up says it pays (auto), always, or never")
    parser.add_argument("--networks", default="",
                        help="comma-separated networks to keep (default: all)")
    args = parser.parse_args(argv)
    worker_counts = [int(w) for w in args.workers.split(",")]
    networks = set(filter(None, args.networks.split(",")))
    files = files_under(args.paths)
    if args.limit:
        files = files[:args.limit]
    bad = checked_blocks = cases = 0
    start = time.perf_counter()
    for path in files:
        if os.path.isdir(path):
            cases += 1
            bad += check_snapshot(path, worker_counts, args)
            checked_blocks += 1
            continue
        try:
            file_cases = load_cases(path)
        except PevmError as exc:
            print(f"SKIP {path}: {exc}")
            continue
        for case in file_cases:
            if networks and case.network not in networks:
                continue
            cases += 1
            reference = run_case(case, ReferenceEngine())
            for workers in worker_counts:
                engine = _engine(workers, args)
                try:
                    got = run_case(case, engine)
                except Exception as exc:  # noqa: BLE001 - report and go on
                    bad += 1
                    print(f"CRASH {path} :: {case.name} workers={workers}: "
                          f"{type(exc).__name__}: {exc}")
                    continue
                for index, (want, have) in enumerate(zip(reference, got)):
                    checked_blocks += 1
                    problems = []
                    if want[0] != have[0]:
                        problems.append(f"rejected {want[0]} vs {have[0]} "
                                        f"({want[2]} | {have[2]})")
                    if want[1] is not None and have[1] is not None:
                        problems.extend(str(m) for m in
                                        compare_results(want[1], have[1]))
                    elif (want[1] is None) != (have[1] is None):
                        problems.append("result presence differs")
                    if problems:
                        bad += 1
                        print(f"DIFF {path} :: {case.name} block {index} "
                              f"workers={workers}: {'; '.join(problems[:5])}")
                if len(reference) != len(got):
                    bad += 1
                    print(f"DIFF {path} :: {case.name}: block count differs")
    print(f"{len(files)} files, {cases} cases, {checked_blocks} block comparisons, "
          f"{bad} disagreements, {time.perf_counter() - start:.1f}s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
