"""Dependency graphs and ideal speedups on hand-built access sets."""
from __future__ import annotations

import pytest

from pevm.analysis import DependencyGraph, TxAccess, analyze


def tx(reads: set, writes: set, gas: int = 21_000) -> TxAccess:
    return TxAccess(frozenset(reads), frozenset(writes), gas)


def test_independent_block_ideal_equals_workers() -> None:
    graph = DependencyGraph.build([tx({("a", i)}, {("a", i)}) for i in range(16)])
    assert graph.deps == [()] * 16
    for workers in (1, 2, 4, 8, 16):
        assert graph.ideal_speedup(workers) == pytest.approx(workers)
    assert graph.ideal_speedup(None) == pytest.approx(16)
    assert graph.conflict_rate() == 0


def test_one_chain_ideal_is_one() -> None:
    graph = DependencyGraph.build([tx({"counter"}, {"counter"}) for _ in range(10)])
    assert graph.deps == [()] + [(i,) for i in range(9)]
    for workers in (2, 4, 16, None):
        assert graph.ideal_speedup(workers) == pytest.approx(1.0)
    assert graph.critical_path("count") == (10, list(range(10)))
    assert graph.conflict_rate() == pytest.approx(0.9)


def test_mixed_block_by_hand() -> None:
    # tx0 writes x; tx1 independent; tx2 reads x (depends on tx0); tx3 reads y written
    # by tx1 and x (latest writer of x is tx0); tx4 reads x after tx2 rewrote it.
    accesses = [tx(set(), {"x"}, 100), tx(set(), {"y"}, 100),
                tx({"x"}, {"x"}, 300), tx({"y", "x"}, set(), 100),
                tx({"x"}, set(), 100)]
    graph = DependencyGraph.build(accesses)
    assert graph.deps == [(), (), (0,), (1, 2), (2,)]
    assert graph.critical_path("gas") == (500, [0, 2, 3])
    # Two workers: t0 0-100 | t1 0-100; t2 100-400 | t3 waits t2: 400-500;
    # t4 waits t2: 400-500 on the other worker -> makespan 500, total 700.
    assert graph.makespan(2) == 500
    assert graph.ideal_speedup(2) == pytest.approx(700 / 500)
    result = analyze(graph)
    assert result.ideal_speedup["inf"] == pytest.approx(700 / 500)
    assert result.hottest[0] == ("x", 4)
    assert result.edges == 4


def test_credits_do_not_serialise_but_readers_wait_for_them() -> None:
    coinbase = ("cb", "balance")
    accesses = [TxAccess(frozenset({("s", i)}), frozenset({("s", i)}), 21_000,
                         frozenset({coinbase})) for i in range(4)]
    accesses.append(TxAccess(frozenset({coinbase}), frozenset(), 21_000))
    graph = DependencyGraph.build(accesses)
    assert graph.deps[:4] == [()] * 4
    assert graph.deps[4] == (0, 1, 2, 3)


def test_real_blocks_independent_transfers_and_sender_chains() -> None:
    from pevm.analysis import block_graph
    from pevm.inputs.chain import ChainTarget

    from .chain_builder import ADDRESSES, mine, new_chain, transfer

    # 16 transfers between 32 distinct accounts: nothing shared but the coinbase,
    # whose fee credits are lazy -- fully independent.
    source = new_chain()
    independent = mine(source, [transfer(source, i, ADDRESSES[16 + i], 1, 0)
                                for i in range(16)])
    graph = block_graph(ChainTarget(new_chain()), independent)
    assert graph is not None and graph.deps == [()] * 16
    for workers in (2, 4, 8, 16):
        assert analyze(graph).ideal_speedup[str(workers)] == pytest.approx(workers)

    # 8 transfers from one sender: a nonce chain that lazy sender debits run in
    # parallel (the nonces and the balance are checked at commit, not waited for)
    source = new_chain()
    chained = mine(source, [transfer(source, 0, ADDRESSES[1 + i], 1, i) for i in range(8)])
    graph = block_graph(ChainTarget(new_chain()), chained)
    assert graph is not None
    assert graph.deps == [()] * 8
    assert analyze(graph).ideal_speedup["inf"] == pytest.approx(8.0)
