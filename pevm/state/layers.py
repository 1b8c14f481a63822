"""Versioned flat state: immutable copy-on-write layers, one per persisted state root.

py-evm keeps state in a Merkle-Patricia trie: every account read walks trie nodes
decoded from the database, and every block re-encodes the nodes it changes. A flat
store keeps accounts and storage in plain dicts instead and leaves the root to
:class:`~pevm.state.commitment.StateCommitment`.

A :class:`FlatVersion` is the state at one root: the accounts and slots its block
changed, over its parent version. Reads walk the layers from the newest down.
Versions are never modified once built, so a rejected block or a side chain built
on an older block leaves every other version intact; :meth:`FlatVersion.compacted`
bounds the walk by folding a long chain into fewer layers (new objects, parents
untouched). A :class:`FlatStore` holds the versions by root and the contract code by
hash (content addressed, shared by all versions), and is found from the py-evm
database object it serves (:meth:`FlatStore.attach`, :meth:`FlatStore.of`), because
py-evm builds an account database from nothing but ``(db, state_root)``.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth_hash.auto import keccak

from pevm.state.commitment import AccountUpdate, StateCommitment

#: An account as the flat store keeps it: ``(nonce, balance, code_hash)``. The
#: storage root is the commitment's business.
Record = tuple[int, int, bytes]

#: The longest chain of layers a registered version may have before it is compacted.
MAX_DEPTH = 16


class UnknownStateRoot(KeyError):
    """No version of the flat store has this state root."""

    def __init__(self, root: bytes) -> None:
        super().__init__(root)
        self.root = root

    def __str__(self) -> str:
        return f"the flat store has no state with root 0x{self.root.hex()}"


class StoreNotAttached(KeyError):
    """The database has no flat store: :meth:`FlatStore.attach` was not called."""

    def __str__(self) -> str:
        return ("this database has no flat state store: call "
                "pevm.state.FlatStore.attach(db) before building states on it")


class FlatVersion:
    """The state at one root: this layer's changes over ``parent`` (never modified).

    ``accounts`` maps an address to its record, or None where the account was
    deleted in this layer; ``storage`` maps an address to the slots written in this
    layer (0: removed); an address in ``wiped`` lost all its storage in this layer
    before those writes, so reads do not look below it.
    """

    __slots__ = ("parent", "accounts", "storage", "wiped", "commitment", "depth", "size")

    def __init__(self, parent: FlatVersion | None, accounts: Mapping[bytes, Record | None],
                 storage: Mapping[bytes, Mapping[int, int]], wiped: Iterable[bytes],
                 commitment: StateCommitment) -> None:
        self.parent = parent
        self.accounts = accounts
        self.storage = storage
        self.wiped = frozenset(wiped)
        self.commitment = commitment
        self.depth: int = 1 if parent is None else parent.depth + 1
        self.size: int = len(accounts) + sum(len(s) for s in storage.values())

    @property
    def root(self) -> bytes:
        """The state root."""
        return self.commitment.root

    def account(self, address: bytes) -> Record | None:
        """The account's record, None where it does not exist."""
        version: FlatVersion | None = self
        while version is not None:
            accounts = version.accounts
            if address in accounts:
                return accounts[address]
            version = version.parent
        return None

    def slot(self, address: bytes, slot: int) -> int:
        """The value of one storage slot (0 where absent)."""
        version: FlatVersion | None = self
        while version is not None:
            written = version.storage.get(address)
            if written is not None and slot in written:
                return written[slot]
            if address in version.wiped:
                return 0
            version = version.parent
        return 0

    def storage_of(self, address: bytes) -> dict[int, int]:
        """All non-zero slots of the account (a new dict)."""
        layers: list[Mapping[int, int]] = []
        version: FlatVersion | None = self
        while version is not None:
            written = version.storage.get(address)
            if written is not None:
                layers.append(written)
            if address in version.wiped:
                break
            version = version.parent
        merged: dict[int, int] = {}
        for written in reversed(layers):
            merged.update(written)
        return {slot: value for slot, value in merged.items() if value}

    def compacted(self) -> FlatVersion:
        """The same state in at most two layers: every layer above the bottom one
        squashed into one, or everything into a single base layer once the squashed
        changes weigh as much as a quarter of the bottom (so that the cost of
        copying the base is paid once per that much change)."""
        layers = self.layers()
        if len(layers) <= 2:
            return self
        base, above = layers[0], layers[1:]
        squashed = _merge(above, self.commitment, None)
        if 4 * squashed.size >= base.size:
            return _merge(layers, self.commitment, None, base_layer=True)
        return _merge(above, self.commitment, base)

    def flattened(self) -> FlatVersion:
        """The same state as one base layer without parent."""
        return _merge(self.layers(), self.commitment, None, base_layer=True)

    def layers(self) -> list[FlatVersion]:
        """This version and its ancestors, the base first."""
        layers: list[FlatVersion] = []
        version: FlatVersion | None = self
        while version is not None:
            layers.append(version)
            version = version.parent
        layers.reverse()
        return layers


