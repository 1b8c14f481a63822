"""Paired in-process A/B of session 29's two changes, by monkeypatch (device run).

It patches the engine as it was at commit e34f4bb, where ``nursery.BROOD`` and
``split_brood`` existed (the split brood was dropped after this run): run it there.

Variants: before = one nursery forks every worker and the merge hashes bloom items
one by one (sessions <= 28); brood = broods split (nursery.split_brood); after =
broods split and the bloom items hashed in one batch (BloomCache.prepare), the
engine as committed; noahead = after, with the coordinator never executing ahead
of the commit point (Scheduler.claim_ahead answers None: it validates, commits,
dispatches and re-executes what fails) -- a question, not a change.

Each round imports every block once at 1 worker, then at each worker count once
per variant in rotating order, so each pair runs side by side. Prints (and appends
to OUT) one JSON line per import: block, workers, variant, round, transaction-phase
seconds, the coordinator's breakdown in ms and the workers' mean idle ms.

Usage: session29_ab.py OUT BLOCKS COUNTS ROUNDS [SECONDS] (BLOCKS and COUNTS
comma-separated; no round starts after SECONDS)."""
import json
import sys
import time

import pevm.engines.blooms as blooms
import pevm.engines.nursery as nursery
import pevm.engines.scheduler as scheduler
from pevm.bench import import_run
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases
from pevm.state.backend import StateBackend

PREPARE = blooms.BloomCache.prepare
SPLIT = nursery.BROOD
AHEAD = scheduler.Scheduler.claim_ahead


def _no_prepare(self, receipts_logs):
    return None


def _no_ahead(self):
    return None


VARIANTS = {"before": (10**9, _no_prepare, AHEAD), "brood": (SPLIT, _no_prepare, AHEAD),
            "after": (SPLIT, PREPARE, AHEAD), "noahead": (SPLIT, PREPARE, _no_ahead)}


def main() -> None:
    out = open(sys.argv[1], "a")
    refs = [list_cases([p]).cases[0] for p in sys.argv[2].split(",")]
    counts = [int(x) for x in sys.argv[3].split(",")]
    rounds = int(sys.argv[4])
    budget = float(sys.argv[5]) if len(sys.argv) > 5 else float("inf")
    names = list(VARIANTS)
    start = time.monotonic()
    for r in range(rounds):
        if time.monotonic() - start > budget:
            break
        for ref in refs:
            order = names[r % len(names):] + names[:r % len(names)]
            for w, v in [(1, "after")] + [(w, v) for w in counts for v in order]:
                (nursery.BROOD, blooms.BloomCache.prepare,
                 scheduler.Scheduler.claim_ahead) = VARIANTS[v]
                eng = ParallelEngine(workers=w, state_backend=StateBackend.FLAT,
                                     fit_workers=False)
                run = ref.load().start(StateBackend.FLAT)
                _, phase, _, _ = import_run(ref, run, eng, [])
                d = eng.last_detail
                tracks = d.breakdown if d is not None else {}
                coord = tracks.get("coordinator", {})
                idle = [t.get("idle", 0.0) for name, t in tracks.items()
                        if name.startswith("worker")]
                line = json.dumps({
                    "block": ref.name, "workers": w, "variant": v, "round": r,
                    "phase": round(phase, 5),
                    "coordinator_ms": {k: round(x * 1e3, 2) for k, x in coord.items()},
                    "worker_idle_ms": round(1e3 * sum(idle) / len(idle), 2) if idle else 0})
                print(line, flush=True)
                out.write(line + "\n")
                out.flush()


main()
