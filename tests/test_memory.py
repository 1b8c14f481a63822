"""Peak memory of pevm and its worker processes together (pevm.memory)."""
from __future__ import annotations

import multiprocessing
import time

import pytest

from pevm.memory import PeakMemory, sample, supported

pytestmark = pytest.mark.skipif(not supported(),
                                reason="needs Linux /proc/<pid>/smaps_rollup")


def _hold(megabytes: int, seconds: float, ready) -> None:  # in a child process
    block = bytearray(megabytes * 2**20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1            # touch every page: resident, not shared
    ready.set()
    time.sleep(seconds)


def test_a_sample_sees_this_process() -> None:
    now = sample()
    assert now.processes >= 1
    assert 0 < now.pss <= now.rss


def test_the_peak_includes_child_processes_memory() -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    with PeakMemory(interval=0.01) as peak:
        before = sample()
        child = ctx.Process(target=_hold, args=(64, 0.3, ready))
        child.start()
        assert ready.wait(30)
        time.sleep(0.1)
        child.join()
    assert peak.result is not None
    assert peak.result.processes >= 2
    # the child's 64 MiB of private pages count once, on top of this process
    assert peak.result.pss >= before.pss + 60 * 2**20
    assert peak.result.rss >= peak.result.pss
