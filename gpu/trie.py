"""Merkle-Patricia trie roots with every node of a level hashed in one batch.

A trie is built bottom-up. Its structure (leaves, extensions, branches) comes
first, in plain Python over the sorted keys; each node's *height* is its distance
to its deepest leaf. Heights are then processed in ascending order: a node's
children all have smaller heights, so their references are known; every node of
the level whose RLP is at least 32 bytes goes into one
:func:`~pevm.gpu.keccak.keccak256_batch` call, and smaller ones are embedded raw
in their parent, exactly as the Ethereum trie (py-trie's ``HexaryTrie``) does. A
root is always hashed. Several tries are built as one *forest* so that, for a
state root, level ``h`` of every account's storage trie is one batch.

Roots equal ``trie.HexaryTrie``'s, py-evm's ``AccountDB.make_state_root()`` and
``eth.db.trie.make_trie_root_and_nodes`` (checked by tests/test_gpu_trie.py).
As in ``HexaryTrie``, an empty value means "absent": such items are dropped.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pevm.gpu.keccak import EMPTY_KECCAK, keccak256_batch

#: keccak(rlp(b"")): the root of an empty trie.
BLANK_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")


class AccountState(NamedTuple):
    """One account of a full state: what :func:`state_root` hashes.

    Any 4-tuple ``(nonce, balance, storage, code)`` is accepted where an
    ``AccountState`` is expected.
    """

    nonce: int
    balance: int
    storage: Mapping[int, int]
    code: bytes


# ------------------------------------------------------------------------- rlp
def _rlp_bytes(value: bytes) -> bytes:
    """RLP encoding of a byte string."""
    n = len(value)
    if n == 1 and value[0] < 0x80:
        return value
    if n < 56:
        return bytes((0x80 + n,)) + value
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xB7 + len(length),)) + length + value


def _rlp_list(payload: bytes) -> bytes:
    """RLP encoding of a list whose items' encodings concatenate to ``payload``."""
    n = len(payload)
    if n < 56:
        return bytes((0xC0 + n,)) + payload
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(length),)) + length + payload


def _int_bytes(value: int) -> bytes:
    """Minimal big-endian bytes of a non-negative int (b"" for 0), as RLP wants."""
    if value < 0:
        raise ValueError(f"negative integer {value} cannot be RLP-encoded")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _rlp_int(value: int) -> bytes:
    return _rlp_bytes(_int_bytes(value))


def _hex_prefix(nibbles: str, leaf: bool) -> bytes:
    """Hex-prefix (compact) encoding of a nibble path given as a hex string."""
    if len(nibbles) % 2:
        return bytes.fromhex(("3" if leaf else "1") + nibbles)
    return bytes.fromhex(("20" if leaf else "00") + nibbles)


_EMPTY_ITEM = b"\x80"  # rlp(b""): an empty branch slot or an absent branch value
_LEAF, _EXTENSION, _BRANCH = 0, 1, 2


