"""The sender pipeline's worker as one process kept between blocks
(pevm/engines/recovery_helper.py): the same blocks as py-evm, block after block,
whatever happens to the helper between them."""
from __future__ import annotations

import multiprocessing
import os
import signal

from eth.vm.forks import CancunVM

from pevm.engines.parallel import ParallelEngine
from pevm.engines.feed import WorkerFeed
from pevm.engines.hooks import FaultHooks
from pevm.engines.recovery_helper import HelperPool, helper
from pevm.engines.sender_batches import WARM_UP_SENDER_BATCH, warm_up_senders
from pevm.engines.senders import sender_encoding
from pevm.engines.timeline import Trace
from pevm.engines.workers import Recover, Senders
from tests.parallel_support import (Intent, assert_same, fresh_copy, import_block,
                                    module_block)

#: transfers between funded keys, some to each other; enough that the helper's
#: first senders arrive before the block ends on a busy machine (see
#: test_parallel_engine's pipeline test)
INTENTS = [Intent("transfer", 1 + i % 7, (i * 3) % 16, i % 3) for i in range(480)]

block, want = module_block(CancunVM, INTENTS)


def _pipeline(**options) -> ParallelEngine:
    return ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0,
                          sender_pipeline=True, **options)


def _helper_pid() -> int | None:
    process = helper().process
    return process.pid if process is not None and process.is_alive() else None


def test_one_helper_serves_block_after_block(block, want):
    engine = _pipeline()
    pids = []
    for _ in range(3):
        got = import_block(CancunVM, fresh_copy(block), engine)
        assert_same(want, got)
        detail = engine.last_detail
        assert detail.sender_pipeline and detail.chunks == 0
        assert got.result.stats.workers == 2
        pids.append(_helper_pid())
    assert pids[0] is not None and pids == [pids[0]] * 3   # forked once, kept
    assert engine.last_detail.recover_workers_s > 0           # it recovered senders


def test_a_helper_killed_between_blocks_is_forked_again(block, want):
    engine = _pipeline()
    assert_same(want, import_block(CancunVM, fresh_copy(block), engine))
    before = _helper_pid()
    assert before is not None
    os.kill(before, signal.SIGKILL)
    helper().process.join(timeout=5)
    assert_same(want, import_block(CancunVM, fresh_copy(block), engine))
    after = _helper_pid()
    assert after is not None and after != before


def test_without_the_helper_the_pipeline_forks_its_worker_per_block(block, want):
    assert_same(want, import_block(CancunVM, fresh_copy(block), _pipeline()))
    kept = _helper_pid()
    engine = _pipeline(persistent_helper=False)
    got = import_block(CancunVM, fresh_copy(block), engine)
    assert_same(want, got)
    assert engine.last_detail.sender_pipeline
    assert engine.last_detail.worker_cpu_s[0] > 0   # a worker of its own recovered
    assert engine.last_detail.page_faults["worker 0"] > 0   # and copied pages
    assert _helper_pid() == kept                    # the helper was not asked


class _Context:
    """What a HelperPool reads of a block's context."""

    def __init__(self, transactions) -> None:
        from pevm.engines.timeline import Timeline
        self.transactions = transactions
        self.timeline = Timeline()


def test_an_answer_for_an_earlier_block_is_dropped(block):
    transactions = list(block.transactions)
    earlier = HelperPool(_Context(transactions), _pipeline().hooks)
    next(earlier.start(1))
    assert earlier.send(0, Recover([0, 1, 2]))
    earlier.stop()                        # that block ended with its batch in flight
    later = HelperPool(_Context(transactions), _pipeline().hooks)
    next(later.start(1))
    assert later.generation > earlier.generation
    assert later.send(0, Recover([3]))
    answers = []
    while not answers:
        answers = later.receive(None)
    assert len(answers) == 1 and isinstance(answers[0], Senders)
    assert [txn for txn, _ in answers[0].senders] == [3]
    assert answers[0].senders[0][1] == transactions[3].sender
    later.close()


def _child_helper(out) -> None:
    helper().ensure()
    out.send((os.getpid(), helper().owner, helper().process.pid))


