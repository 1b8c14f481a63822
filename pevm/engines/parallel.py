"""pevm's parallel engine: optimistic execution in worker processes, in-order commit.

``ParallelEngine(workers=N).apply_transactions(vm, transactions, base_header)`` has
the contract of py-evm's ``VM.apply_all_transactions`` (see
:class:`pevm.pipeline.Engine`): it starts from ``vm.state``, leaves the
post-transaction state there, and returns the header (gas used, bloom, blob gas, and
before Byzantium the state root), py-evm's own receipt objects and
:class:`~pevm.result.EngineStats`.

How a block runs (the parts are modules of their own):

1. **Senders** are recovered once, by the process that first executes the
   transaction (so in parallel, by the workers), and pinned on the transaction
   object so py-evm never recovers them again; results carry them back to the
   coordinator (:mod:`pevm.engines.executor`).
2. **Execution**: the block starts in-process (see "Small blocks" below); then
   ``workers - 1`` forked workers (:mod:`pevm.engines.workers`) execute chunks of
   transactions optimistically on flat, versioned state views
   (:mod:`pevm.engines.state_view`) over their replica of the multi-version memory
   (:mod:`pevm.engines.mv_memory`); the coordinator -- this process, the
   ``workers``-th executor -- validates results in block order against the
   committed state, re-executes what fails in-process, and where it would wait
   for a worker executes the next untaken transaction ahead of the commit point
   itself (:mod:`pevm.engines.scheduler` explains the policy). With ``workers=1``,
   or a block smaller than ``min_parallel_txs``, the same loop runs with no
   workers: every transaction executes in-process, in order, on the flat view, and
   is committed without validation (its reads *are* the committed state).

   The coordinator executes because a process that only validates and commits
   costs the workers a core's share for ~0.2 ms a transaction of its own work: on
   the 2-core machine, two workers and a validating coordinator ran three processes
   on two cores. One worker and an executing coordinator keep two busy; measured
   interleaved at 2 workers against 1 (5 rounds, medians, the variant that only
   validates -> this one): ERC-20 1,000 transactions 1.13x -> 1.47x, mixed 1.06x
   -> 1.23x, withdrawals 1.13x -> 1.25x, mainnet 8889776 0.74x -> 0.96x,
   14029313 1.26x -> 1.40x, 17666333 1.05x -> 1.15x; compute 1.74x -> 1.70x and
   13217637 1.06x both.
3. **Commit**, per transaction in order: py-evm's block-level check
   (``vm.validate_transaction_against_header``: cumulative gas), then the outcome --
   a transaction invalid at its position (with validated reads) rejects the block
   with :class:`~pevm.errors.BlockRejected` at that index, exactly where py-evm
   would; then its writes fold into the committed state.
4. **Merge** (:mod:`pevm.engines.merge`): the committed state is written into
   ``vm.state`` (py-evm's ``AccountDB``) -- once per location from Byzantium on;
   before Byzantium transaction by transaction, because each receipt carries the
   state root after its transaction -- and receipts are made by the fork's own
   ``vm.make_receipt``, ``vm.add_receipt_to_header`` and
   ``vm.increment_blob_gas_used``.

Lazy credits: fee payments to the block beneficiary and plain value credits are
written as deltas that commute (:mod:`pevm.engines.mv_memory`), so they serialise
nothing; a transaction that reads such a balance (BALANCE, a sender's balance
check, SELFDESTRUCT, an emptiness check of an account with no positive credit)
reads the sum and depends on every credit below it, as it must.

Small blocks: every block starts in-process, committing transaction after
transaction; workers are forked only once it has run for ``fork_after`` seconds
(default :data:`FORK_AFTER_S`) with at least ``min_parallel_txs`` transactions
(default :data:`MIN_PARALLEL_TXS`) left -- or sooner, once the first transactions
say the rest is long (:func:`~pevm.engines.cost_model.warm_up_settled`). Starting
workers (the fork, a first message round trip, each worker warming its own
pre-state cache) costs roughly
10-30 ms here; a block that is done sooner never pays it, and a longer one loses
at most ``fork_after`` of parallel time. Forked after the warm-up, the workers
inherit the committed prefix (and the pre-state cache) with the rest of memory.
The warm-up is also the evidence for whether workers pay at all: from its mean
cost per transaction and what is left, :func:`parallel_pays` weighs the parallel
estimate (the work plus a per-transaction overhead, over the processes that can
run at once, plus a fixed cost) against finishing in-process, and a block of
cheap transactions stays in-process (``ParallelDetail.in_process_reason`` says so).

Fault hooks (``hooks=``:class:`~pevm.engines.hooks.FaultHooks`): random delays in
workers, forced aborts, workers that kill themselves, a fork at an exact
transaction -- adversarial schedules for the tests; none changes a result.
"""
from __future__ import annotations