def _merge(layers: list[FlatVersion], commitment: StateCommitment,
           parent: FlatVersion | None, base_layer: bool = False) -> FlatVersion:
    """One layer holding ``layers`` (oldest first) over ``parent``. A base layer
    keeps only what exists: no deleted accounts, zero slots or wipes."""
    accounts: dict[bytes, Record | None] = {}
    storage: dict[bytes, dict[int, int]] = {}
    wiped: set[bytes] = set()
    for layer in layers:
        accounts.update(layer.accounts)
        for address in layer.wiped:
            storage[address] = {}
            wiped.add(address)
        for address, written in layer.storage.items():
            storage.setdefault(address, {}).update(written)
    if base_layer:
        accounts = {a: r for a, r in accounts.items() if r is not None}
        storage = {a: kept for a, slots in storage.items()
                   if (kept := {s: v for s, v in slots.items() if v})}
        wiped = set()
    return FlatVersion(parent, accounts, storage, wiped, commitment)


# The store of each attached database, keyed by id() with a weak reference to the
# database: py-evm's AtomicDB is a MutableMapping, so unhashable, and cannot key a
# WeakKeyDictionary. The weak reference's callback drops the entry when the
# database goes away, before its id can be reused.
_STORES: dict[int, tuple[Callable[[], Any], FlatStore]] = {}


class FlatStore:
    """The flat states of one chain: versions by state root, code by hash.

    The empty state (``BLANK_ROOT_HASH``) is always present.
    """

    def __init__(self) -> None:
        self.codes: dict[bytes, bytes] = {EMPTY_SHA3: b""}
        self.versions: dict[bytes, FlatVersion] = {}
        self.register(FlatVersion(None, {}, {}, (), StateCommitment.empty()))
        assert BLANK_ROOT_HASH in self.versions

    @classmethod
    def attach(cls, db: object, store: FlatStore | None = None) -> FlatStore:
        """The store serving ``db`` (py-evm's database object), made (or ``store``
        attached) on first use. Call it before py-evm builds a state on ``db``."""
        key = id(db)
        entry = _STORES.get(key)
        if entry is not None and entry[0]() is db:
            if store is not None and store is not entry[1]:
                raise ValueError("this database already has another flat store")
            return entry[1]
        store = store if store is not None else cls()
        try:
            ref: Callable[[], Any] = weakref.ref(db, lambda _ref: _STORES.pop(key, None))
        except TypeError:
            # not weakly referenceable: the entry keeps the database alive with its store
            def ref() -> Any:
                return db
        _STORES[key] = (ref, store)
        return store

    @classmethod
    def of(cls, db: object) -> FlatStore:
        """The store attached to ``db`` (:class:`StoreNotAttached` if none)."""
        entry = _STORES.get(id(db))
        if entry is None or entry[0]() is not db:
            raise StoreNotAttached(db)
        return entry[1]

    def version(self, root: bytes) -> FlatVersion:
        """The version with state root ``root`` (:class:`UnknownStateRoot` if none)."""
        try:
            return self.versions[root]
        except KeyError:
            raise UnknownStateRoot(root) from None

    def __contains__(self, root: object) -> bool:
        return root in self.versions

    def register(self, version: FlatVersion) -> FlatVersion:
        """Keep ``version`` under its root and return the version now kept there: an
        existing one with the same root (the same state) wins; a chain deeper than
        :data:`MAX_DEPTH` is compacted first."""
        existing = self.versions.get(version.root)
        if existing is not None:
            return existing
        if version.depth > MAX_DEPTH:
            version = version.compacted()
        self.versions[version.root] = version
        return version

    def genesis(self, accounts: Mapping[bytes, tuple[int, int, bytes, Mapping[int, int]]],
                ) -> bytes:
        """Add a base state of ``accounts`` (address -> ``(nonce, balance, code,
        storage)``; every account given exists) and return its state root."""
        records: dict[bytes, Record | None] = {}
        storage: dict[bytes, dict[int, int]] = {}
        updates: dict[bytes, AccountUpdate] = {}
        for address, (nonce, balance, code, slots) in accounts.items():
            code_hash = keccak(code) if code else EMPTY_SHA3
            self.codes.setdefault(code_hash, code)
            records[address] = (nonce, balance, code_hash)
            kept = {slot: value for slot, value in slots.items() if value}
            if kept:
                storage[address] = kept
            updates[address] = AccountUpdate(nonce, balance, code_hash, kept)
        commitment = StateCommitment.build(updates)
        return self.register(FlatVersion(None, records, storage, (), commitment)).root
