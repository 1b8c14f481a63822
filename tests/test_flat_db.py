"""FlatAccountDB against py-evm's AccountDB: the same operations, the same answers.

The contract of :mod:`pevm.state.flat_db` is py-evm's observable behaviour, so the
tests are differential: random operation sequences (hypothesis state machines) run
on py-evm's ``AccountDB`` and on ``FlatAccountDB`` from the same genesis, comparing
every answer, every state root and the witness; named scenarios pin the py-evm
quirks the flat database mirrors; version tests cover side chains and compaction;
and py-evm chains (Cancun, and Spurious Dragon with its per-transaction roots) run
on the flat backend with state roots equal to py-evm's own.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import rlp
from eth import constants
from eth._utils.address import generate_contract_address
from eth.abc import AccountDatabaseAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.chains.base import MiningChain
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.trie import _make_trie_root_and_nodes
from eth.tools.builder.chain import disable_pow_check
from eth.rlp.accounts import Account
from eth.vm.forks import CancunVM, SpuriousDragonVM
from eth_typing import Address, Hash32
from eth_utils import ValidationError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, invariant, precondition, rule,
                                 run_state_machine_as_test)

from pevm import pyevm_compat as compat
from pevm.state import (MAX_DEPTH, FlatAccountDB, FlatStore, FlatVersion, StateBackend,
                        StoreNotAttached, UnknownStateRoot, chain_class_on, load_state,
                        new_database)
from tests.chain_builder import ADDRESSES, COINBASE, GENESIS_PARAMS, KEYS
from tests.parallel_support import hypothesis_profile_examples

# -- the pool the random sequences draw from ---------------------------------------------
ADDRS = [Address(bytes([0xA0 + i]) * 20) for i in range(6)]
CONTRACT, EOA, DORMANT, EMPTY, ABSENT, ABSENT2 = ADDRS
SLOTS = [0, 1, 2, 7, 2**255, 2**256 - 1]
VALUES = [0, 0, 1, 2, 42, 2**256 - 1]
BALANCES = [0, 1, 10**18, 2**256 - 1]
NONCES = [0, 1, 7, 2**64 - 2, 2**64 - 1]
CODES = [b"", b"\x00", b"\x60\x01\x60\x00\x55", b"\x33\xff"]

#: nonce, balance, code, storage. DORMANT has storage but no code and nonce 0 (what
#: CREATE2 may land on); EMPTY exists and is empty; the last two do not exist.
GENESIS: dict[bytes, tuple[int, int, bytes, Mapping[int, int]]] = {
    CONTRACT: (1, 10**18, CODES[2], {0: 7, 1: 1, 2**255: 3}),
    EOA: (3, 5 * 10**18, b"", {}),
    DORMANT: (0, 0, b"", {1: 9, 7: 2**256 - 1}),
    EMPTY: (0, 0, b"", {}),
}


def pyevm_genesis() -> tuple[AtomicDB, Hash32]:
    """GENESIS in a py-evm database, written through py-evm's own AccountDB."""
    db = new_database(StateBackend.PYEVM)
    return db, Hash32(load_state(StateBackend.PYEVM, db, GENESIS))


def flat_genesis() -> tuple[AtomicDB, Hash32]:
    db = new_database(StateBackend.FLAT)
    return db, Hash32(load_state(StateBackend.FLAT, db, GENESIS))


def pair() -> tuple[AccountDB, FlatAccountDB]:
    """py-evm's and the flat database on the same genesis state."""
    py_db, root = pyevm_genesis()
    flat_db, flat_root = flat_genesis()
    assert flat_root == root
    return AccountDB(py_db, root), FlatAccountDB(flat_db, root)


def account_view(db: AccountDatabaseAPI, address: Address) -> tuple[Any, ...]:
    """Every account-level getter (none of them opens the account's storage)."""
    return (db.get_balance(address), db.get_nonce(address), db.get_code_hash(address),
            db.get_code(address), db.account_exists(address), db.account_is_empty(address),
            db.account_has_code_or_nonce(address), db.is_address_warm(address),
            tuple(db.is_storage_warm(address, slot) for slot in SLOTS))


def storage_view(db: AccountDatabaseAPI, address: Address) -> tuple[tuple[int, int], ...]:
    return tuple((db.get_storage(address, slot), db.get_storage(address, slot, False))
                 for slot in SLOTS)


