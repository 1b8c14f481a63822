"""The sender pipeline's worker as one process that outlives the block.

A sender pipeline (:func:`~pevm.engines.cost_model.pipeline_pays`) needs its one
worker only to recover senders, and recovering a sender needs no state: only the
transaction. Forking that worker per block, as speculation's workers are, costs
the coordinator the fork and, while the worker lives, a copy of every page the
two share that it writes (~2,900 minor faults a block on 1,000 transfers, at
~2.5 us each). So the pipeline's worker is a :class:`RecoveryHelper`: forked by
the first block that runs as a pipeline, kept for every later one, and sent with
each batch of senders to recover the batch's transactions. A transaction whose
encoding py-evm has cached (a mainnet snapshot's, and most typed transactions')
travels as that encoding and its kind (:func:`~pevm.engines.senders.sender_encoding`):
the helper cuts the signing message and the signature from the bytes itself
(:func:`~pevm.engines.senders.recover_encoded`, the same sender as
:func:`~pevm.engines.senders.recover_sender`, checked against it by the tests),
where decoding them through py-evm (~30 us) let it fall behind (session 48).
Pickling the bytes takes the coordinator 0.1-0.5 ms a block where the objects
took 3-4 ms (session 52: its message time 7.5-8.9 -> 4.5 ms on 1,000 generated
withdrawals, 3.0-3.2 -> 1.8-2.2 ms on mainnet 11814555; the blocks 1-2% faster,
paired). Any other transaction travels as the object, pickled (~3 us; encoding an
uncached legacy one would take ~15 us), and the helper recovers it with
:func:`~pevm.engines.senders.recover_sender`. Measured against the per-block
worker (``pevm bench ... --variant persistent_helper=false``, 2 workers, transaction phase;
docs/results.md, session 48), it was 5-15% faster on 1,000 transfers, 1,000
withdrawals, the hot spot and mainnet 5891667 and 11814555.

:class:`HelperPool` gives the coordinator's :class:`~pevm.engines.feed.WorkerFeed`
the helper behind :class:`~pevm.engines.workers.WorkerPool`'s interface, as
worker 0: it answers :class:`~pevm.engines.workers.Recover` with
:class:`~pevm.engines.workers.Senders`, reports its death as
:class:`~pevm.engines.workers.Dead` (the block then fails or finishes as with a
forked worker, and the next block forks a new helper), and leaves the helper
running when the block ends. Each block gets a new generation number, and an
answer from an earlier block's generation (a batch still in the pipe when that
block ended) is dropped.

One helper serves a process (:func:`helper`): a process forked from the
coordinator -- a worker, a job -- gets its own if it ever runs a pipeline, never
its parent's. The helper is a daemon process: it exits with the coordinator, or
when its pipe closes (:meth:`RecoveryHelper.close`). What it costs to keep: the
memory of the heap it was forked from, shared with the coordinator until the
coordinator's copy of a page changes. ``ParallelEngine(persistent_helper=False)``
forks a worker per pipelined block instead.
"""
from __future__ import annotations

import os
import pickle
import select
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from pevm.engines.executor import BlockContext
from pevm.engines.hooks import FaultHooks
from pevm.engines.senders import recover_encoded, recover_sender, sender_encoding
from pevm.engines.timeline import Activity, Timeline, minor_page_faults
from pevm.engines.workers import (Dead, FromWorker, Recover, Senders, ToWorker,
                                  fork_process, send_timed)


class RecoveryHelper:
    """One persistent process that recovers senders (see the module docstring)."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.process: Any = None
        #: the process that forked it: only that one may talk to it
        self.owner = 0
        #: the current block's number: answers carry it
        self.generation = 0

    def ensure(self) -> None:
        """Fork the helper unless this process has a live one. Raises ``OSError``
        (out of processes or memory) as a worker's fork would."""
        if self.owner == os.getpid() and self.process is not None \
                and self.process.is_alive():
            return
        if self.owner == os.getpid():
            self.close()
        else:  # inherited from the process that forked this one: not ours
            self.conn = self.process = None
        self.process, self.conn = fork_process(_helper_main, (), "pevm-recovery-helper")
        self.owner = os.getpid()

    def close(self) -> None:
        """Stop the helper and reap it (the next pipelined block forks another)."""
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        if self.process is not None and self.owner == os.getpid():
            if self.process.exitcode is None:
                self.process.kill()
            self.process.join(timeout=2)
        self.conn = self.process = None


_HELPER: RecoveryHelper | None = None


def helper() -> RecoveryHelper:
    """This process's helper (forked at its first use, :meth:`RecoveryHelper.ensure`)."""
    global _HELPER
    if _HELPER is None:
        _HELPER = RecoveryHelper()
    return _HELPER


