"""The coordinator's side of the workers, for one block: start them, feed them
chunks, take in what they send.

:class:`~pevm.engines.block_run.BlockRun` decides *when* (its commit loop asks
between any two of its own transactions); :class:`WorkerFeed` does the talking:
it forks the workers (:meth:`WorkerFeed.start`), turns the scheduler's chunks into
run messages that carry each worker's missing commits -- each commit's writes
packed once for every worker (:func:`~pevm.engines.workers.pack_writes`) -- and
folds results, recovered senders and deaths back into the scheduler
(:meth:`WorkerFeed.handle`). What runs where is the scheduler's policy
(:mod:`pevm.engines.scheduler`); the messages are :mod:`pevm.engines.workers`'.
"""
from __future__ import annotations

import logging
import time

from pevm.engines.executor import BlockContext, TxResult
from pevm.engines.hooks import FaultHooks
from pevm.engines.locations import BALANCE, NONCE
from pevm.engines.mv_memory import Key, MVMemory
from pevm.engines.recovery_helper import HelperPool
from pevm.engines.scheduler import Scheduler
from pevm.engines.sender_batches import recovery_batch
from pevm.engines.timeline import Activity, Timeline
from pevm.engines.workers import (Dead, FromWorker, Recover, Results, Run, Senders,
                                  ToWorker, WorkerPool, pack_writes)
from pevm.errors import EngineFailure

LOG = logging.getLogger("pevm.engine")


