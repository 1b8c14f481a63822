"""Where the fork's page faults fall in the coordinator: minor faults and system
CPU (getrusage, the coordinator process only) between the fork, the workers'
stop (the last commit), their reaping and the import's end, and the reaped
workers' own faults, per import of one block, repeated so that every import after
the first starts from a steady heap.

    python docs/results/session30_faults.py BLOCK.json WORKERS IMPORTS
"""
import resource
import sys
import time
from typing import Any

import pevm.engines.workers as workers_module
from pevm.bench import import_run
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases
from pevm.state.backend import StateBackend

marks: list[tuple[str, int, float, float]] = []


def mark(name: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    marks.append((name, usage.ru_minflt, usage.ru_stime, time.perf_counter()))


def wrap(method_name: str, before: str, after: str | None = None) -> None:
    original = getattr(workers_module.WorkerPool, method_name)

    def wrapped(self: Any, *args: Any) -> Any:
        mark(before)
        result = original(self, *args)
        if after:
            mark(after)
        return result
    setattr(workers_module.WorkerPool, method_name, wrapped)


wrap("_start_one", "fork", "forked")
wrap("stop", "stop")
wrap("close", "close", "closed")
case = list_cases([sys.argv[1]]).cases[0]
workers, imports = int(sys.argv[2]), int(sys.argv[3])
for _import in range(imports):
    engine = ParallelEngine(workers=workers, state_backend=StateBackend.FLAT)
    run = case.load().start(StateBackend.FLAT)
    marks.clear()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    mark("begin")
    _, phase, _, _ = import_run(case, run, engine)
    mark("end")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - children
    seen: list[tuple[str, str]] = []
    spans = []
    for (a, f0, s0, t0), (b, f1, s1, t1) in zip(marks, marks[1:]):
        if (a, b) in seen or f1 - f0 < 10:
            continue  # close() calls stop() again: nothing between
        seen.append((a, b))
        spans.append(f"{a}->{b} {f1 - f0} faults {1e3 * (s1 - s0):.0f} ms sys "
                     f"{1e3 * (t1 - t0):.1f} ms")
    print(f"workers={workers} phase={phase * 1e3:.1f} ms | " + " | ".join(spans)
          + f" | workers' own {children} faults", flush=True)
