"""What a sender pipeline costs its coordinator beyond one process's time less its
recoveries, by block: the quantity ``PIPELINE_TX_S`` and ``PIPELINE_FIXED_S``
price (``pevm.engines.cost_model.pipeline_pays``).

Each round imports the block once at 1 worker and once at 2 (in an order reversed
every other round, after one untimed round; every import from
``pevm.bench.fresh_round``, as ``pevm bench`` times them). For each round whose
2-worker import ran as a sender pipeline: overhead = its transaction phase less
(the 1-worker phase less the 1-worker coordinator's sender recoveries). Prints
the median overhead and its range, the medians of the three times, and the
median of the senders the pipeline's coordinator recovered itself (the rest its
worker recovered).

``none``: the engine decides (only rounds where it chose the pipeline count);
``true``: ``sender_pipeline=True`` (the pipeline whenever workers start; on a
block whose warm-up the looks would not end early, the warm-up runs longer and
recovers more senders itself than the engine's own pipeline would).

Usage: session47_pipeline_overhead.py ROUNDS {none|true} BLOCK..."""
import statistics
import sys

from pevm.bench import _run_once
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases

rounds, mode = int(sys.argv[1]), sys.argv[2]
for path in sys.argv[3:]:
    ref = list_cases([path]).cases[0]
    one = ParallelEngine(workers=1)
    two = ParallelEngine(workers=2, **({} if mode == "none" else {"sender_pipeline": True}))
    rows = []
    for i in range(rounds + 1):
        seen = {}
        for engine in ((one, two) if i % 2 == 0 else (two, one)):
            _, phase, *_ = _run_once(ref, engine)
            detail = engine.last_detail
            seen[engine.workers] = (phase,
                                    detail.breakdown["coordinator"].get("recover sender", 0.0),
                                    detail.sender_pipeline)
        if i and seen[2][2]:
            bound = seen[1][0] - seen[1][1]
            rows.append((seen[2][0] - bound, seen[1][0], seen[2][0], bound, seen[2][1]))
    name = path.rstrip("/").split("/")[-1]
    if not rows:
        print(f"{name}: never a sender pipeline in {rounds} rounds")
        continue
    ms = [[row[k] * 1e3 for row in rows] for k in range(5)]
    print(f"{name:22s} pipeline in {len(rows)}/{rounds} rounds: overhead "
          f"{statistics.median(ms[0]):.1f} ms ({min(ms[0]):.1f}-{max(ms[0]):.1f}); "
          f"1 worker {statistics.median(ms[1]):.1f}, pipeline {statistics.median(ms[2]):.1f}, "
          f"bound {statistics.median(ms[3]):.1f}, coordinator's recoveries "
          f"{statistics.median(ms[4]):.1f}", flush=True)
