"""The parallel engine against py-evm on hand-written blocks, across forks."""
from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Callable
from typing import Any

import coincurve
import pytest
from eth.vm.forks import BerlinVM, ByzantiumVM, CancunVM, SpuriousDragonVM

from pevm.compare import compare_results
from pevm.engines import make_engine
from pevm.engines.hooks import FaultHooks
from pevm.engines import cost_model, parallel, sender_batches, warm_up
from pevm.engines.detail import ParallelDetail
from pevm.engines.timeline import Trace
from pevm.engines.workers import NURSERY_FROM, WorkerPool
from pevm.engines.parallel import MIN_PARALLEL_TXS, ParallelEngine
from pevm.inputs.chain import ChainTarget
from tests.parallel_support import (ADDRESSES, COINBASE, EMPTY, FORKS, Intent,
                                    KEYS, assert_same, build_block, build_tx,
                                    fresh_copy, import_block, new_chain, reference)

MIXED = [
    Intent("transfer", 1, 0, 5, tip=1),          # value to the beneficiary
    Intent("incr", 2, 0, 1),
    Intent("incr", 3, 0, 2),                     # same slot as the one before
    Intent("read_coinbase", 4),                  # reads every fee credit so far
    Intent("transfer", 0, 2, 7, tip=0),          # the beneficiary sends
    Intent("nested_revert", 5, 1),
    Intent("revert", 6, 2),
    Intent("create2", 1, 0, 1),                  # create and destroy in one tx
    Intent("create2", 2, 0, 0),                  # create again (same salt)
    Intent("kill_child", 3, 0, 1),
    Intent("create", 4, 0, 1),
    Intent("kill_created", 5, 0),
    Intent("doom", 6, 0, 1),                     # self-destruct with storage
    Intent("transfer", 7, 14, 0, tip=0),         # zero value to an empty account
    Intent("transfer", 1, 15, 3),                # value to a fresh account
    Intent("deploy", 2),
    Intent("incr", 1, 1, 0),                     # no-op write
    Intent("read_coinbase", 3),
    Intent("transfer", 2, 15, 1),
    Intent("doom", 4, 0, 0),                     # call the destroyed account
    Intent("probe_hash", 5, 0, 0),               # touch a missing account
    Intent("probe", 6, 4, 1),                    # value to the destroyed one
    Intent("probe_hash", 7, 3, 0),               # the existing empty account
] * 2

ENGINE_VARIANTS = [
    dict(workers=1),
    dict(workers=2, min_parallel_txs=2, fork_after=0),
    dict(workers=3, min_parallel_txs=2, fork_after=0, chunk_size=3),
    dict(workers=4, min_parallel_txs=2, fork_after=0, chunk_size=1, max_outstanding=1),
    dict(workers=2, min_parallel_txs=2, hooks=FaultHooks(fork_at_tx=7), chunk_size=2),
    # the coordinator only validates (two forked workers)
    dict(workers=2, min_parallel_txs=2, fork_after=0, chunk_size=2,
         coordinator_executes=False),
    # a sender pipeline: in order on the coordinator, senders recovered by a worker
    dict(workers=2, min_parallel_txs=2, hooks=FaultHooks(fork_at_tx=7),
         sender_pipeline=True),
    dict(workers=4, min_parallel_txs=2, fork_after=0, sender_pipeline=True),
]


@pytest.mark.parametrize("fork", ["tangerine", "spurious", "byzantium", "petersburg",
                                  "istanbul", "berlin", "london", "cancun", "prague"])
def test_mixed_block_matches_py_evm(fork):
    vm_class = FORKS[fork]
    block = build_block(vm_class, MIXED)
    want = reference(vm_class, block)
    assert want.rejection is None and want.result is not None
    for options in ENGINE_VARIANTS:
        got = import_block(vm_class, block, ParallelEngine(**options))
        assert_same(want, got, f"{fork} {options}")


def test_every_engine_configuration_gives_the_same_result():
    block = build_block(CancunVM, MIXED)
    results = [import_block(CancunVM, block, ParallelEngine(**options)).result
               for options in ENGINE_VARIANTS]
    for other in results[1:]:
        assert compare_results(results[0], other) == []
        assert other.state_root == results[0].state_root


