"""The warm-up in place: how the parallel engine's in-process start of a block
decides what runs the rest of it -- in-process, how many workers, where the warm-up
ends -- each import checked against py-evm. The rule of the warm-up's looks alone
is tests/test_warm_up.py."""
from __future__ import annotations

import pytest
from eth.vm.forks import CancunVM

from pevm.engines import cost_model, warm_up
from pevm.engines.hooks import FaultHooks
from pevm.engines.parallel import ParallelEngine
from tests.parallel_support import (MIXED, Intent, assert_same, build_block,
                                    import_block, import_checked, in_process_import,
                                    reference)


def test_workers_forked_after_an_in_process_warm_up_inherit_the_prefix():
    block = build_block(CancunVM, MIXED)
    want = reference(CancunVM, block)
    for fork_at in (1, 13, 37):
        engine = ParallelEngine(workers=2, min_parallel_txs=1, chunk_size=3,
                                hooks=FaultHooks(fork_at_tx=fork_at))
        got = import_block(CancunVM, block, engine)
        assert_same(want, got, f"warm-up {fork_at}")
        assert engine.last_detail.warm_up_txs == fork_at
        assert got.result.stats.workers == 2
    lazy = ParallelEngine(workers=2, min_parallel_txs=1, fork_after=60)
    got = import_block(CancunVM, block, lazy)
    assert_same(want, got)
    assert got.result.stats.workers == 1       # done before workers were worth it


def test_the_warm_up_ends_once_the_rest_of_the_block_is_clearly_long(monkeypatch):
    settled = cost_model.warm_up_settled
    k, work = cost_model.SETTLED_AFTER_TXS, cost_model.SETTLED_WORK_S
    assert not settled(k - 1, 10.0, slowness=1.0)   # too few to judge by
    assert settled(k, work, slowness=1.0)           # the rest: exactly the bar
    assert not settled(k, work * 0.99, slowness=1.0)
    assert not settled(k, work, slowness=2.0)       # the bar doubles on a slow machine
    # in the engine: with the bar at zero, a warm-up that would run for a minute
    # stops after the first k transactions, and the workers take the rest (this
    # small block's rest would not pay for them: that verdict is not tested here)
    monkeypatch.setattr(cost_model, "SETTLED_WORK_S", 0.0)
    monkeypatch.setattr(warm_up, "workers_that_pay", lambda *args, **kwargs: 2)
    block = build_block(CancunVM, MIXED)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=60)
    got = import_block(CancunVM, block, engine)
    assert_same(reference(CancunVM, block), got)
    assert engine.last_detail.warm_up_txs == k
    assert got.result.stats.workers == 2


def test_a_block_whose_warm_up_shows_workers_would_not_pay_stays_in_process(monkeypatch):
    asked = []  # (remaining, their in-process seconds, workers) per call

    def none_pay(remaining, work, workers, cores=None, slowness=None, kept=0,
                 kept_work=0.0):
        asked.append((remaining, work, workers))
        return 1

    # the warm-up settles after its first k transactions, whatever the clock says
    monkeypatch.setattr(cost_model, "SETTLED_WORK_S", 0.0)
    engine, got = in_process_import(monkeypatch, warm_up, "workers_that_pay", none_pay,
                                     fork_after=60, sender_pipeline=False)
    warm = engine.last_detail.warm_up_txs
    assert warm == cost_model.SETTLED_AFTER_TXS
    assert asked == [(len(MIXED) - warm, asked[0][1], 2)]
    assert asked[0][1] > 0
    assert "workers would not pay" in engine.last_detail.in_process_reason
    assert got.result.stats.to_json()["in_process_reason"] == \
        engine.last_detail.in_process_reason
    # no warm-up, no evidence: workers start as asked (the other tests rely on it)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0)
    assert import_block(CancunVM, build_block(CancunVM, MIXED),
                        engine).result.stats.workers == 2


def test_the_warm_ups_decisions_scale_by_the_speed_its_own_recoveries_show(monkeypatch):
    # the machine's speed is read from the block's recovered senders
    # (host.block_slowness) at each decision, not from the process's one probe:
    # what it reads is what the cost model is given and what the detail reports
    gauged, given = [], []

    def gauge(fastest_recovery_s, recovered):
        gauged.append((fastest_recovery_s, recovered))
        return 5.0

    def none_pay(remaining, work, workers, cores=None, slowness=None, kept=0,
                 kept_work=0.0):
        given.append(slowness)
        return 1

    monkeypatch.setattr(warm_up, "block_slowness", gauge)
    monkeypatch.setattr(cost_model, "SETTLED_WORK_S", 0.0)  # settles after k, by count
    engine, _ = in_process_import(monkeypatch, warm_up, "workers_that_pay", none_pay,
                                   fork_after=60, sender_pipeline=False)
    assert given == [5.0] and engine.last_detail.slowness == 5.0
    fastest, recovered = gauged[-1]  # the warm-up's batch recovered all 23 senders
    assert recovered == len(MIXED) and 0 < fastest < engine.last_detail.recover_coordinator_s


