"""The state a block's transactions start from, read flat and cached.

:class:`PreState` answers location reads (``(BALANCE, address)``,
``(STORAGE, address, slot)``, ...) from py-evm's ``AccountDB`` -- or pevm's
:class:`~pevm.state.flat_db.FlatAccountDB`, whose flat maps it reads directly -- as
it stands before the first transaction (pre-block system steps applied). Every value is
read once per process and kept: an account with all its fields at a time, each
code and storage slot once. Lookups that py-evm's journal does not answer walk
the trie with :class:`~pevm.trie_reader.StoredState`, which keeps decoded nodes;
py-evm's own trie decodes every node of every path again (on a block of 1,000
transfers that was a third of the engine's time).

The pre-state never changes while a block runs, so values read in one process are
valid in every other: :meth:`PreState.export` hands out what was loaded since the
last call and :meth:`PreState.absorb` takes another process's loads (workers ship
theirs to the coordinator with their results, so it validates without reading the
trie again).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account

from pevm import pyevm_compat as compat
from pevm.engines.locations import (BALANCE, CODE, DORMANT, EXISTS, NONCE, OPENED,
                                    STORAGE)
from pevm.engines.mv_memory import Key
from pevm.state.flat_db import FlatAccountDB
from pevm.trie_reader import StoredState

_MISSING = object()
#: what a missing account reads as: (exists, balance, nonce, code hash, storage root)
_ABSENT = (False, 0, 0, EMPTY_SHA3, BLANK_ROOT_HASH)

AccountFields = tuple[bool, int, int, bytes, bytes]
_BLANK_ACCOUNT = Account()


class PreState:
    """Flat, cached reads of the pre-transaction state (see module doc).

    ``account_db`` is py-evm's ``AccountDB`` (:func:`pevm.pyevm_compat.account_db`) or any
    object with its public read API (then every read goes through that API).
    Calling the instance with a location returns its value.
    """

    def __init__(self, account_db: Any) -> None:
        self._db = account_db
        self._accounts: dict[bytes, AccountFields] = {}
        self._code: dict[bytes, bytes] = {}
        self._storage: dict[tuple[bytes, int], int] = {}
        self._new: list[tuple[int, Any, Any]] = []
        self.loads = 0
        #: pevm's flat account database, read through its own lookups
        self._flat = account_db if isinstance(account_db, FlatAccountDB) else None
        #: the tries under py-evm's journal, read directly (None: not an AccountDB)
        tries = compat.stored_tries(account_db)
        self._stored = StoredState(tries[0], account_db.state_root, tries[1]) \
            if tries is not None else None

    def __call__(self, key: Key) -> Any:
        kind, address = key[0], key[1]
        if kind == STORAGE:
            slot_key = (address, key[2])
            value = self._storage.get(slot_key, _MISSING)
            if value is _MISSING:
                value = self._storage[slot_key] = self._load_slot(address, key[2])
                self._new.append((STORAGE, slot_key, value))
                self.loads += 1
            return value
        account = self._accounts.get(address)
        if account is None:
            account = self._load_account(address)
        if kind == BALANCE:
            return account[1]
        if kind == NONCE:
            return account[2]
        if kind == EXISTS:
            return account[0]
        if kind == CODE:
            if account[3] == EMPTY_SHA3:
                return b""
            code = self._code.get(address)
            if code is None:
                code = self._code[address] = self._load_code(address, account[3])
                self._new.append((CODE, address, code))
                self.loads += 1
            return code
        if kind == OPENED:
            return False  # DORMANT already says the pre-block steps did not
        if kind == DORMANT:
            if self._flat is not None:
                opened = self._flat.storage_opened(address)
            elif self._stored is not None:
                opened = compat.storage_opened(self._db, address)
            else:
                return False  # an unknown database: its storage roots are unknown
            return (account[3] == EMPTY_SHA3 and account[2] == 0
                    and account[4] != BLANK_ROOT_HASH and not opened)
        raise KeyError(f"no pre-state value for location {key!r}")

    # ------------------------------------------------------------- loading
    def _encoded_account(self, address: bytes) -> bytes:
        """The account's RLP as ``AccountDB`` holds it now (journal, then trie)."""
        db = self._db
        if self._stored is not None:
            pending = compat.pending_account(db, address)
            if pending is not None:
                return pending
            try:  # not in the journal: the trie at its root
                return self._stored.encoded_account(address)
            except KeyError:
                pass  # a node py-evm cannot find either: let it say so
        return compat.encoded_account(db, address)

    def _load_account(self, address: bytes) -> AccountFields:
        db = self._db
        self.loads += 1
        if self._flat is not None:
            account = self._flat.account_fields(address)
            self._accounts[address] = account
            self._new.append((EXISTS, address, account))
            return account
        try:
            encoded = self._encoded_account(address)
        except AttributeError:  # not py-evm's AccountDB: use the public API
            account = (db.account_exists(address), db.get_balance(address),
                       db.get_nonce(address), db.get_code_hash(address),
                       BLANK_ROOT_HASH)
        else:
            if encoded:
                decoded = rlp.decode(encoded, sedes=Account)
                account = (True, decoded.balance, decoded.nonce, decoded.code_hash,
                           decoded.storage_root)
                self._remember(address, decoded)
            else:
                account = _ABSENT
                self._remember(address, _BLANK_ACCOUNT)  # as AccountDB caches it
        self._accounts[address] = account
        self._new.append((EXISTS, address, account))
        return account

    def _load_slot(self, address: bytes, slot: int) -> int:
        db = self._db
        if self._flat is not None:
            return self._flat.peek_storage(address, slot)
        # A storage py-evm has opened (written, wiped, or read by the pre-block
        # steps) has its own journal and maybe unsaved nodes: ask py-evm.
        if self._stored is not None and not compat.storage_opened(db, address):
            account = self._accounts.get(address) or self._load_account(address)
            try:
                return self._stored.storage(account[4], slot)
            except KeyError:
                pass
        return db.get_storage(address, slot)

    def _remember(self, address: bytes, account: Any) -> None:
        """Put ``account`` where ``AccountDB._get_account`` caches it: the merge
        writes through py-evm's AccountDB, which then needs no trie lookup."""
        compat.remember_account(self._db, address, account)

    def _load_code(self, address: bytes, digest: bytes) -> bytes:
        try:
            return compat.code_by_hash(self._db, digest)
        except (AttributeError, KeyError):
            return self._db.get_code(address)

    # ------------------------------------------------- between processes
    def slots_of(self, addresses: Iterable[bytes]) -> dict[bytes, list[int]]:
        """Storage slots of each of ``addresses`` read from the pre-state (in any
        process), ascending; an address none was read of is left out. One pass
        over every slot read, whatever the number of addresses (a scan per address
        made the merge quadratic in a block's wiped accounts)."""
        wanted = set(addresses)
        out: dict[bytes, list[int]] = {}
        if wanted:
            for where, slot in self._storage:
                if where in wanted:
                    out.setdefault(where, []).append(slot)
            for slots in out.values():
                slots.sort()
        return out

    def export(self) -> list[tuple[int, Any, Any]]:
        """Entries loaded since the last export (picklable)."""
        out, self._new = self._new, []
        return out

    def absorb(self, entries: list[tuple[int, Any, Any]]) -> None:
        """Take entries another process loaded from the same pre-state."""
        for kind, where, value in entries:
            if kind == STORAGE:
                self._storage.setdefault(where, value)
            elif kind == CODE:
                self._code.setdefault(where, value)
            elif where not in self._accounts:
                self._accounts[where] = value
                if self._flat is None:  # pevm's flat database keeps no such cache
                    self._remember(where, Account(
                        nonce=value[2], balance=value[1], storage_root=value[4],
                        code_hash=value[3]) if value[0] else _BLANK_ACCOUNT)

    def __len__(self) -> int:
        return len(self._accounts) + len(self._code) + len(self._storage)
