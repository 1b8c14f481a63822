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
   workers (:mod:`pevm.engines.workers`) execute chunks of
   transactions optimistically on flat, versioned state views
   (:mod:`pevm.engines.state_view`) over their replica of the multi-version memory
   (:mod:`pevm.engines.mv_memory`); the coordinator -- this process -- validates
   results in block order against the committed state and re-executes what fails,
   in-process (:mod:`pevm.engines.scheduler` explains the policy). With
   ``workers=1``, or a block smaller than ``min_parallel_txs``, the same loop runs
   with no workers: every transaction executes in-process, in order, on the flat
   view, and is committed without validation (its reads *are* the committed state).
3. **Commit**, per transaction in order: py-evm's block-level check
   (``vm.validate_transaction_against_header``: cumulative gas), then the outcome --
   a transaction invalid at its position (with validated reads) rejects the block
   with :class:`~pevm.errors.BlockRejected` at that index, exactly where py-evm
   would; then its writes fold into the committed state.
4. **Merge**: the committed state is written into ``vm.state`` (py-evm's
   ``AccountDB``) -- once per location from Byzantium on; before Byzantium
   transaction by transaction, because each receipt carries the state root after
   its transaction -- and receipts are made by the fork's own ``vm.make_receipt``,
   ``vm.add_receipt_to_header`` and ``vm.increment_blob_gas_used``.

Lazy credits: fee payments to the block beneficiary and plain value credits are
written as deltas that commute (:mod:`pevm.engines.mv_memory`), so they serialise
nothing; a transaction that reads such a balance (BALANCE, a sender's balance
check, SELFDESTRUCT, an emptiness check of an account with no positive credit)
reads the sum and depends on every credit below it, as it must.

Small blocks: every block starts in-process, committing transaction after
transaction; workers are forked only once it has run for ``fork_after`` seconds
(default :data:`FORK_AFTER_S`) with at least ``min_parallel_txs`` transactions
(default :data:`MIN_PARALLEL_TXS`) left. Starting workers (the fork, a first
message round trip, each worker warming its own pre-state cache) costs roughly
10-30 ms here; a block that is done sooner never pays it, and a longer one loses
at most ``fork_after`` of parallel time. Forked after the warm-up, the workers
inherit the committed prefix (and the pre-state cache) with the rest of memory.