def assert_same_state(py: AccountDatabaseAPI, flat: AccountDatabaseAPI) -> None:
    assert flat.state_root == py.state_root
    for address in ADDRS:
        assert account_view(flat, address) == account_view(py, address), address.hex()
        assert storage_view(flat, address) == storage_view(py, address), address.hex()


def assert_version_matches(version: FlatVersion, py: AccountDatabaseAPI) -> None:
    """The layers of a version hold what py-evm's database holds (the pool's slots
    are all the slots any test writes)."""
    assert version.root == py.state_root
    for address in ADDRS:
        expected = ((py.get_nonce(address), py.get_balance(address),
                     py.get_code_hash(address)) if py.account_exists(address) else None)
        assert version.account(address) == expected, address.hex()
        storage = {slot: value for slot in SLOTS if (value := py.get_storage(address, slot))}
        assert version.storage_of(address) == storage, address.hex()
        assert {slot: version.slot(address, slot) for slot in storage} == storage


def assert_same_witness(py_witness: Any, flat_witness: Any) -> None:
    assert flat_witness.accounts_queried == py_witness.accounts_queried
    for address in py_witness.accounts_queried:
        assert flat_witness.get_slots_queried(address) == \
            py_witness.get_slots_queried(address), address.hex()


# -- random operation sequences -----------------------------------------------------------
addresses = st.sampled_from(ADDRS)
slots = st.sampled_from(SLOTS)
values = st.sampled_from(VALUES) | st.integers(0, 2**256 - 1)


