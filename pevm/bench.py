"""Side-by-side speed measurement of the engines on the same blocks.

For each block (a fixture case or mainnet snapshot) the reference (py-evm's own
loop), the engine in one process and the engine at each worker count run on
identical fresh pre-states, interleaved round by round so that machine noise hits
all of them alike (the engines' order reversed every other round, see
:func:`_round_order`), after a warm-up round; a short block's sample of several
imports alternates the engines import by import (:func:`_sample_together`).
Two wall-clock times are kept per run (the parallel engine's work happens in child
processes): py-evm's whole block import with that engine, and the transaction
phase alone -- the step the engine replaces (``EngineStats.transaction_seconds``,
timed by the pipeline); the rest of an import (header checks, py-evm's state root,
the state diff) is the same code for every engine. The first round also compares
every engine's results with the reference's, field by field: a block where they
differ stops the measurement with the difference.
Ratios are computed from medians within the same run, and over 1 worker also round
by round (:func:`paired_ratios`); the ideal speedup comes from the block's
dependency graph (:mod:`pevm.analysis`).

Variants (``variants=``, ``pevm bench --variant``) are the parallel engine with some
of its tuning options changed (:mod:`pevm.engines.options`), run in the same
rounds at the same worker counts and compared with the engine as it ships at the
same count, round by round: an A/B of a design choice on the same machine state.
"""
from __future__ import annotations

import gc
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pevm import jumpdests
from pevm.abc import CaseRun
from pevm.compare import compare_results
from pevm.engines import make_engine
from pevm.engines.detail import ParallelDetail
from pevm.engines.options import format_options
from pevm.engines.parallel import ParallelEngine
from pevm.engines.timeline import Trace
from pevm.errors import PevmError, ResultMismatch
from pevm.inputs.discover import CaseRef
from pevm.memory import MemoryPeak, PeakMemory
from pevm.pyevm_compat import forget_body_tries
from pevm.result import BlockResult
from pevm.state.backend import StateBackend, backend_of

#: Called after every timed round: (block name, round, rounds) -- for progress bars.
Progress = Callable[[str, int, int], None]

#: A timed sample spans at least this many seconds: a block whose import takes
#: less is imported again, as many times as that needs (:func:`loops_for`), and
#: the sample is their mean -- as :meth:`timeit.Timer.autorange` does. A 1 ms
#: block timed once is mostly the timer's and the scheduler's noise: mainnet
#: 46147 (one transaction) read 0.87x at 2 workers against 1 in one run, with both
#: counts running the same in-process code, and 1.01x over 200 alternating imports.
MIN_SAMPLE_S = 0.05
#: ... with at most this many imports to a sample
MAX_LOOPS = 50


def loops_for(seconds: float, min_time: float = MIN_SAMPLE_S) -> int:
    """How many imports of ``seconds`` each make a sample of ``min_time`` or more
    (1 to :data:`MAX_LOOPS`)."""
    if min_time <= 0 or seconds >= min_time:
        return 1
    # (less a hair, so that 0.05 / 0.01 is 5 imports, not 6)
    return min(MAX_LOOPS, math.ceil(min_time / max(seconds, 1e-6) - 1e-9))


@dataclass
class Timing:
    """Wall-clock seconds of one engine configuration over the repeats."""

    label: str
    workers: int
    #: whole block imports
    samples: list[float] = field(default_factory=list)
    #: transaction phases of the same runs
    phase_samples: list[float] = field(default_factory=list)
    #: highest memory of all processes together over the runs (``memory=True``)
    peak: MemoryPeak | None = None
    #: the parallel engine's per-process seconds by activity in the last timed
    #: round, summed over the case's blocks (:attr:`ParallelDetail.breakdown
    #: <pevm.engines.detail.ParallelDetail>`)
    breakdown: dict[str, dict[str, float]] | None = None
    #: the parallel engine's minor page faults per process in the same imports
    #: (:attr:`ParallelDetail.page_faults <pevm.engines.detail.ParallelDetail>`)
    page_faults: dict[str, int] | None = None
    #: the parallel engine's tuning options changed from how it ships (a variant,
    #: :mod:`pevm.engines.options`); empty: the engine as it ships
    options: dict[str, Any] = field(default_factory=dict)
    #: blocks that ran as a sender pipeline in the same imports as ``breakdown``
    #: (:attr:`ParallelDetail.sender_pipeline
    #: <pevm.engines.detail.ParallelDetail>`); None: not the parallel engine
    sender_pipelines: int | None = None
    #: the machine's slowness each block of the same imports decided by
    #: (:attr:`ParallelDetail.slowness <pevm.engines.detail.ParallelDetail>`:
    #: its own sender recoveries, or the process's probe); blocks that made no
    #: decision (too few transactions) are left out
    slowness: list[float] = field(default_factory=list)

    @property
    def ran(self) -> int | None:
        """Processes that executed transactions in the last timed round (the
        coordinator and the workers of its breakdown; of a case of several blocks,
        the most any block used): fewer than ``workers``
        where the engine found that fewer pay, 1 where the block stayed in one
        process; None without a breakdown (the reference)."""
        return len(self.breakdown) if self.breakdown else None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def phase_median(self) -> float:
        return statistics.median(self.phase_samples)

    def to_json(self) -> dict[str, Any]:
        return _summary(self.samples)


