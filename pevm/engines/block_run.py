"""One block on the coordinator: the warm-up, the commit loop, the merge.

:class:`BlockRun` is what :meth:`ParallelEngine.apply_transactions
<pevm.engines.parallel.ParallelEngine.apply_transactions>` runs for each block; the
engine's docstring (:mod:`pevm.engines.parallel`) describes the steps -- senders,
execution, commit, merge -- and the warm-up, whose looks choose how the rest runs
(:mod:`pevm.engines.warm_up`; this run executes its transactions). This module holds the
state that lives for one block only (the multi-version memory, the scheduler, the
committed results) and the loop that drives them: the engine is its
configuration, the run is its work. What to run next is the scheduler's policy
(:mod:`pevm.engines.scheduler`); this loop carries it out, and talks to the
workers through a :class:`~pevm.engines.feed.WorkerFeed`.
"""
from __future__ import annotations

import gc
import logging
import random
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI

from pevm.engines.cost_model import costly_transactions, transaction_targets
from pevm.engines.detail import ParallelDetail
from pevm.engines.executor import BlockContext, TxResult
from pevm.engines.feed import WorkerFeed
from pevm.engines.merge import apply_writes, final_writes, merge_block
from pevm.engines.mv_memory import CreditOverflow, MVMemory, TxWrites
from pevm.engines.scheduler import Action, Scheduler
from pevm.engines.sender_batches import waiting_batch
from pevm.engines.timeline import (REST_OF_COORDINATOR, REST_OF_WORKER, Activity, breakdown,
                                   minor_page_faults)
from pevm.engines.warm_up import WarmUpRun
from pevm.engines.workers import fork_available, unavailable_reason
from pevm.errors import REJECTION_ERRORS, BlockRejected, EngineFailure, describe
from pevm.result import EngineStats

if TYPE_CHECKING:  # the engine imports this module to run its blocks
    from pevm.engines.parallel import ParallelEngine

LOG = logging.getLogger("pevm.engine")

