"""Mutation harness at scale: break real blocks N ways; pevm must judge each like py-evm.

    python scripts/mutate.py [--count N] [--seed S] [--workers 1,2,4] [--max-txs K]
        [--kinds K1,K2] [--timeout SEC] [--json FILE] [PATH ...]

``PATH``: BlockchainTests files, mainnet snapshot folders, or directories holding
them (default: ``fixtures/``). Blocks with more than ``--max-txs`` transactions
(default 8) are cut to their first ones and made valid again. Mutation ``i`` is
made from seed ``S + i`` alone (:func:`pevm.mutations.mutant_for_seed`: the seed
picks the source block and the mutation), then runs in this process with py-evm's
reference engine and the parallel engine at each ``--workers`` count
(:func:`pevm.mutations.check_mutant`).

Prints a progress line, then a summary -- mutations run by kind, the reference's
verdicts, the problems by kind -- and every problem with the command that
reproduces it (the same PATHs, ``--max-txs`` and ``--kinds``, ``--count 1 --seed
SEED``); a crash's traceback is printed once per distinct crash site. Exit status
1 on any problem, 0 otherwise. See :mod:`pevm.mutations` for the mutation kinds and
what counts as a problem. Example (about 0.1 s per mutation here)::

    python scripts/mutate.py --count 2000 --seed 0 --workers 1,2
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from typing import Any

from pevm.mutations import (CRASH, INTERNAL, KINDS, CheckRecord, check_mutant,
                            load_sources, mutant_for_seed)
from pevm.mutations.check import REFERENCE
from pevm.mutations.mutators import NoMutation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["fixtures"])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--max-txs", type=int, default=8)
    parser.add_argument("--kinds", default="", help="comma-separated mutation kinds "
                        f"(default: all: {', '.join(KINDS)})")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per engine per mutation before it counts as a hang")
    parser.add_argument("--json", help="write every record's verdicts and problems here")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w]
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}")
    # py-evm logs a warning for every block it rejects: thousands of lines here.
    logging.getLogger("eth").setLevel(logging.ERROR)
    started = time.perf_counter()
    sources = load_sources(args.paths, max_txs=args.max_txs)
    print(f"{len(sources)} source blocks from {' '.join(args.paths)} "
          f"(loaded in {time.perf_counter() - started:.1f}s)", file=sys.stderr)
    records: list[CheckRecord] = []
    skipped = 0
    for i in range(args.count):
        seed = args.seed + i
        try:
            mutant = mutant_for_seed(sources, seed, kinds or None)
        except NoMutation:
            skipped += 1  # --kinds left nothing that applies to this source
            continue
        records.append(check_mutant(mutant, workers, timeout=args.timeout))
        _progress(i + 1, args.count, records, started)
    print(file=sys.stderr)
    _summary(records, skipped, time.perf_counter() - started)
    _problems(records, args)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([_record_json(r) for r in records], handle, indent=1)
    return 1 if any(r.problems for r in records) else 0


def _progress(done: int, total: int, records: list[CheckRecord], started: float) -> None:
    bad = sum(1 for r in records if r.problems)
    line = (f"[{done}/{total}] {bad} with problems, "
            f"{time.perf_counter() - started:.0f}s")
    if sys.stderr.isatty():
        print("\r" + line, end="", file=sys.stderr, flush=True)
    elif done % 100 == 0 or done == total:
        print(line, file=sys.stderr, flush=True)


def _summary(records: list[CheckRecord], skipped: int, seconds: float) -> None:
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    verdicts: Counter[str] = Counter()
    problem_kinds: Counter[str] = Counter()
    for record in records:
        row = by_kind[record.mutant.kind]
        row["run"] += 1
        reference = record.verdicts.get(REFERENCE, [])
        # executed: an engine ran the block (it gave a result or a rejection reason)
        row["executed"] += any(v.result is not None or v.rejection for v in reference)
        row["results"] += any(v.result is not None for v in reference)
        row["with problems"] += bool(record.problems)
        for verdict in reference:
            verdicts[verdict.label()] += 1
        for problem in record.problems:
            problem_kinds[f"{problem.kind} [{problem.engine}]"] += 1
    print(f"\n{len(records)} mutations in {seconds:.0f}s ({skipped} skipped)")
    print(f"{'kind':<20} {'run':>6} {'executed':>9} {'results':>8} {'problems':>9}")
    for kind in sorted(by_kind):
        row = by_kind[kind]
        print(f"{kind:<20} {row['run']:>6} {row['executed']:>9} {row['results']:>8} "
              f"{row['with problems']:>9}")
    print("\nreference verdicts per block (status/rejection class):")
    for label, count in verdicts.most_common():
        print(f"  {count:>6}  {label}")
    print("\nproblems:" if problem_kinds else "\nproblems: none")
    for label, count in problem_kinds.most_common():
        print(f"  {count:>6}  {label}")


def _problems(records: list[CheckRecord], args: Any) -> None:
    """Every problem with its seed; each distinct crash's traceback once."""
    common = " ".join(args.paths) + f" --max-txs {args.max_txs}" + \
        (f" --kinds {args.kinds}" if args.kinds else "") + f" --workers {args.workers}"
    crashes: dict[str, list[int]] = defaultdict(list)
    first_traceback: dict[str, str] = {}
    for record in records:
        mutant = record.mutant
        for problem in record.problems:
            detail = problem.detail.strip().splitlines()
            print(f"\nseed {mutant.seed}: {problem.kind} [{problem.engine}] "
                  f"{mutant.kind} on {mutant.source.label}: {mutant.description}\n"
                  f"  {detail[-1] if detail else ''}\n"
                  f"  reproduce: python scripts/mutate.py --count 1 --seed {mutant.seed} "
                  f"{common}")
            if problem.kind in (CRASH, INTERNAL):
                site = _crash_site(problem.detail)
                crashes[site].append(mutant.seed or 0)
                first_traceback.setdefault(site, problem.detail)
    for site, seeds in crashes.items():
        print(f"\n=== crash: {site} ({len(seeds)}x, seeds {sorted(set(seeds))[:20]}) ===")
        print(first_traceback[site])


def _crash_site(text: str) -> str:
    """A crash's identity: its innermost frame and its exception type."""
    lines = text.strip().splitlines()
    frames = [line.strip() for line in lines if line.strip().startswith("File ")]
    error = lines[-1].split(":")[0] if lines else "?"
    return f"{error} at {frames[-1] if frames else '?'}"


def _record_json(record: CheckRecord) -> dict[str, Any]:
    mutant = record.mutant
    return {
        "seed": mutant.seed, "source": mutant.source.label, "kind": mutant.kind,
        "description": mutant.description, "seconds": round(record.seconds, 3),
        "verdicts": {engine: [{"block": v.block, "status": v.status,
                               "rejection": v.rejection, "error": v.error}
                              for v in verdicts]
                     for engine, verdicts in record.verdicts.items()},
        "problems": [{"kind": p.kind, "engine": p.engine, "detail": p.detail}
                     for p in record.problems],
    }


if __name__ == "__main__":
    sys.exit(main())