Test hooks (constructor keywords, or the ``PEVM_TEST_*`` environment variables
named below, for runs through the CLI): ``delay`` / ``delay_probability`` (random
sleeps in workers; ``PEVM_TEST_DELAY``), ``force_abort`` (probability that a
validated result is declared invalid anyway, forcing a re-execution;
``PEVM_TEST_FORCE_ABORT``), ``die_on_run`` (``{worker: n}``: the worker kills itself on
its n-th chunk; ``PEVM_TEST_KILL_WORKER=worker:n``), ``seed``
(``PEVM_TEST_SEED``).
"""
from __future__ import annotations

import gc
import logging
import os
import random
import time
from types import SimpleNamespace
from typing import Any, cast
from collections.abc import Sequence

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.vm.forks.byzantium import ByzantiumVM
from eth_utils import ValidationError

from pevm.engines.executor import BlockContext, FinishedComputation, TxResult
from pevm.engines.pre_state import PreState
from pevm.engines.mv_memory import (BALANCE, CODE, EXISTS, NONCE, OPENED, ORIGINAL,
                                    STORAGE, CreditOverflow, MVMemory, TxWrites)
from pevm.engines.scheduler import (DONE, VALIDATE, WAIT, Scheduler,
                                    default_chunk_size)
from pevm.engines.workers import (DEAD, WorkerOptions, WorkerPool, fork_available,
                                  unavailable_reason)
from pevm.errors import REJECTION_ERRORS, BlockRejected, EngineFailure
from pevm.result import EngineStats

LOG = logging.getLogger("pevm.engine")

#: Blocks with fewer transactions run in-process (see module docstring).
MIN_PARALLEL_TXS = 24
#: Senders per recovery task handed to an idle worker while speculation is paused.
RECOVERY_BATCH = 64
#: Seconds a block runs in-process before workers are started (module docstring).
FORK_AFTER_S = 0.03


class ParallelEngine:
    """Block-STM-style optimistic parallel executor over py-evm (see module doc).

    ``workers``: worker processes (1: everything in-process, no workers).
    Tuning: ``min_parallel_txs``, ``fork_after`` (small blocks, see module doc),
    ``chunk_size`` (longest chunk; default :func:`default_chunk_size`),
    ``max_outstanding`` (chunks queued per worker), ``start_method`` (anything but
    ``"fork"`` runs in-process), ``freeze_gc``.
    Test hooks: ``delay``/``delay_probability``, ``force_abort``, ``die_on_run``,
    ``seed``, ``warm_up_txs`` (fork after exactly that many transactions),
    ``check_inline`` (re-validate in-process executions), ``measure_versions``.
    ``last_detail`` holds the last block's counters beyond
    :class:`~pevm.result.EngineStats` (chunks, in-process runs, pauses, waits,
    per-process CPU seconds, ...).
    """

    name = "parallel"

    def __init__(self, workers: int = 1, *, min_parallel_txs: int | None = None,
                 fork_after: float | None = None, warm_up_txs: int | None = None,
                 chunk_size: int | None = None, max_outstanding: int = 2,
                 start_method: str | None = None, delay: float | None = None,
                 delay_probability: float = 1.0, force_abort: float | None = None,
                 die_on_run: dict[int, int] | None = None, seed: int | None = None,
                 check_inline: bool = False, measure_versions: bool = False,
                 freeze_gc: bool = True) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        env = os.environ
        self.workers = workers
        self.min_parallel_txs = MIN_PARALLEL_TXS if min_parallel_txs is None \
            else min_parallel_txs
        self.fork_after = FORK_AFTER_S if fork_after is None else fork_after
        #: test hook: fork after exactly this many in-process transactions
        self.warm_up_txs = warm_up_txs
        self.chunk_size = chunk_size
        self.max_outstanding = max_outstanding
        self.start_method = start_method
        self.seed = int(env.get("PEVM_TEST_SEED", "0")) if seed is None else seed
        self.force_abort = float(env.get("PEVM_TEST_FORCE_ABORT", "0")) \
            if force_abort is None else force_abort
        if die_on_run is None:
            die_on_run = {}
            spec = env.get("PEVM_TEST_KILL_WORKER")
            if spec:
                worker, _, runs = spec.partition(":")
                die_on_run[int(worker)] = int(runs or "1")
        self.worker_options = WorkerOptions(
            delay=float(env.get("PEVM_TEST_DELAY", "0")) if delay is None else delay,
            delay_probability=delay_probability, die_on_run=dict(die_on_run),
            seed=self.seed)
        #: re-validate in-process executions too (a self-check for tests)
        self.check_inline = check_inline
        #: also count how many validated results *version*-based validation would
        #: have rejected (``last_detail["version_failures"]``; costs time)
        self.measure_versions = measure_versions
        #: move objects alive at the block's start out of the collector's sight
        #: while it runs (see apply_transactions)
        self.freeze_gc = freeze_gc
        self._blocks = 0
        self._gc_frozen = False
        self._warned: set[str] = set()
        #: counters of the last block beyond EngineStats (chunks, inline runs, ...)
        self.last_detail: dict[str, Any] = {}

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
        self.mv = MVMemory(self.ctx.pre)
        self.pool: WorkerPool | None = None
        self.rng = random.Random(engine.seed * 7919 + engine._blocks)
        self.committed: list[TxResult | None] = [None] * self.n
        self.gas_used: list[int] = [0] * self.n
        self.executions = 0
        self.cumulative_gas = 0
        self.worker_cpu: dict[int, float] = {}
        self.waited = 0.0
        self.waits = 0
        self.before_last: TxWrites | None = None
        self.synced: dict[int, int] = {}
        self.worker_recover = 0.0
        self.warm_up_txs = 0
        self.dispatch_sync: dict[int, int] = {}
        self.recovering: set[int] = set()
        self.recovery_frontier = 0
        self.pool_started = False
        self.version_failures = 0
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
        if eligible and not fork_available(engine.start_method):
            self._in_process(unavailable_reason(engine.start_method))
            eligible = False
        workers = engine.workers if eligible else 0
        start = time.perf_counter()
        cpu_start = time.process_time()
        chunk = engine.chunk_size or default_chunk_size(self.n, max(workers, 1))
        self.scheduler = Scheduler(self.n, workers, chunk_size=chunk,
                                   max_outstanding=engine.max_outstanding)
        if eligible:
            self._warm_up(start + engine.fork_after)
            if self.n - self.scheduler.commit_index >= max(2, engine.min_parallel_txs):
                mark = time.perf_counter()
                if engine._gc_frozen:
                    gc.freeze()  # what the warm-up created, too, before the fork
                try:
                    self.pool = WorkerPool(self.ctx, workers, engine.worker_options,
                                           self.mv)
                except (OSError, AssertionError, ValueError) as exc:
                    # e.g. out of processes or memory: the block goes on in-process
                    self._in_process(f"starting workers failed: {exc}")
                self.seconds["start_workers"] = time.perf_counter() - mark
            if self.pool is not None:
                self.pool_started = True
                self.synced = {w: self.scheduler.commit_index for w in range(workers)}
                self.scheduler.start_ahead()
            else:
                for worker in range(workers):
                    self.scheduler.worker_lost(worker)
        mark = time.perf_counter()
        self._execute_all()
        self.seconds["execute"] = time.perf_counter() - mark
        used = workers if self.pool is not None else 1
        self.close()

        mark = time.perf_counter()
        header, receipts = self._merge()
        self.seconds["merge"] = time.perf_counter() - mark
        self.seconds["recover_senders"] = self.ctx.recover_seconds + \
            self.worker_recover
        self.seconds["total"] = time.perf_counter() - start
        s = self.scheduler.stats
        stats = EngineStats(
            engine=ParallelEngine.name, workers=used,
            executions=self.executions,
            aborts=self.executions - self.n,
            validations=s.validations, seconds=self.seconds)
        engine.last_detail = {
            "chunks": s.chunks, "chunk_size": chunk, "dispatched": s.dispatched,
            "inline": s.inline, "validation_failures": s.validation_failures,
            "forced_aborts": s.forced_aborts, "blocked": s.blocked,
            "crashed": s.crashed, "lost": s.lost, "stale": s.stale_results,
            "pauses": s.pauses, "pre_state_entries": len(self.ctx.pre),
            "warm_up_txs": self.warm_up_txs,
            "in_process_reason": self.in_process_reason,
            "recover_coordinator_s": round(self.ctx.recover_seconds, 4),
            "recover_workers_s": round(self.worker_recover, 4),
            "coordinator_cpu_s": time.process_time() - cpu_start,
            "waits": self.waits, "wait_s": round(self.waited, 4),
            "version_failures": self.version_failures,
            "dead_workers": sorted(set(range(workers)) - self.scheduler.alive)
            if self.pool_started else [],
            "worker_cpu_s": [round(self.worker_cpu.get(w, 0.0), 4)
                             for w in range(used if self.pool is None else workers)]}
        return header, receipts, stats

    def _in_process(self, reason: str) -> None:
        """Run the block without workers (it stays correct, only not parallel)."""
        self.in_process_reason = reason
        if reason not in self.engine._warned:
            self.engine._warned.add(reason)
            LOG.warning("parallel engine: running in-process: %s", reason)

    def _warm_up(self, deadline: float) -> None:
        """Run in-process, in order, until ``deadline``: a block that finishes
        by then never pays for starting workers."""
        sched = self.scheduler
        fixed = self.engine.warm_up_txs
        while not sched.done and (sched.commit_index < fixed if fixed is not None
                                  else time.perf_counter() < deadline):
            txn = sched.commit_index
            self._check_header(txn)
            self._commit(txn, self._execute_inline(txn, sched.executed_inline(txn)))
        self.warm_up_txs = sched.commit_index

    # ----------------------------------------------------------- execution
    def _execute_all(self) -> None:
        sched = self.scheduler
        pool = self.pool
        force = self.engine.force_abort
        while True:
            if pool is not None:
                self._dispatch()
            action, txn = sched.next_commit()
            if action == DONE:
                return
            if action == WAIT:
                assert pool is not None
                mark = time.perf_counter()
                self._handle(pool.receive(1.0))
                self.waited += time.perf_counter() - mark
                self.waits += 1
                continue
            self._check_header(txn)
            result: TxResult | None = None
            if action == VALIDATE:
                result = cast(TxResult, sched.results[txn])
                ok = self.mv.validate(txn, result.reads)
                if self.engine.measure_versions and not self._version_valid(result):
                    self.version_failures += 1
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

    def _version_valid(self, result: TxResult) -> bool:
        """Whether Block-STM's version-based validation would accept ``result``.

        The worker read each location from the last writer below the transaction
        that its replica held: committed transactions below the commit point it
        was synced to, or results it had produced itself. Versions match when no
        transaction in between committed a write to a location read -- unless that
        commit is the worker's own result (the very version it read).
        """
        txn, worker = result.txn, result.worker
        synced = self.dispatch_sync.get(txn, 0)
        reads = result.reads
        wiped_reads = {key[1] for key in reads if key[0] in (STORAGE, ORIGINAL)}
        for other in range(synced, txn):
            done = self.committed[other]
            assert done is not None
            if done.worker == worker and done.worker >= 0:
                continue
            writes = done.writes
            if any(key in reads for key in writes.values) or \
                    any((BALANCE, a) in reads for a in writes.deltas) or \
                    any(a in wiped_reads for a in writes.wiped):
                return False
            if any(key[0] == STORAGE and (ORIGINAL, key[1], key[2]) in reads
                   for key in writes.values):
                return False
        return True

    def _execute_inline(self, txn: int, incarnation: int) -> TxResult:
        mv = self.mv
        self.executions += 1
        result = self.ctx.execute(txn, incarnation, lambda key: mv.read(key, txn))
        if result.crash is not None or result.blocked_on is not None:
            self._confirm_natively(txn, result.crash or "blocked on committed state")
        if self.engine.check_inline and not mv.validate(txn, result.reads):
            raise AssertionError(f"in-process execution of {txn} read inconsistently")
        return result

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
        apply_writes(state, _final_writes(self.mv), self.ctx.pre)
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
        if txn == self.n - 1:
            # py-evm locks the journal before each transaction, so after the block
            # the last transaction's changes are the only unlocked ones: keep the
            # state before it to reproduce that at merge.
            self.before_last = _final_writes(self.mv)
        try:
            self.mv.commit(txn, result.writes)
        except CreditOverflow as exc:  # the commit changed nothing
            self._confirm_natively(txn, f"balance of 0x{exc.address.hex()} past uint256")
        self.committed[txn] = result
        gas = self.ctx.gas_used(txn, outcome)
        self.gas_used[txn] = gas
        self.cumulative_gas += gas
        self.scheduler.committed(txn)

    # ------------------------------------------------------------ messages
    def _handle(self, messages: list[tuple]) -> None:
        sched = self.scheduler
        for message in messages:
            kind = message[0]
            if kind == "results":
                _, worker, results, loads, cpu, recovering = message
                self.ctx.pre.absorb(loads)
                self.worker_cpu[worker] = self.worker_cpu.get(worker, 0.0) + cpu
                self.worker_recover += recovering
                sched.chunk_done(worker)
                self.executions += len(results)
                for result in results:
                    self.ctx.adopt_sender(result.txn, result.sender)
                    if not sched.on_result(result, worker):
                        done = self.committed[result.txn] \
                            if result.txn < sched.commit_index else None
                        if done is not None and result.outcome is not None:
                            sched.late_verdict(result.reads == done.reads)
            elif kind == "senders":
                _, worker, senders, recovering = message
                self.recovering.discard(worker)
                self.worker_recover += recovering
                for txn, sender in senders:
                    self.ctx.adopt_sender(txn, sender)
            elif kind == DEAD:
                self.recovering.discard(message[1])
                sched.worker_lost(message[1])
                if not sched.alive:
                    raise EngineFailure("every worker process died mid-block")

    def _dispatch(self) -> None:
        sched = self.scheduler
        pool = self.pool
        assert pool is not None
        for worker in sched.idle_workers():
            txns = sched.next_chunk(worker)
            if txns is None:
                break
            self._send(worker, self._run_message(worker, txns))
        if sched.paused:
            self._dispatch_recovery()

    def _send(self, worker: int, message: tuple) -> None:
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
            self._send(worker, ("recover", batch))

    def _run_message(self, worker: int, txns: list[int]) -> tuple:
        sched = self.scheduler
        commits = []
        for txn in range(self.synced[worker], sched.commit_index):
            result = self.committed[txn]
            assert result is not None
            commits.append((txn, None if result.worker == worker else result.writes))
        self.synced[worker] = sched.commit_index
        if self.engine.measure_versions:
            for txn in txns:
                self.dispatch_sync[txn] = sched.commit_index
        end = max(txns) + 1
        estimates = []
        for txn in sched.in_flight_below(end, worker):
            if txn < txns[0]:
                sender = self.ctx.known_sender(txn)
                if sender is not None:
                    estimates.append((txn, ((BALANCE, sender), (NONCE, sender))))
        incarnations = [sched.incarnation[t] for t in txns]
        return ("run", txns, incarnations, commits, estimates)

    # ---------------------------------------------------------------- merge
    def _merge(self) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...]]:
        vm = self.vm
        state = vm.state
        per_tx_roots = not isinstance(vm, ByzantiumVM)
        if not per_tx_roots and self.n:
            assert self.before_last is not None
            apply_writes(state, self.before_last, self.ctx.pre)
            state.lock_changes()
            last = self.committed[self.n - 1]
            assert last is not None
            apply_writes(state, last.writes, self.ctx.pre)
        header = self.base_header
        receipts = []
        fold = _foldable_header_steps(type(vm)) and not per_tx_roots
        for txn, tx in enumerate(self.transactions):
            result = self.committed[txn]
            assert result is not None and result.outcome is not None
            if per_tx_roots:
                state.lock_changes()
                apply_writes(state, result.writes, self.ctx.pre)
            computation: Any = FinishedComputation(result.outcome)  # what it reads
            receipt = vm.make_receipt(header, tx, computation, state)
            vm.validate_receipt(receipt)
            if fold:
                # make_receipt reads only the running gas_used of the header
                header = cast(BlockHeaderAPI, _RunningHeader(header, receipt.gas_used))
            else:
                header = vm.add_receipt_to_header(header, receipt)
                header = vm.increment_blob_gas_used(header, tx)
            receipts.append(receipt)
        if fold:
            header = _fold_header(self.base_header, receipts, self.transactions,
                                  type(vm))
        return header, tuple(receipts)


class _RunningHeader:
    """The header as ``make_receipt`` sees it between two transactions (gas only)."""

    __slots__ = ("_header", "gas_used")

    def __init__(self, header: Any, gas_used: int) -> None:
        self._header: Any = header if not isinstance(header, _RunningHeader) \
            else header._header
        self.gas_used = gas_used

    def __getattr__(self, name: str) -> Any:
        return getattr(self._header, name)


def _foldable_header_steps(vm_class: Any) -> bool:
    """Whether the fork's per-transaction header updates are py-evm's stock ones
    (bloom OR, gas used; blob gas sum), which fold into one header copy."""
    from eth.vm.forks.cancun import CancunVM
    from eth.vm.forks.frontier import FrontierVM
    return (vm_class.add_receipt_to_header is ByzantiumVM.add_receipt_to_header
            and vm_class.increment_blob_gas_used in (
                FrontierVM.increment_blob_gas_used,
                CancunVM.increment_blob_gas_used)
            and getattr(vm_class.make_receipt, "__func__", None)
            is getattr(ByzantiumVM.make_receipt, "__func__", None))


def _fold_header(base: BlockHeaderAPI, receipts: list[ReceiptAPI],
                 transactions: Sequence[SignedTransactionAPI],
                 vm_class: Any) -> BlockHeaderAPI:
    """What py-evm's per-transaction header updates add up to, in one copy."""
    if not receipts:
        return base
    from eth.vm.forks.cancun import CancunVM
    from eth.vm.forks.cancun.state import get_total_blob_gas
    bloom = int(base.bloom)
    for receipt in receipts:
        bloom |= int(receipt.bloom)
    fields: dict[str, Any] = {"bloom": bloom, "gas_used": receipts[-1].gas_used}
    if vm_class.increment_blob_gas_used is CancunVM.increment_blob_gas_used:
        fields["blob_gas_used"] = base.blob_gas_used + sum(
            get_total_blob_gas(tx) for tx in transactions)
    return base.copy(**fields)


