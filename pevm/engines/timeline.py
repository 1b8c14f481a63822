"""Where a block's time goes: per-process time by activity, and trace files.

Every process of the parallel engine -- the coordinator and each worker -- keeps a
:class:`Timeline`: the seconds it spent in each :class:`Activity` (always; a few
clock reads per transaction against a transaction's ~0.3-1.5 ms), and, when the
engine is asked to trace, every slice with its transaction index and incarnation.
Workers send theirs back with each chunk's results, so the coordinator ends a block
with a timeline per process: :class:`ParallelDetail.breakdown
<pevm.engines.detail.ParallelDetail>` (``pevm bench --json``) and, when tracing,
a :class:`Trace` -- Chrome's trace-event format, which Perfetto
(https://ui.perfetto.dev) and chrome://tracing open: one track per process, one
slice per activity (``pevm run --trace`` / ``pevm bench --trace``).

Clock: ``time.perf_counter`` is the system-wide monotonic clock on Linux, the same
in forked workers as in the coordinator, so their slices line up on one time axis.

Beside the time, each process counts its minor page faults
(:func:`minor_page_faults`, :attr:`ParallelDetail.page_faults
<pevm.engines.detail.ParallelDetail>`): after a fork every page the coordinator and
a worker share is write-protected in both, and the first write to one in either
process -- a reference count going up is one -- costs a fault; on the 2-core VM a
fault that copies the page takes ~2.5 us, one that finds the page no longer shared
~0.9 us (docs/results.md, session 36).
"""
from __future__ import annotations

import json
import time
try:
    import resource
except ImportError:  # pragma: no cover - not on Windows, where nothing forks
    resource = None  # type: ignore[assignment]
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pevm.output_files import write_atomically


class Activity(StrEnum):
    """What a process was doing (the trace's slice names)."""

    #: running a transaction incarnation (first incarnation)
    EXECUTE = "execute"
    #: running a later incarnation (its earlier result failed or was lost)
    REEXECUTE = "re-execute"
    #: recovering a transaction's sender (signature)
    RECOVER = "recover sender"
    #: coordinator: checking a result's reads against the committed state
    VALIDATE = "validate"
    #: coordinator: py-evm's header check and folding a result into committed state
    COMMIT = "commit"
    #: sending, receiving and (un)pickling messages; a worker bringing its replica
    #: of the multi-version memory up to date
    MESSAGE = "message"
    #: coordinator: blocked waiting for a worker's message
    WAIT = "wait"
    #: coordinator: forking the workers
    START = "start workers"
    #: coordinator: writing the block's result into py-evm's state, receipts
    MERGE = "merge"


#: A slice: (activity value, start, end, transaction or -1, incarnation or -1).
Slice = tuple[str, float, float, int, int]


@dataclass
class Timeline:
    """One process's time by activity during a block (and its slices if tracing)."""

    tracing: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    slices: list[Slice] = field(default_factory=list)

    def add(self, activity: Activity, start: float, end: float | None = None,
            txn: int = -1, incarnation: int = -1) -> float:
        """Account ``start``..``end`` (default: now) to ``activity``; returns the end
        (the next slice's start, saving a clock read)."""
        if end is None:
            end = time.perf_counter()
        name = activity.value
        self.seconds[name] = self.seconds.get(name, 0.0) + (end - start)
        if self.tracing:
            self.slices.append((name, start, end, txn, incarnation))
        return end

    def take(self) -> tuple[dict[str, float], list[Slice]]:
        """What was recorded since the last call (a worker ships it with results)."""
        out = (self.seconds, self.slices)
        self.seconds, self.slices = {}, []
        return out

    def absorb(self, seconds: dict[str, float], slices: Iterable[Slice]) -> None:
        """Add another piece of the same process's timeline."""
        for name, value in seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value
        if self.tracing:
            self.slices.extend(slices)


def minor_page_faults() -> int:
    """This process's minor page faults so far (0 where the platform does not say).

    A forked process starts counting from 0 at its fork.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


#: what :func:`breakdown` calls the rest of a process's wall time: the coordinator's
#: (scheduling, header checks, building messages) and a worker's (waiting for work)
REST_OF_COORDINATOR = "other"
REST_OF_WORKER = "idle"


def breakdown(timeline: Timeline, wall: float, rest: str) -> dict[str, float]:
    """Seconds per activity, rounded, plus the rest of ``wall`` under ``rest``: a
    worker's is :data:`REST_OF_WORKER` (it records everything it does); the
    coordinator's is :data:`REST_OF_COORDINATOR` (scheduling, header checks,
    building messages), its idle time being ``wait``."""
    out = {name: round(value, 6) for name, value in sorted(timeline.seconds.items())}
    out[rest] = round(max(0.0, wall - sum(timeline.seconds.values())), 6)
    return out


@dataclass
class Trace:
    """Slices of every process over one or more blocks, as a Chrome trace file.

    Tracks are named per engine configuration, so that ``pevm bench`` can put the
    runs at several worker counts in one file: ``"2 workers: coordinator"``,
    ``"2 workers: worker 0"``, ...
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    #: the case the next blocks belong to (set by whoever runs the cases): each
    #: slice names it beside its block, which alone is only a block number
    case: str | None = None
    _tracks: dict[str, int] = field(default_factory=dict)
    _origin: float | None = None

    def add_block(self, label: str, workers: int,
                  timelines: dict[str, Timeline]) -> None:
        """One block's timelines (track name -> timeline), e.g. from the engine."""
        for track, timeline in timelines.items():
            pid = self._pid(f"{workers} worker{'s' if workers != 1 else ''}: {track}")
            for name, start, end, txn, incarnation in timeline.slices:
                if self._origin is None or start < self._origin:
                    self._shift(start)
                args: dict[str, Any] = {"block": label}
                if self.case is not None:
                    args["case"] = self.case
                if txn >= 0:
                    args["tx"] = txn
                if incarnation >= 0:
                    args["incarnation"] = incarnation
                assert self._origin is not None
                self.events.append({
                    "name": name, "cat": "tx" if txn >= 0 else "engine", "ph": "X",
                    "ts": round((start - self._origin) * 1e6, 3),
                    "dur": round((end - start) * 1e6, 3),
                    "pid": pid, "tid": 0, "args": args})

    def _pid(self, track: str) -> int:
        if track not in self._tracks:
            pid = len(self._tracks) + 1
            self._tracks[track] = pid
            self.events.append({"name": "process_name", "ph": "M", "pid": pid,
                                "tid": 0, "args": {"name": track}})
            self.events.append({"name": "process_sort_index", "ph": "M", "pid": pid,
                                "tid": 0, "args": {"sort_index": pid}})
        return self._tracks[track]

    def _shift(self, origin: float) -> None:
        """Move the time origin earlier (events already placed move right)."""
        if self._origin is not None:
            offset = (self._origin - origin) * 1e6
            for event in self.events:
                if "ts" in event:
                    event["ts"] = round(event["ts"] + offset, 3)
        self._origin = origin

    def to_json(self) -> dict[str, Any]:
        return {"traceEvents": self.events, "displayTimeUnit": "ms",
                "otherData": {"producer": "pevm"}}

    def write(self, path: str) -> None:
        """Write the trace file (whole or not at all:
        :func:`~pevm.output_files.write_atomically`)."""
        write_atomically(path, json.dumps(self.to_json()))
