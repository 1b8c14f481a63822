"""Paired in-process A/B of the sender-pipeline decision, by monkeypatch.

``on`` is the engine as it ships. From eb2ec2b (session 45) until 99724e1 (session
48) it needed recovery of at least ``PIPELINE_SHARE`` of the rest *and* an
estimate below speculation's; since 99724e1 it needs the share and an estimate
below the rest in one process, which is ``off`` below. Sessions 45-47 ran
``off`` against the rule they shipped (and so did session 48 before 99724e1);
on today's engine ``off`` is the shipped rule itself, and ``estimate-bar`` is
the rule of sessions 45-47 (``pevm.engines.cost_model.pipeline_pays`` swapped
for a form written out below) -- above 1 there, the shipped rule is faster.

``off`` is the rule before session 45, the share alone (written out below).
``estimates`` is 7a40811's rule, the estimates alone.

Each round imports each block once each way, in an order reversed every other
round, after one untimed round; every import starts from ``pevm.bench.fresh_round``
(as ``pevm bench`` times them). Prints per block the median of the per-round
ratios of the transaction phase, other/on (above 1: the shipped rule is faster),
their range, which mode each way ran, and the geometric mean over the blocks.

Usage: session45_pipeline_ab.py {off|estimates|estimate-bar} ROUNDS WORKERS BLOCK..."""
import statistics
import sys

import pevm.engines.cost_model as cost_model
from pevm.bench import _run_once
from pevm.engines.parallel import ParallelEngine
from pevm.host import machine_slowness, usable_cores
from pevm.inputs.discover import list_cases

SHIPPED = cost_model.pipeline_pays


def share_alone(remaining, work, recovery, workers, cores=None, slowness=None,
                speculation_pays=True):
    """pipeline_pays as session 44 left it: against speculation, the share alone."""
    cores = cores or usable_cores()
    executors = min(workers, cores)
    if executors < 2 or remaining < 2 or work <= 0:
        return False
    if speculation_pays and (executors != 2
                             or recovery < cost_model.PIPELINE_SHARE * work):
        return False
    scale = machine_slowness() if slowness is None else slowness
    estimate = work - recovery + (remaining * cost_model.PIPELINE_TX_S
                                  + cost_model.PIPELINE_FIXED_S) * scale
    return estimate < work


def estimate_bar(remaining, work, recovery, workers, cores=None, slowness=None,
                 speculation_pays=True):
    """pipeline_pays as sessions 45-47 had it: against speculation, the share and
    an estimate below speculation's."""
    if not share_alone(remaining, work, recovery, workers, cores, slowness,
                       speculation_pays):
        return False
    if not speculation_pays:
        return True
    cores = cores or usable_cores()
    scale = machine_slowness() if slowness is None else slowness
    estimate = work - recovery + (remaining * cost_model.PIPELINE_TX_S
                                  + cost_model.PIPELINE_FIXED_S) * scale
    return estimate < cost_model.speculation_estimate(remaining, work, workers,
                                                      cores, scale)[1]


def estimates_alone(remaining, work, recovery, workers, cores=None, slowness=None,
                    speculation_pays=True):
    """pipeline_pays as 7a40811 had it: against speculation, the estimates alone."""
    share = cost_model.PIPELINE_SHARE
    cost_model.PIPELINE_SHARE = 0.0
    try:
        return estimate_bar(remaining, work, recovery, workers, cores, slowness,
                            speculation_pays)
    finally:
        cost_model.PIPELINE_SHARE = share


def mode(engine: ParallelEngine) -> str:
    detail = engine.last_detail
    if detail.sender_pipeline:
        return "pipeline"
    return "in-process" if detail.in_process_reason else "speculation"


other, rounds, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
OTHER = {"off": share_alone, "estimates": estimates_alone,
         "estimate-bar": estimate_bar}[other]
ratios_by_block = []
for path in sys.argv[4:]:
    ref = list_cases([path]).cases[0]
    engine = ParallelEngine(workers=workers)
    phases: dict[bool, list[float]] = {True: [], False: []}
    modes: dict[bool, set[str]] = {True: set(), False: set()}
    for round_index in range(rounds + 1):
        for on in ((True, False) if round_index % 2 == 0 else (False, True)):
            cost_model.pipeline_pays = SHIPPED if on else OTHER
            _, phase, *_ = _run_once(ref, engine)
            if round_index:
                phases[on].append(phase)
                modes[on].add(mode(engine))
    cost_model.pipeline_pays = SHIPPED
    ratios = [b / a for a, b in zip(phases[True], phases[False])]
    ratios_by_block.append(statistics.median(ratios))
    print(f"{path.rstrip('/').split('/')[-1][:24]:24} {other}/on "
          f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}); "
          f"on {statistics.median(phases[True]) * 1e3:.0f} ms "
          f"({'/'.join(sorted(modes[True]))}), {other} "
          f"{statistics.median(phases[False]) * 1e3:.0f} ms "
          f"({'/'.join(sorted(modes[False]))})", flush=True)
print(f"geomean over {len(ratios_by_block)} blocks: "
      f"{statistics.geometric_mean(ratios_by_block):.3f}")
