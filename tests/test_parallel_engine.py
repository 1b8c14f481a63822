"""The parallel engine against py-evm on hand-written blocks, across forks."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import coincurve
import pytest
from eth.vm.forks import BerlinVM, ByzantiumVM, CancunVM, SpuriousDragonVM

from pevm.compare import compare_results
from pevm.engines import make_engine
from pevm.engines.hooks import FaultHooks
from pevm.engines import sender_batches
from pevm.engines.detail import ParallelDetail
from pevm.engines.timeline import Trace
from pevm.engines.workers import NURSERY_FROM, WorkerPool
from pevm.engines.parallel import MIN_PARALLEL_TXS, ParallelEngine
from pevm.inputs.chain import ChainTarget
from tests.parallel_support import (ADDRESSES, COINBASE, EMPTY, FORKS, MIXED, Intent,
                                    KEYS, assert_same, build_block, build_tx,
                                    fresh_copy, import_block, import_checked,
                                    in_process_import, new_chain, reference)


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
    engine, _ = in_process_import(monkeypatch, WorkerPool, "_start_one", _no_processes,
                                   fork_after=0)
    assert "starting workers failed" in engine.last_detail.in_process_reason


def test_a_nursery_that_cannot_start_falls_back_to_in_process(monkeypatch):
    monkeypatch.setattr(WorkerPool, "_start_through_nursery", _no_processes)
    engine, got = import_checked(1 + NURSERY_FROM, fork_after=0, fit_workers=False)
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
    engine, got = import_checked(3, fork_after=0, fit_workers=False)
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
    engine, _ = import_checked(1 + NURSERY_FROM, fork_after=0, fit_workers=False)
    assert engine.last_detail.in_process_reason == ""
    assert engine.last_detail.dead_workers == [1]


def _no_processes(*args, **kwargs):
    raise OSError(11, "Resource temporarily unavailable")


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