class Differential(RuleBasedStateMachine):
    """The same operations on py-evm's AccountDB and FlatAccountDB, compared."""

    #: compare every account getter after every step (opens no storage, but reads
    #: every account: the sparse variant leaves accounts_queried to the sequence)
    CHECK_EVERY_STEP = True
    #: also every slot, both ways (this opens every storage at once, so the paths
    #: where py-evm opens a storage late are left to the other variants)
    CHECK_STORAGE_EVERY_STEP = False

    def __init__(self) -> None:
        super().__init__()
        self.py_db, root = pyevm_genesis()
        self.flat_db, flat_root = flat_genesis()
        assert flat_root == root
        self._open(root)

    def _open(self, root: Hash32) -> None:
        self.root = root
        self.py = AccountDB(self.py_db, root)
        self.flat = FlatAccountDB(self.flat_db, root)
        self.checkpoints: list[tuple[Any, Any]] = []

    def same(self, name: str, *args: Any) -> Any:
        """Call ``name(*args)`` on both; equal results, or the same exception type."""
        return self.both(name, lambda db: getattr(db, name)(*args))

    def both(self, what: str, call: Callable[[Any], Any],
             flat_call: Callable[[Any], Any] | None = None) -> Any:
        outcomes = []
        for db, do in ((self.py, call), (self.flat, flat_call or call)):
            try:
                outcomes.append((True, do(db)))
            except Exception as exc:  # noqa: BLE001 - the exception is the compared answer
                outcomes.append((False, exc))
        (py_ok, py_value), (flat_ok, flat_value) = outcomes
        if py_ok and flat_ok:
            assert flat_value == py_value, f"{what}: py-evm {py_value!r}, flat {flat_value!r}"
            return py_value
        assert (py_ok, type(py_value)) == (flat_ok, type(flat_value)), \
            f"{what}: py-evm {py_value!r}, flat {flat_value!r}"
        raise _BothRaised(py_value)

    @invariant()
    def accounts_agree(self) -> None:
        if not self.CHECK_EVERY_STEP:
            return
        assert self.flat.state_root == self.py.state_root
        for address in ADDRS:
            assert account_view(self.flat, address) == account_view(self.py, address), \
                address.hex()
            opened = compat.storage_opened(self.py, address)
            assert self.flat.storage_opened(address) == opened
            fields = self.flat.account_fields(address)
            assert fields[:4] == (self.py.account_exists(address), self.py.get_balance(address),
                                  self.py.get_nonce(address), self.py.get_code_hash(address))
            if not opened:
                encoded = compat.encoded_account(self.py, address)
                root = rlp.decode(encoded, sedes=Account).storage_root if encoded \
                    else constants.BLANK_ROOT_HASH
                assert fields[4] == root, address.hex()
            if self.CHECK_STORAGE_EVERY_STEP:
                assert storage_view(self.flat, address) == storage_view(self.py, address), \
                    address.hex()
                assert [self.flat.peek_storage(address, slot) for slot in SLOTS] == \
                    [self.py.get_storage(address, slot) for slot in SLOTS]

    # accounts
    @rule(address=addresses, balance=st.sampled_from(BALANCES))
    def set_balance(self, address: Address, balance: int) -> None:
        self.same("set_balance", address, balance)

    @rule(address=addresses, nonce=st.sampled_from(NONCES))
    def set_nonce(self, address: Address, nonce: int) -> None:
        self.same("set_nonce", address, nonce)

    @rule(address=addresses)
    def increment_nonce(self, address: Address) -> None:
        try:
            self.same("increment_nonce", address)
        except _BothRaised as raised:
            assert isinstance(raised.exc, ValidationError)  # past 2**64-1

    @rule(address=addresses, balance=st.none() | st.sampled_from(BALANCES),
          nonce=st.none() | st.sampled_from(NONCES), delta=st.sampled_from([0, 1, 10**18]))
    def update_account(self, address: Address, balance: int | None, nonce: int | None,
                       delta: int) -> None:
        # the merge's one-update path against what it stands for: py-evm's setters
        def setters(db: Any) -> None:
            db.set_balance(address, (db.get_balance(address) if balance is None
                                     else balance) + delta)
            if nonce is not None:
                db.set_nonce(address, nonce)
        try:
            self.both("update_account", setters,
                      lambda db: db.update_account(address, balance, nonce, delta))
        except _BothRaised as raised:
            assert isinstance(raised.exc, ValidationError)  # past 2**256-1

    @rule(address=addresses, code=st.sampled_from(CODES))
    def set_code(self, address: Address, code: bytes) -> None:
        self.same("set_code", address, code)

    @rule(address=addresses)
    def delete_code(self, address: Address) -> None:
        self.same("delete_code", address)

    @rule(address=addresses)
    def touch_account(self, address: Address) -> None:
        self.same("touch_account", address)

    @rule(address=addresses)
    def delete_account(self, address: Address) -> None:
        self.same("delete_account", address)

    @rule(address=addresses, getter=st.sampled_from([
        "get_balance", "get_nonce", "get_code", "get_code_hash", "account_exists",
        "account_is_empty", "account_has_code_or_nonce", "is_address_warm"]))
    def read_account(self, address: Address, getter: str) -> None:
        self.same(getter, address)

    @rule(address=addresses, slot=slots)
    def is_storage_warm(self, address: Address, slot: int) -> None:
        self.same("is_storage_warm", address, slot)

    # storage
    @rule(address=addresses, slot=slots, value=values)
    def set_storage(self, address: Address, slot: int, value: int) -> None:
        self.same("set_storage", address, slot, value)

    @rule(address=addresses, slot=slots)
    def get_storage(self, address: Address, slot: int) -> None:
        peeked = self.flat.peek_storage(address, slot)  # before either opens the storage
        assert self.same("get_storage", address, slot, True) == peeked
        self.same("get_storage", address, slot, False)

    @rule(address=addresses)
    def delete_storage(self, address: Address) -> None:
        self.same("delete_storage", address)

    # warm sets
    @rule(address=addresses)
    def mark_address_warm(self, address: Address) -> None:
        self.same("mark_address_warm", address)

    @rule(address=addresses, slot=slots)
    def mark_storage_warm(self, address: Address, slot: int) -> None:
        self.same("mark_storage_warm", address, slot)

    # checkpoints
    @rule()
    def record(self) -> None:
        self.checkpoints.append((self.py.record(), self.flat.record()))

    @precondition(lambda self: self.checkpoints)
    @rule(data=st.data(), keep=st.booleans())
    def discard_or_commit(self, data: st.DataObject, keep: bool) -> None:
        index = data.draw(st.integers(0, len(self.checkpoints) - 1), label="checkpoint")
        py_cp, flat_cp = self.checkpoints[index]
        del self.checkpoints[index:]
        name = "commit" if keep else "discard"
        try:
            self.both(name, lambda db: getattr(db, name)(py_cp),
                      lambda db: getattr(db, name)(flat_cp))
        except _BothRaised as raised:
            # py-evm cannot revert across two wipes of one account's storage; its
            # journals are then inconsistent: start over from the last root
            assert isinstance(raised.exc, ValidationError) and not keep
            event("discard across two wipes: both raise ValidationError")
            self._open(self.root)

    # transaction and block boundaries (py-evm only calls them outside checkpoints)
    @precondition(lambda self: not self.checkpoints)
    @rule()
    def lock_changes(self) -> None:
        self.same("lock_changes")

    @precondition(lambda self: not self.checkpoints)
    @rule()
    def make_state_root(self) -> None:
        self.same("make_state_root")

    @precondition(lambda self: not self.checkpoints)
    @rule()
    def persist(self) -> None:
        assert_same_witness(self.py.persist(), self.flat.persist())
        root = self.py.state_root
        assert self.flat.state_root == root
        self.root = root
        # a fresh database on the persisted root reads what py-evm's reads (fresh
        # ones: reading every slot here would open every storage of the live ones)
        assert_same_state(AccountDB(self.py_db, root), FlatAccountDB(self.flat_db, root))
        assert_version_matches(FlatStore.of(self.flat_db).version(root),
                               AccountDB(self.py_db, root))


