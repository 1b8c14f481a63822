"""Batched trie roots (pevm.gpu.trie) against py-trie's HexaryTrie and py-evm."""
from __future__ import annotations

import random
from typing import Any

import pytest
import rlp
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.trie import make_trie_root_and_nodes
from eth_hash.auto import keccak
from eth_typing import Address
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from pevm.gpu import backend as B
from pevm.gpu.trie import (BLANK_ROOT, AccountState, ordered_trie_root, secure_trie_root,
                           state_root, state_root_from_diff, storage_root, storage_roots,
                           trie_root, trie_roots)
from pevm.result import AccountDiff


def require_cuda() -> None:
    ok, reason = B._probe_cuda()
    if not ok:
        pytest.skip(f"no CUDA device: {reason}")


def hexary_root(items: dict[bytes, bytes]) -> bytes:
    trie = HexaryTrie({})
    for key, value in items.items():
        trie[key] = value
    return trie.root_hash


def pyevm_root(accounts: dict[bytes, AccountState]) -> bytes:
    db = AccountDB(AtomicDB())
    for raw_address, (nonce, balance, storage, code) in accounts.items():
        address = Address(raw_address)
        db.set_balance(address, balance)
        db.set_nonce(address, nonce)
        db.set_code(address, code)
        for slot, value in storage.items():
            db.set_storage(address, slot, value)
    return db.make_state_root()


# Keys from a tiny alphabet collide on long prefixes, end inside other keys
# (branch values) and include the empty key; values from 0 bytes (absent) to
# 40 (hashed nodes), with short ones that make nodes embed in their parent.
small_keys = st.binary(min_size=0, max_size=5).map(
    lambda b: bytes(x & 0x11 for x in b))
values = st.binary(min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(small_keys, values, max_size=40))
def test_trie_root_prefix_heavy_keys(items: dict[bytes, bytes]) -> None:
    assert trie_root(items, backend="cpu") == hexary_root(items)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=40), values, max_size=60))
def test_trie_root_random_keys(items: dict[bytes, bytes]) -> None:
    assert trie_root(items, backend="cpu") == hexary_root(items)


def test_trie_root_edge_cases() -> None:
    assert trie_root({}) == BLANK_ROOT == keccak(rlp.encode(b""))
    assert trie_root({b"k": b""}) == BLANK_ROOT  # empty value = absent
    for items in ({b"": b"v"}, {b"\x01": b"v"}, {b"a" * 40: b"x" * 100},
                  {b"ab": b"1", b"abc": b"2"}, {b"\x00": b"1", b"\x00\x00": b"2"},
                  {b"\x10": b"1", b"\x01": b"2"}):
        assert trie_root(items) == hexary_root(items), items


def test_trie_root_many_keys() -> None:
    rnd = random.Random(2)
    items = {rnd.randbytes(rnd.choice((1, 2, 3, 20, 32))): rnd.randbytes(rnd.randint(1, 80))
             for _ in range(3000)}
    assert trie_root(items, backend="cpu") == hexary_root(items)


def test_trie_roots_forest_equals_single() -> None:
    rnd = random.Random(3)
    tries = [{rnd.randbytes(rnd.randint(1, 4)): rnd.randbytes(rnd.randint(1, 50))
              for _ in range(rnd.randint(0, 30))} for _ in range(25)]
    assert trie_roots(tries) == [hexary_root(t) for t in tries]


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.binary(min_size=0, max_size=40), values, max_size=40))
def test_secure_trie_root(items: dict[bytes, bytes]) -> None:
    hashed = {keccak(k): v for k, v in items.items()}
    assert secure_trie_root(items, backend="cpu") == hexary_root(hashed)


class _Encoded:
    """What make_trie_root_and_nodes expects: items with ``encode()``."""

    def __init__(self, encoded: bytes) -> None:
        self._encoded = encoded

    def encode(self) -> bytes:
        return self._encoded


@pytest.mark.parametrize("count", [0, 1, 2, 16, 17, 127, 128, 129, 300])
def test_ordered_trie_root(count: int) -> None:
    rnd = random.Random(count)
    encoded = [rlp.encode(rnd.randbytes(rnd.randint(0, 120))) for _ in range(count)]
    items: Any = [_Encoded(e) for e in encoded]  # py-evm only calls .encode()
    expected, _ = make_trie_root_and_nodes(items)
    assert ordered_trie_root(encoded, backend="cpu") == expected


uint256 = st.one_of(st.integers(0, 3), st.integers(0, 2**64), st.integers(0, 2**256 - 1))
storage = st.dictionaries(uint256, uint256, max_size=12)


@settings(max_examples=40, deadline=None)
@given(storage)
def test_storage_root(slots: dict[int, int]) -> None:
    expected = hexary_root({keccak(s.to_bytes(32, "big")): rlp.encode(v)
                            for s, v in slots.items() if v})
    assert storage_root(slots, backend="cpu") == expected


def test_storage_roots_batched() -> None:
    rnd = random.Random(4)
    storages = {bytes([i]) * 20: {rnd.getrandbits(16): rnd.getrandbits(64) for _ in range(i)}
                for i in range(30)}
    assert storage_roots(storages) == {a: storage_root(s) for a, s in storages.items()}


