"""The scheduler: which transaction incarnation runs where, and when one commits.

Block-STM, adapted to processes that share no memory
----------------------------------------------------
Block-STM's threads pick execution and validation tasks from shared counters and
read each other's writes through shared multi-version memory. Here executors are
processes (threads give no speedup under the GIL) and a message costs tens of
microseconds, so the roles are split:

* **Workers** execute *chunks* -- runs of consecutive transactions -- optimistically,
  each transaction reading the latest write below it in the worker's replica of the
  multi-version memory: the coordinator's committed writes, ESTIMATE markers for
  transactions still running elsewhere, and the worker's own earlier results (so a
  run of dependent transactions in one chunk executes correctly in one go).
* The **coordinator** (this scheduler, driven by the engine) validates and commits
  strictly in block order, and executes too: where the transaction at the commit
  point is still running on a worker, it takes the next transaction nobody has
  taken (:meth:`Scheduler.claim_ahead`) and executes it speculatively itself, its
  result validated at the commit point like a worker's -- Block-STM's "every
  thread executes", with the commit as the coordinator's first duty. So at
  ``workers=N`` the engine forks ``N - 1`` workers, and N processes execute.
  The next transaction to commit is validated against the committed state --
  which, as every transaction below it is committed, *is* the state sequential
  execution gives it. A failed validation aborts the incarnation
  and the coordinator re-executes the transaction at once, in-process, against that
  same committed state: the new incarnation is valid by construction, and running
  it where the state is, rather than shipping it to a worker, takes the critical
  path's transaction off the message round trip. Transactions whose worker died,
  whose read met an ESTIMATE (:class:`~pevm.engines.mv_memory.Blocked`: a
  dependency) or whose execution crashed are handled the same way.

Validation is **value-based**: a transaction's reads are compared by value with the
committed state. Version-based validation (Block-STM's) would force a re-execution
whenever a transaction below wrote a location, even with the same value; with lazy
fee credits and EXISTS writes that often carry the value already read, values are
the cheaper test and are sound (the interpreter is a deterministic function of the
values it reads). Measured with an engine option, since removed, that counted for
every validated result whether version-based validation would have rejected it: on
400-transaction transfer, ERC-20 and hotspot blocks both reject exactly the same
results (0, 0 and 135 of 139); on 24 random 60-transaction blocks from the
property tests' generator (8 senders, shared slots, the beneficiary read,
self-destructs; Berlin and Cancun, 2-3 workers) versions reject 1,214 of 1,324
results and values 1,208. So values never lose, win a little, and need no version
numbers in the messages.

Lookahead: no chunk starts (and the coordinator runs nothing ahead) more than
``LOOKAHEAD_ROUNDS x max_outstanding x executors x chunk`` transactions past the
commit point, so that when the transaction there is slow the others do not run away
speculating on ever staler state. Chunks are *guided*: at most the transactions
left over ``2 x max_outstanding x executors``, so that near the block's end they
shrink and the coordinator is not left waiting on one worker's long run of the
last transactions (mainnet 13217637 ends with ~100 transactions of 10-50 ms:
before, the coordinator waited 0.8 s there).

Costly transactions (``costly``, guessed by gas limit:
:func:`~pevm.engines.cost_model.costly_transactions`) stay off the coordinator,
which cannot dispatch or commit while it executes one: :meth:`Scheduler.claim_ahead`
passes over them and they become the next chunks, one each; one at the commit point
that nobody runs is left to a worker (``WAIT``) unless speculation is failing; and
while the commit point waits on one running on a worker the lookahead is open -- the
rest of the block may run meanwhile. The one at the commit point when the workers
start, and those beyond the lookahead, go first (:meth:`Scheduler.start_ahead`):
queued behind the first chunks, the former keeps the commit point waiting on their
whole run (mainnet 9069000: 140 ms idle), and a long transaction deep in the block
otherwise starts only when the commit point nears it and ends the block alone
(mainnet 17666333's transaction 77 ran 1.9 s of the block's 4.1 s from 1.07 s on,
the coordinator done with the rest at 2.1 s). Started early it may read state that
transactions below it change; then it is re-executed like any failed result. Chunks
and the coordinator pass over transactions already taken. A costly transaction goes
to a worker only where one is free of costly work; with every worker busy on one, it
is an ordinary transaction (it would otherwise wait behind a long one).

Conflict throttle (:mod:`pevm.engines.throttle`): speculation that keeps failing
only burns the cores the coordinator needs for re-execution, so when most recent
results fail the scheduler hands out no chunks and the coordinator executes in
order, probing now and then with one chunk whether speculation works again.

Hot targets (:mod:`pevm.engines.hot_targets`): a contract whose transactions keep
failing validation has the rest of its transactions kept from the chunks; the
coordinator takes them, in order, where it would execute ahead or at the commit
point (:meth:`Scheduler.claim_ahead`).

Determinism: what commits for transaction ``i`` is always an execution whose every
read equals the state after transactions ``0..i-1`` committed -- so the block's
result is the sequential one whatever the timing, worker count, chunking or
failures.
"""
from __future__ import annotations

