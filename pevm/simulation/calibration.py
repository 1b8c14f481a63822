"""The machine's constants for the simulation: measured once, cached, checked
against the machine again before a cached one is used (see
:mod:`pevm.simulation`)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pevm.bench import fresh_round
from pevm.host import usable_cores
from pevm.engines.parallel import ParallelEngine

from pevm.simulation.model import predict, simulate
from pevm.simulation.records import BlockProfile, Calibration
from pevm.simulation.profile import profile_case
from pevm.state.backend import backend_of

#: Bump when the calibration procedure changes (invalidates cached calibrations).
CALIBRATION_VERSION = 9
#: The generated block the worker factor is measured on (mainnet-like, no conflicts).
CALIBRATION_WORKLOAD = ("mixed", 800, 0.0)
#: A calibration whose self-check (its own block's simulated against measured
#: speedup at 2 workers) is further off than this is measured again, and reported
#: when it stays off: the agreement ``pevm analyze --simulate`` aims at.
CHECK_TOLERANCE = 0.15
#: At most this many calibrations, the most consistent kept
#: (:func:`measure_until_consistent`).
CALIBRATION_ATTEMPTS = 3
#: A cached calibration is measured again where its block's speedup at 2 workers,
#: measured now (:func:`speedup_now`), moved further than this from what its
#: self-check measured: on a shared VM the speed two processes get drifts over
#: hours, and constants fitted in a slow spell under-predict in a quick one (session
#: 53: a cached calibration, worker factor 1.77, predicted mainnet 12520364 0.95x
#: and 13217637 1.08x; a fresh one, 1.28, 1.20x and 1.28x; `pevm bench`: 1.54x and
#: 1.32x; the calibration block read 1.26x, then 1.45x). Tighter than
#: :data:`CHECK_TOLERANCE`: the large blocks' predictions moved 18-26% where the
#: calibration block's speedup moved 15%.
DRIFT_TOLERANCE = 0.10
#: Rounds of :func:`speedup_now` after its warm-up (a round: one import at 1
#: worker, one at 2).
DRIFT_ROUNDS = 3


_CALIBRATION: Calibration | None = None


def _code_digest() -> str:
    """A digest of the engine's and the model's source: the calibration fits the
    overheads of the engine as it is, so any change to either measures again (a
    package version does not move with every commit)."""
    here = Path(__file__).resolve().parent          # pevm/simulation
    digest = hashlib.sha256()
    for folder in (here.parent / "engines", here):
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_path() -> Path:
    from importlib.metadata import PackageNotFoundError, version
    try:
        versions = f"{version('pevm')}-{version('py-evm')}"
    except PackageNotFoundError:
        versions = "dev"
    key = "|".join([platform.node(), platform.machine(), platform.processor(),
                    str(usable_cores()), sys.version, versions, str(CALIBRATION_VERSION),
                    _code_digest()])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(base) / "pevm" / f"simulation-calibration-{digest}.json"


def calibrate(*, use_cache: bool = True, refresh: bool = False,
              status: Callable[[str], None] | None = None) -> Calibration:
    """This machine's :class:`Calibration`, cached per process and in a file under
    the user cache directory (keyed by machine, Python, pevm and py-evm versions and
    a digest of the engine's and the model's source).

    A calibration read from the file is first checked against the machine as it is
    now (:func:`holds_now`, about ten seconds) and measured again where it no longer
    holds."""
    global _CALIBRATION
    if _CALIBRATION is not None and not refresh:
        return _CALIBRATION
    path = _cache_path()
    if use_cache and not refresh and path.is_file():
        try:
            cached = Calibration(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            cached = None  # unreadable, or another layout: measure again
        if cached is not None and holds_now(cached, status):
            _CALIBRATION = cached
            return _CALIBRATION
    if status:
        status("calibrating the parallel engine's overheads on this machine "
               "(once per engine version, then cached; under a minute)...")
    _CALIBRATION = measure_until_consistent(status)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_CALIBRATION.to_json()))
        except OSError:
            pass  # a read-only home: the per-process cache still holds
    return _CALIBRATION


def drifted(cal: Calibration, speedup: float) -> bool:
    """Whether the calibration block's 2-worker ``speedup`` measured now is further
    than :data:`DRIFT_TOLERANCE` from the one ``cal``'s self-check measured (never
    for a calibration without a self-check: a fixed one)."""
    if not cal.check_measured:
        return False
    return abs(speedup / cal.check_measured - 1.0) > DRIFT_TOLERANCE


def holds_now(cal: Calibration, status: Callable[[str], None] | None = None) -> bool:
    """Whether a cached ``cal`` still describes this machine: its block's 2-worker
    speedup measured now (:func:`speedup_now`) is within :data:`DRIFT_TOLERANCE` of
    its self-check's. True without measuring for one without a self-check."""
    if not cal.check_measured:
        return True
    if status:
        status("checking the cached calibration against this machine now "
               "(its block at 1 and 2 workers, about ten seconds)...")
    now = speedup_now()
    if not drifted(cal, now):
        return True
    if status:
        status(f"the calibration block reads {now:.2f}x at 2 workers now against "
               f"{cal.check_measured:.2f}x when it was calibrated: this machine's "
               "speed has moved since, measuring again")
    return False


