"""The nursery forks workers for the coordinator, and kills and reaps them."""
from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import Connection

import pytest

from pevm.engines.nursery import Nursery


def _echo(end: Connection, worker: int) -> None:
    """A worker that says who it is, then answers each message until told to go."""
    end.send((worker, os.getpid()))
    while (message := end.recv()) is not None:
        end.send((worker, message))


def _start(workers: int) -> tuple[Nursery, dict[int, Connection]]:
    pipes = {w: multiprocessing.Pipe(duplex=True) for w in range(workers)}
    nursery = Nursery({w: child for w, (_, child) in pipes.items()},
                      [parent for parent, _ in pipes.values()], _echo)
    for _, child in pipes.values():
        child.close()
    return nursery, {w: parent for w, (parent, _) in pipes.items()}


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether process ``pid`` no longer exists (reaped, not a zombie)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def test_workers_answer_on_their_own_pipes_and_are_reaped_at_close():
    nursery, conns = _start(3)
    pids = {}
    for worker, conn in conns.items():
        got_worker, pids[worker] = conn.recv()
        assert got_worker == worker
        conn.send(f"to {worker}")
        assert conn.recv() == (worker, f"to {worker}")
    assert len(set(pids.values())) == 3
    assert nursery.pid not in pids.values()
    nursery.close()
    assert all(_gone(pid) for pid in pids.values())
    assert _gone(nursery.pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(nursery.pid, os.WNOHANG)  # reaped already by close
    nursery.close()  # twice is harmless


def test_stop_kills_workers_busy_or_not_and_their_pipes_close():
    nursery, conns = _start(2)
    for conn in conns.values():
        conn.recv()
    nursery.stop()
    for conn in conns.values():
        with pytest.raises(EOFError):  # killed: nothing more comes, the pipe closes
            conn.recv()
    nursery.close()


def test_a_worker_that_exits_reads_as_a_closed_pipe_at_once():
    """The coordinator finds a dead worker by its pipe: nobody else holds the
    worker's end (not the nursery, not the other workers)."""
    nursery, conns = _start(3)
    for conn in conns.values():
        conn.recv()
    conns[1].send(None)  # worker 1 returns, and its process exits
    assert conns[1].poll(10)
    with pytest.raises(EOFError):
        conns[1].recv()
    conns[2].send("still here")
    assert conns[2].recv() == (2, "still here")
    nursery.close()


def _orphaning_coordinator(report: Connection) -> None:
    """A coordinator that starts a nursery and dies without closing it."""
    nursery, conns = _start(2)
    report.send([conn.recv()[1] for conn in conns.values()])
    os._exit(0)


def test_the_workers_go_when_the_coordinator_dies_without_closing():
    """The control pipe closes with the coordinator, however it dies: the nursery
    then kills and reaps its workers."""
    ours, theirs = multiprocessing.Pipe()
    coordinator = multiprocessing.get_context("fork").Process(
        target=_orphaning_coordinator, args=(theirs,))
    coordinator.start()
    pids = ours.recv()
    coordinator.join(timeout=10)
    assert coordinator.exitcode == 0
    assert all(_gone(pid) for pid in pids)
