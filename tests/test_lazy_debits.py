"""Lazy sender debits: chains of transactions from one sender, against py-evm.

The parallel engine lets a transaction's sender pay lazily (its debits commute; the
nonce it assumes and the balance it needs are checked at commit, see
:mod:`pevm.engines.mv_memory`). Each block is mined by py-evm and imported with the
reference and with the parallel engine at 1, 2 and 4 workers (worker processes even
for these small blocks): same receipts, state, and rejection at the same index
with the same reason -- under legacy and EIP-1559 fees.
"""
from __future__ import annotations

from typing import Any

import pytest

from pevm.analysis import DependencyGraph, TxAccess, analyze
from pevm.engines.parallel import ParallelEngine
from pevm.engines.recording import RecordingEngine
from tests.parallel_support import (ADDRESSES, FORKS, Intent, assert_same,
                                    build_block, build_tx, import_block, new_chain,
                                    reference)

HOT = 1  # the hot wallet: key 1 (key 0 is the beneficiary)
FUNDED = 10**20  # what every key holds in the genesis
FEE_FORKS = ["istanbul", "london", "cancun"]  # legacy gas price; EIP-1559 fees


def _target(index: int) -> int:
    """``Intent.a`` that makes a transfer go to FRESH[index] / ADDRESSES[index]."""
    return len(ADDRESSES) + 4 + index


def _engine(workers: int) -> ParallelEngine:
    return ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=0)


def _check(fork: str, block: Any, workers: int) -> Any:
    vm_class = FORKS[fork]
    want = reference(vm_class, block)
    got = import_block(vm_class, block, _engine(workers))
    assert_same(want, got, f"{fork} workers={workers}")
    return got


WITHDRAWALS = [Intent("transfer", HOT, a=_target(i % 3), b=1000 + i) for i in range(16)]


@pytest.mark.parametrize("fork", FEE_FORKS)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_chain_of_withdrawals_equals_reference(fork: str, workers: int) -> None:
    got = _check(fork, build_block(FORKS[fork], WITHDRAWALS), workers)
    assert got.rejection is None
    if workers > 1:
        # lazy debits: every speculative result of the chain is valid at commit
        assert got.result.stats.aborts == 0, got.result.stats


@pytest.mark.parametrize("fork", FEE_FORKS)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_withdrawals_mixed_with_deposits_self_transfers_and_balance_reads(
        fork: str, workers: int) -> None:
    intents = []
    for i in range(6):
        intents.append(Intent("transfer", HOT, a=_target(i % 3), b=7 + i))
        intents.append(Intent("transfer", 2 + i % 4, a=HOT, b=10**9 + i))  # deposit
    intents.insert(5, Intent("transfer", HOT, a=HOT, b=5))          # self-transfer
    intents.insert(8, Intent("read_sender", HOT, b=1))              # BALANCE(CALLER)
    intents.insert(9, Intent("transfer", 0, a=HOT, b=3))            # beneficiary pays in
    intents += [Intent("transfer", HOT, a=0, b=11), Intent("read_sender", HOT, b=0)]
    _check(fork, build_block(FORKS[fork], intents), workers)


@pytest.mark.parametrize("fork", FEE_FORKS)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_balance_that_runs_out_rejects_where_pyevm_does(fork: str,
                                                           workers: int) -> None:
    vm_class = FORKS[fork]
    share = FUNDED // 3
    paid = [Intent("transfer", HOT, a=_target(i), b=share) for i in range(2)]
    block = build_block(vm_class, [Intent("transfer", 3, a=_target(0), b=1)] + paid)
    # the third payment of a third cannot also pay for its gas: invalid at index 3
    chain = new_chain(vm_class)
    broke = build_tx(chain, Intent("transfer", HOT, a=_target(2), b=share), nonce=2)
    later = build_tx(chain, Intent("transfer", 4, a=_target(1), b=1), nonce=0)
    bad = block.copy(transactions=list(block.transactions) + [broke, later])
    got = _check(fork, bad, workers)
    assert got.rejection is not None and got.rejection.tx_index == 3


def _graph(fork: str, intents: list[Intent]) -> DependencyGraph:
    vm_class = FORKS[fork]
    engine = RecordingEngine()
    outcome = import_block(vm_class, build_block(vm_class, intents), engine)
    gas = [r.gas_used for r in outcome.result.receipts]
    return DependencyGraph.build([
        TxAccess(frozenset(a.reads), frozenset(a.writes), g, frozenset(a.credits))
        for a, g in zip(engine.accesses, gas)])


@pytest.mark.parametrize("fork", ["istanbul", "london"])
def test_the_dependency_model_follows_the_engine(fork: str) -> None:
    # a chain of withdrawals: no dependencies among them
    graph = _graph(fork, WITHDRAWALS)
    assert graph.deps == [()] * len(WITHDRAWALS)
    assert analyze(graph).ideal_speedup["2"] == 2.0
    # a sender that reads its own balance depends on every debit before it
    graph = _graph(fork, WITHDRAWALS[:3] + [Intent("read_sender", HOT)])
    assert graph.deps[3] == (0, 1, 2)