def test_a_forked_process_never_talks_to_its_parent_s_helper(block):
    helper().ensure()
    parent_helper = _helper_pid()
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    child = context.Process(target=_child_helper, args=(theirs,))
    child.start()
    child_pid, owner, child_helper = mine.recv()
    child.join(timeout=10)
    assert owner == child_pid                    # the child forked its own helper
    assert child_helper not in (parent_helper, None)
    assert _helper_pid() == parent_helper        # and left the parent's alone


def test_a_transaction_that_does_not_pickle_is_left_to_the_coordinator(block):
    # nothing py-evm makes today fails to pickle; if one ever did, its batch gets
    # an empty answer (so the next batch can go) and no sender
    transactions = [lambda: None] + list(block.transactions)[1:]
    pool = HelperPool(_Context(transactions), _pipeline().hooks)
    next(pool.start(1))
    assert pool.send(0, Recover([0, 1]))
    answers = pool.receive(0)
    assert len(answers) == 1 and answers[0].senders == []
    assert pool.send(0, Recover([1]))       # the helper is still there
    answers = []
    while not answers:
        answers = pool.receive(None)
    assert answers[0].senders == [(1, block.transactions[1].sender)]
    pool.close()


def _uncached(tx):
    """A copy of typed ``tx`` without rlp's cached encoding (or pinned sender)."""
    inner = tx._inner
    fields = {name: getattr(inner, name) for name in type(inner)._meta.field_names}
    return type(tx)(tx.type_id, type(inner)(**fields))


def test_the_helper_recovers_transactions_with_or_without_their_cached_encoding(block):
    cached, plain = block.transactions[4], _uncached(block.transactions[5])
    # the first travels as its encoding, the second as the object
    assert sender_encoding(cached, cached_only=True) is not None
    assert sender_encoding(plain, cached_only=True) is None
    pool = HelperPool(_Context([cached, plain]), _pipeline().hooks)
    next(pool.start(1))
    assert pool.send(0, Recover([0, 1]))
    answers = []
    while not answers:
        answers = pool.receive(None)
    assert answers[0].senders == [(0, cached.sender), (1, block.transactions[5].sender)]
    pool.close()


def test_a_pipeline_leaves_the_senders_past_the_warm_up_to_its_helper(block, want):
    # speculation's workers start with one batch of senders recovered beyond the
    # warm-up's (for the hot-target prediction); a pipeline runs in order, and
    # its helper recovers those beside the coordinator instead
    warm_up = 8
    batches_end = warm_up_senders(warm_up, len(INTENTS)).stop - WARM_UP_SENDER_BATCH
    for pipeline, beyond in ((False, True), (True, False)):
        engine = ParallelEngine(workers=2, min_parallel_txs=2, sender_pipeline=pipeline,
                                hooks=FaultHooks(fork_at_tx=warm_up))
        engine.trace = Trace()
        assert_same(want, import_block(CancunVM, fresh_copy(block), engine))
        assert engine.last_detail.sender_pipeline == pipeline
        events = [e for e in engine.trace.events if e["ph"] == "X" and e["pid"] == 1]
        started = min(e["ts"] for e in events if e["name"] == "start workers")
        ahead = {e["args"]["tx"] for e in events
                 if e["name"] == "recover sender" and e["ts"] < started}
        assert ahead >= set(range(batches_end))  # the warm-up's own batches
        assert (max(ahead) >= batches_end) == beyond, (pipeline, max(ahead))


def test_a_pipeline_dispatches_only_after_taking_answers_in(block, want, monkeypatch):
    # the coordinator runs every transaction itself; only an answer from the
    # helper frees it for the next batch, so a dispatch between answers finds
    # nothing to send (it cost ~3 us a transaction)
    calls = {"dispatch": 0, "receive": 0}
    for name in calls:
        original = getattr(WorkerFeed, name)

        def counted(self, *args, _name=name, _original=original):
            calls[_name] += 1
            return _original(self, *args)
        monkeypatch.setattr(WorkerFeed, name, counted)
    engine = _pipeline()
    assert_same(want, import_block(CancunVM, fresh_copy(block), engine))
    assert engine.last_detail.sender_pipeline
    assert 0 < calls["dispatch"] <= calls["receive"] + 1, calls
