"""Dependency graphs and ideal speedups on hand-built access sets."""
from __future__ import annotations

import pytest

from pevm.analysis import DependencyGraph, TxAccess, analyze
from pevm.engines.locations import BALANCE, STORAGE, Location

TOKEN = b"\x70" * 20
COINBASE = b"\xcb" * 20
#: locations of the hand-built blocks: storage slots of one contract
X: Location = (STORAGE, TOKEN, 0)
Y: Location = (STORAGE, TOKEN, 1)


def tx(reads: set[Location], writes: set[Location], gas: int = 21_000) -> TxAccess:
    return TxAccess(frozenset(reads), frozenset(writes), gas)


def test_independent_block_ideal_equals_workers() -> None:
    graph = DependencyGraph.build([tx({(STORAGE, TOKEN, i)}, {(STORAGE, TOKEN, i)})
                                   for i in range(16)])
    assert graph.deps == [()] * 16
    for workers in (1, 2, 4, 8, 16):
        assert graph.ideal_speedup(workers) == pytest.approx(workers)
    assert graph.ideal_speedup(None) == pytest.approx(16)
    assert graph.conflict_rate() == 0


def test_one_chain_ideal_is_one() -> None:
    graph = DependencyGraph.build([tx({X}, {X}) for _ in range(10)])
    assert graph.deps == [()] + [(i,) for i in range(9)]
    for workers in (2, 4, 16, None):
        assert graph.ideal_speedup(workers) == pytest.approx(1.0)
    assert graph.critical_path("count") == (10, list(range(10)))
    assert graph.conflict_rate() == pytest.approx(0.9)


def test_mixed_block_by_hand() -> None:
    # tx0 writes X; tx1 independent; tx2 reads X (depends on tx0); tx3 reads Y written
    # by tx1 and X (latest writer of X is tx2); tx4 reads X after tx2 rewrote it.
    accesses = [tx(set(), {X}, 100), tx(set(), {Y}, 100),
                tx({X}, {X}, 300), tx({Y, X}, set(), 100),
                tx({X}, set(), 100)]
    graph = DependencyGraph.build(accesses)
    assert graph.deps == [(), (), (0,), (1, 2), (2,)]
    assert graph.critical_path("gas") == (500, [0, 2, 3])
    # Two workers: t0 0-100 | t1 0-100; t2 100-400 | t3 waits t2: 400-500;
    # t4 waits t2: 400-500 on the other worker -> makespan 500, total 700.
    assert graph.makespan(2) == 500
    assert graph.ideal_speedup(2) == pytest.approx(700 / 500)
    result = analyze(graph)
    assert result.ideal_speedup["inf"] == pytest.approx(700 / 500)
    assert result.hottest[0] == (X, 4)
    assert result.edges == 4


def test_the_ideal_weighed_by_measured_time() -> None:
    # the block of test_mixed_block_by_hand, where gas and time disagree: tx1
    # costs 100 gas but most of the time; it depends on nothing
    accesses = [tx(set(), {X}, 100), tx(set(), {Y}, 100),
                tx({X}, {X}, 300), tx({Y, X}, set(), 100),
                tx({X}, set(), 100)]
    graph = DependencyGraph.build(accesses)
    seconds = [1.0, 6.0, 1.0, 1.0, 1.0]
    # two workers: t0 0-1 | t1 0-6; t2 1-2; t3 waits t1: 6-7; t4 2-3 -> makespan 7
    assert graph.makespan(2, seconds) == 7
    assert graph.ideal_speedup(2, seconds) == pytest.approx(10 / 7)
    # unlimited: the longest chain by time is t1 -> t3, 7
    assert graph.ideal_speedup(None, seconds) == pytest.approx(10 / 7)
    ideal = graph.ideal_speedups(seconds, counts=(3,))
    assert set(ideal) == {"1", "2", "3", "4", "8", "16", "inf"}
    assert ideal["1"] == 1.0 and ideal["2"] == pytest.approx(10 / 7, abs=1e-4)
    assert graph.ideal_speedups() == analyze(graph).ideal_speedup  # gas by default
    with pytest.raises(ValueError, match="4 weights for 5 transactions"):
        graph.ideal_speedup(2, seconds[:4])


def test_credits_do_not_serialise_but_readers_wait_for_them() -> None:
    coinbase: Location = (BALANCE, COINBASE)
    accesses = [TxAccess(frozenset({(STORAGE, TOKEN, i)}), frozenset({(STORAGE, TOKEN, i)}),
                         21_000, frozenset({coinbase})) for i in range(4)]
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


def test_hottest_ties_by_address_then_kind_then_slot() -> None:
    low, high = b"\x01" * 20, b"\xfe" * 20
    touched: set[Location] = {(STORAGE, high, 2), (BALANCE, high), (STORAGE, high, 1),
                              (STORAGE, low, 9), (BALANCE, low)}
    graph = DependencyGraph.build([tx(touched, set())])
    assert [loc for loc, _ in graph.hottest()] == [
        (BALANCE, low), (STORAGE, low, 9), (BALANCE, high), (STORAGE, high, 1),
        (STORAGE, high, 2)]


def test_recorded_locations_are_the_engines_vocabulary() -> None:
    # the recording engine logs pevm.engines.locations tuples, as the engine keys them
    from pevm.engines.locations import CODE, EMPTY, EXISTS, NONCE
    from pevm.engines.recording import RecordingEngine
    from pevm.inputs.chain import ChainTarget

    from .chain_builder import ADDRESSES, COINBASE as MINER, mine, new_chain, transfer

    source = new_chain()
    block = mine(source, [transfer(source, 0, ADDRESSES[20], 5, 0)])
    engine = RecordingEngine()
    assert ChainTarget(new_chain()).execute(block, engine).rejection is None
    (access,) = engine.accesses
    sender, recipient, miner = bytes(ADDRESSES[0]), bytes(ADDRESSES[20]), bytes(MINER)
    assert access.reads == {(CODE, recipient)}
    # the fee creates the coinbase: its existence and emptiness change
    assert access.writes == {(EXISTS, miner), (EMPTY, miner)}
    # lazy sender debits and its nonce, the value and the fee: commutative
    assert access.credits == {(BALANCE, sender), (NONCE, sender), (BALANCE, recipient),
                              (BALANCE, miner)}