class _BothRaised(Exception):
    """Both databases raised the same type of exception."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.exc = exc


class SparseDifferential(Differential):
    """No getters between operations: what the sequence reads is all that is read,
    so the witness (accounts and slots queried) is compared as the sequence makes
    it, and storage is opened only where the sequence opens it."""

    CHECK_EVERY_STEP = False


class StorageCheckedDifferential(Differential):
    """Every getter, every slot included, compared after every step."""

    CHECK_STORAGE_EVERY_STEP = True


_MACHINE_SETTINGS = settings(max_examples=hypothesis_profile_examples(150),
                             stateful_step_count=60, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def test_random_sequences_match_pyevm() -> None:
    run_state_machine_as_test(Differential, settings=_MACHINE_SETTINGS)


def test_random_sequences_match_pyevm_witness() -> None:
    run_state_machine_as_test(SparseDifferential, settings=_MACHINE_SETTINGS)


def test_random_sequences_match_pyevm_slot_by_slot() -> None:
    run_state_machine_as_test(StorageCheckedDifferential, settings=settings(
        _MACHINE_SETTINGS, max_examples=hypothesis_profile_examples(50)))


# -- the py-evm quirks, one by one ---------------------------------------------------------
def test_wipe_of_unopened_storage_is_lost_even_when_discarded() -> None:
    # py-evm's delete_storage resets the storage root before opening the storage: a
    # CREATE2 onto a dormant account that reverts still loses the dormant storage
    for db in pair():
        checkpoint = db.record()
        db.delete_storage(DORMANT)
        db.set_nonce(DORMANT, 1)
        db.discard(checkpoint)
        assert db.get_nonce(DORMANT) == 0
        assert db.get_storage(DORMANT, 1) == 0
    py, flat = pair()
    for db in (py, flat):
        checkpoint = db.record()
        db.delete_storage(DORMANT)
        db.discard(checkpoint)
    assert flat.make_state_root() == py.make_state_root()


def test_wipe_of_opened_storage_is_restored_when_discarded() -> None:
    py, flat = pair()
    for db in (py, flat):
        assert db.get_storage(DORMANT, 1) == 9
        checkpoint = db.record()
        db.delete_storage(DORMANT)
        assert db.get_storage(DORMANT, 1) == 0
        db.discard(checkpoint)
        assert db.get_storage(DORMANT, 1) == 9
    assert flat.make_state_root() == py.make_state_root()
    assert_same_state(py, flat)


def test_storage_of_missing_account_creates_it_at_the_state_root() -> None:
    py, flat = pair()
    for db in (py, flat):
        db.set_storage(ABSENT, 1, 5)
        assert not db.account_exists(ABSENT)
        db.make_state_root()
        assert db.account_exists(ABSENT) and db.get_storage(ABSENT, 1) == 5
    assert flat.state_root == py.state_root


def test_delete_storage_creates_the_account() -> None:
    py, flat = pair()
    for db in (py, flat):
        db.delete_storage(ABSENT)
        assert db.account_exists(ABSENT)
    assert flat.make_state_root() == py.make_state_root()


def test_deleting_a_missing_account_wipes_the_storage_written_to_it() -> None:
    py, flat = pair()
    for db in (py, flat):
        db.set_storage(ABSENT, 1, 5)
        db.delete_account(ABSENT)
        assert db.get_storage(ABSENT, 1) == 0 and not db.account_exists(ABSENT)
    assert flat.make_state_root() == py.make_state_root()


def test_original_value_is_the_locked_one_even_after_a_wipe() -> None:
    # from_journal=False reads the value at the last lock_changes; after a wipe in
    # the current transaction py-evm still shows slots locked by earlier
    # transactions since the last root, and 0 for the rest
    py, flat = pair()
    for db in (py, flat):
        db.set_storage(CONTRACT, 0, 8)
        db.lock_changes()
        db.delete_storage(CONTRACT)
        assert db.get_storage(CONTRACT, 0, from_journal=False) == 8
        assert db.get_storage(CONTRACT, 1, from_journal=False) == 0
        assert db.get_storage(CONTRACT, 0) == 0
    assert_same_state(py, flat)
    assert flat.make_state_root() == py.make_state_root()


def test_discard_across_two_wipes_raises_like_pyevm() -> None:
    for db in pair():
        checkpoint = db.record()
        db.delete_storage(CONTRACT)
        db.delete_storage(CONTRACT)
        with pytest.raises(ValidationError):
            db.discard(checkpoint)


def test_warm_sets_are_journaled_and_reset_by_lock_changes_only() -> None:
    py, flat = pair()
    for db in (py, flat):
        db.mark_address_warm(EOA)
        checkpoint = db.record()
        db.mark_storage_warm(CONTRACT, 1)
        db.mark_address_warm(ABSENT)
        db.discard(checkpoint)
        assert db.is_address_warm(EOA) and not db.is_address_warm(ABSENT)
        assert not db.is_storage_warm(CONTRACT, 1)
        db.mark_storage_warm(CONTRACT, 2)
        db.make_state_root()
        db.persist()
        assert db.is_storage_warm(CONTRACT, 2)
        db.lock_changes()
        assert not db.is_storage_warm(CONTRACT, 2) and not db.is_address_warm(EOA)


def test_state_root_setter_and_has_root() -> None:
    py, flat = pair()
    genesis_root = flat.state_root
    flat.state_root = genesis_root  # what State.revert does: unchanged, a no-op
    flat.set_balance(EOA, 1)
    with pytest.raises(NotImplementedError):
        flat.state_root = Hash32(constants.BLANK_ROOT_HASH)
    flat.persist()
    assert flat.has_root(genesis_root) and flat.has_root(flat.state_root)
    assert not flat.has_root(b"\x12" * 32)
    flat.state_root = genesis_root  # a known version, nothing pending: switches
    assert flat.get_balance(EOA) == 5 * 10**18
    assert_same_state(py, flat)


# -- versions ------------------------------------------------------------------------------
def test_unknown_root_and_missing_store_are_clear_errors() -> None:
    db, _ = flat_genesis()
    with pytest.raises(KeyError, match="12" * 32):
        FlatAccountDB(db, Hash32(b"\x12" * 32))
    with pytest.raises(UnknownStateRoot):
        FlatAccountDB(db, Hash32(b"\x12" * 32))
    with pytest.raises(StoreNotAttached, match="attach"):
        FlatAccountDB(AtomicDB())
    assert FlatStore.attach(db) is FlatStore.of(db)


def test_side_chains_do_not_see_each_other_and_leave_the_parent_intact() -> None:
    py_db, root = pyevm_genesis()
    flat_db, _ = flat_genesis()

    def child(db: AccountDatabaseAPI, balance: int, value: int) -> Hash32:
        db.set_balance(EOA, balance)
        db.set_storage(CONTRACT, 1, value)
        db.delete_account(DORMANT)
        db.persist()
        return db.state_root

    roots = []
    for balance, value in ((1, 100), (2, 0)):
        py_root = child(AccountDB(py_db, root), balance, value)
        assert child(FlatAccountDB(flat_db, root), balance, value) == py_root
        roots.append(py_root)
    assert roots[0] != roots[1]
    for at in (root, *roots):
        assert_same_state(AccountDB(py_db, at), FlatAccountDB(flat_db, at))
    first, second = (FlatAccountDB(flat_db, r) for r in roots)
    assert (first.get_balance(EOA), first.get_storage(CONTRACT, 1)) == (1, 100)
    assert (second.get_balance(EOA), second.get_storage(CONTRACT, 1)) == (2, 0)
    parent = FlatAccountDB(flat_db, root)
    assert parent.get_storage(DORMANT, 1) == 9 and parent.account_exists(DORMANT)


def test_long_chains_compact_and_every_version_stays_readable() -> None:
    py_db, root = pyevm_genesis()
    flat_db, _ = flat_genesis()
    store = FlatStore.of(flat_db)
    py, flat = AccountDB(py_db, root), FlatAccountDB(flat_db, root)
    roots = [root]
    for block in range(3 * MAX_DEPTH):
        for db in (py, flat):
            db.set_balance(ADDRS[block % 6], block)
            db.set_storage(ADDRS[(block + 1) % 6], SLOTS[block % 6], block % 3)
            if block % 7 == 3:
                db.delete_storage(ADDRS[block % 4])
            if block % 11 == 5:
                db.delete_account(ADDRS[block % 3])
            db.persist()
        assert flat.state_root == py.state_root
        roots.append(py.state_root)
        assert store.version(flat.state_root).depth <= MAX_DEPTH
    for at in roots[::5] + roots[-2:]:
        assert_same_state(AccountDB(py_db, at), FlatAccountDB(flat_db, at))
        assert_version_matches(store.version(at), AccountDB(py_db, at))
    head = store.version(roots[-1])
    base = head.flattened()
    assert base.parent is None and base.depth == 1 and base.root == head.root
    assert_version_matches(base, AccountDB(py_db, roots[-1]))


def test_compaction_squashes_the_layers_above_a_large_base() -> None:
    # a base much larger than what the blocks change: compaction squashes the
    # layers above it into one and keeps the base object itself
    filler = {bytes([0x10, i]) * 10: (0, i + 1, b"", {1: i + 1}) for i in range(100)}
    py_db = AtomicDB()
    py = AccountDB(py_db)
    for raw, (_, balance, _, storage) in filler.items():
        py.set_balance(Address(raw), balance)
        py.set_storage(Address(raw), 1, storage[1])
    py.persist()
    flat_db = AtomicDB()
    store = FlatStore.attach(flat_db)
    root = store.genesis(filler)
    assert root == py.state_root
    base = store.version(root)
    flat = FlatAccountDB(flat_db, Hash32(root))
    for block in range(MAX_DEPTH):  # the last one makes the chain one too deep
        for db in (py, flat):
            db.set_balance(ADDRS[block % 6], block + 1)
            db.set_storage(ADDRS[block % 3], 2, block)
            db.persist()
        assert flat.state_root == py.state_root
    head = store.version(flat.state_root)
    assert head.depth == 2 and head.parent is base
    assert_version_matches(head, py)
    assert_same_state(py, flat)


# -- py-evm chains on the flat backend -----------------------------------------------------
INCREMENT = bytes.fromhex("60015460010160015500")    # slot 1 += 1
CREATE = bytes.fromhex("602a600055600a601160003960" "0a6000f3") + INCREMENT  # slot 0 = 42
SELF_DESTRUCT = bytes.fromhex("33ff")                 # init code: SELFDESTRUCT to caller
NEW_ADDRESS = Address(b"\x0e" * 20)


def new_chain(vm_class: type[VirtualMachineAPI], params: dict[str, Any], pow_check: bool,
              backend: StateBackend = StateBackend.PYEVM) -> tuple[MiningChain, AtomicDB]:
    """A chain of ``vm_class`` on ``backend``, built the documented way
    (pevm.state's docstring)."""
    chain_class: Any = chain_class_on(backend, MiningChain.configure(
        "FlatDBTestChain", vm_configuration=((0, vm_class),), chain_id=1))
    if not pow_check:
        chain_class = disable_pow_check(chain_class)
    db = new_database(backend)
    state = {address: {"balance": 10**19, "nonce": 0, "code": b"", "storage": {}}
             for address in ADDRESSES[:4]}
    chain = chain_class.from_genesis(db, params, state)
    assert isinstance(chain, MiningChain)
    return chain, db


Sign = Callable[[MiningChain, int, int, bytes, int, bytes, int], SignedTransactionAPI]


def blocks_of(chain: MiningChain, sign: Sign) -> list[list[SignedTransactionAPI]]:
    """Transfers (one to a new account, one of 0 to a missing one: EIP-161 touch),
    a contract creation writing storage, calls writing it again, and a creation that
    self-destructs at once."""
    nonces = [0] * 4

    def tx(sender: int, to: bytes, value: int = 0, data: bytes = b"",
           gas: int = 21_000) -> SignedTransactionAPI:
        nonces[sender] += 1
        return sign(chain, sender, nonces[sender] - 1, to, value, data, gas)

    contract = generate_contract_address(ADDRESSES[1], 0)
    return [
        [tx(0, ADDRESSES[1], 10**15), tx(1, b"", 0, CREATE, 200_000),
         tx(2, NEW_ADDRESS, 5)],
        [tx(0, contract, gas=100_000), tx(2, contract, gas=100_000),
         tx(3, b"", 0, SELF_DESTRUCT, 100_000), tx(0, Address(b"\x0f" * 20))],
        [tx(1, ADDRESSES[0], 1), tx(0, contract, gas=100_000)],
    ]


def sign_cancun(chain: MiningChain, sender: int, nonce: int, to: bytes, value: int,
                data: bytes, gas: int) -> SignedTransactionAPI:
    builder: Any = chain.get_vm().get_transaction_builder()
    return builder.new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=nonce, max_priority_fee_per_gas=2, max_fee_per_gas=100, gas=gas,
        to=to, value=value, data=data, access_list=()).as_signed_transaction(KEYS[sender])