def _final_writes(mv: MVMemory) -> TxWrites:
    """The block's net effect from the committed state, as one write set."""
    return TxWrites(values=dict(mv.committed), deltas={}, wiped=tuple(sorted(mv.wiped)))


def apply_writes(state: Any, writes: TxWrites,
                 pre: PreState | None = None) -> None:
    """Write a write set into py-evm's state (``vm.state``) through its own API.

    Per account: storage wipe first, then balance, nonce and code, then storage
    slots; an account left non-existent is deleted last, one that only came into
    existence (a touch) is touched.

    Before wiping an account's storage, the slots of it that the block read from
    the pre-state (``pre``; possibly in a worker process) are read once more
    through ``state``: py-evm's access log -- from which the pipeline learns which
    slots a wipe changed -- then lists them as it would after a sequential run.
    """
    accounts: dict[bytes, dict[int, Any]] = {}
    slots: dict[bytes, list[tuple[int, int]]] = {}
    for key, value in writes.values.items():
        if key[0] == STORAGE:
            slots.setdefault(key[1], []).append((key[2], value))
        elif key[0] == OPENED:
            continue  # bookkeeping of the engine, not state
        else:
            accounts.setdefault(key[1], {})[key[0]] = value
    for address in writes.deltas:
        accounts.setdefault(address, {})
    wiped = set(writes.wiped)
    account_db = getattr(state, "_account_db", None)
    get_account = getattr(account_db, "_get_account", None)
    set_account = getattr(account_db, "_set_account", None)
    for address in sorted(set(accounts) | set(slots) | wiped):
        fields = accounts.get(address, {})
        if address in wiped:
            if pre is not None:
                for slot in pre.slots_of(address):
                    state.get_storage(address, slot)
            state.delete_storage(address)
        wrote_field = False
        delta = writes.deltas.get(address)
        if get_account is not None and set_account is not None and \
                (BALANCE in fields or NONCE in fields or delta is not None):
            # balance and nonce in one account update (what set_balance and
            # set_nonce do one after the other: read, copy, encode, journal)
            account = get_account(address)
            balance = fields.get(BALANCE, account.balance) + (delta or 0)
            set_account(address, account.copy(
                balance=balance, nonce=fields.get(NONCE, account.nonce)))
            wrote_field = True
        else:
            if BALANCE in fields:
                state.set_balance(address, fields[BALANCE])
                wrote_field = True
            if delta is not None:
                state.delta_balance(address, delta)
                wrote_field = True
            if NONCE in fields:
                state.set_nonce(address, fields[NONCE])
                wrote_field = True
        if CODE in fields:
            code = fields[CODE]
            if code:
                state.set_code(address, code)
            else:
                state.delete_code(address)
            wrote_field = True
        for slot, value in sorted(slots.get(address, ())):
            state.set_storage(address, slot, value)
        exists = fields.get(EXISTS)
        if exists is False:
            state.delete_account(address)
        elif exists is True and not wrote_field:
            state.touch_account(address)
