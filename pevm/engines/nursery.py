"""The nursery: one process that forks a block's workers for the coordinator.

A fork copies the forking process's page tables, so it costs in proportion to the
process's memory: 5-7 ms a fork of the coordinator on the 16-core device, 14 ms
for a 760 MB process on the 2-core VM. Forked by the coordinator one after the
other, 15 workers took 84-112 ms of the coordinator's time, and the coordinator's
in-order validation and commit is the block's critical path. Forked once, the
nursery forks the workers in turn while the coordinator goes on with the block:
their pipes exist before the nursery does, so the coordinator queues each worker's
first chunks at once and the worker reads them when it is up.

The workers are the nursery's children, never the coordinator's grandchildren, so
the coordinator never has orphans to reap. Their lifetime hangs on a control pipe:
the coordinator holds its write end, and when it closes it (:meth:`Nursery.stop`
at the block's end, or the coordinator's own death) the nursery kills its workers,
reaps them and exits; the coordinator reaps the nursery (:meth:`Nursery.close`).
A worker that dies early stays a zombie until then. A worker the nursery cannot
fork has its pipe closed unopened, which the coordinator reads as that worker's
death (:class:`~pevm.engines.workers.Dead`).
"""
from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection


class Nursery:
    """Fork the nursery, which forks one worker per entry of ``ends``.

    ``ends``: each worker's end of its pipe, by worker index; ``worker_main(end,
    worker)`` is a worker's life. ``coordinator_ends``: the coordinator's ends of
    the same pipes, closed in the nursery (a worker holding them would never see
    the coordinator go). Raises ``OSError`` where the nursery cannot be forked.
    """

    def __init__(self, ends: dict[int, Connection],
                 coordinator_ends: Iterable[Connection],
                 worker_main: Callable[[Connection, int], None]) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            raise
        if pid == 0:  # the nursery
            code = 1
            try:
                os.close(write)
                # Ctrl-C reaches the whole process group; the nursery outlives it
                # until the coordinator, which handles it, closes the control pipe
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                for end in coordinator_ends:
                    end.close()
                _nurse(read, ends, worker_main)
                code = 0
            finally:
                os._exit(code)
        os.close(read)
        self.pid = pid
        self._control: int | None = write

    def stop(self) -> None:
        """Have the nursery kill its workers and exit (without waiting for it)."""
        if self._control is not None:
            os.close(self._control)
            self._control = None

    def close(self) -> None:
        """:meth:`stop`, then reap the nursery (once its workers are reaped)."""
        self.stop()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped already
            pass


def _nurse(control: int, ends: dict[int, Connection],
           worker_main: Callable[[Connection, int], None]) -> None:
    """The nursery's life: fork the workers, wait for the control pipe to close,
    kill and reap them."""
    pids = []
    for worker, end in ends.items():
        try:
            pid = os.fork()
        except OSError:
            end.close()  # the coordinator reads this worker as dead
            continue
        if pid == 0:  # a worker
            code = 1
            try:
                os.close(control)
                for other, other_end in ends.items():
                    if other != worker:
                        other_end.close()
                worker_main(end, worker)
                code = 0
            except BaseException:  # noqa: BLE001 - reported; the worker exits 1
                traceback.print_exc()
            finally:
                os._exit(code)
        pids.append(pid)
        end.close()
    while os.read(control, 1):  # returns b"" once the coordinator's end closes
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        os.waitpid(pid, 0)
