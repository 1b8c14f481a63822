"""Peak memory of a process and all its descendants together (``pevm bench --memory``).

The parallel engine forks worker processes that share the coordinator's pages
copy-on-write, so the memory "of all processes together" has two honest readings:

* **PSS** (proportional set size): each shared page is split among the processes
  that map it, so the sum over processes is the physical memory they use. This is
  the figure to compare with a memory budget.
* **RSS** summed: every process counts every page it maps, shared or not; an upper
  bound that over-counts what forked workers share.

:class:`PeakMemory` samples both for this process and its descendants from a
background thread (Linux ``/proc``; elsewhere it reports nothing). Sampling misses
peaks shorter than its interval, so the figures are lower bounds of the true peaks.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import TracebackType

#: seconds between samples
INTERVAL_S = 0.02


@dataclass
class MemoryPeak:
    """Peaks over one measured stretch, in bytes, and how many processes were seen."""

    pss: int = 0
    rss: int = 0
    processes: int = 0

    def merge(self, other: MemoryPeak) -> MemoryPeak:
        return MemoryPeak(max(self.pss, other.pss), max(self.rss, other.rss),
                          max(self.processes, other.processes))

    def to_json(self) -> dict[str, float]:
        mib = 1024 * 1024
        return {"pss_mib": round(self.pss / mib, 1), "rss_sum_mib": round(self.rss / mib, 1),
                "processes": self.processes}


def supported() -> bool:
    """Whether this system exposes what :class:`PeakMemory` reads."""
    return os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
            except OSError:
                continue
    return out


def _usage(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in bytes; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0, 0
    return pss, rss


def sample(pid: int | None = None) -> MemoryPeak:
    """One reading of ``pid`` (default: this process) and its descendants."""
    total = MemoryPeak()
    for process in _descendants(os.getpid() if pid is None else pid):
        pss, rss = _usage(process)
        if rss:
            total.pss += pss
            total.rss += rss
            total.processes += 1
    return total


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.result``: the highest PSS
    and RSS sums sampled while the block ran (None where unsupported, or when
    ``enabled`` is false: then it samples nothing)."""

    def __init__(self, interval: float = INTERVAL_S, enabled: bool = True) -> None:
        self.interval = interval
        self.enabled = enabled
        self.result: MemoryPeak | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = MemoryPeak()

    def _run(self) -> None:
        while True:
            self._peak = self._peak.merge(sample())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        if self.enabled and supported():
            self._thread = threading.Thread(target=self._run, name="pevm-memory",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.result = self._peak.merge(sample())
