"""Every place pevm reaches into py-evm's internals, with why.

py-evm 0.12.1b1 is pinned exactly: its public API does not expose what a parallel
executor and a block observer need (the account database behind a ``State``, the
single method every account-field write goes through, the journal and trie layers a
flat pre-state reader skips). Each such use lives here, named for what it gives, so
that an upgrade of py-evm is checked in one file.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.abc import StateAPI


def account_db(state: StateAPI) -> Any:
    """The ``AccountDB`` a py-evm ``State`` owns (``State._account_db``): the
    engine reads the block's pre-state from it and writes the merged result into
    it; observers wrap its write methods."""
    return state._account_db  # type: ignore[attr-defined]


def account_records(state: StateAPI) -> tuple[Callable[[bytes], Any],
                                              Callable[[bytes, Any], None]] | None:
    """``(get, set)`` of whole account records (``AccountDB._get_account`` and
    ``_set_account``), or None where the state's database has no such methods.

    The engine's merge writes a balance and a nonce in one account update, where
    py-evm's public ``set_balance`` then ``set_nonce`` would each read, copy,
    encode and journal the account.
    """
    db = getattr(state, "_account_db", None)
    get = getattr(db, "_get_account", None)
    put = getattr(db, "_set_account", None)
    return (get, put) if get is not None and put is not None else None


def observe_writes(db: Any, on_account: Callable[[bytes], None],
                   on_slot: Callable[[bytes, int], None],
                   on_wipe: Callable[[bytes], None]) -> None:
    """Call back on every write ``db`` (an ``AccountDB``) makes, before it makes it.

    ``AccountDB._set_account`` is the one method every balance, nonce, code-hash and
    storage-root change goes through; storage slots go through ``set_storage``;
    ``delete_account`` and ``delete_storage`` wipe storage.
    """
    original_account = db._set_account
    original_slot = db.set_storage

    def set_account(address: bytes, account: Any) -> None:
        on_account(address)
        original_account(address, account)

    def set_storage(address: bytes, slot: int, value: int) -> None:
        on_slot(address, slot)
        original_slot(address, slot, value)

    def wiping(original: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def wipe(address: bytes) -> None:
            on_wipe(address)
            original(address)
        return wipe

    db._set_account = set_account
    db.set_storage = set_storage
    db.delete_account = wiping(db.delete_account)
    db.delete_storage = wiping(db.delete_storage)


# -- reading an AccountDB's state beneath its journal (pevm.engines.pre_state) ------
try:  # py-evm's journal markers for "deleted here" (read-only)
    from eth.db.journal import DELETE_WRAPPED, REVERT_TO_WRAPPED
    _DELETED: tuple[Any, ...] = (DELETE_WRAPPED, REVERT_TO_WRAPPED)
except ImportError:  # pragma: no cover - another py-evm layout: no fast path
    _DELETED = ()

#: :func:`pending_account`'s answer for an account the journal deleted
DELETED = b""


def stored_tries(db: Any) -> tuple[Any, Any] | None:
    """``(account trie's node store, storage node store)`` of an ``AccountDB`` --
    what a reader needs to walk the persisted tries itself (py-evm's own trie
    decodes every node of every path again) -- or None for any other account
    database (then readers use the public API)."""
    fast = bool(_DELETED) and all(
        hasattr(db, name) for name in
        ("_journaltrie", "_batchtrie", "_raw_store_db", "_account_stores", "state_root")
    ) and hasattr(db._journaltrie, "_journal")
    return (db._batchtrie, db._raw_store_db) if fast else None


def pending_account(db: Any, address: bytes) -> bytes | None:
    """The account's RLP as ``AccountDB``'s journal holds it (:data:`DELETED` when
    the journal deleted it), or None when the journal has no entry (the persisted
    trie holds the account). Only for an ``AccountDB`` :func:`stored_tries` accepts."""
    pending = db._journaltrie._journal[address]
    if pending is None:
        return None
    return DELETED if pending in _DELETED else pending


def encoded_account(db: Any, address: bytes) -> bytes:
    """The account's RLP through ``AccountDB``'s own lookup (journal, then trie)."""
    return db._get_encoded_account(address, from_journal=True)


def storage_opened(db: Any, address: bytes) -> bool:
    """Whether ``AccountDB`` has opened the account's storage store (written,
    wiped, or read it): such storage has its own journal and maybe unsaved nodes."""
    return address in db._account_stores


def remember_account(db: Any, address: bytes, account: Any) -> None:
    """Put a decoded account where ``AccountDB._get_account`` caches it (and mark
    it accessed, as that lookup would): a later write through py-evm's AccountDB
    then needs no trie lookup."""
    cache = getattr(db, "_account_cache", None)
    if cache is not None and address not in cache:
        cache[address] = account
        accessed = getattr(db, "_accessed_accounts", None)
        if accessed is not None:
            accessed.add(address)


def code_by_hash(db: Any, digest: bytes) -> bytes:
    """Contract code by its hash from ``AccountDB``'s journaled database (raises
    KeyError or AttributeError where that is not possible)."""
    return db._journaldb[digest]
