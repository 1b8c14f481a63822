"""Paired in-process A/B of session 28's two coordinator changes, by monkeypatch.

It patches the engine as it was at commit c0d620e (BlockRun._start_workers and
block_run.pack_writes; WorkerFeed took them over afterwards): run it there.

variants: before = commits pickled inside each run message and every worker forked
before any is fed (sessions <= 27); pack = commits packed once (pack_writes),
forks as before; direct = both, each worker forked by the coordinator (commit 783e043);
after = both, from NURSERY_FROM workers forked by the nursery. Prints one JSON line per
import: block, workers, variant, round, transaction-phase seconds, start_workers
and the coordinator's message seconds."""
import json
import sys
import time
import pevm.engines.block_run as br
import pevm.engines.workers as wk
from pevm.engines.timeline import Activity, Timeline
from pevm.inputs.discover import list_cases
from pevm.engines.parallel import ParallelEngine
from pevm.state.backend import StateBackend
from pevm.bench import import_run

NEW_START = br.BlockRun._start_workers
PACK = (wk.pack_writes, wk.unpack_writes)
NO_PACK = (lambda w: w, lambda w: w)


def start_all(self, workers):
    """The old start: fork every worker, then feed them from _execute_all."""
    pool = br.WorkerPool(self.ctx, self.engine.hooks, self.mv, nice=self.engine.worker_nice)
    self.worker_timelines = {w: Timeline(tracing=self.timeline.tracing) for w in range(workers)}
    self.synced = {w: self.scheduler.commit_index for w in range(workers)}
    mark = time.perf_counter()
    for w in range(workers):
        pool._start_one(w)
    end = self.timeline.add(Activity.START, mark)
    self.seconds["start_workers"] = end - mark
    self.pool, self.pool_started = pool, True
    for w in range(workers):
        self.worker_started[w] = end
    self.scheduler.start_ahead()


VARIANTS = {"before": (start_all, NO_PACK, 10**9), "pack": (start_all, PACK, 10**9),
            "direct": (NEW_START, PACK, 10**9), "after": (NEW_START, PACK, wk.NURSERY_FROM)}


def main():
    paths = sys.argv[1].split(",")
    counts = [int(x) for x in sys.argv[2].split(",")]
    rounds = int(sys.argv[3])
    names = sys.argv[4].split(",") if len(sys.argv) > 4 else list(VARIANTS)
    refs = [list_cases([p]).cases[0] for p in paths]
    for r in range(rounds):
        for ref in refs:
            order = names[r % len(names):] + names[:r % len(names)]
            plan = [(1, "after")] + [(w, v) for w in counts for v in order]
            for w, v in plan:
                start, packing, wk.NURSERY_FROM = VARIANTS[v]
                br.BlockRun._start_workers = start
                br.pack_writes, wk.unpack_writes = packing
                eng = ParallelEngine(workers=w, state_backend=StateBackend.FLAT,
                                     fit_workers=False)
                run = ref.load().start(StateBackend.FLAT)
                _, phase, _, _ = import_run(ref, run, eng, [])
                d = eng.last_detail
                coord = d.breakdown.get("coordinator", {}) if d is not None else {}
                print(json.dumps({"block": ref.name, "workers": w, "variant": v, "round": r,
                                  "phase": round(phase, 5),
                                  "start": round(coord.get("start workers", 0.0), 5),
                                  "message": round(coord.get("message", 0.0), 5)}), flush=True)


main()
