"""The warm-up: a block's first transactions in-process, and what they decide.

Every block of the parallel engine starts in one process, in order, exactly as one
worker would run it (:mod:`pevm.engines.parallel` says why: a block that finishes
within ``fork_after`` never pays for starting workers). What the warm-up's
transactions cost is the engine's evidence for the rest of the block; its looks at
that evidence (:func:`~pevm.engines.cost_model.warm_up_verdict`) end it and choose
how the rest runs:

- in this process, where workers would not pay (:meth:`WarmUpRun.executors` is 1);
- as a *sender pipeline*, where recovering the senders is a large share of the
  rest (:meth:`WarmUpRun.runs_as_pipeline`; :func:`~pevm.engines.cost_model.pipeline_pays`);
- speculatively, on as many executing processes as pay
  (:func:`~pevm.engines.cost_model.workers_that_pay`).

:class:`WarmUpRun` holds the evidence and the verdicts; the block's run
(:class:`~pevm.engines.block_run.BlockRun`) executes and commits each transaction
for it, starts the workers and carries the verdicts out. The rule of the looks is
:class:`WarmUpLooks`, which the simulation (:mod:`pevm.simulation.model`) runs too,
on its own clock.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, cast

from eth.abc import SignedTransactionAPI

from pevm.analysis import DependencyGraph, TxAccess
from pevm.engines.cost_model import (SERIAL_STEP, SERIAL_WINDOW, WarmUp, WorkEstimate,
                                     pipeline_pays, serial_run, warm_up_verdict,
                                     with_a_worker_for_costly, work_weights,
                                     workers_that_pay, workers_to_start)
from pevm.engines.executor import BlockContext, TxResult
from pevm.engines.scheduler import Scheduler
from pevm.engines.sender_batches import warm_up_batch_end, warm_up_senders
from pevm.host import block_slowness

if TYPE_CHECKING:  # the engine's options; the engine imports the block run
    from pevm.engines.parallel import ParallelEngine


class WarmUpLooks:
    """The warm-up's looks, one rule for the engine's warm-up and the simulation's
    (:mod:`pevm.simulation.model`), whatever their clocks: when the next look is
    due, and what one decides (:func:`warm_up_verdict`).

    - :attr:`WarmUp.GO_ON`: run on, and look again after the next transaction;
    - :attr:`WarmUp.SHORT`: a rest too short for workers runs on without a look
      until twice as many have run (the estimate after the first eight can be far
      short);
    - :attr:`WarmUp.PIPELINE`: the warm-up ends, the rest runs as a sender
      pipeline;
    - :attr:`WarmUp.SETTLED`: the warm-up ends -- unless its latest transactions
      form one chain (``chain()``, :func:`serial_run`): then the rest runs as a
      sender pipeline if that pays where speculation would not, or the warm-up
      goes on for :data:`SERIAL_STEP` and looks again.
    """

    def __init__(self, n: int, workers: int, cores: int | None = None) -> None:
        self.n = n
        self.workers = workers
        self.cores = cores
        #: no look before this transaction: a chain, or a short rest, skips looks
        self.next_look = 0
        #: the latest look that found the rest too short for workers ("": none did)
        self.short_reason = ""
        #: a look found the rest faster as a sender pipeline
        self.pipeline = False

    def due(self, txn: int) -> bool:
        """Whether the warm-up looks before running ``txn``."""
        return txn >= self.next_look

    def look(self, txn: int, work: float, recovery: float, out_of_time: bool,
             chain: Callable[[], bool], slowness: float | None = None) -> bool:
        """One look before ``txn`` runs, the rest estimated at ``work`` seconds of
        which ``recovery`` recover senders, on a machine of ``slowness``
        (:func:`~pevm.host.block_slowness`): True where the warm-up ends here."""
        remaining = self.n - txn
        verdict = warm_up_verdict(txn, remaining, work, self.workers, out_of_time,
                                  self.cores, recovery=recovery, slowness=slowness)
        if verdict is WarmUp.SHORT:
            self.short_reason = (f"{remaining} transactions left after {txn} "
                                 f"in-process, about {work * 1e3:.1f} ms: workers "
                                 f"would not pay")
            self.next_look = 2 * txn
        elif verdict is WarmUp.PIPELINE:
            self.pipeline = True
            return True  # in order anyway: a chain does not matter
        elif verdict is WarmUp.SETTLED:
            if not chain():
                return True
            if pipeline_pays(remaining, work, recovery, self.workers, self.cores,
                             slowness, speculation_pays=False):
                self.pipeline = True  # a chain: in order anyway
                return True
            self.next_look = txn + SERIAL_STEP
        return False


class WarmUpRun:
    """One block's warm-up: :meth:`run` it, then ask what the rest should run on.

    ``committed`` is the block run's list of committed results (the warm-up reads
    its latest ones to tell a dependency chain, :meth:`_serial_tail`).
    """

    def __init__(self, engine: ParallelEngine, ctx: BlockContext, scheduler: Scheduler,
                 transactions: Sequence[SignedTransactionAPI],
                 committed: Sequence[TxResult | None]) -> None:
        self.engine = engine
        self.ctx = ctx
        self.scheduler = scheduler
        self.n = len(transactions)
        self.committed = committed
        #: the rest of the block's in-process time, as the warm-up shows it
        self.work = WorkEstimate(work_weights(transactions))
        #: transactions the warm-up ran (set by :meth:`run`)
        self.txs = 0
        #: the latest batch of senders recovered ahead: (first, end, seconds)
        self.senders_batch: tuple[int, int, float] = (0, 0, 0.0)
        self.looks = WarmUpLooks(self.n, engine.workers)
        #: the slowness of the latest decision (:meth:`slowness`; 0.0: none made)
        self.decided_at = 0.0

    def run(self, start: float, run_in_order: Callable[[int], None]) -> None:
        """Run in-process, in order (``run_in_order(txn)`` executes and commits
        one transaction), until ``fork_after`` seconds from the block's ``start``:
        a block that finishes by then never pays for starting workers.

        A costly transaction ends it early (a worker should run that one), and so
        does a rest of the block that is clearly long by the time since ``start``
        (:class:`WorkEstimate`, as :meth:`executors` weighs it; :class:`WarmUpLooks`)
        -- unless its latest transactions form one dependency chain
        (:func:`serial_run`): then it goes on for another :data:`SERIAL_STEP` and
        looks again.

        A rest too short for workers to pay (:data:`WarmUp.SHORT`) runs here, as 1
        worker would run it, without a look per transaction -- but it is looked at
        again once twice as many transactions have run: the estimate after the
        first eight can be far short. Mainnet 15752489's first transactions carry
        300,000-gas limits and run in under a millisecond; weighed by them, its rest
        looked like 53 ms after 8 (workers would not pay) and takes 260 ms; after
        16 it reads 93 ms and workers start. Where looks keep saying short, the
        block runs to its end here (mainnet 5891667: 8, 16, ... 256). The fault
        hooks can fix the fork point instead: tests ask for that point exactly."""
        sched = self.scheduler
        fixed = self.engine.hooks.fork_at_tx
        deadline = start + self.engine.fork_after
        looks = self.looks
        while not sched.done:
            txn = sched.commit_index
            if fixed is not None:
                if txn >= fixed:
                    break
            elif txn in sched.costly:
                break
            elif looks.due(txn):
                now = time.perf_counter() - self.recovered_ahead(txn)
                if looks.look(txn, self.work.remaining(txn, now - start),
                              self._recovery_left(txn), now >= deadline,
                              partial(self._serial_tail, txn), self.slowness()):
                    break
            if txn >= self.senders_batch[1]:
                self._recover_batch(txn)
            run_in_order(txn)
            if txn == 0:
                self.work.leave_out_first(
                    time.perf_counter() - self.recovered_ahead(1) - start)
        self.txs = sched.commit_index

    def recovered_ahead(self, txn: int) -> float:
        """Of the warm-up's time so far, the seconds spent recovering the senders of
        transactions from ``txn`` on, which have not run yet: the warm-up's time per
        transaction, which decides whether workers start, leaves them out."""
        first, end, seconds = self.senders_batch
        if txn >= end or end <= first:
            return 0.0
        return seconds * (end - max(txn, first)) / (end - first)

    def predict_hot(self) -> None:
        """Before the fork: recover the senders the workers start with (the batch
        beyond the warm-up's, :func:`warm_up_senders`) and predict the hot targets
        from them (:meth:`~pevm.engines.hot_targets.HotTargets.predict`), so that
        :meth:`executors` knows what stays with the coordinator. Not for a sender
        pipeline, which runs the rest in order, and whose helper recovers those
        senders beside it (the block 1-4% faster for it on mainnet 5891667 and
        11814555 and 1-3% on 1,000 transfers and withdrawals, paired; session 52)."""
        senders = warm_up_senders(self.txs, self.n)
        self.ctx.recover_senders(range(self.senders_batch[1], senders.stop))
        known = self.ctx.known_sender
        self.scheduler.hot.predict(
            (t, sender) for t in senders if (sender := known(t)) is not None)

    def runs_as_pipeline(self) -> bool:
        """Whether the rest runs as a sender pipeline -- as ``sender_pipeline``
        fixes it, else where a look said so (:attr:`WarmUp.PIPELINE`). A fork point
        the caller fixed (``fork_after`` 0, the fault hooks') skips the looks, so
        the tests of speculation get it."""
        engine = self.engine
        if not engine.coordinator_executes:
            return False
        if engine.sender_pipeline is not None:
            return engine.sender_pipeline
        return self.looks.pipeline

    def executors(self, warm_up_seconds: float) -> tuple[int, str]:
        """How many executing processes, of ``workers``, to run the rest on
        (:func:`workers_that_pay`), and where that is 1, why ("" otherwise).

        Only a warm-up that ran transactions is evidence. Where it ran none --
        the block's first transaction is costly, or a short ``fork_after`` ran
        out first -- the workers start as asked up to the usable cores
        (:func:`workers_to_start`); a fork point set by the caller
        (``fork_after`` 0, or the fault hooks') starts exactly as many as asked --
        the tests run more workers than the machine has cores. The predicted hot
        targets' transactions stay with the coordinator; a warm-up that stopped
        at a costly transaction before its first look starts at least one worker
        (:func:`~pevm.engines.cost_model.with_a_worker_for_costly`).
        """
        done = self.scheduler.commit_index
        engine = self.engine
        if engine.hooks.fork_at_tx is not None:
            return engine.workers, ""
        if done == 0:
            if engine.fork_after == 0 or not engine.fit_workers:
                return engine.workers, ""
            executors = workers_to_start(engine.workers)
            return executors, ("one usable core: workers would not pay"
                               if executors < 2 else "")
        remaining = self.n - done
        work = self.work.remaining(done, warm_up_seconds)
        kept = self.scheduler.hot.held(range(done, self.n))
        executors = with_a_worker_for_costly(
            workers_that_pay(remaining, work, engine.workers, slowness=self.slowness(),
                             kept=len(kept), kept_work=work * self.work.share(done, kept)),
            done, done in self.scheduler.costly, engine.workers)
        if executors > 1:  # stats.workers reports how many ran
            return (executors if engine.fit_workers else engine.workers), ""
        # a routine decision, not a problem: reported in the detail, not logged
        return 1, (f"{remaining} transactions left after the warm-up, about "
                   f"{work * 1e3:.1f} ms in-process: workers would not pay")

    def slowness(self) -> float:
        """The machine's slowness as this block's recoveries so far show it
        (:func:`~pevm.host.block_slowness`): the decisions' scale, kept as
        :attr:`decided_at`."""
        ctx = self.ctx
        self.decided_at = block_slowness(ctx.fastest_recovery_s, ctx.recovered)
        return self.decided_at

    def _recovery_left(self, txn: int) -> float:
        """Seconds, at the warm-up's mean per sender, to recover the senders not
        yet recovered from ``txn`` to the block's end (the pipeline's saving,
        :func:`~pevm.engines.cost_model.pipeline_pays`); 0.0 where the engine's
        option decides instead."""
        if self.engine.sender_pipeline is not None:
            return 0.0
        unknown = self.n - max(txn, self.senders_batch[1])
        return self.ctx.mean_recovery_s() * max(0, unknown)

    def _recover_batch(self, txn: int) -> None:
        """Recover the senders of the warm-up's batch from ``txn``
        (:func:`warm_up_batch_end`) back to back, timed (:meth:`recovered_ahead`)."""
        end = min(self.n, warm_up_batch_end(txn))
        mark = time.perf_counter()
        self.ctx.recover_senders(range(txn, end))
        self.senders_batch = (txn, end, time.perf_counter() - mark)

    def _serial_tail(self, end: int) -> bool:
        """Whether the :data:`SERIAL_WINDOW` transactions before ``end``, as they
        ran in the warm-up, form one chain (:func:`serial_run`)."""
        start = end - SERIAL_WINDOW
        if start < 0:
            return False  # too few to tell
        graph = DependencyGraph.build([TxAccess.of_result(cast(TxResult, self.committed[t]))
                                       for t in range(start, end)])
        return serial_run(graph.deps, 0, SERIAL_WINDOW)
