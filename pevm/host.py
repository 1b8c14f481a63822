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
the transactions do). The machine's speed moves, though -- a shared VM here read
1.8x in one minute and 3.2x the next -- and a process that imports blocks for
minutes outlives its probe: :func:`block_slowness` reads the speed from what the
block's own warm-up measured, its sender recoveries, and the engine decides by
that.
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
    2.0 at half its speed. Measured once per process (:func:`probe_slowness`): the
    engine's decisions take it where a block cannot tell (:func:`block_slowness`),
    the simulation always."""
    return probe_slowness()


#: Seconds that the fastest of the engine's warm-up's first recoveries of its
#: block's senders takes (its first batch of 32, back to back), per unit of
#: :func:`probe_slowness`: 34.0-37.2 us, medians of 5 rounds on each of 14 blocks
#: (generated transfers, withdrawals, ERC-20, mixed, hot spot; mainnet
#: 4330482-17666333), the probe the lower of one taken just before and one just
#: after the block, on a 2-CPU VM whose speed moved between 1.5x and 3.3x
#: (session 42). The fastest, not the mean: the mean read 40-51 us, higher on
#: blocks whose transactions carry calldata the signing hash covers (17666333) and
#: with the block's cold first recovery in it; the fastest is a plain signature's,
#: as a probe's fastest run is its workload's.
REFERENCE_RECOVERY_S = 36e-6
#: :func:`block_slowness` trusts no fewer recoveries than this
MIN_RECOVERIES = 8


def _bounded(slowness: float) -> float:
    # one disturbed measurement cannot turn the engine's decisions upside down
    return min(max(slowness, 0.25), 8.0)


def block_slowness(fastest_recovery_s: float, recovered: int) -> float:
    """The machine's slowness (as :func:`machine_slowness`) as one block shows it:
    the fastest of the ``recovered`` senders it recovered took
    ``fastest_recovery_s`` seconds, against :data:`REFERENCE_RECOVERY_S`. Sender
    recovery is the same work whatever the block does, and the engine's warm-up
    recovers a batch before its first look, so its decisions follow the speed of
    the moment instead of the speed of the process's start. With fewer than
    :data:`MIN_RECOVERIES` (senders given with the transactions, or a warm-up that
    ran none) or no time measured, the probe's value stands.

    The simulation (:mod:`pevm.simulation`) keeps the probe: its profile times
    each recovery apart, between executions, and its fastest reads 20-40% slower
    than the warm-up's batch on the same block.

    Why: each decision weighs measured work against overheads stated on the
    reference machine; scaled by a probe that read 3.07 while the block ran at
    about 2, no cheap block chose the sender pipeline it ran 1.14-1.17x faster
    with a minute later (docs/results.md, session 41)."""
    if recovered < MIN_RECOVERIES or not 0 < fastest_recovery_s < float("inf"):
        return machine_slowness()
    return _bounded(fastest_recovery_s / REFERENCE_RECOVERY_S)


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
    return _bounded(best / REFERENCE_PROBE_S)


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


__all__ = ["usable_cores", "machine_slowness", "probe_slowness", "block_slowness",
           "cpu_description", "REFERENCE_PROBE_S", "REFERENCE_RECOVERY_S"]