from bisect import insort
from collections import deque
from dataclasses import dataclass
from enum import Enum
from collections.abc import Hashable, Iterable, Sequence

from pevm.engines.hot_targets import HotTargets
from pevm.engines.throttle import Throttle

#: How far past the commit point chunks start and the coordinator runs ahead, in
#: rounds of every executor's queue of chunks (see the module's docstring). Two
#: rounds left the worker idle while the commit point caught up after a long
#: transaction (mainnet 13217637: 98 ms in five gaps of 11-36 ms); four measured
#: better on the large mainnet blocks (14029313 1.46x -> 1.55x at 2 workers).
LOOKAHEAD_ROUNDS = 4


class Action(Enum):
    """What :meth:`Scheduler.next_commit` tells the coordinator to do."""

    #: a result is there: validate it, then commit or abort
    VALIDATE = "validate"
    #: no usable result: execute the transaction in-process
    EXECUTE = "execute"
    #: a worker is running it: wait for messages
    WAIT = "wait"
    #: every transaction is committed
    DONE = "done"


VALIDATE, EXECUTE, WAIT, DONE = Action.VALIDATE, Action.EXECUTE, Action.WAIT, Action.DONE


@dataclass
class SchedulerStats:
    """Counters the engine reports in its :class:`~pevm.result.EngineStats`."""

    dispatched: int = 0          # transaction incarnations sent to workers
    stale_results: int = 0       # results for incarnations already superseded
    validations: int = 0
    validation_failures: int = 0
    forced_aborts: int = 0
    blocked: int = 0             # results that met an ESTIMATE
    crashed: int = 0
    lost: int = 0                # transactions lost with a dead worker
    inline: int = 0              # incarnations run in-process by the coordinator
    pauses: int = 0
    chunks: int = 0
    ahead: int = 0               # run ahead of the commit point by the coordinator
    costly: int = 0              # costly transactions left to workers
    kept: int = 0                # hot targets' transactions kept from the chunks


@dataclass
class _Chunk:
    worker: int
    txns: list[int]


