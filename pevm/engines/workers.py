"""Worker processes: execute chunks of transactions for one block.

Processes, not threads: EVM execution in py-evm holds the interpreter lock, so
threads give no speedup (see docs/design.md). The pool is started per block by
``fork`` (by the coordinator, or from :data:`NURSERY_FROM` workers by a
:class:`~pevm.engines.nursery.Nursery`), *after* py-evm has prepared the block's
pre-state and after the engine's in-process warm-up: each worker inherits
``vm.state``, the decoded transactions, the pre-state cache and the committed
prefix (its replica of the multi-version memory) copy-on-write, so no state is
ever shipped. Where
``fork`` is unavailable (or a caller asks for another start method)
:func:`fork_available` says so and the engine runs the block in-process -- a worker
started by ``spawn`` would have no pre-state to read, and fetching reads one by one
would cost a message each. (A sender pipeline's one worker, which needs no
state, is instead the process's :mod:`~pevm.engines.recovery_helper`, kept
between blocks.)

Messages are few and batched (a message costs tens of microseconds; a transfer's
execution about 70). They are the named tuples below (a named tuple pickles as its
fields plus one class reference):

coordinator -> worker
    :class:`Run`: bring the replica up to date -- ``commits`` for every
    transaction committed since the worker's last run message (each one's writes
    packed by :func:`pack_writes` once, for every worker), ``estimates`` of
    ESTIMATE markers for transactions still running elsewhere -- then execute
    ``txns`` in order (pinning the ``senders`` the coordinator already
    recovered); answered with :class:`Results` -- one, or for a run longer
    than :data:`FLUSH_S` one per ``FLUSH_S`` with what is done so far -- whose
    ``pre_state_loads`` spare the coordinator reading those entries from py-evm's
    trie again to validate, and whose results each carry the sender the worker
    recovered (once: the first process to execute a transaction recovers and pins
    its sender, see :mod:`pevm.engines.executor`).
    :class:`Recover`: recover and pin senders (sent while speculation is paused,
    so that idle workers take sender recovery off the coordinator's sequential
    path); answered with :class:`Senders`.
    A worker exits when the coordinator's end of its pipe closes; at the block's
    end the coordinator kills it (:meth:`WorkerPool.stop`).
pool -> coordinator
    :class:`Dead` once for a worker found dead.

Each worker reads its inbound pipe from a small thread so that a coordinator
sending a large message never blocks against a worker that is itself blocked
sending results (pipes have bounded buffers).

Fault hooks (:class:`~pevm.engines.hooks.FaultHooks`): random delays before
transactions, and a worker that kills itself (``os._exit``) on receiving its n-th
run message.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import random
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from pevm.engines.executor import BlockContext, TxResult
from pevm.engines.hooks import FaultHooks
from pevm.engines.mv_memory import Key, MVMemory, TxWrites
from pevm.engines.nursery import Nursery
from pevm.engines.timeline import Activity, Slice, Timeline, minor_page_faults


#: From this many workers the nursery forks them (:meth:`WorkerPool.start`): the
#: coordinator then forks once instead of once per worker. Below it the nursery's
#: own fork, and each worker starting one fork later, would cost about what the
#: coordinator saves.
NURSERY_FROM = 4

#: A worker whose run has taken this long sends the results it has so far (and
#: again each time as long), rather than making the commit point wait for the
#: whole chunk: long enough that cheap transactions still travel in one message.
FLUSH_S = 0.01


# -- messages -------------------------------------------------------------------
class Run(NamedTuple):
    """Coordinator -> worker: sync the replica, then execute ``txns`` in order."""

    txns: list[int]
    #: the incarnation number of each of ``txns``
    incarnations: list[int]
    #: ``(txn, writes)`` of every transaction committed since the worker's last
    #: run message, in order, the writes packed (:func:`pack_writes`); None: the
    #: worker's own result was the one committed
    commits: list[tuple[int, bytes | None]]
    #: ``(txn, locations)``: ESTIMATE markers (sender balance and nonce) for
    #: transactions still running elsewhere whose sender the coordinator knows
    estimates: list[tuple[int, tuple[Key, ...]]]
    #: ``(txn, sender)`` for those of ``txns`` whose sender the coordinator has
    #: recovered already: the worker pins them instead of recovering them again
    senders: list[tuple[int, bytes]] = []


class Recover(NamedTuple):
    """Coordinator -> worker: recover and pin the senders of ``txns``."""

    txns: list[int]


class Results(NamedTuple):
    """Worker -> coordinator: the answer to one :class:`Run`."""

    worker: int
    results: list[TxResult]
    #: pre-state entries the worker loaded (see :meth:`PreState.export`)
    pre_state_loads: Any
    cpu_seconds: float
    #: the worker's timeline since its last message (:meth:`Timeline.take`)
    timeline: tuple[dict[str, float], list[Slice]]
    #: False: more results of the same run follow (:data:`FLUSH_S`)
    final: bool = True
    #: the worker's minor page faults since its fork (:func:`minor_page_faults`)
    page_faults: int = 0


class Senders(NamedTuple):
    """Worker -> coordinator: the answer to one :class:`Recover`."""

    worker: int
    #: ``(txn, sender)``; None where the signature recovers no sender
    senders: list[tuple[int, bytes | None]]
    cpu_seconds: float
    timeline: tuple[dict[str, float], list[Slice]]
    #: the worker's minor page faults since its fork (:func:`minor_page_faults`)
    page_faults: int = 0


class Dead(NamedTuple):
    """Pool -> coordinator: ``worker`` was found dead (reported once)."""

    worker: int


ToWorker = Run | Recover
FromWorker = Results | Senders | Dead


def pack_writes(writes: TxWrites) -> bytes:
    """``writes`` as :class:`Run` carries them: pickled once per commit.

    Every commit goes to every worker but the one that ran it, so pickling it
    inside each run message pickled it ``workers - 1`` times: at 16 workers on a
    1,000-transaction ERC-20 block that was 64 ms of the coordinator's time here,
    against 11 ms packed once (a packed commit is copied, not pickled again).
    """
    return pickle.dumps(writes, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_writes(packed: bytes) -> TxWrites:
    """The writes :func:`pack_writes` packed."""
    return pickle.loads(packed)


def fork_available(start_method: str | None = None) -> bool:
    """Whether workers can be forked (they need the parent's pre-state).

    Not under another start method, not on platforms without fork, and not in a
    daemonic process (a Dask or multiprocessing pool worker), which may not have
    children: the engine then runs the block in-process.
    """
    return not unavailable_reason(start_method)


def unavailable_reason(start_method: str | None = None) -> str:
    """Why workers cannot be forked here ("" when they can)."""
    if start_method not in (None, "fork"):
        return f"start method {start_method!r} (workers need fork)"
    if "fork" not in multiprocessing.get_all_start_methods():
        return "this platform cannot fork"
    if multiprocessing.current_process().daemon:
        return "a daemonic process may not start worker processes"
    return ""


def fork_process(target: Callable[..., None], args: tuple[Any, ...],
                 name: str) -> tuple[Any, Connection]:
    """Fork ``target(conn, *args)`` as a daemon process, ``conn`` its end of a
    duplex pipe; returns the process and this process's end. Raises what the
    fork raises (say ``OSError``: out of processes or memory), leaving no pipe
    open."""
    mp = multiprocessing.get_context("fork")
    parent, child = mp.Pipe(duplex=True)
    process = mp.Process(target=target, name=name, args=(child, *args), daemon=True)
    try:
        process.start()
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return process, parent


def _worker_main(conn: Connection, worker: int, ctx: BlockContext, mv: MVMemory,
                 hooks: FaultHooks, nice: int) -> None:
    """A worker's loop: keep a replica of the coordinator's memory, run chunks.

    ``mv`` is the coordinator's memory as it was at the fork (its committed
    prefix): the replica starts from there. ``nice``: how much lower than the
    coordinator's this process's CPU priority is (see :class:`WorkerPool`).
    """
    if nice > 0:
        try:
            os.nice(nice)
        except OSError:  # not permitted here: the same work at the same priority
            pass
    inbox: queue.Queue = queue.Queue()
    timeline = ctx.timeline = Timeline(tracing=ctx.timeline.tracing)

    def receive() -> None:
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                inbox.put((None, 0.0, 0.0))  # the coordinator is gone
                return
            start = time.perf_counter()
            message = pickle.loads(data)  # what Connection.recv does
            inbox.put((message, start, time.perf_counter()))

    threading.Thread(target=receive, daemon=True).start()
    rng = random.Random(hooks.seed * 1000 + worker)
    received = 0
    while True:
        message, start, end = inbox.get()
        if message is None:
            break
        timeline.add(Activity.MESSAGE, start, end)  # unpickled by the reader thread
        received += 1  # messages of work: runs and recoveries
        if hooks.kill_worker.get(worker) == received:
            os._exit(86)  # fault hook: die holding work
        if isinstance(message, Recover):
            cpu = time.process_time()
            senders = ctx.recover_senders(message.txns)
            _send(conn, timeline, Senders(worker, senders, time.process_time() - cpu,
                                          timeline.take(), minor_page_faults()))
            continue
        start = time.perf_counter()
        for txn, packed in message.commits:
            mv.commit(txn, None if packed is None else unpack_writes(packed))
        for txn, keys in message.estimates:
            mv.add_estimates(txn, keys)
        timeline.add(Activity.MESSAGE, start)
        cpu = time.process_time()
        for txn, sender in message.senders:
            ctx.adopt_sender(txn, sender)
        ctx.recover_senders(message.txns)  # back to back: cheaper than one by one
        flush = time.perf_counter() + FLUSH_S
        results: list[TxResult] = []
        last = len(message.txns) - 1
        for index, (txn, incarnation) in enumerate(zip(message.txns,
                                                       message.incarnations)):
            if hooks.delay and rng.random() < hooks.delay_probability:
                time.sleep(rng.random() * hooks.delay)
            result = ctx.execute(txn, incarnation, partial(_read_at, mv, txn), worker)
            outcome = result.outcome
            if outcome is not None and outcome.valid:
                mv.record(txn, incarnation, result.writes)
            results.append(result)
            if index < last and time.perf_counter() > flush:
                # a long run: what is done goes now, so that the commit point does
                # not wait for the whole chunk behind a slow transaction
                _send(conn, timeline, Results(worker, results, ctx.pre.export(),
                                              time.process_time() - cpu,
                                              timeline.take(), final=False,
                                              page_faults=minor_page_faults()))
                results, cpu = [], time.process_time()
                flush = time.perf_counter() + FLUSH_S
        _send(conn, timeline, Results(worker, results, ctx.pre.export(),
                                      time.process_time() - cpu, timeline.take(),
                                      page_faults=minor_page_faults()))


def send_timed(conn: Connection, message: Any, timeline: Timeline) -> bool:
    """The coordinator's send to one of its workers: ``message`` pickled and
    written, the time on ``timeline`` as a message; False where the other end is
    gone (a message that does not pickle raises before anything is written)."""
    start = time.perf_counter()
    try:
        conn.send(message)
    except (OSError, ValueError):
        return False
    finally:
        timeline.add(Activity.MESSAGE, start)
    return True


def _send(conn: Connection, timeline: Timeline, message: FromWorker) -> None:
    """Send (pickle and write) ``message``; its own cost goes with the next one."""
    start = time.perf_counter()
    conn.send(message)
    timeline.add(Activity.MESSAGE, start)


class WorkerPool:
    """The forked workers for one block, addressed by index (:meth:`start`).

    Workers run ``nice`` steps below the coordinator's CPU priority. The
    coordinator's in-order validation and commit is the block's critical path;
    where the workers and the coordinator outnumber the cores (as two workers and a
    coordinator on two cores did), Linux's scheduler otherwise takes the CPU from the
    coordinator for whole time slices -- a trace shows validations of three reads
    taking 4.1 ms -- while the workers speculate further ahead. A lower priority
    lets workers have every cycle the coordinator does not need, and costs nothing
    where there are cores enough.
    """

    def __init__(self, ctx: BlockContext, hooks: FaultHooks, mv: MVMemory,
                 nice: int = 0) -> None:
        self._mp = multiprocessing.get_context("fork")
        #: a worker's life, ``(conn, worker)`` -> None, however it is forked
        self._worker_main = partial(_worker_main, ctx=ctx, mv=mv, hooks=hooks, nice=nice)
        #: the coordinator's timeline: sending, waiting and receiving go there
        self.timeline = ctx.timeline
        self.connections: dict[int, Connection] = {}
        self.processes: dict[int, Any] = {}
        self.alive: set[int] = set()
        self.nursery: Nursery | None = None
        self._poller = select.poll()
        #: file descriptor -> the worker whose pipe or process sentinel it is
        self._watched: dict[int, int] = {}

    def start(self, workers: int) -> Iterator[list[int]]:
        """Fork ``workers`` workers (indices ``0..workers-1``), yielding each batch
        as soon as it is started, so that the caller feeds it before the next fork.

        From :data:`NURSERY_FROM` workers, one :class:`~pevm.engines.nursery.Nursery`
        forks them all (one batch); below it the coordinator forks each itself (a
        batch of one: the nursery's own fork would cost more than it saves).
        Raises ``OSError`` (say, out of processes or memory) with that batch not
        started; those yielded before stay started.

        The engine has moved the objects that exist at the fork to the collector's
        permanent generation: a collection in a worker then never walks, and so
        never copies-on-write, the whole shared heap.
        """
        if workers >= NURSERY_FROM:
            self._start_through_nursery(range(workers))
            yield list(range(workers))
            return
        for worker in range(workers):
            self._start_one(worker)
            yield [worker]

    def _start_one(self, worker: int) -> None:
        """Fork ``worker`` from this process."""
        process, parent = fork_process(self._worker_main, (worker,),
                                       f"pevm-worker-{worker}")
        self.processes[worker] = process
        self._add(worker, parent)

    def _start_through_nursery(self, workers: Iterable[int]) -> None:
        """Start ``workers`` through one nursery: the coordinator forks once, the
        nursery forks the workers; messages sent meanwhile wait in their pipes."""
        pipes = {worker: self._mp.Pipe(duplex=True) for worker in workers}
        ends = {worker: child for worker, (_, child) in pipes.items()}
        try:
            self.nursery = Nursery(ends, [parent for parent, _ in pipes.values()],
                                   self._worker_main)
        except BaseException:
            for parent, _ in pipes.values():
                parent.close()
            raise
        finally:
            for child in ends.values():
                child.close()
        for worker, (parent, _) in pipes.items():
            self._add(worker, parent)

    def _add(self, worker: int, conn: Connection) -> None:
        self.connections[worker] = conn
        self.alive.add(worker)
        self._watch(worker)

    def send(self, worker: int, message: ToWorker) -> bool:
        """Send ``message``; False (and the worker counts as dead) if it cannot."""
        if worker not in self.alive:
            return False
        if not send_timed(self.connections[worker], message, self.timeline):
            self._lost(worker)
            return False
        return True

    def receive(self, timeout: float | None) -> list[FromWorker]:
        """Messages that arrived within ``timeout`` (None: wait for at least one).

        A worker found dead yields :class:`Dead` once. One ``poll(2)`` set, kept
        for the pool's life, watches every pipe and process sentinel: the
        coordinator asks between any two of its own transactions, and building
        a selector per call (``multiprocessing.connection.wait``) cost ten times
        the system call itself.
        """
        if not self.alive:
            return []
        start = time.perf_counter()
        ready = self._poller.poll(-1 if timeout is None else timeout * 1000)
        # a zero timeout is a poll between two in-process transactions, not a wait
        start = self.timeline.add(Activity.WAIT if timeout != 0 else Activity.MESSAGE,
                                  start)
        out: list[FromWorker] = []
        dead: set[int] = set()
        while ready:
            for fd, _ in ready:
                worker = self._watched[fd]
                if worker in dead:
                    continue
                process = self.processes.get(worker)
                if process is not None and fd == process.sentinel:
                    if not process.is_alive():
                        out.extend(self._drain(worker, dead))
                        dead.add(worker)
                    continue
                try:  # one message now; the next poll says whether more wait
                    out.append(self.connections[worker].recv())
                except (EOFError, OSError):
                    dead.add(worker)
            for worker in dead:
                self._lost(worker)  # unwatched: the next poll passes over it
            ready = self._poller.poll(0)
        out.extend(Dead(worker) for worker in sorted(dead))
        self.timeline.add(Activity.MESSAGE, start)
        return out

    def _drain(self, worker: int, dead: set[int]) -> list[FromWorker]:
        """What a worker found dead had sent before it died."""
        conn = self.connections[worker]
        out: list[FromWorker] = []
        try:
            while conn.poll(0):
                out.append(conn.recv())
        except (EOFError, OSError):
            dead.add(worker)
        return out

    def _watch(self, worker: int) -> None:
        """Watch the worker's pipe, and its process sentinel where the coordinator
        forked it (a worker of the nursery's is found dead by its pipe closing)."""
        process = self.processes.get(worker)
        for fd in [self.connections[worker].fileno()] + \
                ([process.sentinel] if process is not None else []):
            self._poller.register(fd, select.POLLIN)
            self._watched[fd] = worker

    def _unwatch(self, worker: int) -> None:
        for fd, owner in list(self._watched.items()):
            if owner == worker:
                self._poller.unregister(fd)
                del self._watched[fd]

    def _lost(self, worker: int) -> None:
        self.alive.discard(worker)
        self._unwatch(worker)

    def stop(self) -> None:
        """Kill every worker, without waiting for them to go (see :meth:`close`).

        Killed, not asked to stop: once the block's last transaction is
        committed, whatever a worker still has queued is for transactions
        already committed, and a worker holds nothing to clean up (its pipe ends
        close with it). The kernel's teardown of a forked process takes ~17 ms
        here (mainnet 6196166, timed) and runs beside whatever the coordinator
        does next -- the block's merge -- instead of before it.
        """
        for process in self.processes.values():
            if process.exitcode is None:
                process.kill()
        if self.nursery is not None:
            self.nursery.stop()
        self.alive.clear()

    def close(self) -> None:
        """Stop every worker and reap the processes."""
        self.stop()
        for process in self.processes.values():
            process.join(timeout=2)
        if self.nursery is not None:
            self.nursery.close()
        for conn in self.connections.values():
            try:
                conn.close()
            except OSError:
                pass
        self.alive.clear()


def _read_at(mv: MVMemory, txn: int, key: Key) -> Any:
    """``mv.read`` as transaction ``txn`` sees it (a picklable-free partial)."""
    return mv.read(key, txn)