# ---------------------------------------------------------------------- forest
class _Forest:
    """Node tables for several tries, hashed together level by level.

    Nodes are rows of parallel lists rather than objects: a state root builds
    hundreds of thousands of them, and list appends are the cheapest thing
    Python has. Per node: ``kind``; ``item`` (a leaf's complete RLP, an
    extension's rlp(path), a branch's rlp(value) or 0x80); ``children`` (None,
    one slot, or 16 slots, -1 when empty); ``parent`` (-1 for a root).
    """

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.item: list[bytes] = []
        self.children: list[list[int] | None] = []
        self.parent: list[int] = []
        self.roots: list[int] = []        # one per trie; -1 for an empty trie

    def add_trie(self, keys: list[str], values: list[bytes]) -> int:
        """Add one trie; ``keys`` are sorted, distinct lower-case hex strings (one
        character per nibble) and ``values`` the matching non-empty raw values.
        Returns the trie's index in :attr:`roots`."""
        self.roots.append(self._build(keys, values) if keys else -1)
        return len(self.roots) - 1

    def _build(self, keys: list[str], values: list[bytes]) -> int:
        # Explicit stack instead of recursion: plain keys can be long, and
        # recursion depth would follow the key length. Parents get smaller ids
        # than their children, which hash_all relies on.
        kind, item, children, parent_of = self.kind, self.item, self.children, self.parent
        rlp_bytes, rlp_list, hex_prefix = _rlp_bytes, _rlp_list, _hex_prefix
        root = len(kind)
        stack: list[tuple[int, int, int, int, int]] = [(0, len(keys), 0, -1, 0)]
        pop, push = stack.pop, stack.append
        while stack:
            lo, hi, depth, parent, slot = pop()
            nid = len(kind)
            if parent >= 0:
                children[parent][slot] = nid  # type: ignore[index]
            parent_of.append(parent)
            first = keys[lo]
            if hi - lo == 1:
                kind.append(_LEAF)
                item.append(rlp_list(rlp_bytes(hex_prefix(first[depth:], True))
                                     + rlp_bytes(values[lo])))
                children.append(None)
                continue
            last = keys[hi - 1]
            # Sorted keys: the common prefix of the first and the last is the
            # common prefix of all of them.
            end, limit = depth, min(len(first), len(last))
            while end < limit and first[end] == last[end]:
                end += 1
            if end > depth:
                kind.append(_EXTENSION)
                item.append(rlp_bytes(hex_prefix(first[depth:end], False)))
                children.append([-1])
                push((lo, hi, end, nid, 0))
                continue
            kind.append(_BRANCH)
            if len(first) == depth:  # a key ends here: the branch holds its value
                item.append(rlp_bytes(values[lo]))
                lo += 1
            else:
                item.append(_EMPTY_ITEM)
            children.append([-1] * 16)
            prefix = first[:depth]
            i = lo
            while i < hi:
                nibble = keys[i][depth]
                # ':' follows '9' and 'g' follows 'f', so this bound ends the group.
                j = bisect_left(keys, prefix + chr(ord(nibble) + 1), i, hi)
                push((i, j, depth + 1, nid, int(nibble, 16)))
                i = j
        return root

    def hash_all(self, backend: str | None = None,
                 nodes: dict[bytes, bytes] | None = None) -> list[bytes]:
        """Root hash of every trie added, hashing one batch per level; ``nodes``,
        when given, receives every hashed node as ``hash -> rlp`` (what
        ``HexaryTrie`` stores in its database)."""
        count = len(self.kind)
        kind, item, children, parent = self.kind, self.item, self.children, self.parent
        height = [0] * count
        for nid in range(count - 1, -1, -1):  # children have larger ids than parents
            p = parent[nid]
            if p >= 0 and height[p] <= height[nid]:
                height[p] = height[nid] + 1
        levels: list[list[int]] = [[] for _ in range(max(height, default=-1) + 1)]
        for nid, h in enumerate(height):
            levels[h].append(nid)
        ref: list[bytes] = [b""] * count   # what a parent embeds: raw RLP or 0xa0+hash
        empty = _EMPTY_ITEM
        for level in levels:
            pending: list[bytes] = []
            pending_ids: list[int] = []
            for nid in level:
                k = kind[nid]
                if k == _LEAF:
                    encoded = item[nid]
                elif k == _EXTENSION:
                    encoded = _rlp_list(item[nid] + ref[children[nid][0]])  # type: ignore[index]
                else:
                    parts = [ref[c] if c >= 0 else empty for c in children[nid]]  # type: ignore[union-attr]
                    parts.append(item[nid])
                    encoded = _rlp_list(b"".join(parts))
                # Roots are hashed whatever their size; other nodes only from 32 bytes.
                if len(encoded) >= 32 or parent[nid] < 0:
                    pending.append(encoded)
                    pending_ids.append(nid)
                else:
                    ref[nid] = encoded  # embedded in the parent as is
            if pending:
                digests = keccak256_batch(pending, backend=backend)
                for nid, digest in zip(pending_ids, digests):
                    ref[nid] = b"\xa0" + digest
                if nodes is not None:
                    nodes.update(zip(digests, pending))
        return [ref[r][1:] if r >= 0 else BLANK_ROOT for r in self.roots]


def _sorted_hex(items: Iterable[tuple[bytes, bytes]]) -> tuple[list[str], list[bytes]]:
    pairs = sorted((bytes(k).hex(), bytes(v)) for k, v in items if v)
    return [k for k, _ in pairs], [v for _, v in pairs]


# ---------------------------------------------------------------------- public
def trie_root(items: Mapping[bytes, bytes], backend: str | None = None) -> bytes:
    """Root of the trie mapping each key (as given) to its value.

    Items with an empty value are absent, as in ``HexaryTrie``.
    """
    forest = _Forest()
    forest.add_trie(*_sorted_hex(items.items()))
    return forest.hash_all(backend)[0]


def trie_roots(tries: Sequence[Mapping[bytes, bytes]], backend: str | None = None) -> list[bytes]:
    """Roots of several plain-key tries, hashed together one level per batch."""
    forest = _Forest()
    for items in tries:
        forest.add_trie(*_sorted_hex(items.items()))
    return forest.hash_all(backend)


def secure_trie_root(items: Mapping[bytes, bytes], backend: str | None = None) -> bytes:
    """Root of the *secure* trie: every key is replaced by its Keccak-256 first
    (one batch), as in ``HexaryTrie`` behind py-evm's ``HashTrie``."""
    kept = [(k, v) for k, v in items.items() if v]
    hashed = keccak256_batch([bytes(k) for k, _ in kept], backend=backend)
    return trie_root(dict(zip(hashed, (v for _, v in kept))), backend)