class Scheduler:
    """Dispatch, incarnations, in-order commit and failure bookkeeping for one block.

    Pure bookkeeping -- no I/O, no execution -- so it is unit-testable; the engine
    calls it from its event loop.
    """

    def __init__(self, n: int, workers: int, chunk_size: int = 16,
                 max_outstanding: int = 2, window: int = 16, probe: int = 32,
                 min_chunk: int = 4, coordinator_executes: bool = False,
                 costly: Iterable[int] = (),
                 targets: Sequence[Hashable | None] = ()) -> None:
        if n < 0 or workers < 0 or chunk_size < 1 or max_outstanding < 1:
            raise ValueError("invalid scheduler parameters")
        self.n = n
        #: the longest chunk; chunks start at ``min_chunk`` and double while
        #: speculation succeeds (a conflicting block wastes little before the
        #: throttle notices), back to ``min_chunk`` on a failure
        self.chunk_size = chunk_size
        self.min_chunk = min(min_chunk, chunk_size)
        self.current_chunk = self.min_chunk
        self._streak = 0
        self._probe_gap = 0
        #: transactions of chunks that started at the commit point: everything
        #: below was committed and synced, so their results will be valid
        self._exact: set[int] = set()
        self.max_outstanding = max_outstanding
        self.incarnation = [0] * n
        #: latest result per uncommitted transaction (any object with ``incarnation``)
        self.results: dict[int, object] = {}
        #: of those, the coordinator's own executions ahead (not a worker's)
        self._own: set[int] = set()
        self.commit_index = 0
        self.next_txn = 0                       # first transaction never dispatched
        self.redo: list[int] = []               # to dispatch again (worker lost)
        self.owner: dict[int, int] = {}         # in flight: txn -> worker
        self.chunks: dict[int, deque[_Chunk]] = {w: deque() for w in range(workers)}
        self.alive: set[int] = set(range(workers))
        self.stats = SchedulerStats()
        #: pauses speculation while it keeps failing
        self.throttle = Throttle(window, probe)
        #: transactions expected to run long
        #: (:func:`~pevm.engines.cost_model.costly_transactions`): the coordinator
        #: leaves them to workers, each in a chunk of its own
        self.costly = frozenset(costly)
        #: costly transactions the coordinator passed over, for the next chunks
        self._for_workers: list[int] = []
        #: the coordinator executes transactions ahead of the commit point itself
        #: whenever it would wait for a worker (:meth:`claim_ahead`)
        self.coordinator_executes = coordinator_executes
        #: which transactions' targets keep failing: those stay with the coordinator
        self.hot = HotTargets(targets)
        #: hot transactions that chunks passed over, for the coordinator
        self._for_coordinator: list[int] = []
        #: the last chunk's scan found only hot targets' transactions
        self._starved = False

    def start_with(self, workers: int, chunk_size: int) -> None:
        """Before the first chunk: only workers ``0..workers-1`` start (more would
        not pay, :func:`~pevm.engines.cost_model.workers_that_pay`), with chunks
        of up to ``chunk_size``; the others are gone without having held work."""
        if any(self.chunks.values()) or not 0 <= workers <= len(self.chunks) \
                or chunk_size < 1:
            raise ValueError("start_with: only before any chunk, within the workers")
        self.chunks = {w: self.chunks[w] for w in range(workers)}
        self.alive &= set(range(workers))
        self.chunk_size = chunk_size
        self.min_chunk = min(self.min_chunk, chunk_size)
        self.current_chunk = min(self.current_chunk, chunk_size)

    # ------------------------------------------------------------ dispatch
    def idle_workers(self) -> list[int]:
        """Live workers with room for another chunk, least loaded first."""
        chunks, room = self.chunks, self.max_outstanding
        idle = [w for w in self.alive if len(chunks[w]) < room]
        if len(idle) > 1:  # asked before each transaction the coordinator runs
            idle.sort(key=lambda w: (len(chunks[w]), w))
        return idle

    def next_chunk(self, worker: int) -> list[int] | None:
        """Transactions for ``worker`` to execute next (ascending), or None."""
        if worker not in self.alive or self.paused:
            return None
        if self.throttle.probing and any(self.chunks[w] for w in self.alive):
            return None  # while probing, one chunk at a time
        if len(self.chunks[worker]) >= self.max_outstanding:
            return None
        if self._runs_costly(worker):
            return None  # it would wait behind a long transaction: others take it
        txns: list[int] = []
        size = self.current_chunk
        while self._for_workers and not txns:
            txn = self._for_workers.pop(0)
            if self._untaken(txn):
                txns.append(txn)
        while self.redo and len(txns) < size:
            txn = self.redo.pop(0)
            if txn >= self.commit_index and txn not in self.owner:
                txns.append(txn)
        if not txns:
            # after a pause, probe a little ahead: the coordinator keeps running
            # the transactions in between itself instead of waiting on a worker
            start = max(self.next_txn, self.commit_index + self._probe_gap)
            if start >= self.commit_index + self._lookahead:
                return None  # far enough ahead of the commit point for now
            self._probe_gap = 0
            # guided: near the block's end chunks shrink, so that no process is
            # left with a long run of the last transactions while others idle
            size = min(size, max(1, -(-(self.n - start)
                                     // (2 * self.max_outstanding * self._executors))))
            # passing over what runs or ran elsewhere (costly transactions
            # started early) and what the coordinator keeps (hot targets)
            # (a chunk is ``size`` transactions long, not counting hot ones)
            limit = max(start + size, self.commit_index + self._lookahead)
            end, span = start, 0
            while end < min(self.n, limit) and span < size:
                if not self._untaken(end):
                    span += 1
                elif self.hot.holds(end):
                    insort(self._for_coordinator, end)
                    self.stats.kept += 1
                else:
                    txns.append(end)
                    span += 1
                end += 1
            self.next_txn = max(self.next_txn, end)
            self._starved = not txns and end > start
        if not txns:
            return None
        exact = txns[0] == self.commit_index and \
            txns == list(range(txns[0], txns[0] + len(txns)))
        for txn in txns:
            self.owner[txn] = worker
            self._drop_result(txn)
            if exact:
                self._exact.add(txn)
            else:
                self._exact.discard(txn)
        self.chunks[worker].append(_Chunk(worker, txns))
        self.stats.dispatched += len(txns)
        self.stats.chunks += 1
        return txns

    @property
    def _executors(self) -> int:
        """Processes executing for this block: live workers, and the coordinator."""
        return len(self.alive) + self.coordinator_executes

    @property
    def _lookahead(self) -> int:
        if self.commit_index in self.costly and self.commit_index in self.owner \
                and not self.conflicted:
            # the commit point waits on a long transaction: the others may all
            # run meanwhile (they validate once it commits)
            return self.n
        return max(LOOKAHEAD_ROUNDS * 8, LOOKAHEAD_ROUNDS * self.max_outstanding
                   * max(self._executors, 1) * self.current_chunk)

    def claim_ahead(self) -> int | None:
        """A transaction for the coordinator to execute ahead of the commit point,
        speculatively, instead of waiting for a worker's result -- the next one
        nobody has taken, within the lookahead -- or None."""
        if not self.coordinator_executes or self.paused or self.throttle.probing:
            return None
        while self.redo:
            txn = self.redo.pop(0)
            if self._untaken(txn):
                return self._claimed(txn)
        while self._for_coordinator:
            txn = self._for_coordinator.pop(0)
            if txn >= self.commit_index + self._lookahead:
                insort(self._for_coordinator, txn)
                break
            if self._untaken(txn):
                return self._claimed(txn)
        while True:
            txn = self.next_txn
            if txn >= self.n or txn >= self.commit_index + self._lookahead:
                return None
            self.next_txn = txn + 1
            if not self._untaken(txn):
                continue  # a costly transaction started early
            if txn not in self.costly or not self._free_for_costly():
                return self._claimed(txn)
            self._leave_to_workers(txn)  # a worker's: the coordinator stays free

    def _runs_costly(self, worker: int) -> bool:
        return bool(self.costly) and any(t in self.costly for chunk in self.chunks[worker]
                                         for t in chunk.txns)

    def _free_for_costly(self) -> bool:
        """Some live worker could start a costly transaction now (none of its
        chunks holds one): otherwise it would wait behind a long one."""
        return any(not self._runs_costly(w) for w in self.alive)

    def _untaken(self, txn: int) -> bool:
        """Uncommitted, running nowhere, and without a result to validate."""
        return txn >= self.commit_index and txn not in self.owner \
            and txn not in self.results

    def _leave_to_workers(self, txn: int) -> None:
        if txn not in self._for_workers:
            insort(self._for_workers, txn)
            self.stats.costly += 1

    def _claimed(self, txn: int) -> int:
        self.stats.ahead += 1
        self._exact.discard(txn)
        return txn

    def in_flight_below(self, end: int, worker: int) -> list[int]:
        """Uncommitted transactions below ``end`` whose writes ``worker`` cannot know:
        running on another worker or waiting to be run (ESTIMATE candidates)."""
        out = [t for t, w in self.owner.items() if t < end and w != worker]
        out.extend(t for t in self.redo if t < end and t not in self.owner)
        out.extend(t for t in self._for_coordinator if t < end and self._untaken(t))
        upcoming = range(max(self.commit_index, 0), min(end, self.n))
        out.extend(t for t in upcoming
                   if t >= self.next_txn and t not in self.owner)
        return sorted(set(out))

    # ------------------------------------------------------------- results
    def on_result(self, result: object, worker: int | None = None) -> bool:
        """Store a worker's result; False when it is stale (ignored)."""
        txn = result.txn  # type: ignore[attr-defined]
        if worker is not None and self.owner.get(txn) == worker:
            del self.owner[txn]
        if txn < self.commit_index or \
                result.incarnation != self.incarnation[txn]:  # type: ignore[attr-defined]
            self.stats.stale_results += 1
            return False
        self.results[txn] = result
        if worker is None:
            self._own.add(txn)
        else:
            self._own.discard(txn)
        outcome = getattr(result, "outcome", True)
        if outcome is None or getattr(outcome, "valid", True) is False:
            # A read that met an ESTIMATE, or a transaction that looked invalid
            # (almost always: it ran too early, e.g. a nonce not yet reached):
            # speculation is failing now, before the commit point gets there.
            self._speculation(txn, False, worker is not None)
        return True

    def late_verdict(self, txn: int, ok: bool) -> None:
        """A worker's result of ``txn`` that arrived after it was run in-process:
        whether it had read what the committed execution read still says whether
        speculation works (a probe never waits for its verdict)."""
        self._speculation(txn, ok, by_worker=True)

    def start_ahead(self) -> None:
        """The workers start: the next chunk starts ``2 x chunk`` past the commit
        point (while freshly started workers warm up, the coordinator runs those
        itself), and costly transactions go first: the one at the commit point
        (the warm-up stops at a costly transaction so that a worker runs it; queued
        behind the first chunks it would keep the commit point waiting on their
        whole run -- mainnet 9069000: 140 ms idle), and those beyond the
        lookahead."""
        self._probe_gap = 2 * self.current_chunk
        if self.coordinator_executes and self.alive:
            horizon = self.commit_index + self._lookahead
            for txn in sorted(self.costly):
                if (txn >= horizon or txn == self.commit_index) and self._untaken(txn):
                    self._leave_to_workers(txn)

    def chunk_done(self, worker: int) -> None:
        """``worker`` answered its oldest outstanding chunk."""
        queue = self.chunks.get(worker)
        if queue:
            chunk = queue.popleft()
            for txn in chunk.txns:
                if self.owner.get(txn) == worker:
                    del self.owner[txn]

    def worker_lost(self, worker: int) -> list[int]:
        """``worker`` died: its unanswered transactions go back to be redone."""
        self.alive.discard(worker)
        lost: list[int] = []
        for chunk in self.chunks.pop(worker, deque()):
            for txn in chunk.txns:
                if self.owner.get(txn) == worker:
                    del self.owner[txn]
                    if txn >= self.commit_index and txn not in self.results:
                        lost.append(txn)
        self.chunks[worker] = deque()
        self.redo = sorted(set(self.redo) | set(lost))
        self.stats.lost += len(lost)
        return lost

    # -------------------------------------------------------------- commit
    def next_commit(self) -> tuple[Action, int]:
        """What to do about the transaction at the commit point."""
        txn = self.commit_index
        if txn >= self.n:
            return DONE, txn
        result = self.results.get(txn)
        if result is not None:
            if getattr(result, "committable", True):
                return VALIDATE, txn
            if getattr(result, "blocked_on", None) is not None:
                self.stats.blocked += 1
            else:
                self.stats.crashed += 1
            self.abort(txn)
            return EXECUTE, txn
        if txn in self.owner and self.owner[txn] in self.alive \
                and (txn in self._exact or not self.conflicted) \
                and not self.throttle.probing:
            return WAIT, txn
        if txn in self.costly and self.coordinator_executes and self._free_for_costly() \
                and txn not in self.owner and not self.conflicted \
                and not self.throttle.probing:
            # a worker runs it (the next chunk) while the coordinator keeps
            # dispatching, running ahead and validating
            self._leave_to_workers(txn)
            self.next_txn = max(self.next_txn, txn + 1)
            return WAIT, txn
        # Nobody runs it, or speculation has been failing and its chunk started
        # ahead of the commit point: waiting for a result that is likely invalid
        # costs more than running it here and now (a result arriving later is
        # stale: the transaction is committed by then).
        return EXECUTE, txn

    @property
    def keeps_to_coordinator(self) -> bool:
        """Speculation is paused, or the last chunk's transactions all stayed
        with the coordinator (hot targets): the coordinator runs the block in
        order, and idle workers recover senders ahead of it."""
        return self.paused or self._starved

    def pipeline(self) -> None:
        """Before the first chunk: the rest runs as a sender pipeline
        (:func:`~pevm.engines.cost_model.pipeline_pays`) -- no chunks, the
        coordinator executes in order and idle workers recover senders ahead of
        it, to the block's end (the throttle is held paused, never probing)."""
        if any(self.chunks.values()):
            raise ValueError("pipeline: only before any chunk")
        self.throttle.hold()

    @property
    def pipelined(self) -> bool:
        """The block's rest runs as a sender pipeline (:meth:`pipeline`)."""
        return self.throttle.held

    @property
    def paused(self) -> bool:
        """Speculation is paused: no chunks, the coordinator executes in order."""
        return self.throttle.paused

    @property
    def conflicted(self) -> bool:
        """Speculation is paused, or more than a quarter of recent results failed."""
        return self.throttle.conflicted

    def validated(self, txn: int, ok: bool, forced: bool = False) -> None:
        """The result of ``txn`` was validated; on failure it is aborted."""
        self.stats.validations += 1
        by_worker = txn not in self._own
        if forced:
            self.stats.forced_aborts += 1
        if not ok:
            self.stats.validation_failures += 1
            self.abort(txn)
            self.current_chunk = self.min_chunk
            self._streak = 0
        else:
            self._streak += 1
            if self._streak >= self.current_chunk:
                self.current_chunk = min(self.chunk_size, self.current_chunk * 2)
                self._streak = 0
        if not forced and self.hot.verdict(txn, ok) and self.throttle.explained():
            # the failures that made it hot are explained, and its transactions
            # leave the chunks: the others' speculation is judged afresh
            self._probe_ahead()
        self._speculation(txn, ok, by_worker)

    def abort(self, txn: int) -> None:
        """Discard ``txn``'s current incarnation; the next one gets a new number."""
        self._drop_result(txn)
        self.incarnation[txn] += 1

    def _drop_result(self, txn: int) -> None:
        self.results.pop(txn, None)
        self._own.discard(txn)

    def executed_inline(self, txn: int) -> int:
        """The coordinator runs ``txn`` itself; returns the incarnation number."""
        self.stats.inline += 1
        self.owner.pop(txn, None)
        if self.throttle.executed_inline():
            self._probe_ahead()
        return self.incarnation[txn]

    def _probe_ahead(self) -> None:
        """A probe starts: its chunk starts a little ahead of the commit point."""
        self._probe_gap = 2 * self.current_chunk

    def committed(self, txn: int) -> None:
        """``txn`` is committed; the commit point moves on."""
        if txn != self.commit_index:
            raise ValueError(f"commit out of order: {txn} at {self.commit_index}")
        self._drop_result(txn)
        self.owner.pop(txn, None)
        self.commit_index += 1
        self.next_txn = max(self.next_txn, self.commit_index)

    def _speculation(self, txn: int, ok: bool, by_worker: bool) -> None:
        if not ok and by_worker and self.hot.holds(txn):
            # a worker's run of a hot target's transaction: sent before the
            # target turned hot (chunks pass over it since), its failure is
            # explained. The coordinator's own runs ahead of the target's chain
            # count: they keep failing while one of the chain is still out on a
            # worker, and stopping them then is the throttle's job.
            return
        self.throttle.verdict(ok)
        self.stats.pauses = self.throttle.pauses

    # ------------------------------------------------------------ queries
    @property
    def done(self) -> bool:
        return self.commit_index >= self.n

    def outstanding(self, worker: int) -> int:
        return len(self.chunks.get(worker, ()))

    def live_workers(self) -> Iterable[int]:
        return sorted(self.alive)


__all__ = ["Scheduler", "SchedulerStats", "VALIDATE", "EXECUTE", "WAIT", "DONE"]
