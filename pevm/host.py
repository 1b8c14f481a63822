"""What this machine lets pevm use: the one place that counts CPUs.

The engine's decision whether workers pay, ``pevm run``'s default worker count,
``--cluster local`` and the simulation's calibration all count the CPUs this
process may run on -- its affinity mask, which a ``taskset`` or a container's
cpuset narrows -- not the machine's (``os.cpu_count()``, which ``pevm info`` and
the benchmark JSON report as a description of the machine).
"""
from __future__ import annotations

import os


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


__all__ = ["usable_cores"]
