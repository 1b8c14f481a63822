"""One block's transaction phase and per-process time by activity, in one process:
1 worker, 2 workers held to the sender pipeline, 2 workers held to speculation.

Each configuration imports the block ``IMPORTS`` times (each from
``pevm.bench.fresh_round``, as ``pevm bench`` times them); prints the median phase
and, per process, the median milliseconds of each activity of the engine's
breakdown (``ParallelEngine.last_detail.breakdown``).

``sender_pipeline=True`` starts the pipeline whenever workers start; that is the
engine's own pipeline only on blocks whose warm-up looks choose it early (the
generated transfer blocks). On others (mainnet 5891667, session 47) the warm-up
runs longer and its coordinator recovers most senders itself, so the pipeline's
row under-reads what the engine's own choice does there
(``session47_pipeline_overhead.py ... none`` measures that).

Usage: session46_modes_breakdown.py IMPORTS BLOCK"""
import statistics
import sys
from collections import defaultdict

from pevm.bench import _run_once
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases

CONFIGS = ({"workers": 1}, {"workers": 2, "sender_pipeline": True},
           {"workers": 2, "sender_pipeline": False})

imports, path = int(sys.argv[1]), sys.argv[2]
ref = list_cases([path]).cases[0]
for options in CONFIGS:
    engine = ParallelEngine(**options)
    by_process: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    phases = []
    for _ in range(imports):
        _, phase, *_ = _run_once(ref, engine)
        phases.append(phase)
        for process, activities in engine.last_detail.breakdown.items():
            for activity, seconds in activities.items():
                by_process[process][activity].append(seconds)
    print(f"{options}: phase {statistics.median(phases) * 1e3:.1f} ms (median)")
    for process, activities in by_process.items():
        medians = {a: round(statistics.median(s) * 1e3, 1) for a, s in activities.items()}
        print(f"    {process}: {medians}, sum {sum(medians.values()):.1f}")
