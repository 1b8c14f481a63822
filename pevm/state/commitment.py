"""The state commitment: a whole state's Merkle-Patricia root, kept between blocks.

py-evm recomputes a block's state root by writing every changed account and slot
into ``HexaryTrie`` one key at a time, decoding and re-encoding each node on the
way. pevm keeps the state trie instead: a :class:`StateCommitment` holds the
account trie and every account's storage trie as
:class:`~pevm.gpu.incremental_trie.IncrementalTrie` s, and :meth:`update` applies
one block's (or one transaction's) changed accounts at once: only the paths the
changes touch are rebuilt, and each trie level of those paths -- across all
storage tries, then across the account trie -- is one Keccak batch (CUDA through
CuPy on a device, the C loop otherwise).

Commitments are persistent: :meth:`update` returns a new commitment sharing every
untouched node with the old one, which stays valid. A rejected block, or a side
chain built on an older block, costs nothing and leaves its parent intact.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pevm.gpu.incremental_trie import IncrementalTrie, hashed_keys
from pevm.gpu.keccak import EMPTY_KECCAK
from pevm.gpu.trie import BLANK_ROOT, encode_account, encode_slot


@dataclass(frozen=True)
class AccountUpdate:
    """An account's values after a change.

    ``storage`` maps slots to their new values (0: the slot is removed);
    ``storage_cleared`` empties the account's storage before ``storage`` applies
    (a self-destruct, or re-creation over a wiped account).
    """

    nonce: int
    balance: int
    code_hash: bytes = EMPTY_KECCAK
    storage: Mapping[int, int] = field(default_factory=dict)
    storage_cleared: bool = False


class StateCommitment:
    """An account trie and its storage tries, updated in batches.

    Build one with :meth:`empty` or :meth:`build`; read :attr:`root`; derive the
    next with :meth:`update`. Never mutated after construction.
    """

    __slots__ = ("_accounts", "_storage")

    def __init__(self, accounts: IncrementalTrie,
                 storage: dict[bytes, IncrementalTrie]) -> None:
        self._accounts = accounts
        self._storage = storage   # address -> storage trie; absent: empty storage

    @classmethod
    def empty(cls) -> StateCommitment:
        """The commitment of a state without accounts."""
        return cls(IncrementalTrie.empty(), {})

    @classmethod
    def build(cls, accounts: Mapping[bytes, AccountUpdate],
              backend: str | None = None) -> StateCommitment:
        """The commitment of a whole state (every account given exists)."""
        return cls.empty().update(accounts, backend)

    @property
    def root(self) -> bytes:
        """The state root."""
        return self._accounts.root

    def storage_root(self, address: bytes) -> bytes:
        """The storage root of ``address`` (the empty root when it has no storage)."""
        trie = self._storage.get(address)
        return trie.root if trie is not None else BLANK_ROOT

    def nodes(self) -> Iterator[tuple[bytes, bytes]]:
        """Every trie node stored by hash, ``(hash, rlp)``, of the account trie and
        every storage trie: written into a py-evm database, they let py-evm's
        ``AccountDB(db, root)`` read this state (codes are stored separately)."""
        yield from self._accounts.nodes()
        for trie in self._storage.values():
            yield from trie.nodes()

    def update(self, changes: Mapping[bytes, AccountUpdate | None],
               backend: str | None = None) -> StateCommitment:
        """The commitment after ``changes``: address -> its values after the
        change, or None for an account that no longer exists (its storage goes
        with it). Accounts not in ``changes`` keep their values and storage."""
        if not changes:
            return self
        # Storage tries first: every changed slot of every account, one batch per level.
        dropped: list[bytes] = []   # storage tries that go (deleted or cleared accounts)
        touched: list[bytes] = []
        pending: list[tuple[IncrementalTrie, dict[str, bytes]]] = []
        slot_lists: list[list[int]] = []
        for address, change in changes.items():
            if change is None or change.storage_cleared:
                if address in self._storage:
                    dropped.append(address)
            if change is not None and change.storage:
                touched.append(address)
                slot_lists.append(list(change.storage))
        # The address -> storage trie map is copied only when one of its entries
        # changes: blocks of plain transfers (and pre-Byzantium roots after every
        # transaction) share it, instead of copying an entry per contract each time.
        storage = dict(self._storage) if dropped or touched else self._storage
        for address in dropped:
            del storage[address]
        if touched:
            keys = hashed_keys([slot.to_bytes(32, "big") for slots in slot_lists
                                for slot in slots], backend)
            pos = 0
            for address, slots in zip(touched, slot_lists):
                values = changes[address].storage  # type: ignore[union-attr]
                slot_items = {keys[pos + i]: encode_slot(slot, values[slot])
                              for i, slot in enumerate(slots)}
                pos += len(slots)
                pending.append((storage.get(address, IncrementalTrie.empty()), slot_items))
            for address, trie in zip(touched, IncrementalTrie.update_many(pending, backend)):
                if trie.is_empty:
                    storage.pop(address, None)
                else:
                    storage[address] = trie
        addresses = list(changes)
        keys = hashed_keys(addresses, backend)
        items: dict[str, bytes] = {}
        for address, key in zip(addresses, keys):
            change = changes[address]
            if change is None:
                items[key] = b""
                continue
            kept = storage.get(address)
            items[key] = encode_account(change.nonce, change.balance,
                                        kept.root if kept is not None else BLANK_ROOT,
                                        change.code_hash)
        accounts, = IncrementalTrie.update_many([(self._accounts, items)], backend)
        return StateCommitment(accounts, storage)
