"""py-evm's account database over the flat store: ``State.account_db_class`` for pevm.

:class:`FlatAccountDB` implements ``eth.abc.AccountDatabaseAPI`` with the observable
behaviour of py-evm's own ``eth.db.account.AccountDB`` -- values, journaling,
from-journal reads, warm sets, state roots, witness -- so that py-evm's ``State``,
VMs and block import run on it unchanged. Reads come from dicts (this database's
pending changes over a :class:`~pevm.state.layers.FlatVersion`) instead of trie
nodes; roots come from :class:`~pevm.state.commitment.StateCommitment`, which
rehashes only what changed; :meth:`FlatAccountDB.persist` registers the result as a
new version, leaving its parent as it was.

Storage mirrors py-evm's layering because some of it is observable: per account,
a *journal* (this transaction, undone by ``discard``), *locked* changes (earlier
transactions since the last state root; ``get_storage(from_journal=False)`` reads
from here down, the value at the start of the transaction) and a *lookup* (py-evm's
storage trie: the committed storage, or nothing after a wipe, plus what each state
root flushed into it). A wipe swaps in an empty lookup and keeps the old one for a
``discard``, as py-evm's ``StorageLookup.new_trie`` does. The py-evm quirks kept on
purpose are marked "py-evm:" where they happen.
"""
from __future__ import annotations

import itertools
from typing import Any, cast

from eth.abc import AccountDatabaseAPI, AtomicDatabaseAPI, MetaWitnessAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.db.witness import AccountQueryTracker, MetaWitness
from eth.typing import JournalDBCheckpoint
from eth.validation import (validate_canonical_address, validate_is_bytes,
                            validate_uint64, validate_uint256)
from eth.vm.interrupt import MissingBytecode
from eth_hash.auto import keccak
from eth_typing import Address, Hash32
from eth_utils import ValidationError

from pevm.state.commitment import AccountUpdate
from pevm.state.layers import FlatStore, FlatVersion, Record

_MISSING: Any = object()
_EMPTY_RECORD: Record = (0, 0, EMPTY_SHA3)
_CHECKPOINTS = itertools.count(1)


class _Lookup:
    """What py-evm's ``StorageLookup`` trie of one account holds: ``writes`` over
    the account's storage in the base version, or over nothing when ``blank``.
    ``has_trie``: py-evm has opened a write trie on it (only then does a state root
    write the account's storage root back into the account)."""

    __slots__ = ("blank", "writes", "has_trie")

    def __init__(self, blank: bool) -> None:
        self.blank = blank
        self.writes: dict[int, int] = {}
        self.has_trie = False


class _Storage:
    """One account's storage while a database has it open (py-evm's
    ``AccountStorageDB``): journal over locked over lookup, values 0 = absent."""

    __slots__ = ("lookup", "committed", "locked", "locked_cleared", "journal",
                 "journal_cleared", "read_slots")

    def __init__(self, blank: bool) -> None:
        self.lookup = _Lookup(blank)
        # the lookup whose content the commitment holds; None: the commitment holds
        # the base version's storage, which a blank lookup does not show
        self.committed: _Lookup | None = None if blank else self.lookup
        self.locked: dict[int, int] = {}
        self.locked_cleared = False
        self.journal: dict[int, int] = {}
        self.journal_cleared = False
        self.read_slots: set[int] = set()


class _Wipe:
    """Undo record of a storage wipe: what it replaced."""

    __slots__ = ("address", "storage", "journal", "journal_cleared", "lookup")

    def __init__(self, address: bytes, storage: _Storage) -> None:
        self.address = address
        self.storage = storage
        self.journal = storage.journal
        self.journal_cleared = storage.journal_cleared
        self.lookup = storage.lookup

    def undo(self) -> None:
        self.storage.journal = self.journal
        self.storage.journal_cleared = self.journal_cleared
        self.storage.lookup = self.lookup