def _off_by(cal: Calibration) -> float:
    error = cal.check_error
    return abs(error) if error is not None else 0.0


def consistent(cal: Calibration) -> bool:
    """Whether ``cal``'s self-check is within :data:`CHECK_TOLERANCE` (one without a
    self-check, a fixed calibration, counts as consistent)."""
    return _off_by(cal) <= CHECK_TOLERANCE


def measure_until_consistent(status: Callable[[str], None] | None = None,
                             attempts: int = CALIBRATION_ATTEMPTS) -> Calibration:
    """:func:`measure_calibration`, again while its self-check is more than
    :data:`CHECK_TOLERANCE` off, up to ``attempts`` times; the most consistent one.

    A self-check that far off means the machine's speed moved between the
    calibration's profiles and its imports (on the 2-core VM four calibrations in
    ten minutes fitted worker factors from 0.92 to 1.73, their self-checks from
    +0.5% to +33%): a window where the machine held still gives constants that
    hold. A spell that was slow throughout passes the check (the 1.73 one: +11%).
    """
    best: Calibration | None = None
    for attempt in range(1, max(1, attempts) + 1):
        cal = measure_calibration()
        if best is None or _off_by(cal) < _off_by(best):
            best = cal
        if consistent(best) or attempt == attempts:
            break
        if status:
            status(f"the calibration's self-check is off by {cal.check_error:+.0%}: "
                   f"measuring again ({attempt + 1} of {attempts})...")
    assert best is not None
    return best


def measure_calibration(repeat: int = 4) -> Calibration:
    """Measure this machine's constants (never on a block being predicted).

    Message and start-up costs: forked echo processes shaped like a worker (a
    reader thread feeding the loop), the fastest times, which other programs
    disturb little. The rest from a generated block (:data:`CALIBRATION_WORKLOAD`),
    profiled, then imported with two workers: the worker factor is the workers'
    execution CPU (``last_detail.worker_cpu_s``) over the same transactions'
    in-process time; fork and stop costs are the engine's own phase times; the CPU
    per result the simulation does not price yet is the coordinator's and the
    workers' measured CPU (``os.times`` of the reaped workers) less the simulated,
    per result. The same imports give the self-check.
    """
    message_s, fork_s, ready_s, stop_s = _echo_benchmark()
    cal = Calibration(cores=usable_cores(), message_s=message_s, fork_s=fork_s,
                      ready_s=ready_s, stop_s=stop_s, source="measured")
    fits: list[tuple[float, float, float, float]] = []
    phases: dict[int, list[float]] = {1: [], 2: []}
    with _calibration_block() as ref:
        background = sample_background(0.5)
        engines = {w: ParallelEngine(workers=w) for w in (1, 2)}
        # Rounds interleave the profile and the imports, and every ratio is taken
        # within a round: this machine's speed may drift between rounds.
        for round_index in range(repeat + 1):  # the first is a warm-up
            [(index, profile)] = profile_case(ref, 1).items()
            for workers, engine in engines.items():
                children = sum(os.times()[2:4])  # workers are reaped in the phase
                stats = _import_stats(ref, index, engine)
                if round_index:
                    phases[workers].append(stats.transaction_seconds)
                if round_index and workers == 2:
                    fits.append(_fit(cal, profile, engine, stats.seconds,
                                     sum(os.times()[2:4]) - children))
    if fits:
        factor, coordinator, start, stop = (statistics.median(c) for c in zip(*fits))
        # the engine's own start (gc.freeze, forks of a large process) and stop
        # times replace the echo process's; at two workers it forks one (the
        # coordinator is the other executor)
        cal = dataclasses.replace(cal, worker_factor=factor, coordinator_factor=coordinator,
                                  fork_s=start, stop_s=stop)
    loaded = dataclasses.replace(cal, background=background or (),
                                 autogroup=autogroup_enabled())
    return dataclasses.replace(
        cal, check_measured=_speedup(phases),
        check_simulated=predict(profile, [()] * profile.size, [2], loaded)[2],
        check_background=background)


