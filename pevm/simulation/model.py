"""The simulation itself: a block replayed through the engine's policy on simulated
processes (see :mod:`pevm.simulation`)."""
from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pevm.engines.cost_model import (PIPELINE_TX_S, SERIAL_WINDOW, WorkEstimate,
                                     costly_transactions, serial_run,
                                     with_a_worker_for_costly, workers_that_pay,
                                     workers_to_start)
from pevm.engines.parallel import ParallelEngine
from pevm.engines.workers import FLUSH_S, NURSERY_FROM
from pevm.engines.scheduler import DONE, VALIDATE, WAIT, Scheduler
from pevm.engines.sender_batches import (recovery_batch, waiting_batch, warm_up_batches,
                                         warm_up_senders)
from pevm.engines.warm_up import WarmUpLooks
from pevm.host import machine_slowness
from pevm.simulation.records import BlockProfile, Calibration, SimResult


Job = Generator[float | None, None, None]  # CPU seconds to spend, or None: block


def simulate(profile: BlockProfile, deps: Sequence[Sequence[int]], workers: int,
             calibration: Calibration, *, persistent_helper: bool = True) -> SimResult:
    """Simulated transaction-phase seconds of the block at ``workers`` workers.

    ``persistent_helper``: as the engine's option of that name, a sender
    pipeline's worker is the process's recovery helper, running already (the
    engine's steady state: only a process's first pipelined block forks it), or,
    False, a worker forked and stopped with the block."""
    return _Simulation(profile, deps, workers, calibration,
                       persistent_helper=persistent_helper).run()


def predict(profile: BlockProfile, deps: Sequence[Sequence[int]],
            worker_counts: Sequence[int], calibration: Calibration) -> dict[int, float]:
    """Predicted speedup per worker count over the simulated 1-worker run."""
    one = simulate(profile, deps, 1, calibration).seconds
    return {w: round(one / simulate(profile, deps, w, calibration).seconds, 4)
            for w in worker_counts}


# --------------------------------------------------------------------- simulation
@dataclass
class _Result:
    """A simulated worker result, as the scheduler stores it."""

    txn: int
    incarnation: int
    ok: bool
    worker: int
    outcome: bool = True  # looks valid on arrival: a failure shows at validation


@dataclass
class _Proc:
    gen: Job
    work: float | None = None  # CPU seconds left of the current job; None: blocked
    inbox: list[tuple[Any, ...]] = field(default_factory=list)
    done: bool = False
    cpu: float = 0.0  # CPU seconds of all its jobs