def test_costly_transactions_run_on_workers_with_the_same_result():
    # a gas limit 10x the block's median marks a transaction costly: at the commit
    # point right after the fork, ahead of it, and on a slot others write
    heavy = {0, 3, 9, 20}
    intents = [Intent(i.kind, i.sender, i.a, i.b, i.tip, gas=3_000_000 if n in heavy else 0)
               for n, i in enumerate(MIXED)]
    block = build_block(CancunVM, intents)
    want = reference(CancunVM, block)
    for options in ENGINE_VARIANTS[1:5]:
        engine = ParallelEngine(**options)
        assert_same(want, import_block(CancunVM, block, engine), str(options))
        if options["workers"] > 2:
            # one forked worker may hold a chunk with transaction 9 when the commit
            # point reaches 0 (then the coordinator runs 0); of two, one is free
            assert engine.last_detail.costly >= 1, options
    off = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0,
                         costly_to_workers=False)
    assert_same(want, import_block(CancunVM, block, off))
    assert off.last_detail.costly == 0
    # the fault hooks' fork point is kept exactly, costly transactions before it
    fixed = ParallelEngine(workers=2, min_parallel_txs=2, hooks=FaultHooks(fork_at_tx=7))
    assert_same(want, import_block(CancunVM, block, fixed))
    assert fixed.last_detail.warm_up_txs == 7


def test_costly_transactions_deep_in_the_block_start_first_with_the_same_result():
    # beyond the lookahead when the workers start, they are queued before any chunk,
    # and so is the one at the commit point (0, where the workers start at once):
    # 48 increments a slot many transactions below write (its early run reads the
    # pre-state: it fails validation and runs again), 60 and 85 are transfers
    heavy = {0, 48, 60, 85}
    intents = [Intent(i.kind, i.sender, i.a, i.b, i.tip, gas=3_000_000 if n in heavy else 0)
               for n, i in enumerate(MIXED * 2)]
    block = build_block(CancunVM, intents)
    want = reference(CancunVM, block)
    for options in ENGINE_VARIANTS[1:5]:
        engine = ParallelEngine(**options)
        engine.trace = Trace()
        assert_same(want, import_block(CancunVM, block, engine), str(options))
        # the first transaction each worker executes is one of them
        events = engine.trace.events
        workers = {e["pid"] for e in events
                   if e["name"] == "process_name" and "worker " in e["args"]["name"]}
        first: dict[int, int] = {}
        for event in events:
            if event["ph"] == "X" and event["name"] == "execute" and event["pid"] in workers:
                first.setdefault(event["pid"], event["args"]["tx"])
        assert first and set(first.values()) <= heavy, (options, first)
        at_once = "hooks" not in options  # not forked at transaction 7
        assert (0 in first.values()) == at_once, (options, first)


def _two_workers_match_reference(intents: list[Intent],
                                 **options: Any) -> ParallelDetail:
    """Import the Cancun block of ``intents`` at 2 workers from the first
    transaction (engine ``options`` beside), check it equals py-evm's, and return
    the engine's detail."""
    block = build_block(CancunVM, intents)
    want = reference(CancunVM, block)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0, **options)
    assert_same(want, import_block(CancunVM, block, engine))
    return engine.last_detail


def test_beneficiary_traffic_does_not_serialise_fee_payments():
    # 7 transfers from distinct senders all pay fees to the beneficiary; with
    # lazy credits none of them reads its balance, so none conflicts.
    intents = [Intent("transfer", 1 + i % 7, 8 + i % 3, 1, tip=2) for i in range(7)]
    detail = _two_workers_match_reference(intents, chunk_size=1)
    assert detail.validation_failures == 0


@pytest.mark.parametrize("vm_class", [SpuriousDragonVM, ByzantiumVM, CancunVM])
def test_invalid_transactions_reject_the_block_where_py_evm_does(vm_class):
    intents = [Intent("transfer", 1 + i % 3, 2, 3) for i in range(9)]
    block = build_block(vm_class, intents)
    txs = list(block.transactions)
    chain = new_chain(vm_class)
    too_poor = build_tx(chain, Intent("transfer", 5, 2, 10**21), 0)
    too_little_gas = _with_gas(chain, Intent("transfer", 6, 2, 1), 0, 20_000)
    over_limit = _with_gas(chain, Intent("transfer", 7, 2, 1), 0, 30_000_000)
    variants = {
        "nonce gap": txs[:4] + txs[5:],
        "nonce order": txs[:3] + [txs[6], txs[3]] + txs[4:6] + txs[7:],
        "replayed nonce": txs[:5] + [txs[2]] + txs[5:],
        "insufficient funds": txs[:6] + [too_poor] + txs[6:],
        "intrinsic gas": txs[:2] + [too_little_gas] + txs[2:],
        "block gas limit": txs[:7] + [over_limit] + txs[7:],
    }
    for name, transactions in variants.items():
        bad = block.copy(transactions=transactions)
        want = reference(vm_class, bad)
        assert want.rejection is not None and want.rejection.tx_index is not None, name
        for options in ENGINE_VARIANTS[:3]:
            got = import_block(vm_class, bad, ParallelEngine(**options))
            assert_same(want, got, f"{name} {options}")


