"""What this machine lets pevm use: the one place that counts CPUs and gauges speed.

The engine's decision whether workers pay, ``pevm run``'s default worker count,
``--cluster local`` and the simulation's calibration all count the CPUs this
process may run on -- its affinity mask, which a ``taskset`` or a container's
cpuset narrows -- not the machine's (``os.cpu_count()``, which ``pevm info`` and
the benchmark JSON report as a description of the machine).

:func:`cpu_description` says what those CPUs are: the model, and how many hardware
threads share a core. A speedup at 16 workers means something else on 16 cores
than on 8 cores of two threads each, and even one thread per core does not make a
process run as fast beside 15 busy ones as alone (a 16-vCPU device machine:
1.3-1.5x slower; docs/results.md, session 28).

The engine's cost model (:mod:`pevm.engines.cost_model`) states what going
parallel costs in seconds measured on one machine; :func:`machine_slowness` says
how much longer the same kind of work takes on this one, so that the decisions
hold on a machine twice as fast or half as fast (the overheads scale with it, as
the transactions do).
"""
from __future__ import annotations

import functools
import os
import pickle
import time


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


#: :func:`machine_slowness`'s workload, fastest of five runs, on the machine the
#: cost model's constants were measured on (2 CPUs, Python 3.11.7, session 15;
#: twenty probes there read 415-431 us)
REFERENCE_PROBE_S = 420e-6


def _probe_work() -> None:
    # the coordinator's kind of work: small tuples and dicts, and a pickled message
    counts: dict[tuple[int, bytes], int] = {}
    for i in range(2000):
        key = (i & 7, i.to_bytes(20, "big"))
        counts[key] = counts.get(key, 0) + i
    message = [(i, b"x" * 32, {j: j for j in range(4)}) for i in range(200)]
    pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


@functools.cache
def machine_slowness() -> float:
    """How much longer this machine takes than the cost model's reference for the
    engine's own kind of work (pure Python: tuples, dicts, pickling): 1.0 there,
    2.0 at half its speed. Measured once per process (:func:`probe_slowness`), so
    that the engine's decisions rest on one value for the process's life."""
    return probe_slowness()


def probe_slowness() -> float:
    """One measurement of :func:`machine_slowness` now (about 2 ms): the fastest of
    five runs of its workload, held within 0.25-8 so that one disturbed probe cannot
    turn the engine's decisions upside down. ``pevm bench`` probes again between
    blocks to tell whether the machine's speed moved during a run."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        _probe_work()
        best = min(best, time.perf_counter() - start)
    return min(max(best / REFERENCE_PROBE_S, 0.25), 8.0)


def cpu_description(cpuinfo: str | None = None) -> dict[str, str | int | None]:
    """The CPU's ``model`` and ``threads_per_core`` (hardware threads per physical
    core: 2 where SMT is on) from Linux's ``/proc/cpuinfo`` (or the text given);
    None for what the platform does not say."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:  # not Linux
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() not in fields:  # the first processor's
            fields[name.strip()] = value.strip()
    threads: int | None = None
    try:
        threads = max(1, int(fields["siblings"]) // int(fields["cpu cores"]))
    except (KeyError, ValueError, ZeroDivisionError):
        pass
    return {"model": fields.get("model name"), "threads_per_core": threads}


__all__ = ["usable_cores", "machine_slowness", "probe_slowness", "cpu_description",
           "REFERENCE_PROBE_S"]