class _Simulation:
    def __init__(self, profile: BlockProfile, deps: Sequence[Sequence[int]], workers: int,
                 cal: Calibration, persistent_helper: bool = True) -> None:
        if len(deps) != profile.size:
            raise ValueError("profile and dependency graph differ in size")
        self.p, self.deps, self.cal, self.n = profile, deps, cal, profile.size
        self.engine = ParallelEngine(workers=max(1, workers),  # its default knobs
                                     persistent_helper=persistent_helper)
        self.eligible = workers > 1 and self.n >= max(2, self.engine.min_parallel_txs)
        #: executing processes, and of them the forked workers (the coordinator
        #: is one of the executors, as in the engine)
        self.executors = workers if self.eligible else 1
        self.workers = workers - 1 if self.eligible else 0
        chunk = self.engine.chunk_length(self.n, self.executors)
        self.sched = Scheduler(self.n, self.workers, chunk_size=chunk,
                               max_outstanding=self.engine.max_outstanding,
                               coordinator_executes=True,
                               costly=costly_transactions(profile.gas_limits),
                               targets=profile.targets)
        self.now = 0.0
        self.procs: list[_Proc] = []
        self.woken: list[_Proc] = []
        self.started = False
        #: transactions whose writes are packed for the workers (once each)
        self.packed: set[int] = set()
        self.committed_by = [-1] * self.n    # the worker whose result committed
        self.synced: list[int] = []          # per worker: commits it has
        self.correct: list[dict[int, bool]] = []  # per worker: its results' validity
        self.known: list[set[int]] = []      # per worker: senders it has
        self.coordinator_knows = [False] * self.n
        #: the coordinator's executions ahead: whether each read what it should
        self.ahead_correct: dict[int, bool] = {}
        self.recovering: set[int] = set()
        self.recovery_frontier = 0
        self.waiting_frontier = 0
        self.worker_runs = 0
        self.worker_run_s = 0.0

    @property
    def helper(self) -> bool:
        """The worker is the recovery helper (a sender pipeline's, kept between
        blocks): never forked or stopped here, sent each batch's transactions."""
        return self.sched.pipelined and self.engine.persistent_helper

    # ------------------------------------------------------------------ driver
    def run(self) -> SimResult:
        coordinator = _Proc(self._coordinator())
        self.procs.append(coordinator)
        self.woken.append(coordinator)
        self._wake()
        while not coordinator.done:
            runnable = [p for p in self.procs if p.work is not None]
            if not runnable:
                raise RuntimeError("simulation deadlock")  # a bug, never a block
            rate = self._rate(len(runnable))
            step = min(p.work or 0.0 for p in runnable) / rate
            self.now += step
            for proc in runnable:  # coordinator first, then workers in order
                proc.work = (proc.work or 0.0) - step * rate
                if proc.work <= 1e-12:
                    self._advance(proc)
            self._wake()
        stop = self.cal.stop_s * self.workers if self.started and not self.helper else 0.0
        s = self.sched.stats
        return SimResult(self.executors, self.now + self.p.fixed_s + stop,
                         s.inline, s.validation_failures, s.chunks, s.pauses,
                         coordinator.cpu + self.p.fixed_s,
                         sum(p.cpu for p in self.procs[1:]),
                         self.worker_runs, self.worker_run_s)

    def _rate(self, k: int) -> float:
        """Speed of each of the engine's ``k`` runnable processes."""
        cores, others = self.cal.cores, [b for b in self.cal.background if b > 0]
        if not others:
            return min(1.0, cores / k)
        if not self.cal.autogroup:
            return min(1.0, cores / (k + sum(others)))
        # fair shares between sessions by water-filling, the engine's k processes
        # being one session
        demands = sorted([*(min(b, cores) for b in others), float(k)])
        left, mine = float(cores), 0.0
        for index, demand in enumerate(demands):
            share = min(demand, left / (len(demands) - index))
            left -= share
            if demand == k:
                mine = share
        return min(1.0, mine / k)

    def _advance(self, proc: _Proc) -> None:
        """Run ``proc`` to its next job with a cost, or until it blocks or ends."""
        while True:
            try:
                proc.work = next(proc.gen)
            except StopIteration:
                proc.work, proc.done = None, True
                return
            if proc.work is None or proc.work > 0:
                proc.cpu += proc.work or 0.0
                return

    def _post(self, proc: _Proc, message: tuple[Any, ...]) -> None:
        # woken by the driver after the sender's step: a generator cannot resume
        # another generator that is resuming it
        proc.inbox.append(message)
        self.woken.append(proc)

    def _wake(self) -> None:
        while self.woken:
            proc = self.woken.pop(0)
            if proc.work is None and not proc.done:
                self._advance(proc)

    # ------------------------------------------------------------- coordinator
    def _coordinator(self) -> Job:
        p, sched, cal = self.p, self.sched, self.cal
        if self.eligible:  # in-process until fork_after, as the engine warms up
            work = WorkEstimate(p.weights or p.gas_limits or [1] * self.n)
            looks = WarmUpLooks(self.n, self.executors, cal.cores)  # the engine's
            while not sched.done and sched.commit_index not in sched.costly:
                txn = sched.commit_index
                if looks.due(txn) and looks.look(
                        txn, work.remaining(txn, self.now), self._recovery_left(txn),
                        self.now >= self.engine.fork_after,
                        partial(serial_run, self.deps, txn - SERIAL_WINDOW, txn)):
                    break
                yield from self._inline(txn)
                if txn == 0:
                    work.leave_out_first(self.now)
            done = sched.commit_index
            senders = warm_up_senders(done, self.n)
            warm_up_s = self.now  # as the engine times it: before the batch below
            pays = False
            if self.n - done >= max(2, self.engine.min_parallel_txs):
                if looks.pipeline:  # as the engine: in order, its helper recovers
                    senders = warm_up_batches(done, self.n)
                else:
                    # as the engine: the senders the workers start with, recovered
                    # before it decides (the engine recovers the rest of the
                    # warm-up's last batch during the warm-up; here it is charged
                    # with the batch beyond), and the hot targets predicted from them
                    yield sum(p.recover_s[t] for t in senders
                              if not self.coordinator_knows[t])
                    for t in senders:
                        self.coordinator_knows[t] = True
                    if p.senders:
                        sched.hot.predict((t, sender) for t in senders
                                          if (sender := p.senders[t]) is not None)
                work_left = work.remaining(done, warm_up_s)
                kept = sched.hot.held(range(done, self.n))
                if looks.pipeline:  # as the engine: one worker recovers senders
                    executors = 2
                elif done == 0:  # as the engine: no evidence, its first is costly
                    executors = workers_to_start(self.executors, cal.cores)
                else:
                    executors = with_a_worker_for_costly(workers_that_pay(
                        self.n - done, work_left, self.executors, cal.cores,
                        kept=len(kept), kept_work=work_left * work.share(done, kept)),
                        done, done in sched.costly, self.executors, cal.cores)
                pays = executors > 1
                if pays and executors < self.executors:  # as the engine: fewer pay
                    self.executors, self.workers = executors, executors - 1
                    sched.start_with(self.workers, self.engine.chunk_length(self.n, executors))
                if pays and looks.pipeline:
                    sched.pipeline()
            if pays:
                yield from self._start_workers(senders)
            else:
                for w in range(self.workers):
                    sched.worker_lost(w)
        while True:
            if self.started:
                yield from self._dispatch()
            action, txn = sched.next_commit()
            if action == DONE:
                return
            if action == WAIT:
                yield from self._dispatch()  # as the engine: what was left to workers
                ahead = sched.claim_ahead()
                if ahead is not None:
                    yield from self._ahead(ahead)
                    continue
                if not self.procs[0].inbox:
                    # as the engine: senders recovered instead of waiting
                    batch, self.waiting_frontier = waiting_batch(
                        self.waiting_frontier, sched.next_txn, self.n,
                        self.coordinator_knows.__getitem__)
                    if batch:
                        for txn in batch:
                            self.coordinator_knows[txn] = True
                        yield sum(p.recover_s[txn] for txn in batch)
                        continue
                while not self.procs[0].inbox:
                    yield None
                yield from self._handle()
                continue
            if action == VALIDATE:
                result = sched.results[txn]
                assert isinstance(result, _Result)
                yield p.validate_s[txn]
                sched.validated(txn, result.ok)
                if result.ok:
                    yield from self._commit(txn, result.worker)
                    continue
            yield from self._inline(txn)

    def _recovery_left(self, txn: int) -> float:
        """As the engine's look: the senders from ``txn`` on that its warm-up's
        batches (:func:`warm_up_batches`) have not recovered, at the mean of
        those they have."""
        end = warm_up_batches(txn, self.n).stop
        if end == 0:
            return 0.0
        mean = sum(self.p.recover_s[:end]) / end
        return mean * (self.n - max(txn, end))

    def _inline(self, txn: int) -> Job:
        self.sched.executed_inline(txn)
        if self.started and self.sched.pipelined:
            # what the cost model charges a sender pipeline per transaction (polls,
            # senders taken in, executions beside a busy core): the calibration
            # measures speculation's costs, not these
            yield PIPELINE_TX_S * machine_slowness()
        yield self._coordinator_runs(txn)
        if self.started:
            yield from self._handle()  # pool.receive(0) after an in-process run
        yield from self._commit(txn, -1)

    def _coordinator_runs(self, txn: int) -> float:
        """CPU seconds of the coordinator executing ``txn`` (its sender recovered
        once, by whichever process ran it first)."""
        p = self.p
        known, self.coordinator_knows[txn] = self.coordinator_knows[txn], True
        return p.exec_s[txn] - (p.recover_s[txn] if known else 0.0)

    def _ahead(self, txn: int) -> Job:
        """The coordinator runs ``txn`` speculatively on the committed state."""
        sched = self.sched
        committed = sched.commit_index
        yield self._coordinator_runs(txn)
        mine = self.ahead_correct
        ok = all(dep < committed or mine.get(dep, False) for dep in self.deps[txn])
        mine[txn] = ok
        sched.on_result(_Result(txn, sched.incarnation[txn], ok, -1))
        yield from self._handle()

    def _commit(self, txn: int, worker: int) -> Job:
        yield self.p.commit_s[txn]
        self.committed_by[txn] = worker
        self.sched.committed(txn)

    def _handle(self) -> Job:
        inbox, sched = self.procs[0].inbox, self.sched
        while inbox:
            kind, worker, items, final = inbox.pop(0)
            if kind == "senders":
                yield self.cal.message_s
                self.recovering.discard(worker)
                for txn in items:
                    self.coordinator_knows[txn] = True
                continue
            yield self.cal.message_s + sum(self.p.result_load_s[r.txn] for r in items) \
                * (1.0 + self.cal.coordinator_factor)
            if final:
                sched.chunk_done(worker)
            for result in items:
                self.coordinator_knows[result.txn] = True
                if not sched.on_result(result, worker) and result.txn < sched.commit_index:
                    sched.late_verdict(result.txn, result.ok)

    def _start_workers(self, senders: range) -> Job:
        """As the engine (:meth:`~pevm.engines.workers.WorkerPool.start`): from
        ``NURSERY_FROM`` workers the coordinator forks the nursery once and worker
        ``w`` is up ``w + 1`` forks later; below it the coordinator forks each
        worker and feeds it before the next. A sender pipeline's one worker is, by
        default, the recovery helper (:mod:`~pevm.engines.recovery_helper`),
        running already: told of the block by a message instead of forked, up at
        once, and knowing none of the senders the warm-up recovered."""
        sched, cal = self.sched, self.cal
        fork = 0.0 if self.helper else cal.fork_s
        nursery = self.workers >= NURSERY_FROM
        for w in range(self.workers):
            if w == 0 or not nursery:
                yield cal.message_s if self.helper else fork
            if w == 0:
                self.started = True
                sched.start_ahead()
            self.synced.append(sched.commit_index)
            self.correct.append({})
            self.known.append(set() if self.helper else set(senders))  # inherited
            start = (0.0 if self.helper else cal.ready_s) \
                + ((w + 1) * fork if nursery else 0.0)
            self.procs.append(_Proc(self._worker(w, start)))
            self.woken.append(self.procs[-1])
            yield from self._feed(w)

    def _dispatch(self) -> Job:
        sched = self.sched
        for w in sched.idle_workers():
            yield from self._feed(w)
        if sched.keeps_to_coordinator:
            yield from self._dispatch_recovery()

    def _feed(self, w: int) -> Job:
        """Run messages to worker ``w`` until it has its fill (as the engine)."""
        sched = self.sched
        while (txns := sched.next_chunk(w)) is not None:
            # commits since the worker's last run message; its own results travel
            # as None, the others packed once for every worker (pack_writes)
            commits = [(t, self.committed_by[t] != w)
                       for t in range(self.synced[w], sched.commit_index)]
            self.synced[w] = sched.commit_index
            results = [self._speculate(w, t) for t in txns]
            # the run message hands over the senders the coordinator knows
            self.known[w].update(t for t in txns if self.coordinator_knows[t])
            packing = [t for t, shipped in commits if shipped and t not in self.packed]
            self.packed.update(packing)
            yield self.cal.message_s + sum(self.p.writes_dump_s[t] for t in packing)
            self._post(self.procs[1 + w], ("run", commits, results))

    def _speculate(self, w: int, txn: int) -> _Result:
        """Whether ``txn`` run by ``w`` reads what sequential execution gives it."""
        mine = self.correct[w]
        ok = all(dep < self.synced[w] or mine.get(dep, False) for dep in self.deps[txn])
        mine[txn] = ok
        return _Result(txn, self.sched.incarnation[txn], ok, w)

    def _dispatch_recovery(self) -> Job:
        sched = self.sched
        for w in sched.live_workers():
            if sched.outstanding(w) or w in self.recovering:
                continue
            batch, self.recovery_frontier = recovery_batch(
                self.recovery_frontier, sched.commit_index, self.n,
                self.coordinator_knows.__getitem__)
            if not batch:
                return
            self.recovering.add(w)
            # the helper is sent the batch's transactions; a forked worker has them
            yield self.cal.message_s + (sum(self.p.tx_dump_s[t] for t in batch)
                                        if self.helper else 0.0)
            self._post(self.procs[1 + w], ("recover", batch))

    # ------------------------------------------------------------------ worker
    def _worker(self, w: int, start_s: float) -> Job:
        """Worker ``w``: up after ``start_s``, then answers its messages."""
        p, cal, me, known = self.p, self.cal, self.procs[1 + w], self.known[w]
        yield start_s
        while True:
            while not me.inbox:
                yield None
            message = me.inbox.pop(0)
            cost = 2 * cal.message_s  # receive the request, send the answer
            if message[0] == "recover":
                if self.helper:
                    cost += sum(p.tx_load_s[t] for t in message[1])
                yield cost + sum(p.recover_s[t] for t in message[1] if t not in known)
                known.update(message[1])
                self._post(self.procs[0], ("senders", w, message[1], True))
                continue
            _, commits, results = message
            for txn, shipped in commits:
                cost += p.commit_s[txn] + (p.writes_load_s[txn] if shipped else 0.0)
            done: list[_Result] = []
            since = 0.0
            for index, result in enumerate(results):
                t = result.txn
                run = p.exec_s[t] - (p.recover_s[t] if t in known else 0.0)
                self.worker_runs += 1
                self.worker_run_s += run
                step = run * cal.worker_factor + p.result_dump_s[t]
                cost, since = cost + step, since + step
                known.add(t)
                done.append(result)
                if index < len(results) - 1 and since > FLUSH_S:
                    # what is done so far goes now, as the worker sends it
                    yield cost
                    self._post(self.procs[0], ("results", w, done, False))
                    done, cost, since = [], cal.message_s, 0.0
            yield cost
            self._post(self.procs[0], ("results", w, done, True))
