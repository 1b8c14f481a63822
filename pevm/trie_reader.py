"""Fast read-only lookups in the Merkle-Patricia tries py-evm stores.

py-evm's ``HexaryTrie`` decodes every node on the path of every lookup and
converts keys to nibble tuples on the way; a block that reads a thousand accounts
decodes the root node a thousand times. :class:`TrieReader` walks the same nodes
(read from the same database) but keeps each decoded node, keyed by its hash, for
the reader's lifetime, and compares paths as hex strings. It only ever reads, so
a stale cache is impossible: a node's hash is its content.

:class:`StoredState` reads accounts, storage and code of one state root that
way. The engine's pre-state cache (:mod:`pevm.engines.pre_state`) and the
pipeline's state diff (:func:`pevm.pipeline.state_diff`) read through them. A node
missing from the database raises :class:`KeyError`; callers fall back to py-evm,
which reports it in its own terms.
"""
from __future__ import annotations

from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH as _BLANK_ROOT, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak


class TrieReader:
    """Lookups of hashed keys under one root, with a decoded-node cache.

    ``db`` maps node hashes to RLP-encoded nodes (py-evm's trie databases do);
    ``nodes`` may be shared between readers over the same database.
    """

    __slots__ = ("_db", "_root", "_nodes", "_paths")

    def __init__(self, db: Any, root: bytes,
                 nodes: dict[bytes, Any] | None = None) -> None:
        self._db = db
        self._root = root
        self._nodes: dict[bytes, Any] = {} if nodes is None else nodes
        #: hex-prefix encoded path -> (nibbles as hex text, is leaf)
        self._paths: dict[bytes, tuple[str, bool]] = {}

    def _node(self, reference: Any) -> Any:
        """The decoded node a parent refers to (hash, embedded list, or blank)."""
        if isinstance(reference, list):
            return reference
        if not reference:
            return None
        node = self._nodes.get(reference)
        if node is None:
            node = self._nodes[reference] = rlp.decode(self._db[reference])
        return node

    def _path(self, encoded: bytes) -> tuple[str, bool]:
        known = self._paths.get(encoded)
        if known is None:
            text = encoded.hex()
            flag = int(text[0], 16)
            known = self._paths[encoded] = (text[1:] if flag & 1 else text[2:],
                                            bool(flag & 2))
        return known

    def get(self, hashed_key: bytes) -> bytes:
        """The value stored under ``hashed_key`` (32 bytes), or b"" if absent."""
        if self._root == _BLANK_ROOT:
            return b""
        nibbles = hashed_key.hex()
        end = len(nibbles)
        position = 0
        node = self._node(self._root)
        while node:
            if len(node) == 17:
                if position == end:
                    return node[16]
                node = self._node(node[int(nibbles[position], 16)])
                position += 1
                continue
            path, is_leaf = self._path(node[0])
            if is_leaf:
                return node[1] if nibbles[position:] == path else b""
            if not nibbles.startswith(path, position):
                return b""
            position += len(path)
            node = self._node(node[1])
        return b""


class StoredState:
    """Accounts, storage and code under one state root, read-only.

    ``db`` holds the account trie's nodes and the code; ``storage_db`` the storage
    tries' nodes (default: ``db``). ``nodes`` is a decoded-node cache that may be
    shared with other readers of the same databases.
    """

    def __init__(self, db: Any, state_root: bytes, storage_db: Any = None,
                 nodes: dict[bytes, Any] | None = None) -> None:
        self._db = db
        self._storage_db = db if storage_db is None else storage_db
        self._nodes: dict[bytes, Any] = {} if nodes is None else nodes
        self._accounts = TrieReader(db, state_root, self._nodes)
        self._tries: dict[bytes, TrieReader] = {}

    def encoded_account(self, address: bytes) -> bytes:
        """The account's RLP (b"" when it does not exist)."""
        return self._accounts.get(keccak(address))

    def account(self, address: bytes) -> Account | None:
        """The decoded account, or None when it does not exist."""
        encoded = self.encoded_account(address)
        return rlp.decode(encoded, sedes=Account) if encoded else None

    def storage(self, storage_root: bytes, slot: int) -> int:
        """Slot ``slot`` of the storage trie at ``storage_root``."""
        reader = self._tries.get(storage_root)
        if reader is None:
            reader = self._tries[storage_root] = TrieReader(
                self._storage_db, storage_root, self._nodes)
        encoded = reader.get(keccak(slot.to_bytes(32, "big")))
        return rlp.decode(encoded, sedes=rlp.sedes.big_endian_int) if encoded else 0

    def code(self, code_hash: bytes) -> bytes:
        """The code with hash ``code_hash``."""
        return b"" if code_hash == EMPTY_SHA3 else self._db[code_hash]
