"""The incremental trie and the state commitment against py-trie and py-evm.

Every root is compared with an independent implementation: py-trie's
``HexaryTrie`` (the trie py-evm uses), pevm's from-scratch batched root, and
py-evm's ``AccountDB``. Persistence is checked by keeping old versions and
re-reading their roots after later updates.
"""
from __future__ import annotations

import random

import pytest
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth_typing import Address, Hash32
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from pevm.gpu import state_root, storage_root
from pevm.gpu.incremental_trie import IncrementalTrie, hashed_keys
from pevm.gpu.keccak import EMPTY_KECCAK, keccak256
from pevm.gpu.trie import AccountState
from pevm.state.commitment import AccountUpdate, StateCommitment

# Keys drawn from a small pool with shared prefixes, so that splits, merges and
# collapses of extensions and branches all happen, and short leaves get embedded.
_PREFIXES = [b"", b"\x12", b"\x12\x34", b"\x12\x34\x56" * 10]
_keys = st.builds(lambda prefix, tail: (prefix + tail)[:32].ljust(32, b"\0"),
                  st.sampled_from(_PREFIXES), st.binary(min_size=32, max_size=32))
_values = st.one_of(st.just(b""), st.binary(min_size=1, max_size=40))
_batches = st.lists(st.dictionaries(_keys, _values, min_size=1, max_size=25),
                    min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(_batches)
def test_batches_of_updates_give_py_trie_roots_and_leave_old_versions_intact(
        batches: list[dict[bytes, bytes]]) -> None:
    trie, reference = IncrementalTrie.empty(), HexaryTrie({})
    model: dict[bytes, bytes] = {}
    versions = [(trie, reference.root_hash)]
    for batch in batches:
        trie = trie.update({k.hex(): v for k, v in batch.items()})
        for key, value in batch.items():
            if value:
                reference[key] = value
                model[key] = value
            elif key in model:
                del reference[key]
                del model[key]
        assert trie.root == reference.root_hash
        assert trie.is_empty == (not model)
        versions.append((trie, reference.root_hash))
    for old, root in versions:  # every earlier version still has its root
        assert old.root == root
        if not old.is_empty:
            rebuilt = HexaryTrie(dict(old.nodes()), root)
            assert rebuilt.root_hash == root


def test_an_update_that_changes_nothing_returns_the_same_trie() -> None:
    items = {bytes([i]) * 32: bytes([i + 1]) for i in range(20)}
    trie = IncrementalTrie.empty().update({k.hex(): v for k, v in items.items()})
    absent = (b"\x07" + b"\x00" * 31).hex()
    assert trie.update({next(iter(items)).hex(): b"\x01", absent: b""}) is trie


def test_nodes_are_the_nodes_py_trie_stores() -> None:
    rnd = random.Random(5)
    items = {rnd.randbytes(32): rnd.randbytes(rnd.randint(1, 60)) for _ in range(300)}
    trie = IncrementalTrie.empty().update({k.hex(): v for k, v in items.items()})
    reference = HexaryTrie({})
    for key, value in items.items():
        reference[key] = value
    stored = dict(trie.nodes())
    assert set(stored) <= set(reference.db)
    for key, value in items.items():  # py-trie reads every item back from our nodes
        assert HexaryTrie(stored, trie.root)[key] == value


def test_keys_of_different_lengths_are_refused() -> None:
    trie = IncrementalTrie.empty().update({"ab" * 32: b"x"})
    with pytest.raises(ValueError, match="same length"):
        trie.update({"ab" * 16: b"y"})


def test_hashed_keys_are_keccak_hex() -> None:
    assert hashed_keys([b"\x01" * 20]) == [keccak256(b"\x01" * 20).hex()]
    assert hashed_keys([]) == []


# ------------------------------------------------------------------ commitment
def _random_state(rnd: random.Random, count: int) -> dict[bytes, AccountState]:
    state = {}
    for i in range(count):
        storage = ({rnd.getrandbits(rnd.choice((8, 256))): rnd.getrandbits(64) + 1
                    for _ in range(rnd.randint(1, 6))} if i % 3 == 0 else {})
        code = rnd.randbytes(rnd.randint(1, 50)) if storage else b""
        state[rnd.randbytes(20)] = AccountState(rnd.randint(0, 9), rnd.getrandbits(70),
                                                storage, code)
    return state


def _as_updates(state: dict[bytes, AccountState]) -> dict[bytes, AccountUpdate]:
    return {a: AccountUpdate(s.nonce, s.balance, keccak256(s.code) if s.code else EMPTY_KECCAK,
                             dict(s.storage)) for a, s in state.items()}


@pytest.mark.parametrize("seed", range(6))
def test_commitment_follows_a_chain_of_block_changes(seed: int) -> None:
    """Random blocks (new accounts, deletions, storage writes and wipes) applied
    incrementally give the from-scratch root after each block, and py-evm's
    AccountDB doing the same writes agrees."""
    rnd = random.Random(seed)
    state = _random_state(rnd, 60)
    commitment = StateCommitment.build(_as_updates(state))
    assert commitment.root == state_root(state)
    db = AtomicDB()
    pyevm = AccountDB(db)
    for address, s in state.items():
        pyevm.set_balance(Address(address), s.balance)
        pyevm.set_nonce(Address(address), s.nonce)
        if s.code:
            pyevm.set_code(Address(address), s.code)
        for slot, value in s.storage.items():
            pyevm.set_storage(Address(address), slot, value)
    pyevm.persist()
    assert pyevm.state_root == commitment.root
    history = [(commitment, commitment.root)]
    for _block in range(4):
        changes: dict[bytes, AccountUpdate | None] = {}
        for address in rnd.sample(sorted(state), 15):
            old = state[address]
            action = rnd.random()
            if action < 0.15:
                changes[address] = None
                del state[address]
                pyevm.delete_account(Address(address))
                continue
            storage = dict(old.storage)
            cleared = action < 0.3 and bool(storage)
            if cleared:
                storage = {}
                pyevm.delete_storage(Address(address))
            written = {rnd.choice([*storage, rnd.getrandbits(16)]) if storage
                       else rnd.getrandbits(16): rnd.choice([0, rnd.getrandbits(64)])
                       for _ in range(rnd.randint(0, 3))}
            for slot, value in written.items():
                pyevm.set_storage(Address(address), slot, value)
                if value:
                    storage[slot] = value
                else:
                    storage.pop(slot, None)
            new = AccountState(old.nonce + 1, rnd.getrandbits(70), storage, old.code)
            state[address] = new
            pyevm.set_nonce(Address(address), new.nonce)
            pyevm.set_balance(Address(address), new.balance)
            changes[address] = AccountUpdate(new.nonce, new.balance,
                                             keccak256(old.code) if old.code else EMPTY_KECCAK,
                                             written, cleared)
        for _ in range(3):  # new accounts
            address = rnd.randbytes(20)
            state[address] = AccountState(0, 1, {}, b"")
            pyevm.set_balance(Address(address), 1)
            changes[address] = AccountUpdate(0, 1)
        commitment = commitment.update(changes)
        pyevm.persist()
        assert commitment.root == state_root(state) == pyevm.state_root
        for address, account in state.items():
            assert commitment.storage_root(address) == storage_root(account.storage)
        history.append((commitment, commitment.root))
    for version, root in history:
        assert version.root == root


def test_py_evm_reads_a_state_the_commitment_built() -> None:
    rnd = random.Random(9)
    state = _random_state(rnd, 40)
    commitment = StateCommitment.build(_as_updates(state))
    db = AtomicDB()
    for node_hash, node in commitment.nodes():
        db[node_hash] = node
    for s in state.values():
        if s.code:
            db[keccak256(s.code)] = s.code
    reader = AccountDB(db, Hash32(commitment.root))
    for address, s in state.items():
        assert reader.get_balance(Address(address)) == s.balance
        assert reader.get_nonce(Address(address)) == s.nonce
        assert reader.get_code(Address(address)) == s.code
        for slot, value in s.storage.items():
            assert reader.get_storage(Address(address), slot) == value