def sign_legacy(chain: MiningChain, sender: int, nonce: int, to: bytes, value: int,
                data: bytes, gas: int) -> SignedTransactionAPI:
    builder: Any = chain.get_vm().get_transaction_builder()
    return builder.create_unsigned_transaction(
        nonce=nonce, gas_price=10, gas=gas, to=to, value=value, data=data,
    ).as_signed_transaction(KEYS[sender], chain_id=1)


LEGACY_GENESIS: dict[str, Any] = {
    "coinbase": COINBASE, "difficulty": 131_072, "gas_limit": 8_000_000,
    "timestamp": 1_500_000_000, "extra_data": b"", "nonce": b"\x00" * 8,
    "mix_hash": constants.ZERO_HASH32,
}


@pytest.mark.parametrize("vm_class, params, sign", [
    (CancunVM, GENESIS_PARAMS, sign_cancun),
    # before Byzantium every receipt holds the state root after its transaction:
    # make_state_root after each one, checked through the receipt root
    (SpuriousDragonVM, LEGACY_GENESIS, sign_legacy),
], ids=["cancun", "spurious-dragon"])
def test_pyevm_chain_runs_on_the_flat_backend(vm_class: type[VirtualMachineAPI],
                                              params: dict[str, Any], sign: Sign) -> None:
    pow_check = vm_class is CancunVM
    reference, _ = new_chain(vm_class, params, pow_check)
    importer, import_db = new_chain(vm_class, params, pow_check, StateBackend.FLAT)
    miner, _ = new_chain(vm_class, params, pow_check, StateBackend.FLAT)
    assert importer.get_canonical_head().state_root == reference.get_canonical_head().state_root
    for transactions in blocks_of(reference, sign):
        result, _receipts, _computations = reference.mine_all(transactions, coinbase=COINBASE)
        block = result.imported_block
        # py-evm's import checks the state, receipt and gas roots against the header
        importer.import_block(block)
        assert importer.get_canonical_head() == block.header
        for index, tx in enumerate(block.transactions):  # the hash lookups, as py-evm's
            assert importer.chaindb.get_transaction_index(tx.hash) == \
                reference.chaindb.get_transaction_index(tx.hash) == \
                (block.number, index)
        mined, _receipts, _computations = miner.mine_all(transactions, coinbase=COINBASE)
        assert mined.imported_block.header.state_root == block.header.state_root
        assert mined.imported_block.header.receipt_root == block.header.receipt_root
    root = reference.get_canonical_head().state_root
    contract = generate_contract_address(ADDRESSES[1], 0)
    flat = FlatAccountDB(import_db, root)
    assert (flat.get_storage(contract, 0), flat.get_storage(contract, 1)) == (42, 3)
    state = reference.get_vm().state
    for address in (*ADDRESSES[:4], contract, NEW_ADDRESS, COINBASE, Address(b"\x0f" * 20)):
        assert (flat.get_balance(address), flat.get_nonce(address), flat.get_code(address),
                flat.account_exists(address)) == (
            state.get_balance(address), state.get_nonce(address), state.get_code(address),
            state.account_exists(address))