import gc
import logging
import random
import time
from types import SimpleNamespace
from typing import cast
from collections.abc import Sequence

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth_utils import ValidationError

from pevm.engines.cost_model import parallel_pays, warm_up_settled
from pevm.engines.detail import ParallelDetail
from pevm.engines.executor import BlockContext, TxResult
from pevm.engines.hooks import FaultHooks
from pevm.engines.locations import BALANCE, NONCE
from pevm.engines.merge import apply_writes, final_writes, merge_block
from pevm.engines.mv_memory import CreditOverflow, Key, MVMemory, TxWrites
from pevm.engines.scheduler import (Action, Scheduler, costly_transactions,
                                   default_chunk_size)
from pevm.engines.timeline import Activity, Timeline, Trace, breakdown
from pevm.engines.workers import (Dead, FromWorker, Recover, Results, Run, Senders,
                                  ToWorker, WorkerPool, fork_available,
                                  unavailable_reason)
from pevm.errors import REJECTION_ERRORS, BlockRejected, EngineFailure
from pevm.result import EngineStats
from pevm.state.backend import StateBackend

LOG = logging.getLogger("pevm.engine")

#: Blocks with fewer transactions run in-process (see module docstring).
MIN_PARALLEL_TXS = 24
#: Senders per recovery task handed to an idle worker while speculation is paused.
RECOVERY_BATCH = 64
#: Seconds a block runs in-process before workers are started (module docstring).
FORK_AFTER_S = 0.03
#: How far below the coordinator's CPU priority workers run (``nice`` steps; see
#: :class:`~pevm.engines.workers.WorkerPool`). Measured on the 2-core machine,
#: transaction phase at 2 workers over 1, six large mainnet blocks interleaved:
#: 1.04x at 0, 1.13x at 5, 1.15x at 10.
WORKER_NICE = 10