def ordered_trie_root(values: Sequence[bytes], backend: str | None = None) -> bytes:
    """Root of the trie keyed by ``rlp(index)``: transactions, receipts and
    withdrawals roots. ``values`` are the already-encoded items (for typed
    transactions and receipts, the type byte followed by the payload)."""
    return ordered_trie_roots([values], backend)[0]


def ordered_trie_roots(lists: Sequence[Sequence[bytes]], backend: str | None = None
                       ) -> list[bytes]:
    """:func:`ordered_trie_root` of several lists (e.g. a block's receipts and
    transactions), hashed together one level per batch."""
    return _ordered_forest(lists).hash_all(backend)


def _ordered_forest(lists: Sequence[Sequence[bytes]]) -> _Forest:
    forest = _Forest()
    for values in lists:
        forest.add_trie(*_sorted_hex((_rlp_int(i), v) for i, v in enumerate(values)))
    return forest


def ordered_trie_roots_and_nodes(lists: Sequence[Sequence[bytes]], backend: str | None = None
                                 ) -> tuple[list[bytes], dict[bytes, bytes]]:
    """:func:`ordered_trie_roots` and every node of those tries (``hash -> rlp``),
    as py-evm's ``make_trie_root_and_nodes`` gives them to its chain database."""
    nodes: dict[bytes, bytes] = {}
    return _ordered_forest(lists).hash_all(backend, nodes), nodes


def encode_account(nonce: int, balance: int, storage_root: bytes, code_hash: bytes) -> bytes:
    """RLP of an account as the state trie stores it (py-evm's ``Account``)."""
    return _rlp_list(_rlp_int(nonce) + _rlp_int(balance) + _rlp_bytes(storage_root)
                     + _rlp_bytes(code_hash))


def encode_slot(slot: int, value: int) -> bytes:
    """RLP of a storage value as a storage trie stores it: b"" (absent) for zero;
    ValueError for a slot or value outside uint256."""
    if not 0 <= slot < 2**256 or not 0 <= value < 2**256:
        raise ValueError(f"storage slot {slot:#x} = {value:#x} is outside uint256")
    return _rlp_int(value) if value else b""


def _storage_items(slots: Mapping[int, int]) -> list[tuple[int, bytes]]:
    """(slot, rlp(value)) for the non-zero slots: zero means "not stored"."""
    return [(slot, encode_slot(slot, value)) for slot, value in slots.items() if value]


def storage_root(slots: Mapping[int, int], backend: str | None = None) -> bytes:
    """Storage root of one account: keys keccak(slot as 32 bytes big-endian),
    values rlp(value); zero values are dropped."""
    return storage_roots({b"": slots}, backend)[b""]


def storage_roots(storages: Mapping[bytes, Mapping[int, int]],
                  backend: str | None = None) -> dict[bytes, bytes]:
    """Storage root of each account, all tries hashed together (one batch for
    every slot key, then one per level across all tries)."""
    items = [_storage_items(s) for s in storages.values()]
    key_hashes = keccak256_batch([slot.to_bytes(32, "big") for its in items for slot, _ in its],
                                 backend=backend)
    forest = _Forest()
    _add_storage_tries(forest, items, key_hashes)
    return dict(zip(storages.keys(), forest.hash_all(backend)))


def _add_storage_tries(forest: _Forest, items: list[list[tuple[int, bytes]]],
                       key_hashes: list[bytes]) -> None:
    """Add one storage trie per entry of ``items`` ((slot, rlp(value)) lists);
    ``key_hashes`` are keccak(slot) for all of them, in the same order."""
    pos = 0
    for its in items:
        hashed = key_hashes[pos:pos + len(its)]
        pos += len(its)
        pairs = sorted(zip((h.hex() for h in hashed), (v for _, v in its)))
        forest.add_trie([k for k, _ in pairs], [v for _, v in pairs])