def speedup_now(rounds: int = DRIFT_ROUNDS) -> float:
    """The calibration block's transaction-phase speedup at 2 workers over 1,
    measured now as :func:`measure_calibration`'s self-check measures it (rounds of
    one import at each count, after a warm-up round), without its profiles."""
    phases: dict[int, list[float]] = {1: [], 2: []}
    with _calibration_block() as ref:
        engines = {w: ParallelEngine(workers=w) for w in (1, 2)}
        for round_index in range(rounds + 1):  # the first is a warm-up
            for workers, engine in engines.items():
                stats = _import_stats(ref, None, engine)
                if round_index:
                    phases[workers].append(stats.transaction_seconds)
    return _speedup(phases)


def _speedup(phases: dict[int, list[float]]) -> float:
    """2 workers over 1 from each count's transaction-phase seconds (medians)."""
    return round(statistics.median(phases[1]) / statistics.median(phases[2]), 4)


@contextmanager
def _calibration_block() -> Iterator[Any]:
    """The case of :data:`CALIBRATION_WORKLOAD`, generated into a scratch folder
    that lives as long as the context."""
    from pevm.inputs.discover import list_cases
    from pevm.workloads import generate, write_fixture
    workload, txs, conflict = CALIBRATION_WORKLOAD
    with tempfile.TemporaryDirectory(prefix="pevm-calibrate-") as scratch:
        path = os.path.join(scratch, f"{workload}.json")
        write_fixture(generate(workload, txs=txs, conflict=conflict, seed=1), path)
        [ref] = list_cases([path]).cases
        yield ref


def _import_stats(ref: Any, index: int | None, engine: ParallelEngine) -> Any:
    """One import of block ``index`` of ``ref`` (None: its first) by ``engine``, on
    a fresh pre-state and timed as ``pevm bench`` times its imports: its
    ``EngineStats``."""
    task = next(t for t in ref.load().start(backend_of(engine)).tasks()
                if index is None or t.index == index)
    fresh_round()
    outcome = task.execute(engine)
    assert outcome.result is not None, "the calibration block is valid"
    return outcome.result.stats


def _fit(cal: Calibration, profile: BlockProfile, engine: ParallelEngine,
         seconds: dict[str, float], workers_cpu: float) -> tuple[float, float, float, float]:
    """(worker factor, coordinator factor, start, stop) from one two-worker import
    of a conflict-free block and that round's profile of it."""
    detail = engine.last_detail
    dispatched = detail.dispatched or 1
    mean = statistics.fmean
    # the workers' whole CPU (reaped children) less what the simulation prices
    # besides execution, over the in-process execution time of what they ran --
    # per run as the simulation prices it, without the senders the coordinator
    # handed over (a factor over whole executions would take those recoveries
    # the worker never made for a faster worker, and count them off twice)
    base = simulate(profile, [()] * profile.size, 2,
                    dataclasses.replace(cal, worker_factor=0.0))
    per_run = base.worker_run_s / base.worker_runs if base.worker_runs \
        else mean(profile.exec_s)
    factor = (workers_cpu - base.worker_cpu_s) / (dispatched * per_run)
    # the simulated coordinator's CPU without the unpriced part, against measured
    priced = simulate(profile, [()] * profile.size, 2,
                      dataclasses.replace(cal, worker_factor=factor))
    extra = detail.coordinator_cpu_s - priced.coordinator_cpu_s
    coordinator = max(0.0, extra) / (dispatched * mean(profile.result_load_s))
    # the phase: warm-up + start + execute + stop + merge
    stop = seconds.get("total", 0.0) - seconds.get("execute", 0.0) - \
        seconds.get("merge", 0.0) - seconds.get("start_workers", 0.0) - \
        seconds.get("warm_up", engine.fork_after)
    return (min(3.0, max(0.8, factor)), coordinator, seconds.get("start_workers", 0.0),
            max(0.0, stop))


