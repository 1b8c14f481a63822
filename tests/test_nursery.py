"""The nursery forks workers for the coordinator, and kills and reaps them."""
from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import Connection

import pytest

from pevm.engines.nursery import BROOD, Nursery, forks_until_up, split_brood

#: enough workers for broods of broods (BROOD 4: 11 -> 6 + 3 + 2)
MANY = 11


def _echo(end: Connection, worker: int) -> None:
    """A worker that says who it is, then answers each message until told to go."""
    end.send((worker, os.getpid(), os.getppid()))
    while (message := end.recv()) is not None:
        end.send((worker, message))


def _start(workers: int) -> tuple[Nursery, dict[int, Connection]]:
    pipes = {w: multiprocessing.Pipe(duplex=True) for w in range(workers)}
    nursery = Nursery({w: child for w, (_, child) in pipes.items()},
                      [parent for parent, _ in pipes.values()], _echo)
    for _, child in pipes.values():
        child.close()
    return nursery, {w: parent for w, (parent, _) in pipes.items()}


def _nurseries(workers) -> int:
    broods, _ = split_brood(workers)
    return 1 + sum(_nurseries(brood) for brood in broods)


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


def test_a_brood_is_split_in_halves_until_a_nursery_forks_few_workers_itself():
    assert split_brood(range(BROOD)) == ([], list(range(BROOD)))
    broods, own = split_brood(range(15))
    assert broods == [list(range(7, 15)), [3, 4, 5, 6]] and own == [0, 1, 2]
    # the last of 15 workers is up 6 forks after the first nursery, not 15
    assert forks_until_up(BROOD) == [1, 2, 3, 4]
    assert max(forks_until_up(15)) == 6 and sorted(set(forks_until_up(15))) == [3, 4, 5, 6]


@pytest.mark.parametrize("workers", [3, MANY])
def test_workers_answer_on_their_own_pipes_and_are_reaped_at_close(workers):
    nursery, conns = _start(workers)
    pids, parents = {}, set()
    for worker, conn in conns.items():
        got_worker, pids[worker], parent = conn.recv()
        parents.add(parent)
        assert got_worker == worker
        conn.send(f"to {worker}")
        assert conn.recv() == (worker, f"to {worker}")
    assert len(set(pids.values())) == workers
    assert nursery.pid not in pids.values() and os.getpid() not in parents
    assert len(parents) == _nurseries(range(workers))  # every nursery forked a worker
    nursery.close()
    assert all(_gone(pid) for pid in pids.values())
    assert all(_gone(pid) for pid in parents)
    with pytest.raises(ChildProcessError):
        os.waitpid(nursery.pid, os.WNOHANG)  # reaped already by close
    nursery.close()  # twice is harmless


@pytest.mark.parametrize("workers", [2, MANY])
def test_stop_kills_workers_busy_or_not_and_their_pipes_close(workers):
    nursery, conns = _start(workers)
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
    nursery, conns = _start(MANY)
    report.send([pid for conn in conns.values() for pid in conn.recv()[1:]])
    os._exit(0)


def test_the_workers_go_when_the_coordinator_dies_without_closing():
    """The control pipe closes with the coordinator, however it dies: the nursery
    then kills and reaps its workers."""
    ours, theirs = multiprocessing.Pipe()
    coordinator = multiprocessing.get_context("fork").Process(
        target=_orphaning_coordinator, args=(theirs,))
    coordinator.start()
    pids = ours.recv()  # the workers' and the nurseries'
    coordinator.join(timeout=10)
    assert coordinator.exitcode == 0
    assert all(_gone(pid) for pid in pids)
