"""Jump-destination answers shared between runs of the same code
(:mod:`pevm.jumpdests`): the same answers as py-evm's own ``CodeStream`` for every
position of any code, in any order, shared only between equal codes, and used by
pevm's VMs (not py-evm's) on a block that equals py-evm's result."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from eth.vm.code_stream import CodeStream
from eth.vm.forks import CancunVM, PragueVM
from hypothesis import given, settings
from hypothesis import strategies as st

from pevm import jumpdests, run_path
from pevm.jumpdests import SharedCodeStream, with_shared_jumpdests
from pevm.state.backend import StateBackend, vm_class_on
from pevm.workloads import generate

PUSH1, PUSH2, PUSH32, JUMPDEST = 0x60, 0x61, 0x7F, 0x5B


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    jumpdests.clear()
    yield
    jumpdests.clear()


# bytes rich in PUSH opcodes and JUMPDESTs, so that covers chain into each other
_code_byte = st.one_of(st.integers(PUSH1, PUSH32), st.just(JUMPDEST), st.integers(0, 255))
codes = st.lists(_code_byte, max_size=160).map(bytes)


@settings(max_examples=300, deadline=None)
@given(code=codes, order=st.randoms(use_true_random=False))
def test_answers_equal_py_evms_for_every_position_in_any_order(code: bytes, order) -> None:
    jumpdests.clear()
    positions = list(range(len(code) + 40))
    order.shuffle(positions)
    theirs, ours = CodeStream(code), SharedCodeStream(code)
    assert [ours.is_valid_opcode(p) for p in positions] == \
        [theirs.is_valid_opcode(p) for p in positions]
    # a later stream of the same code answers from the shared sets, the same way
    later = SharedCodeStream(code)
    assert later.valid_positions is ours.valid_positions
    assert [later.is_valid_opcode(p) for p in range(len(code) + 2)] == \
        [CodeStream(code).is_valid_opcode(p) for p in range(len(code) + 2)]


def test_push_data_is_not_an_instruction_and_a_covered_push_covers_nothing() -> None:
    # PUSH2 5b 60 | 5b: the PUSH2's data holds a JUMPDEST byte and a PUSH1 byte
    code = bytes([PUSH2, JUMPDEST, PUSH1, JUMPDEST])
    stream = SharedCodeStream(code)
    assert [stream.is_valid_opcode(p) for p in range(5)] == [True, False, False, True, False]


def test_streams_share_only_with_equal_code() -> None:
    first = SharedCodeStream(bytes([PUSH1, JUMPDEST, JUMPDEST]))
    assert first.is_valid_opcode(2)
    same = SharedCodeStream(bytes([PUSH1, JUMPDEST, JUMPDEST]))  # an equal, new object
    other = SharedCodeStream(bytes([JUMPDEST, JUMPDEST, JUMPDEST]))
    assert same.valid_positions is first.valid_positions and 2 in same.valid_positions
    assert other.valid_positions is not first.valid_positions
    assert other.is_valid_opcode(1) and not first.is_valid_opcode(1)


def test_the_cache_starts_again_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jumpdests, "MAX_CODES", 2)
    a = SharedCodeStream(b"\x01")
    SharedCodeStream(b"\x02")
    SharedCodeStream(b"\x03")  # the cache was full: it holds this one alone
    assert SharedCodeStream(b"\x01").valid_positions is not a.valid_positions


@pytest.mark.parametrize("vm_class", [CancunVM, PragueVM])
def test_pevm_vms_share_and_py_evms_keep_their_own(vm_class) -> None:
    ours = vm_class_on(StateBackend.FLAT, vm_class).get_state_class().computation_class
    theirs = vm_class.get_state_class().computation_class
    assert issubclass(ours, theirs) and ours is not theirs
    assert with_shared_jumpdests(theirs) is with_shared_jumpdests(theirs)
    assert vm_class_on(StateBackend.PYEVM, vm_class) is vm_class


def test_a_block_of_loops_equals_py_evm_and_shares_its_contracts_answers(tmp_path) -> None:
    # the compute workload: each transaction runs the same contract's loop (JUMPI
    # back to the same destinations), on pevm's VMs checked against py-evm's
    path = tmp_path / "compute.json"
    path.write_text(json.dumps(generate("compute", txs=6, seed=3)))
    for workers in (1, 2):
        jumpdests.clear()
        reports = list(run_path(str(path), engine="parallel", workers=workers, check=True))
        assert [r.ok for r in reports] == [True] and reports[0].mismatches == []
        shared = [answers for answers in jumpdests._ANALYSES.values() if answers[1]]
        assert shared, "no code's jump destinations were shared"


def test_a_timed_round_starts_without_answers_an_earlier_round_left() -> None:
    # pevm bench repeats a block: what a round found in a cache keyed by content
    # (this one, and py-evm's body-trie roots) would not be there for a chain's
    # next block, so every timed round starts without it
    from eth.db.trie import _make_trie_root_and_nodes, make_trie_root_and_nodes

    from pevm.bench import fresh_round

    SharedCodeStream(bytes([JUMPDEST])).is_valid_opcode(0)
    make_trie_root_and_nodes([])
    assert jumpdests._ANALYSES and _make_trie_root_and_nodes.cache_info().currsize
    fresh_round()
    assert not jumpdests._ANALYSES and not _make_trie_root_and_nodes.cache_info().currsize