def _import_with_count(monkeypatch, intents, workers: int, count: int, **options):
    """Import ``intents`` at ``workers``, the warm-up ending at 8 transactions and
    the cost model answering ``count`` processes pay; it must equal py-evm. Returns
    the engine, the outcome and what the cost model was asked: (remaining, work,
    workers, kept, kept_work) per call."""
    asked = []

    def answer(remaining, work, workers, cores=None, slowness=None, kept=0,
               kept_work=0.0):
        asked.append((remaining, work, workers, kept, kept_work))
        return count

    monkeypatch.setattr(warm_up, "workers_that_pay", answer)
    monkeypatch.setattr(cost_model, "SETTLED_WORK_S", 0.0)
    block = build_block(CancunVM, intents)
    engine = ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=60, **options)
    got = import_block(CancunVM, block, engine)
    assert_same(reference(CancunVM, block), got)
    return engine, got, asked


def test_fewer_workers_start_where_more_would_not_pay(monkeypatch):
    # asked for 4 executing processes, the cost model says 2 pay: one worker is
    # forked, not three, and the result is py-evm's
    engine, got, asked = _import_with_count(monkeypatch, MIXED, workers=4, count=2)
    assert [call[2] for call in asked] == [4]
    assert got.result.stats.workers == 2
    detail = engine.last_detail
    assert len(detail.worker_cpu_s) == 1 and detail.dead_workers == []
    assert set(detail.breakdown) == {"coordinator", "worker 0"}
    # fit_workers=False: all that were asked for, once any pay
    engine, got, _ = _import_with_count(monkeypatch, MIXED, workers=4, count=2,
                                        fit_workers=False)
    assert got.result.stats.workers == 4 and len(engine.last_detail.worker_cpu_s) == 3


def test_a_costly_first_transaction_starts_no_more_processes_than_cores(monkeypatch):
    # the warm-up stops at once (a worker should run transaction 0), so nothing
    # tells how many pay: as many as asked start, up to the usable cores -- and a
    # fork point the caller set (fork_after 0) still starts every one asked for
    intents = [Intent(i.kind, i.sender, i.a, i.b, i.tip, gas=3_000_000 if n == 0 else 0)
               for n, i in enumerate(MIXED)]
    block = build_block(CancunVM, intents)
    want = reference(CancunVM, block)
    monkeypatch.setattr(cost_model, "usable_cores", lambda: 2)
    for options, started in ((dict(), 2), (dict(fit_workers=False), 4),
                             (dict(fork_after=0), 4)):
        engine = ParallelEngine(**{"workers": 4, "min_parallel_txs": 2, "fork_after": 60,
                                   **options})
        got = import_block(CancunVM, block, engine)
        assert_same(want, got, str(options))
        assert engine.last_detail.warm_up_txs == 0, options
        assert got.result.stats.workers == started, options
    monkeypatch.setattr(cost_model, "usable_cores", lambda: 1)
    engine = ParallelEngine(workers=4, min_parallel_txs=2, fork_after=60)
    got = import_block(CancunVM, block, engine)
    assert_same(want, got)
    assert got.result.stats.workers == 1
    assert engine.last_detail.in_process_reason == "one usable core: workers would not pay"


def test_a_warm_up_stopped_early_at_a_costly_transaction_starts_a_worker_for_it(
        monkeypatch):
    # the warm-up stops at a costly transaction so that a worker runs it; before
    # its first look (SETTLED_AFTER_TXS) the few transactions it ran do not say
    # that no worker pays -- the cost model's "1" is overruled -- after it they do
    def costly_at(k: int) -> list[Intent]:
        return [Intent(i.kind, i.sender, i.a, i.b, i.tip, gas=3_000_000 if n == k else 0)
                for n, i in enumerate(MIXED)]

    k = cost_model.SETTLED_AFTER_TXS
    engine, got, asked = _import_with_count(monkeypatch, costly_at(2), workers=2, count=1)
    assert engine.last_detail.warm_up_txs == 2 and len(asked) == 1
    assert got.result.stats.workers == 2
    assert engine.last_detail.in_process_reason == ""
    engine, got, asked = _import_with_count(monkeypatch, costly_at(k), workers=2, count=1)
    assert engine.last_detail.warm_up_txs == k and len(asked) == 1
    assert got.result.stats.workers == 1
    assert "workers would not pay" in engine.last_detail.in_process_reason