accounts_strategy = st.dictionaries(
    st.binary(min_size=20, max_size=20),
    st.builds(AccountState, nonce=st.integers(0, 2**64 - 1),
              balance=st.one_of(st.just(0), st.integers(0, 2**256 - 1)),
              storage=storage,
              code=st.one_of(st.just(b""), st.binary(min_size=1, max_size=300))),
    max_size=12)


@settings(max_examples=30, deadline=None)
@given(accounts_strategy)
def test_state_root_equals_pyevm(accounts: dict[bytes, AccountState]) -> None:
    assert state_root(accounts, backend="cpu") == pyevm_root(accounts)


def test_state_root_empty_and_empty_accounts() -> None:
    assert state_root({}) == BLANK_ROOT == pyevm_root({})
    empty = {bytes([i]) * 20: AccountState(0, 0, {}, b"") for i in range(5)}
    empty[b"\x09" * 20] = AccountState(0, 0, {1: 0}, b"")  # a zero slot is no slot
    assert state_root(empty) == pyevm_root(empty)


def test_state_root_plain_tuples_and_known_roots() -> None:
    rnd = random.Random(5)
    accounts = {rnd.randbytes(20): (rnd.randint(0, 9), rnd.getrandbits(70),
                                    {rnd.getrandbits(8): rnd.getrandbits(30) + 1
                                     for _ in range(rnd.randint(0, 6))},
                                    rnd.randbytes(rnd.choice((0, 50))))
                for _ in range(200)}
    expected = pyevm_root({a: AccountState(*s) for a, s in accounts.items()})
    assert state_root(accounts) == expected
    known = storage_roots({a: s[2] for a, s in accounts.items()})
    # Known roots replace the storage, which is then ignored.
    blanked: dict[bytes, tuple[Any, ...]] = {a: (n, b, {}, c)
                                             for a, (n, b, _, c) in accounts.items()}
    assert state_root(blanked, known_storage_roots=known) == expected


def test_storage_out_of_range() -> None:
    with pytest.raises(ValueError):
        storage_root({2**256: 1})
    with pytest.raises(ValueError):
        storage_root({1: -1})


def _random_state(rnd: random.Random, count: int) -> dict[bytes, AccountState]:
    return {rnd.randbytes(20): AccountState(
        rnd.randint(0, 5), rnd.getrandbits(64),
        {rnd.getrandbits(8): rnd.getrandbits(64) + 1 for _ in range(rnd.choice((0, 0, 3, 8)))},
        rnd.choice((b"", rnd.randbytes(40)))) for _ in range(count)}


@pytest.mark.parametrize("seed", range(8))
def test_state_root_from_diff(seed: int) -> None:
    """A random block's worth of changes, applied by py-evm and by the diff path."""
    rnd = random.Random(seed)
    pre = _random_state(rnd, 40)
    db = AccountDB(AtomicDB())
    for raw_address, (nonce, balance, slots, code) in pre.items():
        address = Address(raw_address)
        db.set_balance(address, balance)
        db.set_nonce(address, nonce)
        db.set_code(address, code)
        for slot, value in slots.items():
            db.set_storage(address, slot, value)
    db.make_state_root()
    diff: dict[bytes, AccountDiff] = {}
    addresses = list(pre)
    for raw_address in rnd.sample(addresses, 15) + [rnd.randbytes(20) for _ in range(3)]:
        address = Address(raw_address)
        old = pre.get(address, AccountState(0, 0, {}, b""))
        change = AccountDiff(created=address not in pre)
        action = rnd.choice(("balance", "storage", "destroy", "clear", "code", "all"))
        if action == "destroy" and address in pre:
            db.delete_account(address)
            diff[address] = AccountDiff(destroyed=True)
            continue
        if action in ("balance", "all") or address not in pre:
            new = rnd.getrandbits(64)
            db.set_balance(address, new)
            change.balance = (old.balance, new)
            change.nonce = (old.nonce, old.nonce + 1)
            db.set_nonce(address, old.nonce + 1)
        if action == "clear":
            db.delete_storage(address)
            change.storage_cleared = True
        if action in ("storage", "clear", "all"):
            for slot in list(old.storage)[:2] + [rnd.getrandbits(8) for _ in range(3)]:
                new = rnd.choice((0, rnd.getrandbits(32) + 1))
                db.set_storage(address, slot, new)
                change.storage[slot] = (old.storage.get(slot, 0), new)
        if action in ("code", "all"):
            code = rnd.randbytes(30)
            db.set_code(address, code)
            change.code = (old.code, code)
        diff[address] = change
    expected = db.make_state_root()
    assert state_root_from_diff(pre, diff, backend="cpu") == expected
    pre_roots = storage_roots({a: s.storage for a, s in pre.items()})
    assert state_root_from_diff(pre, diff, pre_storage_roots=pre_roots) == expected


@pytest.mark.cuda
def test_cuda_roots_match_cpu() -> None:
    require_cuda()
    rnd = random.Random(9)
    accounts = _random_state(rnd, 3000)
    assert state_root(accounts, backend="cuda") == state_root(accounts, backend="cpu")
    items = {rnd.randbytes(rnd.randint(1, 6)): rnd.randbytes(rnd.randint(1, 60))
             for _ in range(5000)}
    assert trie_root(items, backend="cuda") == hexary_root(items)
