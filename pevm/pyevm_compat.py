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
