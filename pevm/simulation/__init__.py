"""Predicted speedup of the parallel engine: a discrete-event simulation of a block.

What it models. The block is replayed through the engine's own policy: the real
:class:`~pevm.engines.scheduler.Scheduler` is driven with simulated results, and
the engine's knobs (``MIN_PARALLEL_TXS``, ``FORK_AFTER_S``, ``RECOVERY_BATCH``,
``WAITING_SENDER_BATCH``, ``default_chunk_size``, ``max_outstanding``) are read
from the engine. The coordinator warms up in-process, forks one worker fewer than
the worker count (it is an executor itself; fewer where the warm-up says fewer
pay, :func:`~pevm.engines.cost_model.workers_that_pay`), dispatches chunks, executes
transactions ahead of the commit point where it would wait for a worker -- and
where there is none, recovers senders instead -- validates and commits in block
order and re-executes failures itself; workers apply the commits a run message
carries (and pin the senders it hands them), execute the chunk and send the
results (what is done so far every ``FLUSH_S`` of a long run); while speculation
is paused idle workers recover senders ahead of the coordinator -- from the start
where the warm-up chooses a sender pipeline, as the engine's looks do
(:func:`~pevm.engines.cost_model.pipeline_pays`; the coordinator is then charged
``PIPELINE_TX_S`` a transaction, which the calibration does not measure). That
pipeline's worker is, as the engine's default, the process's recovery helper
(:mod:`~pevm.engines.recovery_helper`), running already -- the steady state of a
process whose first pipelined block forked it -- so it costs no fork and no stop,
and the coordinator pickles each batch's transactions for it (their encodings,
where cached). A worker's execution is valid iff each of its dependencies (:mod:`pevm.analysis`) was
committed and synced to the worker when the chunk was sent, or was executed
correctly before by the same worker; one the coordinator ran ahead iff each
dependency was committed when it started or was itself run ahead correctly (the
coordinator records those, as a worker does). The coordinator and the workers
share ``cores`` by processor sharing, optionally with other programs' load
(:attr:`Calibration.background`; Linux autogroup shares CPU between sessions).

Costs. Per transaction, measured on the block through the engine's in-process path
(:class:`~pevm.engines.executor.BlockContext` on :class:`~pevm.engines.mv_memory.
MVMemory`, as ``ParallelEngine(workers=1)`` runs it), in CPU seconds, median of a
few repeats: execution (sender recovery apart), validation, commit, pickling of
results, write sets and the transaction itself (for the helper); executions and
recoveries scaled to add up to what the engine's own in-process import of the
block spent on them (timed one step after another, each came out slower than the
engine runs it). Per machine
(:class:`Calibration`, measured once, never on the block predicted): message and
start-up costs (a forked echo process); and, from two-worker imports of a generated
block interleaved with profiles of it, the engine's fork and stop times, the
workers' CPU per transaction relative to in-process execution, and the coordinator's
unpriced CPU per result relative to unpickling it (relative, so that they survive
the machine's speed drifting). Relative is not enough where the speed two processes
get beside each other drifts on its own (a shared VM's slow spells): a cached
calibration is measured again where its block's 2-worker speedup, measured now,
moved more than ``DRIFT_TOLERANCE`` from its self-check's.

What it does not model: OS scheduling latency and cache interference between
time-sliced processes, garbage collection, pre-state entries each worker loads
again (a hot contract is read from py-evm's trie once per process), ESTIMATE-blocked
results (they fail at validation here, not on arrival), values that survive a
conflict (value-based validation passing although a dependency wrote), and costs
that differ between the calibration block and the block predicted.
"""
from __future__ import annotations

from pevm.simulation.calibration import (CALIBRATION_VERSION, CALIBRATION_WORKLOAD,
                                         CHECK_TOLERANCE, DRIFT_TOLERANCE,
                                         autogroup_enabled, calibrate,
                                         measure_calibration, measure_until_consistent,
                                         sample_background, speedup_now)
from pevm.simulation.model import predict, simulate
from pevm.simulation.profile import profile_case
from pevm.simulation.records import BlockProfile, Calibration, SimResult

__all__ = ["CALIBRATION_VERSION", "CALIBRATION_WORKLOAD", "CHECK_TOLERANCE",
           "DRIFT_TOLERANCE", "BlockProfile", "Calibration", "SimResult",
           "autogroup_enabled", "calibrate", "measure_calibration",
           "measure_until_consistent", "predict", "profile_case", "sample_background",
           "simulate", "speedup_now"]