class WorkerFeed:
    """The workers of one block, as the coordinator sees them.

    ``committed`` is the block run's list of committed results, read (never
    written) to build run messages and to judge results that come too late.
    """

    def __init__(self, ctx: BlockContext, scheduler: Scheduler, mv: MVMemory,
                 committed: list[TxResult | None], hooks: FaultHooks,
                 nice: int, persistent_helper: bool) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.committed = committed
        self.timeline = ctx.timeline
        #: a sender pipeline's one worker is the process's recovery helper
        #: (:mod:`pevm.engines.recovery_helper`) unless ``persistent_helper`` is False
        self.pool: WorkerPool | HelperPool = \
            HelperPool(ctx, hooks) if persistent_helper and scheduler.pipelined \
            else WorkerPool(ctx, hooks, mv, nice=nice)
        #: each worker's timeline, as its messages bring it
        self.timelines: dict[int, Timeline] = {}
        #: when each worker was forked
        self.started: dict[int, float] = {}
        #: each worker's CPU seconds, as its results report them
        self.cpu: dict[int, float] = {}
        #: each worker's minor page faults since its fork, as its last results say
        self.page_faults: dict[int, int] = {}
        #: the executions the workers' results report
        self.executions = 0
        #: the coordinator's time forking
        self.start_seconds = 0.0
        #: per worker: the commit index its replica has reached
        self.synced: dict[int, int] = {}
        #: committed writes as the workers receive them, packed once for them all
        self.packed: dict[int, bytes] = {}
        self.recovering: set[int] = set()
        self.recovery_frontier = 0

    # ------------------------------------------------------------------ start
    def start(self, workers: int) -> str:
        """Fork ``workers`` workers (:meth:`WorkerPool.start`), feeding each batch
        its first chunks before the next fork: at 16 workers the last one forked
        started ~100 ms after the first could have. If a fork fails, the workers
        started go on without the rest (the scheduler loses the others); with none
        started it returns why, and the block runs on in-process."""
        sched = self.scheduler
        self.timelines = {w: Timeline(tracing=self.timeline.tracing)
                          for w in range(workers)}
        self.synced = {w: sched.commit_index for w in range(workers)}
        forks = self.pool.start(workers)
        while True:
            mark = time.perf_counter()
            try:
                batch = next(forks, None)
            except (OSError, AssertionError, ValueError) as exc:
                # e.g. out of processes or memory
                if not self.started:  # the caller closes this feed and runs in-process
                    return f"starting workers failed: {exc}"
                LOG.warning("parallel engine: %d of %d workers started: %s",
                            len(self.started), workers, exc)
                for lost in range(workers):
                    if lost not in self.started:
                        sched.worker_lost(lost)
                        del self.timelines[lost]
                return ""
            finally:
                now = self.timeline.add(Activity.START, mark)
                self.start_seconds += now - mark
            if batch is None:
                return ""
            if not self.started:
                sched.start_ahead()
            for worker in batch:
                self.started[worker] = now
                self._feed(worker)

    # --------------------------------------------------------------- sending
    def dispatch(self) -> None:
        """Chunks to every worker with room; sender recovery to idle ones while
        the coordinator keeps the transactions (:meth:`_dispatch_recovery`)."""
        sched = self.scheduler
        for worker in sched.idle_workers():
            self._feed(worker)
        if sched.keeps_to_coordinator:
            self._dispatch_recovery()

    def _feed(self, worker: int) -> None:
        # up to max_outstanding chunks: the next waits in the worker's inbox
        while (txns := self.scheduler.next_chunk(worker)) is not None:
            self._send(worker, self._run_message(worker, txns))

    def _send(self, worker: int, message: ToWorker) -> None:
        if not self.pool.send(worker, message):
            self.scheduler.worker_lost(worker)
            if not self.scheduler.alive:
                raise EngineFailure("every worker process died mid-block")

    def _dispatch_recovery(self) -> None:
        """While speculation is paused, or hot targets' transactions stay with it
        (:attr:`Scheduler.keeps_to_coordinator`), the coordinator runs transaction
        after transaction itself; idle workers recover the senders ahead of it,
        which takes a large share of each (cheap) transaction's cost off that
        sequential path."""
        sched = self.scheduler
        for worker in sched.live_workers():
            if sched.outstanding(worker) or worker in self.recovering:
                continue
            batch, self.recovery_frontier = recovery_batch(
                self.recovery_frontier, sched.commit_index, sched.n,
                self.ctx.has_sender)
            if not batch:
                return
            self.recovering.add(worker)
            self._send(worker, Recover(batch))

    def _run_message(self, worker: int, txns: list[int]) -> Run:
        sched = self.scheduler
        commits: list[tuple[int, bytes | None]] = []
        packed = self.packed
        for txn in range(self.synced[worker], sched.commit_index):
            result = self.committed[txn]
            assert result is not None
            if result.worker == worker:
                commits.append((txn, None))
                continue
            data = packed.get(txn)
            if data is None:
                data = packed[txn] = pack_writes(result.writes)
            commits.append((txn, data))
        self.synced[worker] = sched.commit_index
        end = max(txns) + 1
        estimates: list[tuple[int, tuple[Key, ...]]] = []
        for txn in sched.in_flight_below(end, worker):
            if txn < txns[0]:
                sender = self.ctx.known_sender(txn)
                if sender is not None:
                    estimates.append((txn, ((BALANCE, sender), (NONCE, sender))))
        known = self.ctx.known_sender
        senders = [(t, sender) for t in txns if (sender := known(t)) is not None]
        return Run(txns, [sched.incarnation[t] for t in txns], commits, estimates,
                   senders)

    # ------------------------------------------------------------- receiving
    def receive(self, timeout: float | None) -> list[FromWorker]:
        """:meth:`WorkerPool.receive`: what arrived within ``timeout``."""
        return self.pool.receive(timeout)

    def handle(self, messages: list[FromWorker]) -> None:
        """Fold ``messages`` into the scheduler: results, senders, deaths."""
        if not messages:
            return
        mark = time.perf_counter()
        sched = self.scheduler
        for message in messages:
            if not isinstance(message, Dead):
                self.timelines[message.worker].absorb(*message.timeline)
            if isinstance(message, (Results, Senders)):
                worker = message.worker
                self.cpu[worker] = self.cpu.get(worker, 0.0) + message.cpu_seconds
                self.page_faults[worker] = max(self.page_faults.get(worker, 0),
                                               message.page_faults)
            if isinstance(message, Results):
                self.ctx.pre.absorb(message.pre_state_loads)
                if message.final:
                    sched.chunk_done(worker)
                self.executions += len(message.results)
                for result in message.results:
                    self.ctx.adopt_sender(result.txn, result.sender)
                    if not sched.on_result(result, worker):
                        done = self.committed[result.txn] \
                            if result.txn < sched.commit_index else None
                        if done is not None and result.outcome is not None:
                            # plain equality, knowingly conservative: see
                            # docs/architecture.md, "Throttle and late verdicts"
                            sched.late_verdict(result.txn, result.reads == done.reads)
            elif isinstance(message, Senders):
                self.recovering.discard(message.worker)
                for txn, sender in message.senders:
                    self.ctx.adopt_sender(txn, sender)
            elif isinstance(message, Dead):
                self.recovering.discard(message.worker)
                sched.worker_lost(message.worker)
                if not sched.alive:
                    raise EngineFailure("every worker process died mid-block")
        self.timeline.add(Activity.MESSAGE, mark)

    # ------------------------------------------------------------------- end
    def stop(self) -> None:
        """Kill the workers without waiting (:meth:`WorkerPool.stop`)."""
        self.pool.stop()

    def close(self) -> None:
        """Stop the workers and reap them (:meth:`WorkerPool.close`)."""
        self.pool.close()