def _helper_main(conn: Connection) -> None:
    """The helper's loop: a block's start, then batches of transactions to recover."""
    generation, kill_at, received, faults = 0, 0, 0, 0
    timeline = Timeline()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the coordinator is gone, or closed the pipe
        if message[0] == "block":
            _, generation, kill_at, tracing = message
            received, faults = 0, minor_page_faults()
            timeline = Timeline(tracing=tracing)
            continue
        _, asked, items = message
        received += 1
        if kill_at == received:
            os._exit(86)  # fault hook: die holding work
        cpu = time.process_time()
        senders: list[tuple[int, bytes | None]] = []
        for txn, item in items:
            start = time.perf_counter()
            if type(item) is tuple:  # (kind, encoding): senders.sender_encoding
                try:
                    sender = recover_encoded(*item)
                except (ValueError, IndexError):
                    continue  # a shape it does not know: the coordinator recovers it
            else:
                sender = recover_sender(item)
            senders.append((txn, sender))
            timeline.add(Activity.RECOVER, start, txn=txn)
        conn.send((asked, Senders(0, senders, time.process_time() - cpu,
                                  timeline.take(), minor_page_faults() - faults)))


def wire_form(tx: Any) -> Any:
    """``tx`` as the helper is sent it: its encoding and kind where py-evm has the
    encoding at hand (:func:`~pevm.engines.senders.sender_encoding`), else the
    object. The simulation's profile prices the same form."""
    return sender_encoding(tx, cached_only=True) or tx


class HelperPool:
    """:class:`~pevm.engines.workers.WorkerPool`'s interface for a sender
    pipeline's one worker, on this process's :class:`RecoveryHelper`."""

    def __init__(self, ctx: BlockContext, hooks: FaultHooks) -> None:
        self.ctx = ctx
        self.timeline = ctx.timeline
        self.hooks = hooks
        self.alive: set[int] = set()
        self.generation = 0
        self.helper = helper()
        #: answers made here, not by the helper (see :meth:`send`)
        self._local: list[FromWorker] = []

    def start(self, workers: int) -> Iterator[list[int]]:
        """Worker 0 is the helper, forked if this process has none alive."""
        if workers != 1:
            raise ValueError(f"a sender pipeline has one worker, not {workers}")
        self.helper.ensure()
        self.helper.generation += 1
        self.generation = self.helper.generation
        self.alive = {0}
        if not self.send_raw(("block", self.generation, self.hooks.kill_worker.get(0, 0),
                              self.timeline.tracing)):
            raise OSError("the sender-recovery helper died at the block's start")
        yield [0]

    def send(self, worker: int, message: ToWorker) -> bool:
        """Send a :class:`Recover` with its transactions, each in its
        :func:`wire_form`; False if the helper is gone."""
        if worker not in self.alive:
            return False
        if not isinstance(message, Recover):
            raise TypeError(f"the sender-recovery helper runs no {type(message).__name__}")
        transactions = self.ctx.transactions
        try:
            return self.send_raw(("recover", self.generation, [
                (txn, wire_form(transactions[txn])) for txn in message.txns]))
        except (pickle.PicklingError, TypeError, AttributeError):
            # a transaction that does not pickle (nothing py-evm makes today):
            # an empty answer frees the helper for the next batch, and the
            # coordinator recovers these senders itself when it reaches them
            self._local.append(Senders(0, [], 0.0, ({}, []), 0))
            return True

    def send_raw(self, message: tuple[Any, ...]) -> bool:
        """Send ``message`` (pickled first, so a message that does not pickle
        raises before anything is written); False if the helper is gone."""
        assert self.helper.conn is not None
        if not send_timed(self.helper.conn, message, self.timeline):
            self.alive.clear()
            return False
        return True

    def receive(self, timeout: float | None) -> list[FromWorker]:
        """This block's answers that arrived within ``timeout`` (None: wait for
        one); :class:`Dead` once where the helper died."""
        if not self.alive:
            return []
        conn, process = self.helper.conn, self.helper.process
        assert conn is not None and process is not None
        watched = [conn.fileno(), process.sentinel]
        local, self._local = self._local, []
        if local:
            timeout = 0
        start = time.perf_counter()
        ready = select.select(watched, [], [], timeout)[0]
        start = self.timeline.add(Activity.WAIT if timeout != 0 else Activity.MESSAGE,
                                  start)
        out: list[FromWorker] = local
        try:
            while conn.poll(0):
                generation, senders = conn.recv()
                if generation == self.generation:  # not a late answer to a past block
                    out.append(senders)
        except (EOFError, OSError):
            ready = [process.sentinel]
        if process.sentinel in ready and not process.is_alive():
            self.alive.clear()
            out.append(Dead(0))
        self.timeline.add(Activity.MESSAGE, start)
        return out

    def stop(self) -> None:
        """The block is done: the helper stays for the next one."""
        self.alive.clear()

    def close(self) -> None:
        """As :meth:`stop`; a helper found dead is reaped now."""
        self.alive.clear()
        if self.helper.process is not None and not self.helper.process.is_alive():
            self.helper.close()
