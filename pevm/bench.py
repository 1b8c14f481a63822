"""Side-by-side speed measurement of the engines on the same blocks.

For each block (a fixture case or mainnet snapshot) the reference (py-evm's own
loop), the engine in one process and the engine at each worker count run on
identical fresh pre-states, interleaved round by round so that machine noise hits
all of them alike, after a warm-up round. Two wall-clock times are kept per run (the
parallel engine's work happens in child processes): py-evm's whole block import with
that engine, and the transaction phase alone -- the step the engine replaces
(``EngineStats.seconds``: the reference's ``execute``, the parallel engine's
``total``); the rest of an import (header checks, py-evm's state root, the state
diff) is the same code for every engine.
Ratios are computed from medians within the same run; the ideal speedup comes from
the block's dependency graph (:mod:`pevm.analysis`).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from pevm.engines import make_engine, parallel_available
from pevm.errors import PevmError
from pevm.inputs.discover import CaseRef
from pevm.memory import MemoryPeak, PeakMemory

#: Called after every timed round: (block name, round, rounds) -- for progress bars.
Progress = Callable[[str, int, int], None]


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

    def rows(self) -> list[dict[str, Any]]:
        """One record per engine configuration, ratios included (the JSON schema)."""
        one = next((t for t in self.engine if t.workers == 1), None)
        out = []
        for timing in self.engine:
            ideal = (self.ideal_speedup or {}).get(str(timing.workers))
            vs_one = one.median / timing.median if one else None
            out.append({
                "workers": timing.workers, "seconds": timing.to_json(),
                "tx_per_s": self.txs / timing.median, "gas_per_s": self.gas / timing.median,
                "speedup_vs_reference": self.reference.median / timing.median,
                "speedup_vs_one_process": vs_one,
                "ideal_speedup": ideal,
                "efficiency": (vs_one / ideal) if (vs_one and ideal) else None,
                "transaction_phase": {
                    "seconds": _summary(timing.phase_samples),
                    "speedup_vs_reference":
                        self.reference.phase_median / timing.phase_median,
                    "speedup_vs_one_process":
                        one.phase_median / timing.phase_median if one else None},
                "peak_memory": timing.peak.to_json() if timing.peak else None,
            })
        return out

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "txs": self.txs, "gas": self.gas,
                "ideal_speedup": self.ideal_speedup,
                "reference": {"seconds": self.reference.to_json(),
                              "tx_per_s": self.txs / self.reference.median,
                              "gas_per_s": self.gas / self.reference.median,
                              "transaction_phase": {"seconds": _summary(
                                  self.reference.phase_samples)},
                              "peak_memory": self.reference.peak.to_json()
                              if self.reference.peak else None},
                "engine": self.rows()}


def _run_once(ref: CaseRef, engine: Any) -> tuple[float, float, int, int]:
    """Import every block of the case once on a fresh pre-state:
    (import seconds, transaction-phase seconds, txs, gas)."""
    run = ref.load().start()
    seconds, phase, txs, gas = 0.0, 0.0, 0, 0
    for task in run.tasks():
        if task.block is None:
            continue
        outcome = task.execute(engine)
        if outcome.rejection is not None or outcome.result is None:
            raise PevmError(f"{ref.source} :: {ref.name}: block {task.index} was "
                            f"rejected ({outcome.rejection}); benchmark valid blocks only")
        seconds += outcome.seconds
        phase += transaction_phase(outcome.result.stats.seconds)
        txs += outcome.result.tx_count
        gas += outcome.result.gas_used
    return seconds, phase, txs, gas


def transaction_phase(seconds: dict[str, float]) -> float:
    """The engine's own time in a block (its ``EngineStats.seconds``)."""
    return seconds.get("total", seconds.get("execute", 0.0))


def bench_case(ref: CaseRef, workers: list[int], repeat: int, warmup: int = 1,
               ideal: dict[str, float] | None = None,
               progress: Progress | None = None, memory: bool = False) -> BlockBench:
    """Time the reference and the engine at each worker count on one case.

    ``memory``: also sample the peak memory of this process and its workers
    together during the timed runs (:mod:`pevm.memory`; adds a sampling thread).
    """
    configs: list[tuple[Timing, Any]] = [(Timing("reference", 1), make_engine("reference"))]
    if parallel_available():
        for count in sorted(set([1, *workers])):
            configs.append((Timing("parallel", count), make_engine("parallel", workers=count)))
    txs = gas = 0
    rounds = warmup + repeat
    for round_index in range(rounds):
        for timing, engine in configs:
            timed = round_index >= warmup
            with PeakMemory() if (memory and timed) else _NoSampling() as peak:
                seconds, phase, txs, gas = _run_once(ref, engine)
            if timed:
                timing.samples.append(seconds)
                timing.phase_samples.append(phase)
                if peak.result is not None:
                    timing.peak = peak.result if timing.peak is None \
                        else timing.peak.merge(peak.result)
        if progress:
            progress(ref.name, round_index + 1, rounds)
    for _timing, engine in configs:
        close = getattr(engine, "close", None)
        if close:
            close()
    return BlockBench(name=ref.name, source=ref.source, txs=txs, gas=gas,
                      reference=configs[0][0], engine=[t for t, _ in configs[1:]],
                      ideal_speedup=ideal)


class _NoSampling:
    result: MemoryPeak | None = None

    def __enter__(self) -> "_NoSampling":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def plot(benches: list[BlockBench], path: str) -> None:
    """Speedup over one process against workers, per block, ideal dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, bench in enumerate(benches):
        rows = bench.rows()
        if not rows:
            continue
        color = f"C{index % 10}"
        xs = [r["workers"] for r in rows]
        ax.plot(xs, [r["speedup_vs_one_process"] for r in rows], "o-", color=color,
                label=bench.name)
        if bench.ideal_speedup:
            ideal = [bench.ideal_speedup.get(str(x)) for x in xs]
            if all(v is not None for v in ideal):
                ax.plot(xs, ideal, "--", color=color, alpha=0.6,
                        label=f"{bench.name} (ideal)")
    ax.set_xlabel("worker processes")
    ax.set_ylabel("speedup over the engine in one process")
    ax.set_xscale("log", base=2)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no parallel-engine measurements", ha="center",
                transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