def test_a_short_blocks_rest_runs_in_process_looked_at_again_at_each_doubling(
        monkeypatch):
    # the warm-up would run for a minute; asked at 8 transactions whether workers
    # would pay for the rest (cost_model.clearly_short), it hears no: the rest runs
    # in-process, as 1 worker runs it, asked again only at 16 and 32 -- no to the
    # block's end, which never asks the final verdict
    asked = []

    def never(remaining, work, workers, *args, **kwargs):
        asked.append(remaining)
        return False

    monkeypatch.setattr(cost_model, "parallel_pays", never)  # clearly_short's
    engine, got = in_process_import(monkeypatch, warm_up, "workers_that_pay",
                                     lambda *args, **kwargs: 1 + never(*args, **kwargs),
                                     fork_after=60, sender_pipeline=False)
    k = cost_model.SETTLED_AFTER_TXS
    assert engine.last_detail.warm_up_txs == len(MIXED)
    assert asked == [len(MIXED) - k, len(MIXED) - 2 * k, len(MIXED) - 4 * k]
    reason = engine.last_detail.in_process_reason
    assert reason.startswith(f"{len(MIXED) - 4 * k} transactions left after {4 * k} ")
    assert reason.endswith("workers would not pay")


def test_a_rest_first_judged_short_starts_workers_when_a_later_look_finds_it_long(
        monkeypatch):
    # the first look (8 done) says the rest would not pay; the next (16 done) finds
    # it long -- mainnet 15752489's first transactions are cheap for their gas
    # limits -- and the workers take the rest from there
    k = cost_model.SETTLED_AFTER_TXS
    monkeypatch.setattr(cost_model, "parallel_pays",
                        lambda remaining, *args, **kwargs: remaining < len(MIXED) - k)
    monkeypatch.setattr(cost_model, "warm_up_settled",
                        lambda done, work, slowness=None: done >= 2 * k)
    monkeypatch.setattr(warm_up, "workers_that_pay", lambda *args, **kwargs: 2)
    engine, got = import_checked(2, fork_after=60)
    assert engine.last_detail.warm_up_txs == 2 * k
    assert got.result.stats.workers == 2
    assert engine.last_detail.in_process_reason == ""


def test_the_warm_up_leaves_senders_recovered_ahead_out_of_its_time():
    # the warm-up recovers senders in batches: a batch of transactions 10-41 that
    # took 32 ms, looked at when 20 is next, is 22 ms of recovery for transactions
    # not run yet -- not part of the time per transaction that decides on workers
    from types import SimpleNamespace
    ahead = warm_up.WarmUpRun.recovered_ahead
    batch = SimpleNamespace(senders_batch=(10, 42, 0.032))
    assert ahead(batch, 20) == pytest.approx(0.022)
    assert ahead(batch, 10) == pytest.approx(0.032)
    assert ahead(batch, 42) == 0.0 and ahead(batch, 50) == 0.0
    assert ahead(SimpleNamespace(senders_batch=(0, 0, 0.0)), 0) == 0.0


def test_the_warm_up_goes_on_while_its_latest_transactions_form_one_chain(monkeypatch):
    # the warm-up would end after SETTLED_AFTER_TXS and start workers; but while
    # its latest SERIAL_WINDOW transactions all increment one counter it goes on
    # (and looks again every SERIAL_STEP)
    monkeypatch.setattr(cost_model, "SETTLED_WORK_S", 0.0)
    monkeypatch.setattr(warm_up, "workers_that_pay", lambda *args, **kwargs: 2)
    window = cost_model.SERIAL_WINDOW
    chain = [Intent("incr", 1 + i % 7, 0, 1) for i in range(3 * window)]
    block = build_block(CancunVM, chain)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=60)
    got = import_block(CancunVM, block, engine)
    assert_same(reference(CancunVM, block), got)
    assert engine.last_detail.warm_up_txs == len(chain)     # the whole block
    assert got.result.stats.workers == 1
    # a chain, then transfers from seven keys to five accounts none of them sends
    # from (credits only): the warm-up runs past the chain, the workers take the rest
    transfers = [Intent("transfer", 1 + i % 7, (0, 9, 12, 13, 14)[i % 5], 1)
                 for i in range(4 * window)]
    block = build_block(CancunVM, chain + transfers)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=60)
    got = import_block(CancunVM, block, engine)
    assert_same(reference(CancunVM, block), got)
    assert len(chain) <= engine.last_detail.warm_up_txs <= \
        len(chain) + cost_model.SERIAL_STEP
    assert got.result.stats.workers == 2


def test_whether_workers_pay_weighs_what_a_predicted_chain_keeps_on_the_coordinator(
        monkeypatch):
    # after 8 transfers, every other transaction is key 1 incrementing the
    # counter: a chain the prediction keeps on the coordinator, whatever workers do
    # (no sender pays one recipient three times: that would be a chain too)
    intents = [Intent("transfer", 2 + i % 6, i % 8, 1) for i in range(8)] + [
        Intent("incr", 1, 0, 1) if i % 2 == 0
        else Intent("transfer", 2 + i % 6, (i // 2) % 8, 1) for i in range(40)]
    engine, got, asked = _import_with_count(monkeypatch, intents, workers=2, count=1)
    assert got.result.stats.workers == 1
    assert engine.last_detail.warm_up_txs == cost_model.SETTLED_AFTER_TXS
    [(remaining, work, _, kept, kept_work)] = asked
    assert (remaining, kept) == (40, 20)      # the chain's 20 increments
    # the increments' share of the rest: half by count, more by gas limit
    assert work / 2 <= kept_work < work