def _echo_main(conn: Any) -> None:
    """A stand-in worker: a reader thread feeds the loop, which answers each message."""
    import queue
    import threading
    inbox: queue.Queue[Any] = queue.Queue()

    def receive() -> None:
        while True:
            try:
                inbox.put(conn.recv())
            except (EOFError, OSError):
                inbox.put(None)
                return
    threading.Thread(target=receive, daemon=True).start()
    while (message := inbox.get()) is not None:
        conn.send(message)


def _echo_benchmark(processes: int = 3,
                    rounds: int = 300) -> tuple[float, float, float, float]:
    """(message, fork, ready, stop) seconds, from forked echo processes."""
    import multiprocessing
    mp = multiprocessing.get_context("fork")
    clock = time.perf_counter
    trips: list[float] = []
    times: list[tuple[float, float, float]] = []
    payload: tuple[Any, ...] = ("run", list(range(16)), [0] * 16, [], [])
    for _ in range(processes):
        parent, child = mp.Pipe(duplex=True)
        t0 = clock()
        process = mp.Process(target=_echo_main, args=(child,), daemon=True)
        process.start()
        t1 = clock()
        child.close()
        parent.send(payload)
        parent.recv()
        t2 = clock()
        for _ in range(rounds):
            t = clock()
            parent.send(payload)
            parent.recv()
            trips.append(clock() - t)
        t3 = clock()
        parent.send(None)
        process.join(timeout=5)
        times.append((t1 - t0, t2 - t1, clock() - t3))
        parent.close()
    trips.sort()
    fork_s, ready_s, stop_s = (min(column) for column in zip(*times))
    # the fastest decile (undisturbed by other programs); a round trip is four
    # message ends
    return trips[len(trips) // 10] / 4, fork_s, ready_s, stop_s


def autogroup_enabled() -> bool:
    """Whether Linux shares CPU time between sessions (``sched_autogroup``)."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return False


def sample_background(seconds: float = 1.0) -> tuple[float, ...] | None:
    """Cores other programs keep busy while this one sleeps, per session, busiest
    first (Linux ``/proc``; None elsewhere): a value for
    :attr:`Calibration.background`. The machine's total comes from ``/proc/stat``;
    its split between sessions from the processes' CPU times (what exits meanwhile
    is spread over the sessions in proportion)."""
    tick = os.sysconf("SC_CLK_TCK")

    def total() -> float:
        with open("/proc/stat") as handle:
            ticks = [int(v) for v in handle.readline().split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / tick

    def by_session() -> dict[str, float]:
        out: dict[str, float] = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                group = Path(f"/proc/{pid}/autogroup").read_text().split()[0] \
                    if autogroup_enabled() else str(os.getsid(int(pid)))
            except (OSError, IndexError, ValueError):
                continue
            out[group] = out.get(group, 0.0) + (int(stat[11]) + int(stat[12])) / tick
        return out
    try:
        mine = Path("/proc/self/autogroup").read_text().split()[0] \
            if autogroup_enabled() else str(os.getsid(0))
        before, sessions, start = total(), by_session(), time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - start
        busy, after = (total() - before) / elapsed, by_session()
    except (OSError, ValueError, IndexError):
        return None
    shares = {g: (v - sessions.get(g, 0.0)) / elapsed for g, v in after.items() if g != mine}
    shares = {g: v for g, v in shares.items() if v > 0.05}  # idle sessions
    seen = sum(shares.values())
    if busy < 0.05:
        return ()
    if not seen:
        return (round(busy, 2),)
    return tuple(sorted((round(v * busy / seen, 2) for v in shares.values()), reverse=True))