class FlatAccountDB(AccountDatabaseAPI):
    """py-evm's ``AccountDB`` semantics over a :class:`~pevm.state.layers.FlatStore`.

    ``db`` must have a store attached (:meth:`FlatStore.attach`) holding a version
    with ``state_root``. Trie-node witness hashes are not tracked (the witness's
    ``hashes`` is empty); accounts and storage slots queried are, as py-evm does.
    """

    def __init__(self, db: AtomicDatabaseAPI, state_root: Hash32 = BLANK_ROOT_HASH) -> None:
        self._store = FlatStore.of(db)
        self._version = self._store.version(state_root)
        self._commitment = self._version.commitment
        # account records changed since the last state root (None: deleted) ...
        self._journal: dict[bytes, Record | None] = {}
        # ... and, since the base version, as of the last state root: the layer
        # persist() registers
        self._made: dict[bytes, Record | None] = {}
        self._made_storage: dict[bytes, dict[int, int]] = {}
        self._made_wiped: set[bytes] = set()
        self._stores: dict[bytes, _Storage] = {}
        self._dirty: set[bytes] = set()  # accounts whose storage was written or wiped
        self._accessed: set[Address] = set()
        self._code_read: set[Address] = set()
        self._warm_addresses: set[bytes] = set()
        self._warm_slots: set[tuple[bytes, int]] = set()
        # undo journal: (dict, key, old value or _MISSING), (set, member) or _Wipe;
        # kept only while a checkpoint is open
        self._undo: list[Any] = []
        self._checkpoints: list[tuple[JournalDBCheckpoint, int]] = []

    # -- roots ------------------------------------------------------------------------
    @property
    def state_root(self) -> Hash32:
        """The root as of the last :meth:`make_state_root` (or the base version's)."""
        return cast(Hash32, self._commitment.root)

    @state_root.setter
    def state_root(self, value: Hash32) -> None:
        # py-evm's State.revert sets the root it saw at the snapshot: unchanged
        # within a transaction, so a no-op
        if value == self._commitment.root:
            return
        version = self._store.version(value)
        if self._journal or self._made or self._dirty or self._checkpoints:
            raise NotImplementedError(
                "FlatAccountDB switches to another state root only without pending "
                f"changes (asked for 0x{value.hex()}); persist or open a new database")
        self._version = version
        self._commitment = version.commitment
        self._stores = {}

    def has_root(self, state_root: bytes) -> bool:
        """Whether the store has a version with this root, or it is this database's
        current (made, maybe not persisted) root."""
        return state_root == self._commitment.root or state_root in self._store

    # -- account records --------------------------------------------------------------
    def _record(self, address: bytes) -> Record | None:
        record = self._journal.get(address, _MISSING)
        if record is _MISSING:
            return self._committed_record(address)
        return cast(Record | None, record)

    def _committed_record(self, address: bytes) -> Record | None:
        record = self._made.get(address, _MISSING)
        if record is _MISSING:
            return self._version.account(address)
        return cast(Record | None, record)

    def _put(self, address: bytes, record: Record | None) -> None:
        journal = self._journal
        if self._checkpoints:
            self._undo.append((journal, address, journal.get(address, _MISSING)))
        journal[address] = record

    def _read(self, address: Address) -> Record:
        validate_canonical_address(address, title="Storage Address")
        self._accessed.add(address)
        return self._record(address) or _EMPTY_RECORD

    def get_balance(self, address: Address) -> int:
        return self._read(address)[1]

    def set_balance(self, address: Address, balance: int) -> None:
        validate_uint256(balance, title="Account Balance")
        nonce, _, code_hash = self._read(address)
        self._put(address, (nonce, balance, code_hash))

    def get_nonce(self, address: Address) -> int:
        return self._read(address)[0]

    def set_nonce(self, address: Address, nonce: int) -> None:
        # py-evm: 2**64-1 is a valid nonce here
        validate_uint64(nonce, title="Nonce")
        _, balance, code_hash = self._read(address)
        self._put(address, (nonce, balance, code_hash))

    def update_account(self, address: Address, balance: int | None, nonce: int | None,
                       delta: int = 0) -> None:
        """Set the balance (None: keep it), add ``delta`` to it and set the nonce
        (None: keep it) in one record write: what ``set_balance``, ``delta_balance``
        and ``set_nonce`` one after the other leave (the engine's merge writes each
        account it changed this way, see :func:`pevm.pyevm_compat.account_updater`)."""
        if balance is not None:  # checked before the account is read, as set_balance
            balance += delta
            validate_uint256(balance, title="Account Balance")
        old_nonce, old_balance, code_hash = self._read(address)
        if balance is None:
            balance = old_balance + delta
            validate_uint256(balance, title="Account Balance")
        if nonce is None:
            nonce = old_nonce
        else:
            validate_uint64(nonce, title="Nonce")
        self._put(address, (nonce, balance, code_hash))

    def increment_nonce(self, address: Address) -> None:
        self.set_nonce(address, self.get_nonce(address) + 1)

    def get_code_hash(self, address: Address) -> Hash32:
        return cast(Hash32, self._read(address)[2])

    def get_code(self, address: Address) -> bytes:
        code_hash = self.get_code_hash(address)
        if code_hash == EMPTY_SHA3:
            return b""
        self._code_read.add(address)
        try:
            return self._store.codes[code_hash]
        except KeyError:
            raise MissingBytecode(code_hash) from None

    def set_code(self, address: Address, code: bytes) -> None:
        validate_is_bytes(code, title="Code")
        nonce, balance, _ = self._read(address)
        code_hash = keccak(code)
        # content addressed: code a discarded change stored harms no version
        self._store.codes.setdefault(code_hash, code)
        self._put(address, (nonce, balance, code_hash))

    def delete_code(self, address: Address) -> None:
        nonce, balance, _ = self._read(address)
        self._put(address, (nonce, balance, EMPTY_SHA3))

    def account_has_code_or_nonce(self, address: Address) -> bool:
        nonce, _, code_hash = self._read(address)
        return nonce != 0 or code_hash != EMPTY_SHA3

    def account_is_empty(self, address: Address) -> bool:
        nonce, balance, code_hash = self._read(address)
        return nonce == 0 and code_hash == EMPTY_SHA3 and balance == 0

    def account_exists(self, address: Address) -> bool:
        validate_canonical_address(address, title="Storage Address")
        self._accessed.add(address)
        return self._record(address) is not None

    def touch_account(self, address: Address) -> None:
        self._put(address, self._read(address))

    def delete_account(self, address: Address) -> None:
        validate_canonical_address(address, title="Storage Address")
        self._accessed.add(address)
        # py-evm opens the storage before the record goes, so that it starts from
        # the account's stored storage root
        self._wipe(address)
        self._put(address, None)

    # -- warm sets (EIP-2929): journaled, reset by lock_changes ------------------------
    def is_address_warm(self, address: Address) -> bool:
        return address in self._warm_addresses

    def mark_address_warm(self, address: Address) -> None:
        if address not in self._warm_addresses:
            self._warm_addresses.add(address)
            if self._checkpoints:
                self._undo.append((self._warm_addresses, address))

    def is_storage_warm(self, address: Address, slot: int) -> bool:
        return (address, slot) in self._warm_slots

    def mark_storage_warm(self, address: Address, slot: int) -> None:
        key = (address, slot)
        if key not in self._warm_slots:
            self._warm_slots.add(key)
            if self._checkpoints:
                self._undo.append((self._warm_slots, key))

    # -- storage ----------------------------------------------------------------------
    def _open(self, address: Address, blank: bool = False) -> _Storage:
        self._accessed.add(address)
        storage = self._stores[address] = _Storage(blank)
        return storage

    def _value(self, address: bytes, storage: _Storage, slot: int, from_journal: bool) -> int:
        if from_journal:
            value = storage.journal.get(slot)
            if value is not None:
                return value
            if storage.journal_cleared:
                return 0
        value = storage.locked.get(slot)
        if value is not None:
            return value
        if storage.locked_cleared:
            return 0
        lookup = storage.lookup
        value = lookup.writes.get(slot)
        if value is not None:
            return value
        return 0 if lookup.blank else self._version.slot(address, slot)

    def get_storage(self, address: Address, slot: int, from_journal: bool = True) -> int:
        """The slot's value; ``from_journal=False``: as at the last ``lock_changes``
        (the start of the transaction), as py-evm's ``AccountStorageDB`` reads it."""
        validate_canonical_address(address, title="Storage Address")
        validate_uint256(slot, title="Storage Slot")
        storage = self._stores.get(address) or self._open(address)
        storage.read_slots.add(slot)
        return self._value(address, storage, slot, from_journal)

    def set_storage(self, address: Address, slot: int, value: int) -> None:
        validate_uint256(value, title="Storage Value")
        validate_uint256(slot, title="Storage Slot")
        validate_canonical_address(address, title="Storage Address")
        storage = self._stores.get(address) or self._open(address)
        self._dirty.add(address)
        # py-evm: writing 0 over an absent slot journals nothing
        if not value and not self._value(address, storage, slot, True):
            return
        journal = storage.journal
        if self._checkpoints:
            self._undo.append((journal, slot, journal.get(slot, _MISSING)))
        journal[slot] = value

    def delete_storage(self, address: Address) -> None:
        validate_canonical_address(address, title="Storage Address")
        # py-evm: the account's storage root is reset first -- which writes (so
        # creates) the account -- and only then is its storage opened, at that blank
        # root: a wipe of storage not opened before in this block loses it even if
        # the wipe is discarded (CREATE2 onto a dormant account that reverts).
        self._put(address, self._read(address))
        if address not in self._stores:
            self._open(address, blank=True)
        self._wipe(address)

    def _wipe(self, address: Address) -> None:
        storage = self._stores.get(address) or self._open(address)
        self._dirty.add(address)
        if self._checkpoints:
            self._undo.append(_Wipe(address, storage))
        # py-evm's new_trie() opens a write trie on the lookup it sets aside: after
        # a discard brings it back, the next state root writes its root back
        storage.lookup.has_trie = True
        storage.lookup = _Lookup(blank=True)
        storage.journal = {}
        storage.journal_cleared = True

    def _lock(self, storage: _Storage) -> None:
        if storage.journal_cleared:
            storage.locked = {}
            storage.locked_cleared = True
        storage.locked.update(storage.journal)
        storage.journal = {}
        storage.journal_cleared = False

    def _nonblank(self, address: bytes, lookup: _Lookup) -> bool:
        if any(lookup.writes.values()):
            return True
        return not lookup.blank and any(slot not in lookup.writes
                                        for slot in self._version.storage_of(address))

    def _content(self, address: bytes, lookup: _Lookup) -> dict[int, int]:
        content = {} if lookup.blank else self._version.storage_of(address)
        content.update(lookup.writes)
        return {slot: value for slot, value in content.items() if value}

    # -- reads for pevm's engines: no journal entries, no storage opened ----------------
    def account_fields(self, address: bytes) -> tuple[bool, int, int, bytes, bytes]:
        """``(exists, balance, nonce, code_hash, storage_root)`` of the account now;
        the storage root is the one at the last state root (what py-evm's account
        record holds while :meth:`storage_opened` is False)."""
        self._accessed.add(Address(address))
        record = self._record(address)
        if record is None:
            return (False, 0, 0, EMPTY_SHA3, BLANK_ROOT_HASH)
        return (True, record[1], record[0], record[2], self._commitment.storage_root(address))

    def peek_storage(self, address: bytes, slot: int) -> int:
        """What ``get_storage(address, slot)`` returns, without opening the storage
        or recording the read."""
        storage = self._stores.get(address)
        if storage is None:
            return self._version.slot(address, slot)
        return self._value(address, storage, slot, True)

    def storage_opened(self, address: bytes) -> bool:
        """Whether the account's storage is open (read, written or wiped since the
        last persist), as py-evm's ``AccountDB`` has an ``AccountStorageDB`` for it."""
        return address in self._stores

    # -- checkpoints ------------------------------------------------------------------
    def record(self) -> JournalDBCheckpoint:
        checkpoint = JournalDBCheckpoint(next(_CHECKPOINTS))
        self._checkpoints.append((checkpoint, len(self._undo)))
        return checkpoint

    def _find(self, checkpoint: JournalDBCheckpoint) -> int:
        for index in range(len(self._checkpoints) - 1, -1, -1):
            if self._checkpoints[index][0] == checkpoint:
                return index
        raise ValidationError(f"No checkpoint {checkpoint} was found")

    def discard(self, checkpoint: JournalDBCheckpoint) -> None:
        index = self._find(checkpoint)
        position = self._checkpoints[index][1]
        undo = self._undo
        # py-evm cannot revert across two wipes of one account's storage (its clear
        # count check); it fails half-way, this before changing anything
        wiped = [entry.address for entry in undo[position:] if type(entry) is _Wipe]
        if len(wiped) != len(set(wiped)):
            raise ValidationError("This revert has changed the clear count in an invalid "
                                  "way: it reverts two storage wipes of one account")
        del self._checkpoints[index:]
        while len(undo) > position:
            entry = undo.pop()
            if type(entry) is _Wipe:
                entry.undo()
            elif len(entry) == 3:
                container, key, old = entry
                if old is _MISSING:
                    del container[key]
                else:
                    container[key] = old
            else:
                entry[0].discard(entry[1])
        if not self._checkpoints:
            undo.clear()

    def commit(self, checkpoint: JournalDBCheckpoint) -> None:
        del self._checkpoints[self._find(checkpoint):]
        if not self._checkpoints:
            self._undo.clear()

    def _drop_checkpoints(self) -> None:
        # py-evm's journals forget open checkpoints here too (a later discard fails)
        self._checkpoints.clear()
        self._undo.clear()

    # -- transaction and block boundaries ---------------------------------------------
    def lock_changes(self) -> None:
        self._drop_checkpoints()
        for address in self._dirty:
            self._lock(self._stores[address])
        self._warm_addresses = set()
        self._warm_slots = set()

    def make_state_root(self) -> Hash32:
        """Flush all changes into the commitment and return the new root. Warm sets
        are kept (py-evm resets them only in lock_changes)."""
        self._drop_checkpoints()
        storage_changes: dict[bytes, tuple[bool, dict[int, int]]] = {}
        for address in self._dirty:
            storage = self._stores[address]
            self._lock(storage)
            flushed, lookup = storage.locked, storage.lookup
            if flushed:
                lookup.writes.update(flushed)
                lookup.has_trie = True
            storage.locked = {}
            storage.locked_cleared = False
            if lookup is not storage.committed:
                storage_changes[address] = (True, self._content(address, lookup))
            elif flushed:
                storage_changes[address] = (False, flushed)
            # py-evm writes a changed storage root into the account -- creating the
            # account where it does not exist but its storage is not empty (where it
            # exists, the commitment takes the storage change as it is)
            if (lookup.has_trie and self._record(address) is None
                    and self._nonblank(address, lookup)):
                self._put(address, _EMPTY_RECORD)
        changes: dict[bytes, AccountUpdate | None] = {}
        for address in self._journal.keys() | storage_changes.keys():
            record = self._record(address)
            if record is None:
                if self._committed_record(address) is not None:
                    changes[address] = None
                continue
            cleared, slots = storage_changes.get(address, (False, {}))
            changes[address] = AccountUpdate(record[0], record[1], record[2], slots, cleared)
        if changes:
            self._commitment = self._commitment.update(changes)
            made, made_storage = self._made, self._made_storage
            for address, change in changes.items():
                if change is None:
                    made[address] = None
                    self._made_wiped.add(address)
                    made_storage.pop(address, None)
                    continue
                made[address] = (change.nonce, change.balance, change.code_hash)
                if change.storage_cleared:
                    self._made_wiped.add(address)
                    made_storage[address] = dict(change.storage)
                elif change.storage:
                    made_storage.setdefault(address, {}).update(change.storage)
        for address in self._dirty:
            storage = self._stores[address]
            storage.committed = storage.lookup
        self._journal = {}
        return cast(Hash32, self._commitment.root)

    def persist(self) -> MetaWitnessAPI:
        """Make the state root, register the state as a new version of the store
        (the base version is untouched) and continue on it. Returns py-evm's
        ``MetaWitness`` of the accounts and slots queried since the last persist."""
        self.make_state_root()
        witness = MetaWitness(set(), {
            address: AccountQueryTracker(
                address in self._code_read,
                frozenset(self._stores[address].read_slots) if address in self._stores
                else frozenset())
            for address in self._accessed})
        if self._made:
            self._version = self._store.register(FlatVersion(
                self._version, self._made, self._made_storage, self._made_wiped,
                self._commitment))
        self._made, self._made_storage, self._made_wiped = {}, {}, set()
        self._stores, self._dirty = {}, set()
        self._accessed, self._code_read = set(), set()
        return witness
