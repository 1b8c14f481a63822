"""Lazy debits: chains of transactions from one sender, and a contract paying out
while others pay in, against py-evm.

The parallel engine lets a transaction's sender pay lazily (its debits commute; the
nonce it assumes and the balance it needs are checked at commit, see
:mod:`pevm.engines.mv_memory`). Each block is mined by py-evm and imported with the
reference and with the parallel engine at 1, 2 and 4 workers (worker processes even
for these small blocks): same receipts, state, and rejection at the same index
with the same reason -- under legacy and EIP-1559 fees. A contract that sends value
(``VAULT``, like WETH's withdrawals) pays lazily too: its call opcode and the new
frame only compare its balance with the value before debiting it.
"""
from __future__ import annotations

from typing import Any

import pytest

from pevm.analysis import DependencyGraph, TxAccess, analyze
from pevm.engines.parallel import ParallelEngine
from pevm.engines.recording import RecordingEngine
from tests.parallel_support import (ADDRESSES, FORKS, Intent, assert_same,
                                    VAULT_FUNDS, build_block, build_tx, import_block,
                                    new_chain, reference)

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


def _check_without_aborts(fork: str, intents: list[Intent], workers: int) -> Any:
    """:func:`_check` of a valid block whose every speculative result is valid at
    commit: lazy debits leave its payments nothing to conflict on."""
    got = _check(fork, build_block(FORKS[fork], intents), workers)
    assert got.rejection is None
    if workers > 1:
        assert got.result.stats.aborts == 0, got.result.stats
    return got


WITHDRAWALS = [Intent("transfer", HOT, a=_target(i % 3), b=1000 + i) for i in range(16)]


@pytest.mark.parametrize("fork", FEE_FORKS)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_chain_of_withdrawals_equals_reference(fork: str, workers: int) -> None:
    _check_without_aborts(fork, WITHDRAWALS, workers)


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


def _vault_logs(outcome: Any) -> list[int]:
    """Whether each transaction's vault payment succeeded (its log), in order."""
    return [int.from_bytes(log.data, "big") for receipt in outcome.result.receipts
            for log in receipt.logs]


#: six senders withdrawing from the vault, every third transaction a deposit; the
#: vault never runs dry
VAULT_TRAFFIC = [Intent("vault", 2 + i % 6, a=9, b=0) if i % 3 == 0
                 else Intent("vault", 2 + i % 6, a=0, b=1 + i % 2) for i in range(18)]


@pytest.mark.parametrize("fork", FEE_FORKS)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_contract_paying_out_and_taking_deposits_equals_reference(
        fork: str, workers: int) -> None:
    # the vault's balance is only compared and debited: no payment conflicts with
    # a deposit or another payment
    got = _check_without_aborts(fork, VAULT_TRAFFIC, workers)
    assert _vault_logs(got) == [1] * len(VAULT_TRAFFIC)


@pytest.mark.parametrize("fork", FEE_FORKS)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_contract_that_runs_dry_fails_the_payments_pyevm_fails(
        fork: str, workers: int) -> None:
    # 5 + 5 leaves 2 of 12: the third payment fails, a deposit of 4 lets the next
    # succeed, 1 is left: 2 fails, 1 succeeds; the same on VAULT_PEEK, which looks
    # at its own balance after each payment
    intents = [Intent("vault", 2, b=5), Intent("vault", 3, b=5), Intent("vault", 4, b=5),
               Intent("vault", 5, a=4), Intent("vault", 6, b=5), Intent("vault", 7, b=2),
               Intent("vault", 2, b=1),
               Intent("vault_peek", 3, b=VAULT_FUNDS), Intent("vault_peek", 4, b=1),
               Intent("vault_peek", 5, a=3, b=2)]
    got = _check(fork, build_block(FORKS[fork], intents), workers)
    assert _vault_logs(got) == [1, 1, 0, 1, 1, 0, 1, 1, 0, 1]


@pytest.mark.parametrize("fork", ["istanbul", "london"])
def test_the_dependency_model_follows_a_contract_paying_lazily(fork: str) -> None:
    graph = _graph(fork, VAULT_TRAFFIC)
    assert graph.deps == [()] * len(VAULT_TRAFFIC)
    # a contract looking at its own balance depends on every payment before it
    peek = [Intent("vault_peek", 2, b=1), Intent("vault_peek", 3, a=2, b=0),
            Intent("vault_peek", 4, b=0)]
    assert _graph(fork, peek).deps == [(), (0,), (0, 1)]