def _summary(samples: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(samples), "min": min(samples),
            "max": max(samples), "samples": samples}


def paired_ratios(base: list[float], samples: list[float]) -> dict[str, float] | None:
    """Round-by-round ratios ``base[i] / samples[i]``: median, fastest and slowest.

    The two runs of one round sit side by side in time, so a slow spell of the
    machine -- this project's VM drifts by 20-30% over minutes -- slows both and
    cancels in their ratio, where the ratio of the two medians takes each median
    from whichever rounds it falls in. Reported beside that ratio, never instead:
    the targets are stated on medians. None without samples to pair.
    """
    ratios = [b / s for b, s in zip(base, samples) if s > 0]
    if not ratios:
        return None
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


@dataclass
class BlockBench:
    """All timings of one block, and what its dependency graph allows."""

    name: str
    source: str
    txs: int
    gas: int
    reference: Timing
    engine: list[Timing]
    ideal_speedup: dict[str, float] | None
    #: the machine's ceiling per worker count (:mod:`pevm.ceiling`; measured with
    #: ``ceiling=True``), on the transaction phase
    ceiling: dict[str, float] | None = None
    #: imports per timed sample, each sample their mean (:func:`loops_for`)
    loops: int = 1
    #: the parallel engine with changed options, timed in the same rounds
    variants: list[Timing] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One record per engine configuration, ratios included (the JSON schema)."""
        one = next((t for t in self.engine if t.workers == 1), None)
        out = []
        for timing in self.engine:
            ideal = (self.ideal_speedup or {}).get(str(timing.workers))
            vs_one = one.median / timing.median if one else None
            phase_vs_one = one.phase_median / timing.phase_median if one else None
            paired = paired_ratios(one.phase_samples, timing.phase_samples) if one else None
            ceiling = (self.ceiling or {}).get(str(timing.workers))
            out.append({
                "workers": timing.workers, "processes_ran": timing.ran,
                "sender_pipelines": timing.sender_pipelines,
                "seconds": timing.to_json(),
                "tx_per_s": self.txs / timing.median, "gas_per_s": self.gas / timing.median,
                "speedup_vs_reference": self.reference.median / timing.median,
                "speedup_vs_one_process": vs_one,
                "ideal_speedup": ideal,
                "efficiency": (vs_one / ideal) if (vs_one and ideal) else None,
                "transaction_phase": {
                    "seconds": _summary(timing.phase_samples),
                    "speedup_vs_reference":
                        self.reference.phase_median / timing.phase_median,
                    "speedup_vs_one_process": phase_vs_one,
                    "paired_vs_one_process": paired,
                    "ceiling": ceiling,
                    "of_ceiling": (phase_vs_one / ceiling)
                    if (phase_vs_one and ceiling) else None},
                "peak_memory": timing.peak.to_json() if timing.peak else None,
                "breakdown": timing.breakdown,
                "page_faults": timing.page_faults,
                "decision_slowness": timing.slowness,
            })
        return out

    def variant_rows(self) -> list[dict[str, Any]]:
        """One record per variant and worker count, with its transaction phase
        against the engine as it ships at the same count: the ratio of medians and
        the paired ratios (above 1: the variant is faster)."""
        base = {t.workers: t for t in self.engine}
        one = base.get(1)
        out = []
        for timing in self.variants:
            same = base[timing.workers]
            out.append({
                "options": timing.options, "variant": format_options(timing.options),
                "workers": timing.workers, "processes_ran": timing.ran,
                "sender_pipelines": timing.sender_pipelines,
                "seconds": timing.to_json(),
                "transaction_phase": {
                    "seconds": _summary(timing.phase_samples),
                    "speedup_vs_base": same.phase_median / timing.phase_median,
                    "paired_vs_base": paired_ratios(same.phase_samples,
                                                    timing.phase_samples),
                    "speedup_vs_one_process": one.phase_median / timing.phase_median
                    if one else None},
                "breakdown": timing.breakdown,
                "page_faults": timing.page_faults,
                "decision_slowness": timing.slowness,
            })
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlockBench:
        """The inverse of :meth:`to_json` (timings, ideal, and each configuration's
        breakdown and page faults; to re-plot a run or read it again)."""
        def timing(label: str, workers: int, entry: dict[str, Any]) -> Timing:
            return Timing(label, workers, list(entry["seconds"]["samples"]),
                          list(entry["transaction_phase"]["seconds"]["samples"]),
                          breakdown=entry.get("breakdown"),
                          page_faults=entry.get("page_faults"),
                          options=dict(entry.get("options", {})),
                          sender_pipelines=entry.get("sender_pipelines"),
                          slowness=list(entry.get("decision_slowness", [])))
        return cls(name=data["name"], source=data["source"], txs=data["txs"],
                   gas=data["gas"], reference=timing("reference", 1, data["reference"]),
                   engine=[timing("parallel", row["workers"], row)
                           for row in data["engine"]],
                   ideal_speedup=data["ideal_speedup"], ceiling=data.get("ceiling"),
                   loops=data.get("loops", 1),
                   variants=[timing("parallel", row["workers"], row)
                             for row in data.get("variants", [])])

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "txs": self.txs, "gas": self.gas,
                "ideal_speedup": self.ideal_speedup, "ceiling": self.ceiling,
                "loops": self.loops,
                "reference": {"seconds": self.reference.to_json(),
                              "tx_per_s": self.txs / self.reference.median,
                              "gas_per_s": self.gas / self.reference.median,
                              "transaction_phase": {"seconds": _summary(
                                  self.reference.phase_samples)},
                              "peak_memory": self.reference.peak.to_json()
                              if self.reference.peak else None},
                "engine": self.rows(), "variants": self.variant_rows()}


@dataclass
class ProcessTotals:
    """The parallel engine's per-process totals over the blocks of one import of
    a case (each block's :class:`~pevm.engines.detail.ParallelDetail`): seconds by
    activity (``breakdown``) and minor page faults (``page_faults``), by process
    name, the blocks that ran as a sender pipeline, and the slowness each block
    decided by."""

    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    page_faults: dict[str, int] = field(default_factory=dict)
    sender_pipelines: int = 0
    slowness: list[float] = field(default_factory=list)

    def add(self, detail: ParallelDetail) -> None:
        """Add one block's detail."""
        for process, activities in detail.breakdown.items():
            into = self.breakdown.setdefault(process, {})
            for name, value in activities.items():
                into[name] = round(into.get(name, 0.0) + value, 6)
        for process, count in detail.page_faults.items():
            self.page_faults[process] = self.page_faults.get(process, 0) + count
        self.sender_pipelines += detail.sender_pipeline
        if detail.slowness:
            self.slowness.append(detail.slowness)


def fresh_round() -> None:
    """Start a timed import as a chain's next block would start.

    From a collected heap: earlier imports' cyclic garbage otherwise lands in
    whichever import a collection happens to fall in (the parallel engine collects
    before a block once the heap has grown by half:
    :func:`~pevm.engines.parallel.collect_if_grown`), ~20-60 ms. And without the
    answers an earlier round of the same block left in caches keyed by content,
    which a chain's next block would not find: pevm's jump analysis
    (:mod:`pevm.jumpdests`) and py-evm's body-trie roots
    (:func:`~pevm.pyevm_compat.forget_body_tries`).
    """
    gc.collect()
    jumpdests.clear()
    forget_body_tries()


def _run_once(ref: CaseRef, engine: Any, results: list[BlockResult] | None = None,
              totals: ProcessTotals | None = None) -> tuple[float, float, int, int]:
    """Import every block of the case once on a fresh pre-state:
    (import seconds, transaction-phase seconds, txs, gas); ``results`` collects
    the blocks' results, ``totals`` the parallel engine's per-process time and
    page faults over them."""
    return import_run(ref, ref.load().start(backend_of(engine)), engine, results,
                      totals)


def import_run(ref: CaseRef, run: CaseRun, engine: Any,
               results: list[BlockResult] | None = None,
               totals: ProcessTotals | None = None) -> tuple[float, float, int, int]:
    """:func:`_run_once` on a case already started (``ref.load().start(...)``):
    the timed part, for callers that prepare the pre-state first
    (:mod:`pevm.ceiling`)."""
    seconds, phase, txs, gas = 0.0, 0.0, 0, 0
    for task in run.tasks():
        if task.block is None:
            continue
        fresh_round()
        outcome = task.execute(engine)
        if outcome.rejection is not None or outcome.result is None:
            raise PevmError(f"{ref.source} :: {ref.name}: block {task.index} was "
                            f"rejected ({outcome.rejection}); benchmark valid blocks only")
        if results is not None:
            results.append(outcome.result)
        detail = getattr(engine, "last_detail", None)
        if totals is not None and detail is not None:
            totals.add(detail)
        seconds += outcome.seconds
        phase += outcome.result.stats.transaction_seconds
        txs += outcome.result.tx_count
        gas += outcome.result.gas_used
    return seconds, phase, txs, gas


def bench_case(ref: CaseRef, workers: list[int], repeat: int, warmup: int = 1,
               ideal: dict[str, float] | None = None,
               progress: Progress | None = None, memory: bool = False,
               trace: Trace | None = None,
               state_backend: StateBackend = StateBackend.FLAT,
               ceiling: bool = False, min_time: float = MIN_SAMPLE_S,
               variants: Sequence[Mapping[str, Any]] = ()) -> BlockBench:
    """Time the reference and the engine at each worker count on one case.

    Each timed sample is the mean of as many imports as span ``min_time``
    seconds (:data:`MIN_SAMPLE_S`), counted once for the case from the fastest
    configuration's time in the warm-up round; 0 times each import once. py-evm's
    imports run in a row, the engines' alternate import by import
    (:func:`_sample_together`).
    ``memory``: also sample the peak memory of this process and its workers
    together during the timed runs (:mod:`pevm.memory`; adds a sampling thread).
    ``trace``: collect the parallel engine's slices of the last timed round, at
    every worker count (tracing costs a list append per slice; variants are not
    traced).
    ``state_backend``: the parallel engine's state layer (the reference's is
    py-evm's). ``ceiling``: also measure the machine's ceiling at each worker count
    above 1 (:func:`pevm.ceiling.machine_ceiling`, after the engines' rounds).
    ``variants``: option sets of the parallel engine (:mod:`pevm.engines.options`),
    each timed at every count of ``workers`` in the same rounds, its results
    checked like the engine's.
    """
    configs: list[tuple[Timing, Any]] = [(Timing("reference", 1), make_engine("reference"))]
    for count in sorted(set([1, *workers])):
        configs.append((Timing("parallel", count),
                        make_engine("parallel", workers=count, state_backend=state_backend)))
    for options in variants:
        for count in sorted(set(workers)):
            configs.append((Timing("parallel", count, options=dict(options)),
                            make_engine("parallel", workers=count,
                                        state_backend=state_backend, options=options)))
    txs = gas = 0
    rounds = warmup + repeat
    loops, fastest = 1, float("inf")
    for round_index in range(rounds):
        reference: list[BlockResult] = []
        if round_index == warmup and warmup:
            loops = loops_for(fastest, min_time)
        timed = round_index >= warmup
        last = round_index == rounds - 1
        order = _round_order(configs, round_index - warmup)
        # py-evm's reference alone, then the engines import by import
        for group in (order[:1], order[1:]):
            # The first round also checks every engine's results against the
            # reference's: a speedup of a wrong result is no speedup.
            samples = _sample_together(ref, group, loops if timed else 1,
                                       check=not round_index, last=last, trace=trace,
                                       memory=memory and timed)
            for (timing, _engine), sample in zip(group, samples):
                txs, gas = sample.txs, sample.gas
                fastest = min(fastest, sample.seconds)
                totals = sample.totals
                if totals is not None and totals.breakdown:
                    timing.breakdown = totals.breakdown
                if totals is not None and totals.page_faults:
                    timing.page_faults = totals.page_faults
                if totals is not None and timing.label == "parallel":
                    timing.sender_pipelines = totals.sender_pipelines
                    timing.slowness = totals.slowness
                if sample.results is not None:
                    if timing is configs[0][0]:
                        reference = sample.results
                    else:
                        _check_equal(ref, timing, reference, sample.results)
                if timed:
                    timing.samples.append(sample.seconds)
                    timing.phase_samples.append(sample.phase)
                    if sample.peak is not None:
                        timing.peak = sample.peak if timing.peak is None \
                            else timing.peak.merge(sample.peak)
        if progress:
            progress(ref.name, round_index + 1, rounds)
    for _timing, engine in configs:
        close = getattr(engine, "close", None)
        if close:
            close()
    bound = None
    if ceiling:
        from pevm.ceiling import machine_ceiling  # it imports this module's timing
        bound = machine_ceiling(ref, workers, repeat, state_backend)
    timings = [t for t, _ in configs[1:]]
    return BlockBench(name=ref.name, source=ref.source, txs=txs, gas=gas,
                      reference=configs[0][0], engine=[t for t in timings if not t.options],
                      ideal_speedup=ideal, ceiling=bound, loops=loops,
                      variants=[t for t in timings if t.options])


@dataclass
class _Sample:
    """One configuration's sample in one round: mean seconds of its imports, and
    what its first import collected (``results`` where the round checks them,
    ``totals`` in the last round, the peak memory where sampled)."""

    seconds: float = 0.0
    phase: float = 0.0
    txs: int = 0
    gas: int = 0
    results: list[BlockResult] | None = None
    totals: ProcessTotals | None = None
    peak: MemoryPeak | None = None


def _sample_together(ref: CaseRef, group: Sequence[tuple[Timing, Any]], loops: int,
                     check: bool, last: bool, trace: Trace | None, memory: bool,
                     ) -> list[_Sample]:
    """A sample of each configuration of ``group``: :func:`_run_once` ``loops``
    times each, interleaved import by import, the order reversed every other
    import.

    A short block's sample is many imports, and a shared VM's speed drifts over a
    sample's span: mainnet 46147 (one transaction, the same in-process code at 1
    and 2 workers) read 2 workers over 1 at 0.91-1.05x (quartiles of 40 rounds)
    with each count's 20 imports back to back, and 0.98-1.02x with the two
    counts' imports alternating. A block imported once a sample (``loops`` 1) runs
    each configuration once, in ``group``'s order. ``trace`` collects the first
    import's slices of the engine as it ships (not a variant's: their slices would
    share its tracks) in the ``last`` round; ``memory`` samples the peak memory
    during every import."""
    samples = [_Sample(results=[] if check else None,
                       totals=ProcessTotals() if last else None) for _ in group]
    turns = list(zip(group, samples))
    for loop in range(loops):
        first = loop == 0
        for (timing, engine), sample in (turns if loop % 2 == 0 else turns[::-1]):
            if isinstance(engine, ParallelEngine):
                engine.trace = trace if first and last and not timing.options else None
            with PeakMemory(enabled=memory) as peak:
                seconds, phase, sample.txs, sample.gas = _run_once(
                    ref, engine, sample.results if first else None,
                    sample.totals if first else None)
            sample.seconds += seconds / loops
            sample.phase += phase / loops
            if peak.result is not None:
                sample.peak = peak.result if sample.peak is None \
                    else sample.peak.merge(peak.result)
    return samples


def _round_order(configs: list[tuple[Timing, Any]], timed_round: int
                 ) -> list[tuple[Timing, Any]]:
    """The order of one round's runs: py-evm's reference first (the first round
    checks the others against it), then the engines, reversed every other timed
    round. A run's place in the round moves its time (a 1,000-transfer block at 1
    worker: 640 ms right after py-evm's import against 505 ms after the 2-worker
    run, medians of 4 rounds): a fixed order gave the same place to the same engine
    in every round, and an even repeat now gives each place to each equally."""
    engines = configs[1:] if timed_round % 2 == 0 else configs[:0:-1]
    return configs[:1] + engines


def _check_equal(ref: CaseRef, timing: Timing, reference: list[BlockResult],
                 results: list[BlockResult]) -> None:
    for index, (want, got) in enumerate(zip(reference, results)):
        problems = compare_results(want, got, limit=1)
        if problems:
            variant = f" ({format_options(timing.options)})" if timing.options else ""
            raise ResultMismatch(f"{ref.source} :: {ref.name}: block {index}: the engine"
                                 f"{variant} at {timing.workers} worker(s) differs from "
                                 f"py-evm: {problems[0]}")
