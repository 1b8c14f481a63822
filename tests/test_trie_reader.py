"""pevm's trie reader reads exactly what py-evm's AccountDB reads from the same root."""
from __future__ import annotations

import random

import pytest
from eth.constants import BLANK_ROOT_HASH
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth_typing import Address, Hash32

from pevm.engines.locations import BALANCE, CODE, EXISTS, NONCE, STORAGE
from pevm.engines.pre_state import PreState
from pevm.trie_reader import StoredState, TrieReader


def _random_state(seed: int, accounts: int
                  ) -> tuple[AtomicDB, Hash32, dict[Address, list[int]]]:
    """A persisted random state: (db, root, address -> slots written)."""
    rnd = random.Random(seed)
    db = AtomicDB()
    state = AccountDB(db)
    addresses: dict[Address, list[int]] = {Address(rnd.randbytes(20)): []
                                           for _ in range(accounts)}
    for address, slots in addresses.items():
        state.set_balance(address, rnd.getrandbits(rnd.choice((8, 64, 200))))
        state.set_nonce(address, rnd.randrange(3))
        if rnd.random() < 0.3:
            state.set_code(address, rnd.randbytes(rnd.randrange(1, 60)))
        for _ in range(rnd.choice((0, 0, 1, 5, 40))):
            slots.append(rnd.getrandbits(rnd.choice((3, 256))))
            state.set_storage(address, slots[-1], rnd.getrandbits(rnd.choice((1, 8, 256))))
    state.persist()
    return db, state.state_root, addresses


@pytest.mark.parametrize("seed,accounts", [(1, 1), (2, 7), (3, 300)])
def test_stored_state_reads_what_account_db_reads(seed: int, accounts: int) -> None:
    db, root, addresses = _random_state(seed, accounts)
    ours, theirs = StoredState(db, root), AccountDB(db, root)
    missing = [Address(bytes([0xAB]) * 20), Address(bytes(20))]
    for address in [*addresses, *missing]:
        account = ours.account(address)
        assert (account is not None) == theirs.account_exists(address)
        if account is None:
            continue
        assert account.balance == theirs.get_balance(address)
        assert account.nonce == theirs.get_nonce(address)
        assert ours.code(account.code_hash) == theirs.get_code(address)
        for slot in addresses.get(address, []) + [0, 1, 2, 3, 4, 5, 6, 7, 2**255]:
            assert ours.storage(account.storage_root, slot) == \
                theirs.get_storage(address, slot), (address.hex(), slot)


def test_written_slots_read_back() -> None:
    db = AtomicDB()
    state = AccountDB(db)
    address = Address(b"\x11" * 20)
    written = {slot: slot * 7 + 1 for slot in range(0, 600, 3)}
    for slot, value in written.items():
        state.set_storage(address, slot, value)
    state.persist()
    ours = StoredState(db, state.state_root)
    account = ours.account(address)
    assert account is not None
    for slot in range(600):
        assert ours.storage(account.storage_root, slot) == written.get(slot, 0)


def test_blank_root_and_missing_nodes() -> None:
    assert TrieReader({}, BLANK_ROOT_HASH).get(b"\x00" * 32) == b""
    with pytest.raises(KeyError):
        TrieReader({}, b"\x01" * 32).get(b"\x00" * 32)


def test_pre_state_sees_py_evm_journal_before_the_trie() -> None:
    """Changes py-evm holds in its journal (pre-block system steps) win over the
    persisted trie; untouched accounts come from the trie."""
    db, root, addresses = _random_state(4, 50)
    state = AccountDB(db, root)
    changed, deleted, untouched = list(addresses)[:3]
    state.set_balance(changed, 12345)
    state.set_storage(changed, 9, 99)
    state.delete_account(deleted)
    pre = PreState(state)
    reference = AccountDB(db, root)
    assert pre((BALANCE, changed)) == 12345
    assert pre((STORAGE, changed, 9)) == 99
    assert pre((EXISTS, deleted)) is False and pre((BALANCE, deleted)) == 0
    assert pre((BALANCE, untouched)) == reference.get_balance(untouched)
    assert pre((NONCE, untouched)) == reference.get_nonce(untouched)
    assert pre((CODE, untouched)) == reference.get_code(untouched)
    for slot in range(8):
        assert pre((STORAGE, untouched, slot)) == reference.get_storage(untouched, slot)