def test_side_chain_block_imports_on_the_flat_backend() -> None:
    chain, db = new_chain(CancunVM, GENESIS_PARAMS, True, StateBackend.FLAT)
    parent = chain.get_canonical_head()
    first = chain.mine_all([sign_cancun(chain, 0, 0, NEW_ADDRESS, 7, b"", 21_000)],
                           coinbase=COINBASE)[0].imported_block
    # a sibling of `first`, built on the same parent state
    second = chain.mine_all([sign_cancun(chain, 1, 0, NEW_ADDRESS, 9, b"", 21_000)],
                            coinbase=COINBASE, parent_header=parent)[0].imported_block
    assert first.header.parent_hash == second.header.parent_hash == parent.hash
    assert FlatAccountDB(db, first.header.state_root).get_balance(NEW_ADDRESS) == 7
    assert FlatAccountDB(db, second.header.state_root).get_balance(NEW_ADDRESS) == 9
    assert not FlatAccountDB(db, parent.state_root).account_exists(NEW_ADDRESS)



def test_a_rejected_block_leaves_its_parent_intact() -> None:
    """A block whose header root disagrees is rejected by py-evm after the flat
    import ran; the parent's version still reads as before and the valid block
    imports on it."""
    reference, _ = new_chain(CancunVM, GENESIS_PARAMS, True)
    chain, db = new_chain(CancunVM, GENESIS_PARAMS, True, StateBackend.FLAT)
    parent = chain.get_canonical_head()
    before = FlatAccountDB(db, parent.state_root)
    balances = [before.get_balance(address) for address in ADDRESSES[:4]]
    block = reference.mine_all([sign_cancun(reference, 0, 0, NEW_ADDRESS, 7, b"", 21_000)],
                               coinbase=COINBASE)[0].imported_block
    forged = block.copy(header=block.header.copy(state_root=b"\x01" * 32))
    with pytest.raises(ValidationError):
        chain.import_block(forged)
    assert chain.get_canonical_head() == parent
    after = FlatAccountDB(db, parent.state_root)
    assert [after.get_balance(address) for address in ADDRESSES[:4]] == balances
    assert not after.account_exists(NEW_ADDRESS)
    assert FlatStore.of(db).version(parent.state_root).root == parent.state_root
    chain.import_block(block)
    assert chain.get_canonical_head() == block.header
    assert FlatAccountDB(db, block.header.state_root).get_balance(NEW_ADDRESS) == 7


