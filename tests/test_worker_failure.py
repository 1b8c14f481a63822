"""Workers that die mid-block: their work is redone; all dead is an EngineFailure.

``workers=N`` forks N - 1 worker processes (the coordinator is the N-th executor),
numbered from 0."""
from __future__ import annotations

import pytest
from eth.vm.forks import CancunVM

from pevm.engines.hooks import FaultHooks
from pevm.engines.parallel import ParallelEngine
from pevm.engines.workers import NURSERY_FROM
from pevm.errors import EngineFailure
from tests.parallel_support import Intent, assert_same, import_block, module_block

INTENTS = [Intent(kind, 1 + i % 7, i % 3, 1 + i % 2)
           for i, kind in enumerate(["incr", "transfer", "read_coinbase", "incr",
                                     "nested_revert", "transfer"] * 6)]

block, want = module_block(CancunVM, INTENTS)


@pytest.mark.parametrize("workers", [4, 2 + NURSERY_FROM],
                         ids=["forked-by-the-coordinator", "forked-by-the-nursery"])
@pytest.mark.parametrize("kill", [{0: 1}, {1: 1}, {0: 1, 2: 1}])
def test_a_dying_worker_s_work_is_redone(block, want, kill, workers):
    engine = ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=0,
                            chunk_size=3, hooks=FaultHooks(kill_worker=kill),
                            fit_workers=False)
    got = import_block(CancunVM, block, engine)
    assert_same(want, got, str(kill))
    # Only the workers told to die died, and worker 0 for sure when it was told
    # to: the first dispatch fills worker 0's queue first, and the coordinator
    # waits on its first chunk. Whether it noticed a later one's death before it
    # had redone that worker's transactions in-process (it does not wait on a
    # chunk that started ahead of the commit point while speculation conflicts)
    # depends on timing under load: not asserted.
    dead = engine.last_detail.dead_workers
    assert set(dead) <= set(kill)
    if 0 in kill:
        assert 0 in dead


@pytest.mark.parametrize("kill", [{1: 2}, {0: 3, 1: 2}])
def test_a_worker_dying_later_in_the_block(block, want, kill):
    # whether it gets that far depends on scheduling; the result never does
    engine = ParallelEngine(workers=4, min_parallel_txs=2, fork_after=0, chunk_size=2,
                            hooks=FaultHooks(kill_worker=kill))
    assert_same(want, import_block(CancunVM, block, engine), str(kill))
    assert set(engine.last_detail.dead_workers) <= set(kill)


def test_a_worker_dying_under_random_delays(block, want):
    engine = ParallelEngine(workers=3, min_parallel_txs=2, fork_after=0, chunk_size=2,
                            hooks=FaultHooks(kill_worker={1: 3}, delay=0.003, seed=3))
    assert_same(want, import_block(CancunVM, block, engine))


@pytest.mark.parametrize("workers", [2, 1 + NURSERY_FROM])
def test_every_worker_dying_is_an_engine_failure(block, workers):
    # A coordinator that only validates leaves every transaction to the workers, so
    # each of them is sent a chunk and dies of it; one that executes ahead could
    # finish the block before the nursery's last worker was fed, and a worker that
    # never had work never dies.
    engine = ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=0,
                            chunk_size=3, fit_workers=False, coordinator_executes=False,
                            hooks=FaultHooks(kill_worker={w: 1 for w in range(workers)}))
    with pytest.raises(EngineFailure):
        import_block(CancunVM, block, engine)


def test_kill_hook_from_the_environment(block, want):
    hooks = FaultHooks.from_environment({"PEVM_TEST_KILL_WORKER": "0:1"})
    assert hooks.kill_worker == {0: 1}
    engine = ParallelEngine(workers=3, min_parallel_txs=2, fork_after=0, chunk_size=4,
                            hooks=hooks)
    got = import_block(CancunVM, block, engine)
    assert_same(want, got)
    # The hook took effect: worker 0 died on its first chunk (how many of that
    # chunk's transactions still counted as lost depends on timing: not asserted).
    assert engine.last_detail.dead_workers == [0]



@pytest.mark.parametrize("kill", [{0: 1}, {0: 2}])
def test_a_sender_pipeline_s_worker_dying_never_gives_a_wrong_block(block, want, kill):
    # The pipeline's one worker dies on its first or second batch of senders. The
    # coordinator never waits for it -- it recovers a missing sender itself -- so
    # whether it notices the death before the block's end is timing: noticed, it
    # is an EngineFailure (every worker dead, as for speculation); not, the block
    # is py-evm's. Anything else -- a wrong block, another error -- fails.
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0,
                            sender_pipeline=True, hooks=FaultHooks(kill_worker=kill))
    try:
        got = import_block(CancunVM, block, engine)
    except EngineFailure as failure:
        assert "died" in str(failure)
    else:
        assert_same(want, got, str(kill))
        assert engine.last_detail.sender_pipeline