def state_root(accounts: Mapping[bytes, Any], backend: str | None = None,
               known_storage_roots: Mapping[bytes, bytes] | None = None) -> bytes:
    """State root of a full state.

    Args:
        accounts: address -> :class:`AccountState` or ``(nonce, balance,
            storage: {slot: value}, code)``. Every account given is kept, empty
            or not: which accounts exist is the caller's decision (EIP-161).
        backend: as in :func:`~pevm.gpu.keccak.keccak256_batch`.
        known_storage_roots: address -> storage root already known; those
            accounts' storage is not rehashed (their ``storage`` is ignored).

    All addresses, slot keys and codes are hashed in one batch, every storage
    trie's level ``h`` in one batch, then the account trie level by level.
    """
    known = known_storage_roots or {}
    addresses = [bytes(a) for a in accounts]
    states = [accounts[a] for a in accounts]
    roots: list[bytes | None] = [known.get(a) for a in addresses]
    need_storage: list[int] = []
    slot_items: list[list[tuple[int, bytes]]] = []
    for i, root in enumerate(roots):
        if root is None:
            items = _storage_items(states[i][2]) if states[i][2] else []
            if items:
                need_storage.append(i)
                slot_items.append(items)
            else:  # most accounts: no storage, no trie to build
                roots[i] = BLANK_ROOT
    code_list = sorted({bytes(s[3]) for s in states if s[3]})
    # One batch for every key hash and code hash of the state.
    slot_keys = [slot.to_bytes(32, "big") for its in slot_items for slot, _ in its]
    digests = keccak256_batch(addresses + slot_keys + code_list, backend=backend)
    address_hashes = digests[:len(addresses)]
    slot_hashes = digests[len(addresses):len(addresses) + len(slot_keys)]
    code_hash = dict(zip(code_list, digests[len(addresses) + len(slot_keys):]))

    if need_storage:
        forest = _Forest()
        _add_storage_tries(forest, slot_items, slot_hashes)
        for i, root in zip(need_storage, forest.hash_all(backend)):
            roots[i] = root

    encoded = []
    for state, root in zip(states, roots):
        nonce, balance, _, code = state
        encoded.append(encode_account(nonce, balance, root,  # type: ignore[arg-type]
                                      code_hash[bytes(code)] if code else EMPTY_KECCAK))
    pairs = sorted(zip((h.hex() for h in address_hashes), encoded))
    account_forest = _Forest()
    account_forest.add_trie([k for k, _ in pairs], [v for _, v in pairs])
    return account_forest.hash_all(backend)[0]


def apply_diff(pre_accounts: Mapping[bytes, Any], diff: Mapping[bytes, Any]
               ) -> tuple[dict[bytes, AccountState], set[bytes]]:
    """Post-state of ``diff`` over ``pre_accounts``, and the addresses whose
    storage changed (those whose pre-state storage roots can no longer be reused).

    ``diff`` maps addresses to :class:`pevm.result.AccountDiff` (or anything with
    its attributes): ``balance``/``nonce``/``code`` are ``(before, after)`` or
    None, ``storage`` maps slots to ``(before, after)``, ``destroyed`` removes
    the account, ``storage_cleared`` empties its storage before ``storage`` is
    applied, and an account missing from ``pre_accounts`` starts empty.
    """
    post: dict[bytes, AccountState] = {bytes(a): AccountState(*s) for a, s in pre_accounts.items()}
    changed: set[bytes] = set()
    for address, change in diff.items():
        address = bytes(address)
        if getattr(change, "destroyed", False):
            post.pop(address, None)
            changed.add(address)
            continue
        nonce, balance, storage, code = post.get(address, AccountState(0, 0, {}, b""))
        if getattr(change, "storage_cleared", False):
            storage = {}
            changed.add(address)
        slots = getattr(change, "storage", None) or {}
        if slots:
            storage = dict(storage)
            for slot, (_, new) in slots.items():
                if new:
                    storage[slot] = new
                else:
                    storage.pop(slot, None)
            changed.add(address)
        if getattr(change, "balance", None):
            balance = change.balance[1]
        if getattr(change, "nonce", None):
            nonce = change.nonce[1]
        if getattr(change, "code", None):
            code = change.code[1]
        post[address] = AccountState(nonce, balance, storage, code)
    return post, changed


def state_root_from_diff(pre_accounts: Mapping[bytes, Any], diff: Mapping[bytes, Any],
                         backend: str | None = None,
                         pre_storage_roots: Mapping[bytes, bytes] | None = None) -> bytes:
    """State root after applying a block's per-account ``diff`` to a known full
    pre-state (see :func:`apply_diff` for the diff's meaning).

    Args:
        pre_accounts: the full pre-state, as for :func:`state_root`.
        diff: address -> :class:`pevm.result.AccountDiff`-like change.
        backend: as in :func:`~pevm.gpu.keccak.keccak256_batch`.
        pre_storage_roots: storage roots of the pre-state (e.g. from
            :func:`storage_roots`); accounts whose storage the diff does not
            touch reuse them instead of rehashing their storage.

    Exact when the diff lists every slot whose value changed. (A diff taken
    from touched slots only can miss slots wiped by a self-destruct that was
    followed by re-creation with non-empty storage in the same block.)
    """
    post, changed = apply_diff(pre_accounts, diff)
    known = None
    if pre_storage_roots:
        known = {a: r for a, r in pre_storage_roots.items() if a in post and a not in changed}
    return state_root(post, backend=backend, known_storage_roots=known)