def _with_gas(chain, intent, nonce, gas):
    vm = chain.get_vm()
    unsigned = vm.create_unsigned_transaction(
        nonce=nonce, gas_price=10**6, gas=gas, to=ADDRESSES[2], value=1, data=b"")
    return unsigned.as_signed_transaction(KEYS[intent.sender])


def test_senders_are_recovered_once(monkeypatch):
    # every public-key recovery, pevm's and eth-keys' (coincurve backend), goes here
    calls = []
    original = coincurve.PublicKey.from_signature_and_message

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(coincurve.PublicKey, "from_signature_and_message",
                        staticmethod(counting))
    intents = [Intent("incr", 1 + i % 7, i, 1) for i in range(30)]
    block = fresh_copy(build_block(CancunVM, intents))
    calls.clear()
    got = ChainTarget(new_chain(CancunVM)).execute(block, ParallelEngine(workers=1))
    assert got.rejection is None
    assert len(calls) == len(intents)
    for tx in block.transactions:              # pinned: py-evm cannot recompute
        assert tx.sender in ADDRESSES
        tx.validate()
    assert len(calls) == len(intents)


def test_stats_are_reported():
    intents = [Intent("incr", 1 + i % 7, i % 2, 1) for i in range(30)]
    block = build_block(CancunVM, intents)
    one = import_block(CancunVM, block, ParallelEngine(workers=1)).result.stats
    assert one.engine == "parallel" and one.workers == 1
    assert one.executions == 30 and one.aborts == 0
    assert {"recover_senders", "execute", "merge"} <= set(one.seconds)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0, chunk_size=4)
    two = import_block(CancunVM, block, engine).result.stats
    assert two.workers == 2
    assert two.executions == 30 + two.aborts
    assert two.validations >= 1
    assert two.aborts > 0                      # the counter slots conflict
    assert "start_workers" in two.seconds


def test_small_blocks_and_spawn_run_in_process():
    block = build_block(CancunVM, [Intent("incr", 1, 0, 1)] * 3)
    want = reference(CancunVM, block)
    small = import_block(CancunVM, block, ParallelEngine(workers=4))
    assert small.result.stats.workers == 1 and 3 < MIN_PARALLEL_TXS
    assert_same(want, small)
    spawned = import_block(CancunVM, block, ParallelEngine(
        workers=2, min_parallel_txs=1, start_method="spawn"))
    assert spawned.result.stats.workers == 1
    assert_same(want, spawned)


def _import_in_daemon(block, queue):  # runs in a daemonic child process
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0)
    outcome = import_block(CancunVM, block, engine)
    problems = compare_results(reference(CancunVM, block).result, outcome.result)
    queue.put((outcome.result.stats.workers, engine.last_detail.in_process_reason,
               [str(p) for p in problems]))


def test_inside_a_daemonic_process_the_block_runs_in_process():
    """A Dask or multiprocessing pool worker may not have children: the engine
    says why and runs the block itself, with the same result."""
    import multiprocessing
    block = build_block(CancunVM, MIXED)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_import_in_daemon, args=(block, queue), daemon=True)
    child.start()
    workers, reason, problems = queue.get(timeout=300)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert problems == []
    assert workers == 1
    assert "daemonic" in reason


def test_a_pool_that_cannot_start_falls_back_to_in_process(monkeypatch):
    engine, _ = _in_process_import(monkeypatch, WorkerPool, "_start_one", _no_processes,
                                   fork_after=0)
    assert "starting workers failed" in engine.last_detail.in_process_reason


