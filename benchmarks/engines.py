"""asv suite: py-evm's reference vs pevm's engine over workloads x workers x contention.

Blocks are generated once (``setup_cache``) with the workload generator. ``time_*``
use the wall clock (the engine's work runs in child processes, which asv's
process-time timer would not see); ``track_*`` return speedup ratios measured side by
side in one call; ``peakmem_*`` is the peak resident memory of the benchmark process.

Run: ``asv run --python=same --quick`` (see the README).
"""
from __future__ import annotations

import os
import tempfile
import time

from pevm.engines import make_engine
from pevm.abc import Engine
from pevm.inputs.discover import list_cases
from pevm.state.backend import backend_of

WORKLOADS = ("transfers", "erc20", "compute")
CONFLICTS = (0.0, 1.0)
WORKERS = (1, 2)
TXS = int(os.environ.get("PEVM_ASV_TXS", "200"))


def _run(path: str, engine: Engine) -> float:
    """Import the block(s) of ``path`` once on a fresh pre-state; seconds."""
    seconds = 0.0
    for ref in list_cases([path]).cases:
        for task in ref.load().start(backend_of(engine)).tasks():
            outcome = task.execute(engine)
            if outcome.rejection is not None:
                raise RuntimeError(f"benchmark block rejected: {outcome.rejection}")
            seconds += outcome.seconds
    return seconds


class EngineSuite:
    params = (list(WORKLOADS), list(CONFLICTS), list(WORKERS))
    param_names = ["workload", "conflict", "workers"]
    timer = time.perf_counter
    timeout = 1200
    number = 1
    repeat = (1, 3, 60.0)

    def setup_cache(self) -> dict:
        from pevm.workloads import generate, write_fixture

        directory = tempfile.mkdtemp(prefix="pevm-asv-")
        paths = {}
        for workload in WORKLOADS:
            for conflict in CONFLICTS:
                path = os.path.join(directory, f"{workload}_{conflict}.json")
                write_fixture(generate(workload, txs=TXS, conflict=conflict, seed=7), path)
                paths[f"{workload}/{conflict}"] = path
        return paths

    def setup(self, paths: dict, workload: str, conflict: float, workers: int) -> None:
        self.path = paths[f"{workload}/{conflict}"]
        self.reference = make_engine("reference")
        self.engine = make_engine("parallel", workers=workers)

    def time_reference(self, paths: dict, workload: str, conflict: float,
                       workers: int) -> None:
        _run(self.path, self.reference)

    def time_engine(self, paths: dict, workload: str, conflict: float,
                    workers: int) -> None:
        _run(self.path, self.engine)

    def track_speedup_vs_reference(self, paths: dict, workload: str, conflict: float,
                                   workers: int) -> float:
        _run(self.path, self.engine)  # warm-up
        return _run(self.path, self.reference) / _run(self.path, self.engine)

    track_speedup_vs_reference.unit = "ratio"  # type: ignore[attr-defined]

    def track_speedup_vs_one_process(self, paths: dict, workload: str, conflict: float,
                                     workers: int) -> float:
        one = make_engine("parallel", workers=1)
        _run(self.path, self.engine)  # warm-up
        return _run(self.path, one) / _run(self.path, self.engine)

    track_speedup_vs_one_process.unit = "ratio"  # type: ignore[attr-defined]

    def peakmem_engine(self, paths: dict, workload: str, conflict: float,
                       workers: int) -> None:
        _run(self.path, self.engine or self.reference)