class ParallelEngine:
    """Block-STM-style optimistic parallel executor over py-evm (see module doc).

    ``workers``: processes that execute transactions: the coordinator and
    ``workers - 1`` forked workers (1: everything in-process, no workers);
    ``coordinator_executes=False`` forks ``workers`` and has the coordinator only
    validate, commit and re-execute (the design before; kept for comparisons);
    ``costly_to_workers=False`` lets the coordinator execute costly transactions
    too (:func:`~pevm.engines.scheduler.costly_transactions`).
    Tuning: ``min_parallel_txs``, ``fork_after`` (small blocks, see module doc),
    ``chunk_size`` (longest chunk; default :func:`default_chunk_size`),
    ``max_outstanding`` (chunks queued per worker), ``start_method`` (anything but
    ``"fork"`` runs in-process), ``freeze_gc``, ``worker_nice`` (default
    :data:`WORKER_NICE`; 0: workers at the coordinator's priority),
    ``state_backend`` (the state layer its inputs build their chains on: pevm's
    flat one by default, py-evm's trie with :attr:`StateBackend.PYEVM`).
    ``hooks``: adversarial schedules for tests (:class:`FaultHooks`).
    ``last_detail`` holds the last block's :class:`ParallelDetail`; set ``trace``
    to a :class:`~pevm.engines.timeline.Trace` to collect every block's slices.
    """

    name = "parallel"

    def __init__(self, workers: int = 1, *, min_parallel_txs: int | None = None,
                 fork_after: float | None = None, chunk_size: int | None = None,
                 max_outstanding: int = 2, start_method: str | None = None,
                 freeze_gc: bool = True, worker_nice: int = WORKER_NICE,
                 state_backend: StateBackend = StateBackend.FLAT,
                 coordinator_executes: bool = True, costly_to_workers: bool = True,
                 hooks: FaultHooks | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.min_parallel_txs = MIN_PARALLEL_TXS if min_parallel_txs is None \
            else min_parallel_txs
        self.fork_after = FORK_AFTER_S if fork_after is None else fork_after
        self.chunk_size = chunk_size
        self.max_outstanding = max_outstanding
        self.start_method = start_method
        self.worker_nice = worker_nice
        #: the coordinator is one of the ``workers`` executing processes (it
        #: forks ``workers - 1``); False: it forks ``workers`` and only validates
        self.coordinator_executes = coordinator_executes
        #: transactions with a gas limit far above the block's typical one run on
        #: workers, not on the coordinator (:func:`costly_transactions`)
        self.costly_to_workers = costly_to_workers
        #: the state layer the blocks it runs are built on (pevm.state.backend)
        self.state_backend = StateBackend(state_backend)
        self.hooks = hooks or FaultHooks()
        #: move objects alive at the block's start out of the collector's sight
        #: while it runs (see apply_transactions)
        self.freeze_gc = freeze_gc
        self._blocks = 0
        self._gc_frozen = False
        self._warned: set[str] = set()
        self.last_detail = ParallelDetail()
        #: when set, every block's per-process slices are added to it
        self.trace: Trace | None = None

    # ------------------------------------------------------------------ API
    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        vm_header = vm.get_header()
        if base_header.block_number != vm_header.block_number:
            raise ValidationError(
                f"This VM instance must only work on block #{vm_header.block_number}, "
                f"but the target header has block #{base_header.block_number}")
        self._blocks += 1
        # Everything alive now (the chain, its databases, the decoded block) lives
        # through the block: the collector's permanent generation keeps full
        # collections -- which py-evm's allocation rate triggers often -- from
        # walking it again and again (and, in forked workers, from copying it).
        frozen = self.freeze_gc and gc.get_freeze_count() == 0  # not someone else's
        self._gc_frozen = frozen
        if frozen:
            gc.freeze()
        run = _BlockRun(self, vm, tuple(transactions), base_header)
        try:
            return run.run()
        finally:
            run.close()
            if frozen:
                gc.unfreeze()


class _BlockRun:
    """One block's execution (state that lives for the block only)."""

    def __init__(self, engine: ParallelEngine, vm: VirtualMachineAPI,
                 transactions: tuple[SignedTransactionAPI, ...],
                 base_header: BlockHeaderAPI) -> None:
        self.engine = engine
        self.vm = vm
        self.transactions = transactions
        self.base_header = base_header
        self.n = len(transactions)
        self.seconds: dict[str, float] = {}
        self.ctx = BlockContext(vm, transactions)
        #: the coordinator's time by activity (and slices, when tracing)
        self.timeline = self.ctx.timeline
        self.timeline.tracing = engine.trace is not None
        #: each worker's, as its messages bring them
        self.worker_timelines: dict[int, Timeline] = {}
        self.mv = MVMemory(self.ctx.pre)
        self.pool: WorkerPool | None = None
        self.rng = random.Random(engine.hooks.seed * 7919 + engine._blocks)
        self.committed: list[TxResult | None] = [None] * self.n
        self.executions = 0
        self.cumulative_gas = 0
        self.worker_cpu: dict[int, float] = {}
        self.waits = 0
        self.before_last: TxWrites | None = None
        self.synced: dict[int, int] = {}
        self.warm_up_txs = 0
        self.recovering: set[int] = set()
        self.recovery_frontier = 0
        self.pool_started = False
        self.pool_started_at = 0.0
        #: why the block ran without workers although more were asked for
        self.in_process_reason = ""

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

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
        chunk = engine.chunk_size or default_chunk_size(self.n, max(engine.workers, 1))
        self.scheduler = Scheduler(
            self.n, workers, chunk_size=chunk, max_outstanding=engine.max_outstanding,
            coordinator_executes=engine.coordinator_executes,
            costly=costly_transactions([tx.gas for tx in self.transactions])
            if engine.costly_to_workers else ())
        if eligible:
            self._warm_up(start)
            warm_up = self.seconds["warm_up"] = time.perf_counter() - start
            left = self.n - self.scheduler.commit_index
            if left < max(2, engine.min_parallel_txs):
                self.in_process_reason = \
                    f"{left} transactions left after the warm-up: too few for workers"
            elif self._parallel_pays(warm_up):
                mark = time.perf_counter()
                if engine._gc_frozen:
                    gc.freeze()  # what the warm-up created, too, before the fork
                try:
                    self.pool = WorkerPool(self.ctx, workers, engine.hooks, self.mv,
                                           nice=engine.worker_nice)
                except (OSError, AssertionError, ValueError) as exc:
                    # e.g. out of processes or memory: the block goes on in-process
                    self._in_process(f"starting workers failed: {exc}")
                self.seconds["start_workers"] = \
                    self.timeline.add(Activity.START, mark) - mark
            if self.pool is not None:
                self.worker_timelines = {w: Timeline(tracing=self.timeline.tracing)
                                         for w in range(workers)}
                self.pool_started = True
                self.pool_started_at = time.perf_counter()
                self.synced = {w: self.scheduler.commit_index for w in range(workers)}
                self.scheduler.start_ahead()
            else:
                for worker in range(workers):
                    self.scheduler.worker_lost(worker)
        mark = time.perf_counter()
        self._execute_all()
        executed = time.perf_counter()
        self.seconds["execute"] = executed - mark
        used = engine.workers if self.pool is not None else 1
        if self.pool is not None:
            self.pool.stop()  # they exit while the coordinator merges

        mark = time.perf_counter()
        header, receipts = merge_block(self.vm, self.base_header, self.transactions,
                                       self.committed, self.before_last, self.ctx.pre)
        self.seconds["merge"] = self.timeline.add(Activity.MERGE, mark) - mark
        self.close()
        recover = Activity.RECOVER.value
        recover_coordinator = self.timeline.seconds.get(recover, 0.0)
        recover_workers = sum(t.seconds.get(recover, 0.0)
                              for t in self.worker_timelines.values())
        self.seconds["recover_senders"] = recover_coordinator + recover_workers
        end = time.perf_counter()
        self.seconds["total"] = end - start
        tracks = {"coordinator": self.timeline} | {
            f"worker {w}": t for w, t in sorted(self.worker_timelines.items())}
        walls = {"coordinator": end - start} | {
            f"worker {w}": executed - self.pool_started_at for w in self.worker_timelines}
        if engine.trace is not None:
            engine.trace.add_block(f"block {self.base_header.block_number}", used,
                                   tracks)
        s = self.scheduler.stats
        stats = EngineStats(
            engine=ParallelEngine.name, workers=used,
            executions=self.executions,
            aborts=self.executions - self.n,
            validations=s.validations, seconds=self.seconds,
            in_process_reason=self.in_process_reason)
        engine.last_detail = ParallelDetail(
            chunks=s.chunks, chunk_size=chunk, dispatched=s.dispatched,
            inline=s.inline, ahead=s.ahead, costly=s.costly,
            validation_failures=s.validation_failures,
            forced_aborts=s.forced_aborts, blocked=s.blocked, crashed=s.crashed,
            lost=s.lost, stale=s.stale_results, pauses=s.pauses,
            pre_state_entries=len(self.ctx.pre), warm_up_txs=self.warm_up_txs,
            in_process_reason=self.in_process_reason,
            recover_coordinator_s=round(recover_coordinator, 4),
            recover_workers_s=round(recover_workers, 4),
            coordinator_cpu_s=time.process_time() - cpu_start,
            worker_cpu_s=[round(self.worker_cpu.get(w, 0.0), 4)
                          for w in range(workers if self.pool_started else used)],
            waits=self.waits,
            wait_s=round(self.timeline.seconds.get(Activity.WAIT.value, 0.0), 4),
            dead_workers=sorted(set(range(workers)) - self.scheduler.alive)
            if self.pool_started else [],
            breakdown={name: breakdown(timeline, walls[name],
                                       "other" if name == "coordinator" else "idle")
                       for name, timeline in tracks.items()})
        return header, receipts, stats

    def _in_process(self, reason: str) -> None:
        """Run the block without workers (it stays correct, only not parallel)."""
        self.in_process_reason = reason
        if reason not in self.engine._warned:
            self.engine._warned.add(reason)
            LOG.warning("parallel engine: running in-process: %s", reason)

    def _parallel_pays(self, warm_up_seconds: float) -> bool:
        """After the warm-up: are workers worth starting (:func:`parallel_pays`)?

        Only a warm-up that ran transactions is evidence; with none (``fork_after``
        0, or a fixed fork point from the fault hooks) the workers start as asked.
        """
        done = self.scheduler.commit_index
        if done == 0 or self.engine.hooks.fork_at_tx is not None:
            return True
        remaining = self.n - done
        if parallel_pays(remaining, warm_up_seconds / done, self.engine.workers):
            return True
        # a routine decision, not a problem: reported in the detail, not logged
        self.in_process_reason = (
            f"{remaining} transactions left after the warm-up at "
            f"{warm_up_seconds / done * 1e3:.2f} ms each: workers would not pay")
        return False

    def _warm_up(self, start: float) -> None:
        """Run in-process, in order, until ``fork_after`` seconds from the block's
        ``start``: a block that finishes by then never pays for starting workers.
        A costly transaction ends it early (a worker should run that one), and so
        does a rest of the block that is clearly long by the mean since ``start``
        -- the mean :meth:`_parallel_pays` weighs -- (:func:`warm_up_settled`),
        unless the fault hooks fix the fork point: tests ask for that point
        exactly."""
        sched = self.scheduler
        fixed = self.engine.hooks.fork_at_tx
        deadline = start + self.engine.fork_after
        while not sched.done and (
                sched.commit_index < fixed if fixed is not None
                else (now := time.perf_counter()) < deadline
                and sched.commit_index not in sched.costly
                and not warm_up_settled(sched.commit_index, now - start,
                                        self.n - sched.commit_index)):
            txn = sched.commit_index
            self._check_header(txn)
            self._commit(txn, self._execute_inline(txn, sched.executed_inline(txn)))
        self.warm_up_txs = sched.commit_index

    # ----------------------------------------------------------- execution
    def _execute_all(self) -> None:
        sched = self.scheduler
        pool = self.pool
        force = self.engine.hooks.force_abort
        while True:
            if pool is not None:
                self._dispatch()
            action, txn = sched.next_commit()
            if action is Action.DONE:
                return
            if action is Action.WAIT:
                assert pool is not None
                self._dispatch()  # a costly transaction next_commit left to workers
                ahead = sched.claim_ahead()
                if ahead is not None:
                    self._execute_ahead(ahead)
                    self._handle(pool.receive(0))
                    continue
                self._handle(pool.receive(1.0))
                self.waits += 1
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
                if pool is not None:
                    self._handle(pool.receive(0))
            self._commit(txn, result)

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
            raise BlockRejected(f"{type(exc).__name__}: {exc}", txn) from exc
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
            raise BlockRejected(f"{type(exc).__name__}: {exc}", txn) from exc

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

    # ------------------------------------------------------------ messages
    def _handle(self, messages: list[FromWorker]) -> None:
        if not messages:
            return
        mark = time.perf_counter()
        sched = self.scheduler
        for message in messages:
            if not isinstance(message, Dead):
                self.worker_timelines[message.worker].absorb(*message.timeline)
            if isinstance(message, Results):
                worker = message.worker
                self.ctx.pre.absorb(message.pre_state_loads)
                self.worker_cpu[worker] = self.worker_cpu.get(worker, 0.0) + \
                    message.cpu_seconds
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
                            sched.late_verdict(result.reads == done.reads)
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

    def _dispatch(self) -> None:
        sched = self.scheduler
        pool = self.pool
        assert pool is not None
        for worker in sched.idle_workers():
            # up to max_outstanding chunks: the next waits in the worker's inbox
            while (txns := sched.next_chunk(worker)) is not None:
                self._send(worker, self._run_message(worker, txns))
        if sched.paused:
            self._dispatch_recovery()

    def _send(self, worker: int, message: ToWorker) -> None:
        assert self.pool is not None
        if not self.pool.send(worker, message):
            self.scheduler.worker_lost(worker)
            if not self.scheduler.alive:
                raise EngineFailure("every worker process died mid-block")

    def _dispatch_recovery(self) -> None:
        """While speculation is paused the coordinator runs transaction after
        transaction itself; idle workers recover the senders ahead of it, which
        takes a large share of each (cheap) transaction's cost off that
        sequential path."""
        sched = self.scheduler
        for worker in sched.live_workers():
            if sched.outstanding(worker) or worker in self.recovering:
                continue
            # far enough ahead that the batch is done before the coordinator
            # gets there (nearer ones it recovers itself)
            start = max(self.recovery_frontier, sched.commit_index + RECOVERY_BATCH // 2)
            batch: list[int] = []
            txn = start
            while txn < self.n and len(batch) < RECOVERY_BATCH:
                if self.ctx.known_sender(txn) is None:
                    batch.append(txn)
                txn += 1
            self.recovery_frontier = txn
            if not batch:
                return
            self.recovering.add(worker)
            self._send(worker, Recover(batch))

    def _run_message(self, worker: int, txns: list[int]) -> Run:
        sched = self.scheduler
        commits = []
        for txn in range(self.synced[worker], sched.commit_index):
            result = self.committed[txn]
            assert result is not None
            commits.append((txn, None if result.worker == worker else result.writes))
        self.synced[worker] = sched.commit_index
        end = max(txns) + 1
        estimates: list[tuple[int, tuple[Key, ...]]] = []
        for txn in sched.in_flight_below(end, worker):
            if txn < txns[0]:
                sender = self.ctx.known_sender(txn)
                if sender is not None:
                    estimates.append((txn, ((BALANCE, sender), (NONCE, sender))))
        return Run(txns, [sched.incarnation[t] for t in txns], commits, estimates)