def test_a_nursery_that_cannot_start_falls_back_to_in_process(monkeypatch):
    monkeypatch.setattr(WorkerPool, "_start_through_nursery", _no_processes)
    engine, got = _import_checked(1 + NURSERY_FROM, fork_after=0, fit_workers=False)
    assert got.result.stats.workers == 1
    assert "starting workers failed" in engine.last_detail.in_process_reason


def test_workers_that_start_go_on_without_one_that_cannot(monkeypatch):
    """Below NURSERY_FROM the coordinator forks each worker and feeds it before
    the next: a fork that fails part-way leaves the block to those running."""
    start = WorkerPool._start_one

    def second_fails(pool, worker):
        if worker == 1:
            _no_processes()
        start(pool, worker)

    monkeypatch.setattr(WorkerPool, "_start_one", second_fails)
    engine, got = _import_checked(3, fork_after=0, fit_workers=False)
    assert got.result.stats.workers == 2        # the coordinator and worker 0
    assert engine.last_detail.in_process_reason == ""
    assert engine.last_detail.dead_workers == [1]


def test_a_worker_the_nursery_cannot_fork_counts_as_dead(monkeypatch):
    """From NURSERY_FROM workers the nursery forks them; one it cannot fork has its
    pipe closed unopened, and the coordinator redoes that worker's chunks."""
    coordinator, fork = os.getpid(), os.fork
    forks = []

    def nursery_fails_second(*args):
        if os.getpid() != coordinator:  # in the nursery
            forks.append(1)
            if len(forks) == 2:
                _no_processes()
        return fork()

    monkeypatch.setattr(os, "fork", nursery_fails_second)
    engine, _ = _import_checked(1 + NURSERY_FROM, fork_after=0, fit_workers=False)
    assert engine.last_detail.in_process_reason == ""
    assert engine.last_detail.dead_workers == [1]


def _no_processes(*args, **kwargs):
    raise OSError(11, "Resource temporarily unavailable")


def _in_process_import(monkeypatch, owner, name, replacement, **options):
    """Import MIXED at 2 workers with ``owner.<name>`` replaced; it must run in one
    process and equal py-evm. (A test of whether workers pay fixes what the
    clock would decide: ``sender_pipeline=False``, as the look at the sender
    pipeline weighs measured times, and a warm-up that settles by count
    (``SETTLED_WORK_S`` 0 and a long ``fork_after``) -- a short ``fork_after`` can
    run out before the first transaction on a loaded machine, and a warm-up that
    ran none starts the workers without asking ``workers_that_pay``.)"""
    monkeypatch.setattr(owner, name, replacement)
    engine, got = _import_checked(2, **options)
    assert got.result.stats.workers == 1
    return engine, got


