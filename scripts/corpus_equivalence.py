"""Whole-corpus equivalence: the parallel engine against py-evm on every block.

    python scripts/corpus_equivalence.py [CORPUS] [--workers 2] [--filter TEXT]
        [--include-timeouts] [--json FILE]

Runs every case of the corpus (default ``$PEVM_CORPUS`` or ``../shared/corpus``):
BlockchainTests files and mainnet snapshots, each block imported by the parallel
engine and by py-evm's sequential reference on identical pre-states (what
``pevm run --check`` does), and prints

* every **divergence** -- a block where the engine's result (receipts, gas, bloom,
  roots, state diff) or its rejection differs from the reference's -- with the
  block, the field or location and both values;
* every case ``PYEVM_BASELINE.jsonl`` lists as passing in py-evm that does not pass
  here (its state root and state diff checked against the input);
* every case that ended with an error;
* counts and the runtime.

Cases the baseline marks ``timeout`` (py-evm itself needs more than 120 s) are
skipped unless ``--include-timeouts``. Exit status 1 on any divergence, baseline
regression or error. Run it before resolving an issue that touches the engine;
CI runs a daily rotation of one case per category instead (tests/corpus_sample.py).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from pevm.engines import make_engine
from pevm.inputs.baseline import read_baseline
from pevm.inputs.discover import list_cases
from pevm.runner import ERROR, BlockReport, run_case_ref

REPO = Path(__file__).resolve().parent.parent


def _divergences(report: BlockReport) -> list[str]:
    return [str(m) for m in report.mismatches
            if m.field.startswith("engine vs reference")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=os.environ.get(
        "PEVM_CORPUS", str(REPO.parent / "shared" / "corpus")))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--filter", metavar="TEXT",
                        help="only cases whose name or file contains TEXT")
    parser.add_argument("--include-timeouts", action="store_true",
                        help="also run the cases py-evm needs over 120 s for")
    parser.add_argument("--json", metavar="FILE",
                        help="write every block report as JSON lines")
    args = parser.parse_args(argv)
    # py-evm logs every rejected block; the report below says what matters
    logging.getLogger("eth").setLevel(logging.ERROR)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"corpus not found: {corpus}", file=sys.stderr)
        return 2
    known = {key: entry.result for key, entry in read_baseline(corpus).items()}
    engine = make_engine("parallel", workers=args.workers)
    reference = make_engine("reference")
    refs = list_cases([str(corpus)]).matching(args.filter)
    start = time.perf_counter()
    counts = {"cases": 0, "blocks": 0, "skipped": 0, "divergent blocks": 0,
              "baseline passes": 0, "baseline regressions": 0, "errors": 0}
    out = open(args.json, "w") if args.json else None
    for number, ref in enumerate(refs, 1):
        rel = os.path.relpath(ref.source, corpus)
        expected = known.get((rel, ref.name))
        if expected == "timeout" and not args.include_timeouts:
            counts["skipped"] += 1
            continue
        counts["cases"] += 1
        reports = run_case_ref(ref, engine, reference)
        counts["blocks"] += len(reports)
        for report in reports:
            if out is not None:
                out.write(json.dumps(report.to_json()) + "\n")
            diverged = _divergences(report)
            if diverged:
                counts["divergent blocks"] += 1
                print(f"DIVERGENCE {rel} :: {ref.name} block {report.block}: "
                      + "; ".join(diverged[:5]), flush=True)
            if report.status == ERROR:
                counts["errors"] += 1
                print(f"ERROR {rel} :: {ref.name}: {report.error}", flush=True)
        if expected == "pass":
            counts["baseline passes"] += 1
            if not all(r.ok for r in reports):
                counts["baseline regressions"] += 1
                print(f"REGRESSION {rel} :: {ref.name}: py-evm passes it, pevm "
                      f"does not", flush=True)
        if number % 200 == 0:
            print(f"... {number}/{len(refs)} cases, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    if out is not None:
        out.close()
    seconds = time.perf_counter() - start
    print(f"workers={args.workers}: " + ", ".join(f"{v} {k}" for k, v in counts.items())
          + f"; {seconds:.0f} s")
    bad = counts["divergent blocks"] + counts["baseline regressions"] + counts["errors"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
