"""The parallel engine and the cyclic collector: each block starts from a collected
heap once it has grown, freezes it for the block (the forked workers then copy
fewer pages), and leaves a freeze made by someone else alone."""
from __future__ import annotations

import gc
import weakref

import pytest
from eth.vm.forks import CancunVM

from pevm.engines import parallel
from pevm.engines.parallel import ParallelEngine
from tests.parallel_support import MIXED, assert_same, build_block, import_block, reference


class _Cycle:
    """An object in a reference cycle: only a full collection frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector_off():
    """The automatic collector off, so that only the engine's collections count."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_the_engine_collects_what_earlier_blocks_left_once_the_heap_grew(
        monkeypatch, collector_off):
    monkeypatch.setattr(parallel._Heap, "collected_at", None)
    assert not parallel.collect_if_grown()           # the first block takes the measure
    garbage = weakref.ref(_Cycle())
    assert garbage() is not None
    assert not parallel.collect_if_grown(growth=1e9)  # not grown that much: left alone
    assert garbage() is not None
    assert parallel.collect_if_grown(growth=0.5)      # grown: collected
    assert garbage() is None


def test_a_block_starts_by_collecting_a_grown_heap_before_it_freezes_it(
        monkeypatch, collector_off):
    # the engine freezes the heap for each block: garbage frozen with it would be
    # kept through the block, and a frozen heap never gets a full collection
    monkeypatch.setattr(parallel._Heap, "collected_at", 1)  # it has grown since
    garbage = weakref.ref(_Cycle())
    block = build_block(CancunVM, MIXED)
    got = import_block(CancunVM, block, ParallelEngine(workers=1))
    assert_same(reference(CancunVM, block), got)
    assert garbage() is None
    assert parallel._Heap.collected_at > 1


def test_a_heap_someone_else_froze_stays_frozen_through_a_block(collector_off):
    # a server that froze its heap before forking keeps it frozen: the engine's
    # own freeze would end in a gc.unfreeze() that undid theirs
    def frozen(obj: object) -> bool:  # the collector lists every object but those
        return all(o is not obj for o in gc.get_objects())

    block = build_block(CancunVM, MIXED)
    theirs = _Cycle()
    gc.freeze()
    try:
        assert frozen(theirs) and not parallel.heap_freezable()
        got = import_block(CancunVM, block, ParallelEngine(workers=1))
        assert frozen(theirs)  # the engine's block did not unfreeze it
    finally:
        gc.unfreeze()
    assert not frozen(theirs)  # the check can tell
    assert_same(reference(CancunVM, block), got)


def test_the_interpreter_s_own_frozen_objects_do_not_stop_the_engine_freezing(
        monkeypatch, collector_off):
    # CPython 3.12 starts with its static types' tuples frozen (375 on 3.12.1):
    # read as someone else's freeze, the engine never froze a block there
    gc.freeze()
    try:
        monkeypatch.setattr(parallel, "INTERPRETER_FROZEN", gc.get_freeze_count())
        assert parallel.heap_freezable()
        seen: list[int] = []
        monkeypatch.setattr(parallel.gc, "freeze",
                            lambda: seen.append(gc.get_freeze_count()))
        block = build_block(CancunVM, MIXED)
        got = import_block(CancunVM, block, ParallelEngine(workers=1))
    finally:
        gc.unfreeze()
    assert seen  # the engine froze the block's heap
    assert_same(reference(CancunVM, block), got)