class BlockRun:
    """One block's execution on the coordinator (state that lives for the block
    only); :meth:`run` is the whole of it.

    From the engine besides its options: ``block_index`` (its blocks so far, which
    seeds the fault hooks' randomness), ``gc_frozen`` (whether the engine froze the
    collector for this block, so that the run freezes the warm-up's objects too
    before the fork) and ``warned`` (the in-process reasons the engine has logged).
    """

    def __init__(self, engine: ParallelEngine, vm: VirtualMachineAPI,
                 transactions: tuple[SignedTransactionAPI, ...],
                 base_header: BlockHeaderAPI, *, block_index: int, gc_frozen: bool,
                 warned: set[str]) -> None:
        self.engine = engine
        self.gc_frozen = gc_frozen
        self.warned = warned
        self.vm = vm
        self.transactions = transactions
        self.base_header = base_header
        self.n = len(transactions)
        self.seconds: dict[str, float] = {}
        self.ctx = BlockContext(vm, transactions)
        #: the coordinator's time by activity (and slices, when tracing)
        self.timeline = self.ctx.timeline
        self.timeline.tracing = engine.trace is not None
        self.mv = MVMemory(self.ctx.pre)
        #: the workers, once started (None: the block runs in-process)
        self.feed: WorkerFeed | None = None
        self.rng = random.Random(engine.hooks.seed * 7919 + block_index)
        self.committed: list[TxResult | None] = [None] * self.n
        #: executions in this process (the workers' own: ``feed.executions``)
        self.executions = 0
        self.cumulative_gas = 0
        self.waits = 0
        self.before_last: TxWrites | None = None
        #: senders before it are known or unrecoverable (:func:`waiting_batch`)
        self.waiting_frontier = 0
        #: why the block ran without workers although more were asked for
        self.in_process_reason = ""

    def close(self) -> None:
        """Stop and reap the workers, once (the engine closes the run again after
        :meth:`run` has)."""
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.close()

    # -------------------------------------------------------------- phases
    def run(self) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        engine = self.engine
        eligible = engine.workers > 1 and self.n >= max(2, engine.min_parallel_txs)
        if engine.workers > 1 and not eligible:
            self.in_process_reason = f"{self.n} transactions: too few for workers"
        if eligible and not fork_available(engine.start_method):
            self._in_process(unavailable_reason(engine.start_method))
            eligible = False
        workers = engine.workers - engine.coordinator_executes if eligible else 0
        start = time.perf_counter()
        cpu_start = time.process_time()
        faults_start = minor_page_faults()
        chunk = engine.chunk_length(self.n, max(engine.workers, 1))
        gas_limits = [tx.gas for tx in self.transactions]
        self.scheduler = Scheduler(
            self.n, workers, chunk_size=chunk, max_outstanding=engine.max_outstanding,
            coordinator_executes=engine.coordinator_executes,
            costly=costly_transactions(gas_limits) if engine.costly_to_workers else (),
            targets=transaction_targets(self.transactions))
        warm = WarmUpRun(engine, self.ctx, self.scheduler, self.transactions,
                         self.committed)
        if eligible:
            warm.run(start, self._run_in_order)
            warm_up = self.seconds["warm_up"] = time.perf_counter() - start
            warm_up -= warm.recovered_ahead(self.scheduler.commit_index)
            left = self.n - self.scheduler.commit_index
            if left < max(2, engine.min_parallel_txs):
                self.in_process_reason = warm.looks.short_reason or \
                    f"{left} transactions left after the warm-up: too few for workers"
            else:
                pipeline = warm.runs_as_pipeline()
                executors = 2
                if not pipeline:  # a pipeline runs in order: no hot targets to predict
                    warm.predict_hot()
                    executors, self.in_process_reason = warm.executors(warm_up)
                if executors > 1:
                    if executors < engine.workers:
                        workers = executors - engine.coordinator_executes
                        self.scheduler.start_with(workers,
                                                  engine.chunk_length(self.n, executors))
                    if pipeline:
                        self.scheduler.pipeline()
                    if self.gc_frozen:
                        gc.freeze()  # what the warm-up created, too, before the fork
                    self._start_workers(workers)
            if self.feed is None:
                for worker in range(workers):
                    self.scheduler.worker_lost(worker)
        feed = self.feed
        if feed is None:
            # the rest runs in this process: its senders back to back first
            self.ctx.recover_senders(range(self.scheduler.commit_index, self.n))
        mark = time.perf_counter()
        self._execute_all()
        executed = time.perf_counter()
        self.seconds["execute"] = executed - mark
        used = len(feed.started) + engine.coordinator_executes if feed is not None else 1
        if feed is not None:
            feed.stop()  # they exit while the coordinator merges

        mark = time.perf_counter()
        header, receipts = merge_block(self.vm, self.base_header, self.transactions,
                                       self.committed, self.before_last, self.ctx.pre)
        self.seconds["merge"] = self.timeline.add(Activity.MERGE, mark) - mark
        self.close()
        recover = Activity.RECOVER.value
        recover_coordinator = self.timeline.seconds.get(recover, 0.0)
        worker_timelines = feed.timelines if feed is not None else {}
        started = feed.started if feed is not None else {}
        worker_faults = feed.page_faults if feed is not None else {}
        recover_workers = sum(t.seconds.get(recover, 0.0)
                              for t in worker_timelines.values())
        self.seconds["recover_senders"] = recover_coordinator + recover_workers
        end = time.perf_counter()
        self.seconds["total"] = end - start
        tracks = {"coordinator": self.timeline} | {
            f"worker {w}": t for w, t in sorted(worker_timelines.items())}
        walls = {"coordinator": end - start} | {
            f"worker {w}": executed - started.get(w, executed) for w in worker_timelines}
        if engine.trace is not None:
            engine.trace.add_block(f"block {self.base_header.block_number}", used,
                                   tracks)
        s = self.scheduler.stats
        pipelined = self.scheduler.pipelined and feed is not None
        executions = self.executions + (feed.executions if feed is not None else 0)
        stats = EngineStats(
            engine=engine.name, workers=used,
            executions=executions,
            aborts=executions - self.n,
            validations=s.validations, seconds=self.seconds,
            in_process_reason=self.in_process_reason, sender_pipeline=pipelined)
        engine.last_detail = ParallelDetail(
            chunks=s.chunks, chunk_size=self.scheduler.chunk_size, dispatched=s.dispatched,
            inline=s.inline, ahead=s.ahead, costly=s.costly,
            validation_failures=s.validation_failures,
            forced_aborts=s.forced_aborts, blocked=s.blocked, crashed=s.crashed,
            lost=s.lost, stale=s.stale_results, pauses=s.pauses,
            hot_targets=len(self.scheduler.hot.hot), kept=s.kept,
            pre_state_entries=len(self.ctx.pre), warm_up_txs=warm.txs,
            sender_pipeline=pipelined,
            in_process_reason=self.in_process_reason,
            slowness=round(warm.decided_at, 3),
            recover_coordinator_s=round(recover_coordinator, 4),
            recover_workers_s=round(recover_workers, 4),
            coordinator_cpu_s=time.process_time() - cpu_start,
            worker_cpu_s=[round(feed.cpu.get(w, 0.0), 4) for w in range(workers)]
            if feed is not None else [0.0],
            waits=self.waits,
            wait_s=round(self.timeline.seconds.get(Activity.WAIT.value, 0.0), 4),
            dead_workers=sorted(set(range(workers)) - self.scheduler.alive)
            if feed is not None else [],
            breakdown={name: breakdown(timeline, walls[name],
                                       REST_OF_COORDINATOR if name == "coordinator"
                                       else REST_OF_WORKER)
                       for name, timeline in tracks.items()},
            page_faults={"coordinator": minor_page_faults() - faults_start} | {
                f"worker {w}": worker_faults.get(w, 0) for w in worker_timelines})
        return header, receipts, stats

    def _start_workers(self, workers: int) -> None:
        """Fork the workers (:meth:`WorkerFeed.start`); with none started the
        block runs on in-process."""
        engine = self.engine
        feed = WorkerFeed(self.ctx, self.scheduler, self.mv, self.committed,
                          engine.hooks, engine.worker_nice, engine.persistent_helper)
        failed = feed.start(workers)
        self.seconds["start_workers"] = feed.start_seconds
        if failed:
            feed.close()
            self._in_process(failed)
        else:
            self.feed = feed

    def _in_process(self, reason: str) -> None:
        """Run the block without workers (it stays correct, only not parallel)."""
        self.in_process_reason = reason
        if reason not in self.warned:
            self.warned.add(reason)
            LOG.warning("parallel engine: running in-process: %s", reason)

    # ----------------------------------------------------------- execution
    def _execute_all(self) -> None:
        sched = self.scheduler
        feed = self.feed
        force = self.engine.hooks.force_abort
        # a sender pipeline looks for the worker's senders every 16 transactions,
        # or when the next one is missing: nothing else arrives, and only an answer
        # taken in frees the worker for the next batch (a dispatch otherwise finds
        # nothing to send, at ~3 us a transaction)
        lean = sched.pipelined
        dispatch = True
        while True:
            if feed is not None and (dispatch or not lean):
                feed.dispatch()
                dispatch = False
            action, txn = sched.next_commit()
            if action is Action.DONE:
                return
            if action is Action.WAIT:
                assert feed is not None
                feed.dispatch()  # a costly transaction next_commit left to workers
                dispatch = True  # it takes answers in below
                ahead = sched.claim_ahead()
                if ahead is not None:
                    self._execute_ahead(ahead)
                    feed.handle(feed.receive(0))
                    continue
                messages = feed.receive(0)
                if not messages:
                    if self._recover_while_waiting():
                        continue
                    messages = feed.receive(1.0)
                    self.waits += 1
                feed.handle(messages)
                continue
            self._check_header(txn)
            result: TxResult | None = None
            if action is Action.VALIDATE:
                result = cast(TxResult, sched.results[txn])
                mark = time.perf_counter()
                ok = self.mv.validate(txn, result.reads)
                self.timeline.add(Activity.VALIDATE, mark, txn=txn,
                                  incarnation=result.incarnation)
                forced = ok and force > 0 and self.rng.random() < force
                sched.validated(txn, ok and not forced, forced=forced)
                if not ok or forced:
                    result = None
            if result is None:
                incarnation = sched.executed_inline(txn)
                result = self._execute_inline(txn, incarnation)
                if feed is not None and (not lean or txn % 16 == 0 or txn + 1 == self.n
                                         or not self.ctx.has_sender(txn + 1)):
                    feed.handle(feed.receive(0))
                    dispatch = True
            self._commit(txn, result)

    def _recover_while_waiting(self) -> bool:
        """Recover a :func:`waiting_batch` of senders instead of waiting for a
        worker (nothing to execute ahead within the lookahead, no message yet):
        work that whoever executes those transactions would do later, done in time
        the coordinator would spend idle. False when there is none left."""
        batch, self.waiting_frontier = waiting_batch(
            self.waiting_frontier, self.scheduler.next_txn, self.n,
            self.ctx.has_sender)
        self.ctx.recover_senders(batch)
        return bool(batch)

    def _run_in_order(self, txn: int) -> None:
        """The warm-up's step: ``txn``, next at the commit point, executed here and
        committed."""
        self._check_header(txn)
        self._commit(txn, self._execute_inline(txn, self.scheduler.executed_inline(txn)))

    def _execute_inline(self, txn: int, incarnation: int) -> TxResult:
        mv = self.mv
        self.executions += 1
        result = self.ctx.execute(txn, incarnation, lambda key: mv.read(key, txn))
        if result.crash is not None or result.blocked_on is not None:
            self._confirm_natively(txn, result.crash or "blocked on committed state")
        return result

    def _execute_ahead(self, txn: int) -> None:
        """Execute ``txn`` speculatively (the coordinator would otherwise wait for
        a worker); validated like a worker's result.

        It reads the committed state and the coordinator's own earlier executions
        ahead, recorded in its memory as a worker records its results: a run of
        dependent transactions it executes ahead then holds, as in a worker's
        chunk. Validation at the commit point reads only committed values (every
        version below is committed by then), so a recorded execution that turns
        out wrong costs a re-execution, never a result.
        """
        mv = self.mv
        incarnation = self.scheduler.incarnation[txn]
        self.executions += 1
        result = self.ctx.execute(txn, incarnation, lambda key: mv.read(key, txn),
                                  speculative=True)
        if result.outcome is not None and result.outcome.valid:
            mv.record(txn, incarnation, result.writes)
        self.scheduler.on_result(result)

    def _confirm_natively(self, txn: int, engine_saw: str) -> None:
        """Re-run ``txn`` through py-evm's own state and raise what py-evm says.

        Called where the engine found ``txn`` invalid (or its execution failed) on
        the committed state. py-evm's ``vm.state`` gets the committed prefix and
        runs the transaction itself: a rejection py-evm raises rejects the block
        with py-evm's own reason; if py-evm executes the transaction, the engine
        disagreed with its reference -- an engine failure, never a rejection. The
        state is not restored: either outcome ends this block's import.
        """
        state = self.vm.state
        apply_writes(state, final_writes(self.mv), self.ctx.pre)
        state.lock_changes()
        try:
            state.apply_transaction(self.transactions[txn])
        except REJECTION_ERRORS as exc:
            raise BlockRejected(describe(exc), txn) from exc
        raise EngineFailure(
            f"transaction {txn}: the engine found it invalid or failing "
            f"({engine_saw.strip().splitlines()[-1] if engine_saw.strip() else '?'}) "
            f"but py-evm executes it on the same state")

    def _check_header(self, txn: int) -> None:
        """py-evm's check before each transaction (cumulative gas vs the limit)."""
        cumulative = self.cumulative_gas
        vm = self.vm
        tx = self.transactions[txn]
        check = SimpleNamespace(gas_used=self.base_header.gas_used + cumulative,
                                gas_limit=self.base_header.gas_limit)
        try:
            try:
                vm.validate_transaction_against_header(check, tx)  # type: ignore
            except AttributeError:  # a fork that looks at more of the header
                vm.validate_transaction_against_header(
                    self.base_header.copy(gas_used=check.gas_used), tx)
        except REJECTION_ERRORS as exc:
            raise BlockRejected(describe(exc), txn) from exc

    def _commit(self, txn: int, result: TxResult) -> None:
        outcome = result.outcome
        assert outcome is not None
        if not outcome.valid:
            self._confirm_natively(txn, outcome.reason)
        mark = time.perf_counter()
        if txn == self.n - 1:
            # py-evm locks the journal before each transaction, so after the block
            # the last transaction's changes are the only unlocked ones: keep the
            # state before it to reproduce that at merge.
            self.before_last = final_writes(self.mv)
        try:
            self.mv.commit(txn, result.writes)
        except CreditOverflow as exc:  # the commit changed nothing
            self._confirm_natively(txn, f"balance of 0x{exc.address.hex()} past uint256")
        self.committed[txn] = result
        self.cumulative_gas += self.ctx.gas_used(txn, outcome)
        self.scheduler.committed(txn)
        self.timeline.add(Activity.COMMIT, mark, txn=txn, incarnation=result.incarnation)