def test_the_flat_import_takes_the_transaction_root_from_its_batched_trie() -> None:
    """py-evm's ``validate_block`` builds the transaction trie again in
    ``HexaryTrie`` unless its cache has the root; on the flat backend it comes from
    the batched trie that built the block, and py-evm's trie is never built."""
    reference, _ = new_chain(CancunVM, GENESIS_PARAMS, True)
    chain, _ = new_chain(CancunVM, GENESIS_PARAMS, True, StateBackend.FLAT)
    block = reference.mine_all(blocks_of(reference, sign_cancun)[0],
                               coinbase=COINBASE)[0].imported_block
    compat.forget_body_tries()
    chain.import_block(block)
    assert chain.get_canonical_head() == block.header
    assert _make_trie_root_and_nodes.cache_info().currsize == 0


def test_the_flat_vm_checks_transactions_it_did_not_build_against_the_root() -> None:
    reference, _ = new_chain(CancunVM, GENESIS_PARAMS, True)
    chain, _ = new_chain(CancunVM, GENESIS_PARAMS, True, StateBackend.FLAT)
    block = reference.mine_all(blocks_of(reference, sign_cancun)[0],
                               coinbase=COINBASE)[0].imported_block
    chain.import_block(block)
    vm = chain.get_vm(block.header)
    compat.forget_body_tries()
    # the same transactions decoded again: other objects, so the root is computed
    imported = chain.get_block_by_header(block.header)
    assert isinstance(imported, vm.get_block_class())
    builder: Any = vm.get_transaction_builder()
    decoded = imported.copy(transactions=[builder.decode(tx.encode())
                                          for tx in imported.transactions])
    assert all(a is not b for a, b in zip(decoded.transactions, imported.transactions))
    vm.validate_block(decoded)
    with pytest.raises(ValidationError, match="transaction_root"):
        vm.validate_block(imported.copy(transactions=imported.transactions[:-1]))
    assert _make_trie_root_and_nodes.cache_info().currsize == 0
