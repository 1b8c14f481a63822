"""The nursery: the processes that fork a block's workers for the coordinator.

A fork copies the forking process's page tables, so it costs in proportion to the
process's memory: 5-7 ms a fork of the coordinator on the 16-core device, 14 ms
for a 760 MB process on the 2-core VM. Forked by the coordinator one after the
other, 15 workers took 84-112 ms of the coordinator's time, and the coordinator's
in-order validation and commit is the block's critical path. Forked once, the
nursery forks the workers while the coordinator goes on with the block: their
pipes exist before the nursery does, so the coordinator queues each worker's first
chunks at once and the worker reads them when it is up.

One process forking 15 workers in turn still left the last one up 16 forks after
the first (on the device, the workers' idle time grew by ~7 ms a worker index).
So a nursery forks at most :data:`BROOD` workers itself: a larger brood is split
(:func:`split_brood`), the upper half going to a nursery of its own, forked first,
which splits it again where still larger. Forks then run side by side in several
processes, and 15 workers are all up 7 forks after the first nursery
(:func:`forks_until_up`, which the simulation's start follows).

Every worker is a nursery's child, never the coordinator's, so the coordinator
never has orphans to reap. Their lifetime hangs on a control pipe: the coordinator
holds its only write end, every nursery its read end, and when the coordinator
closes it (:meth:`Nursery.stop` at the block's end, or the coordinator's own death)
each nursery kills its workers, reaps them and its own nurseries (which do the
same), and exits; the coordinator reaps the first nursery (:meth:`Nursery.close`).
A worker that dies early stays a zombie until then. A worker, or a brood, that a
nursery cannot fork has its pipes closed unopened, which the coordinator reads as
those workers' deaths (:class:`~pevm.engines.workers.Dead`).
"""
from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection

#: The most workers one nursery forks itself (see the module's docstring). With
#: NURSERY_FROM (:mod:`pevm.engines.workers`) at 4, a nursery of 4 or fewer
#: workers forks them all, as one process did before broods were split.
BROOD = 4


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


def split_brood(workers: Sequence[int]) -> tuple[list[list[int]], list[int]]:
    """What one nursery does with ``workers``: the broods it hands to nurseries of
    their own, in the order it forks those, and the workers it then forks itself
    (at most :data:`BROOD`)."""
    broods: list[list[int]] = []
    own = list(workers)
    while len(own) > BROOD:
        half = len(own) // 2
        broods.append(own[half:])
        own = own[:half]
    return broods, own


def forks_until_up(workers: int) -> list[int]:
    """For each of ``workers`` workers started through a nursery, after how many
    forks one after the other it is up, counted from the first nursery being up
    (with no brood split, worker ``w`` after ``w + 1``)."""
    up = [0] * workers

    def place(brood: Sequence[int], start: int) -> None:
        broods, own = split_brood(brood)
        for i, sub in enumerate(broods):
            place(sub, start + i + 1)
        for j, worker in enumerate(own):
            up[worker] = start + len(broods) + j + 1

    place(range(workers), 0)
    return up


def _nurse(control: int, ends: dict[int, Connection],
           worker_main: Callable[[Connection, int], None]) -> None:
    """A nursery's life: fork its broods' nurseries, then its own workers; wait
    for the control pipe to close; kill its workers; reap them and its nurseries
    (which kill and reap theirs on the same signal)."""
    broods, own = split_brood(list(ends))
    workers: list[int] = []
    nurseries: list[int] = []
    for brood in broods:
        mine = {worker: ends[worker] for worker in brood}
        pid = _fork(ends, mine, lambda mine=mine: _nurse(control, mine, worker_main))
        if pid is not None:
            nurseries.append(pid)
    for worker in own:
        end = ends[worker]

        def life(end: Connection = end, worker: int = worker) -> None:
            os.close(control)
            worker_main(end, worker)

        pid = _fork(ends, {worker: end}, life)
        if pid is not None:
            workers.append(pid)
    while os.read(control, 1):  # returns b"" once the coordinator's end closes
        pass
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in workers + nurseries:
        os.waitpid(pid, 0)


def _fork(ends: dict[int, Connection], keep: dict[int, Connection],
          life: Callable[[], None]) -> int | None:
    """Fork a child that keeps the pipe ends ``keep`` (of this nursery's ``ends``)
    and lives ``life``; here those ends close. None where the fork failed: the
    coordinator then reads those workers as dead."""
    try:
        pid = os.fork()
    except OSError:
        pid = None
    if pid == 0:
        code = 1
        try:
            for worker, end in ends.items():
                if worker not in keep:
                    end.close()
            life()
            code = 0
        except BaseException:  # noqa: BLE001 - reported; the child exits 1
            traceback.print_exc()
        finally:
            os._exit(code)
    for end in keep.values():
        end.close()
    return pid