def _import_checked(workers, **options):
    """Import MIXED at ``workers`` with the engine's ``options``; it must equal
    py-evm. Returns the engine and the import."""
    block = build_block(CancunVM, MIXED)
    engine = ParallelEngine(workers=workers, min_parallel_txs=2, **options)
    got = import_block(CancunVM, block, engine)
    assert_same(reference(CancunVM, block), got)
    return engine, got


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
    engine, got = _in_process_import(monkeypatch, warm_up, "workers_that_pay", none_pay,
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
    engine, _ = _in_process_import(monkeypatch, warm_up, "workers_that_pay", none_pay,
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
    engine, got = _in_process_import(monkeypatch, warm_up, "workers_that_pay",
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
    engine, got = _import_checked(2, fork_after=60)
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


def _in_one_of(tries: int, intents: list[Intent], witness: Callable[[ParallelDetail], bool],
               **options: Any) -> list[ParallelDetail]:
    """Import the block of ``intents`` at 2 workers (each import checked against
    py-evm) until ``witness`` holds for one, at most ``tries`` times; the details.

    For what a schedule shows, not a result: a worker starved of CPU beside other
    programs may never get to it in one import (each caller says how often), and
    code that lost it shows it in none."""
    details = []
    for _ in range(tries):
        details.append(_two_workers_match_reference(intents, **options))
        if witness(details[-1]):
            break
    return details


def test_a_fully_conflicting_block_runs_in_order_with_workers_recovering_senders():
    # 400 transactions: more than the lookahead (which the coordinator may run
    # ahead through, recovering those senders itself, while a starved worker holds
    # its first chunks), so that senders are left for the idle worker on a busy
    # machine too (140 left none beside two CPU hogs, 5 runs in 6; 400 none in 1
    # run of 4)
    details = _in_one_of(3, [Intent("incr", 1 + i % 7, 0, 1) for i in range(400)],
                         lambda d: d.recover_workers_s > 0)
    for detail in details:
        # speculation stopped: throttled, or the counter turned hot first (its
        # transactions kept from the chunks)
        assert detail.pauses >= 1 or detail.hot_targets == 1
        assert detail.inline > 300           # the coordinator ran it in order
    assert details[-1].recover_workers_s > 0  # idle workers recovered ahead


def test_a_sender_pipeline_executes_in_order_while_a_worker_recovers_the_senders():
    # transfers from many keys, some to each other (so that a sender is also a
    # recipient), some value-less, some to a fresh account; 480 of them, so that
    # the worker's first senders arrive before the block ends on a busy machine
    # too (beside two CPU hogs 120 ended first every time, 240 in 1 run of 4)
    intents = [Intent("transfer", 1 + i % 7, (i * 3) % 16, i % 3) for i in range(480)]
    details = _in_one_of(3, intents, lambda d: d.recover_workers_s > 0,
                         sender_pipeline=True)
    for detail in details:
        assert detail.sender_pipeline
        assert detail.chunks == 0 and detail.validation_failures == 0
        assert detail.inline == len(intents)  # every transaction on the coordinator
        assert detail.pauses == 0            # held, not throttled
    assert details[-1].recover_workers_s > 0  # the worker recovered senders ahead
    # four workers asked for: one recovers, the others are never forked
    block = build_block(CancunVM, intents)
    engine = ParallelEngine(workers=4, min_parallel_txs=2, fork_after=0,
                            sender_pipeline=True, fit_workers=False)
    outcome = import_block(CancunVM, block, engine)
    assert_same(reference(CancunVM, block), outcome)
    assert outcome.result.stats.workers == 2
    assert len(engine.last_detail.worker_cpu_s) == 1
    assert engine.last_detail.worker_cpu_s[0] > 0          # its recoveries' CPU
    # reported, counted from the block's start: the pipeline's worker is a helper
    # kept between blocks, which may copy no page in a block (a worker forked per
    # block does: tests/test_recovery_helper.py)
    assert "worker 0" in engine.last_detail.page_faults
    # what `pevm run --json` reports: the mode, and nothing validated
    stats = outcome.result.stats.to_json()
    assert stats["sender_pipeline"] is True and stats["validations"] == 0
    # never: speculation as before, where the warm-up would choose the pipeline
    off = _two_workers_match_reference(intents, sender_pipeline=False)
    assert not off.sender_pipeline and off.chunks > 0


def test_a_contract_whose_transactions_keep_conflicting_stays_with_the_coordinator():
    # every other transaction increments the counter's slot 0; the others are
    # plain transfers between funded keys. 400 of them: once the conflict
    # throttle has paused speculation, only its probes form chunks to keep the
    # counter's transactions from, and a busy machine pauses it early (160 kept
    # none beside two CPU hogs, every time)
    intents = [Intent("incr", 1 + i % 7, 0, 1) if i % 2 == 0
               else Intent("transfer", 1 + i % 7, i % 8, 1) for i in range(400)]
    details = _in_one_of(3, intents, lambda d: d.kept > 0)
    assert all(d.hot_targets == 1 for d in details)  # the counter, not the keys
    assert details[-1].kept > 0              # its later increments ran in-process


def test_one_sender_s_calls_into_a_contract_stay_with_the_coordinator_from_the_start():
    # every other transaction is key 1 incrementing the counter's slot 0, a chain;
    # the others are plain transfers from the other keys
    intents = [Intent("incr", 1, 0, 1) if i % 2 == 0
               else Intent("transfer", 2 + i % 6, i % 8, 1) for i in range(80)]
    # the warm-up runs 8 and recovers the next senders: the pattern shows there
    detail = _two_workers_match_reference(intents, hooks=FaultHooks(fork_at_tx=8))
    assert detail.hot_targets == 1           # the counter, hot before any result
    assert detail.kept > 0                   # the chain ran in-process, in order
    assert detail.validation_failures == 0   # so none of it failed on a worker


def test_a_chain_that_starts_past_the_warm_up_s_senders_is_predicted_too():
    # transfers from many keys, then from past the warm-up's first batch of senders
    # every other transaction is key 1 incrementing the counter
    batch = sender_batches.WARM_UP_SENDER_BATCH
    intents = [Intent("transfer", 2 + i % 6, i % 8, 1) for i in range(batch + 8)] + [
        Intent("incr", 1, 0, 1) if i % 2 == 0 else Intent("transfer", 2 + i % 6, i % 8, 1)
        for i in range(60)]
    # the fork comes after 8: the senders of the batch beyond the warm-up's show it
    detail = _two_workers_match_reference(intents, hooks=FaultHooks(fork_at_tx=8))
    assert detail.hot_targets == 1
    assert detail.validation_failures == 0


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


def test_a_waiting_coordinator_recovers_senders_and_hands_them_to_the_worker():
    # a slow worker (every transaction delayed): the coordinator runs ahead to the
    # end of its lookahead and then, instead of waiting, recovers the senders of
    # transactions nobody has taken; the run message of a chunk carries them, so
    # no sender is recovered twice
    intents = [Intent("transfer", 1 + i % 7, 8 + i % 5, 1) for i in range(240)]
    block = build_block(CancunVM, intents)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0,
                            hooks=FaultHooks(delay=0.004, seed=3))
    engine.trace = Trace()
    assert_same(reference(CancunVM, block), import_block(CancunVM, block, engine))
    tracks = {e["pid"]: e["args"]["name"] for e in engine.trace.events
              if e["name"] == "process_name"}
    recovered: dict[str, list[int]] = {}
    executed: dict[str, set[int]] = {}
    for event in engine.trace.events:
        if event["ph"] == "X" and "tx" in event["args"]:
            track = tracks[event["pid"]].split(": ")[1]
            if event["name"] == "recover sender":
                recovered.setdefault(track, []).append(event["args"]["tx"])
            elif event["name"] == "execute":
                executed.setdefault(track, set()).add(event["args"]["tx"])
    coordinator, worker = recovered["coordinator"], recovered.get("worker 0", [])
    assert not set(coordinator) & set(worker)               # each recovered once
    assert len(coordinator) == len(set(coordinator))
    assert set(coordinator) & executed["worker 0"]          # handed to the worker


def test_forced_aborts_and_delays_keep_the_result():
    block = build_block(BerlinVM, MIXED)
    want = reference(BerlinVM, block)
    engine = ParallelEngine(workers=3, min_parallel_txs=2, fork_after=0, chunk_size=2,
                            hooks=FaultHooks(delay=0.002, delay_probability=0.5,
                                             force_abort=0.5, seed=7))
    got = import_block(BerlinVM, block, engine)
    assert_same(want, got)
    assert engine.last_detail.forced_aborts > 0


def test_the_cli_name_builds_this_engine():
    engine = make_engine("parallel", workers=3)
    assert isinstance(engine, ParallelEngine) and engine.workers == 3
    with pytest.raises(ValueError):
        ParallelEngine(workers=0)


def test_a_block_without_transactions():
    chain = new_chain(CancunVM)
    result, _, _ = chain.mine_all([], coinbase=COINBASE)
    block = result.imported_block
    want = reference(CancunVM, block)
    got = import_block(CancunVM, block, ParallelEngine(workers=2))
    assert_same(want, got)
    result = got.result
    assert result.stats.executions == 0
    assert result.receipts == () and result.gas_used == 0
    # Nothing touched the genesis' empty account, so EIP-161 left it alone: it is
    # in no diff, and the state root is still the one py-evm mined.
    assert EMPTY not in result.state_diff
    assert result.state_root == block.header.state_root


# the watcher thread below is the test's own and holds nothing the forked workers
# use; Python 3.12+ warns about any fork while it runs
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_workers_run_below_the_coordinator_s_cpu_priority() -> None:
    import multiprocessing
    import os
    import threading

    block = build_block(CancunVM, MIXED)
    want = reference(CancunVM, block)
    seen: dict[int, int] = {}
    done = threading.Event()

    def watch() -> None:  # the workers live only during the block
        while not done.is_set():
            for child in multiprocessing.active_children():
                if child.name.startswith("pevm-worker") and child.pid:
                    try:
                        seen[child.pid] = os.getpriority(os.PRIO_PROCESS, child.pid)
                    except OSError:
                        pass
            done.wait(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0, chunk_size=2,
                                worker_nice=3, hooks=FaultHooks(delay=0.01))
        got = import_block(CancunVM, block, engine)
    finally:
        done.set()
        watcher.join()
    assert_same(want, got)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen and set(seen.values()) == {min(mine + 3, 19)}


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
