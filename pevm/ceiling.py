"""The machine's ceiling: what k processes get that each run the whole block alone.

A parallel engine's speedup at k workers is bounded twice: by the block (its
dependency graph, :mod:`pevm.analysis`) and by the machine. k processes on k cores
share caches and memory bandwidth, and on a virtual machine whatever the host
shares; a Python interpreter's working set is large, so two of them running at once
can each run markedly slower than one alone. :func:`machine_ceiling` measures that
second bound directly: the block's transaction phase imported by the engine in one
process, alone, then by k such processes started at once (forked, each on its own
fresh pre-state, released together by a barrier). No coordination, no messages, no
conflicts, every process doing the whole block's work: ``k x alone / slowest of the
k`` is the speedup k processes could give if the work split perfectly -- what no
engine exceeds on this machine for this block's kind of work. ``pevm bench
--ceiling`` reports it beside the engine's measured speedup, which separates what
the engine loses from what the machine does not have.
"""
from __future__ import annotations

import multiprocessing
import statistics
import time
import traceback
from typing import Any

from pevm.bench import import_run
from pevm.engines.parallel import ParallelEngine
from pevm.engines.workers import fork_available
from pevm.errors import PevmError
from pevm.inputs.discover import CaseRef
from pevm.state.backend import StateBackend

#: Seconds to wait for the copies of one round (a round is a few block imports).
TIMEOUT_S = 600.0


def _copy(ref: CaseRef, backend: StateBackend, barrier: Any, conn: Any) -> None:
    """One copy: prepare the block, wait for the others, import it in-process."""
    try:
        engine = ParallelEngine(workers=1, state_backend=backend)
        run = ref.load().start(backend)
        barrier.wait(TIMEOUT_S)
        conn.send(("ok", import_run(ref, run, engine)[1]))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001 - the barrier is already broken
            pass
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"))
    finally:
        conn.close()


def copies_at_once(ref: CaseRef, k: int,
                   backend: StateBackend = StateBackend.FLAT) -> list[float]:
    """Transaction-phase seconds of ``k`` in-process imports of ``ref`` run at once."""
    mp = multiprocessing.get_context("fork")
    barrier = mp.Barrier(k)
    ends, processes = [], []
    try:
        for _ in range(k):
            parent, child = mp.Pipe(duplex=False)
            process = mp.Process(target=_copy, args=(ref, backend, barrier, child),
                                 daemon=True)
            process.start()
            child.close()
            ends.append(parent)
            processes.append(process)
        out: list[float] = []
        deadline = time.monotonic() + TIMEOUT_S
        for end in ends:
            if not end.poll(max(0.0, deadline - time.monotonic())):
                raise PevmError(f"{ref.name}: a copy of the ceiling run timed out")
            try:
                status, value = end.recv()
            except EOFError:
                raise PevmError(f"{ref.name}: a copy of the ceiling run died") from None
            if status != "ok":
                raise PevmError(f"{ref.name}: a copy of the ceiling run failed: {value}")
            out.append(value)
        return out
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for end in ends:
            end.close()


def machine_ceiling(ref: CaseRef, counts: list[int], repeat: int = 3,
                    backend: StateBackend = StateBackend.FLAT) -> dict[str, float]:
    """``{"k": ceiling}`` for each ``k`` > 1 of ``counts`` (see the module doc).

    Each round runs one copy alone, then k copies at once for each k, and takes
    ``k x alone / slowest of the k`` within the round, so that the machine's drift
    (its speed moves by a quarter between minutes on the 2-core VM) hits both
    sides of each ratio alike; the ceiling is the median over ``repeat`` rounds,
    after one warm-up round. Empty where workers cannot be forked here.
    """
    ks = sorted({k for k in counts if k > 1})
    if not ks or not fork_available():
        return {}
    ratios: dict[int, list[float]] = {k: [] for k in ks}
    for round_index in range(repeat + 1):
        alone = copies_at_once(ref, 1, backend)[0]
        for k in ks:
            slowest = max(copies_at_once(ref, k, backend))
            if round_index:  # the first round is a warm-up, as in pevm.bench
                ratios[k].append(k * alone / slowest)
    return {str(k): round(statistics.median(ratios[k]), 4) for k in ks}
