"""A persistent Merkle-Patricia trie over hashed keys, re-hashed incrementally.

:mod:`pevm.gpu.trie` builds a root from scratch; a chain of blocks would rebuild
the whole state trie for every block although a block changes a few thousand of
its millions of leaves. An :class:`IncrementalTrie` keeps its nodes, each with its
reference (the raw RLP a parent embeds, or ``0xa0`` + Keccak of it) once hashed.
:meth:`IncrementalTrie.update_many` applies a batch of changes to several tries:

1. *structure*: the changed keys are sorted and walked down each trie together;
   only nodes on their paths are replaced (branches copied, leaves and extensions
   split or merged, a branch left with one child collapsed), every untouched
   subtree is shared with the old trie, and a change that writes the value a key
   already has replaces nothing;
2. *hashing*: the new nodes are ordered by height (distance to their deepest new
   descendant) and every level, across all the tries of the call, is one
   :func:`~pevm.gpu.keccak.keccak256_batch` (CUDA on a device, the C loop
   otherwise). Nodes under 32 bytes are embedded raw in their parent, as in
   py-trie's ``HexaryTrie``; a root is always hashed.

Nodes are never modified once hashed, so the old trie remains valid: the state of
a rejected block, or a fork's side chain, costs nothing to keep or drop.

Keys are fixed-length hashed keys (Keccak-256 of an address or a storage slot:
64 nibbles), given as lower-case hex strings; an empty value means "absent". Roots
equal py-trie's (checked by tests/test_incremental_trie.py).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from pevm.gpu.keccak import keccak256_batch
from pevm.gpu.trie import BLANK_ROOT, _hex_prefix, _rlp_bytes, _rlp_list

_LEAF, _EXTENSION, _BRANCH = 0, 1, 2
_EMPTY_SLOT = b"\x80"  # rlp(b""): an empty branch slot and a branch's empty value


class _Node:
    """One trie node. ``path`` is a leaf's or extension's nibbles (hex text);
    ``value`` a leaf's raw value; ``child`` an extension's node; ``children`` a
    branch's 16 slots; ``ref`` what a parent embeds, None until hashed."""

    __slots__ = ("kind", "path", "value", "child", "children", "ref")

    def __init__(self, kind: int, path: str = "", value: bytes = b"",
                 child: _Node | None = None,
                 children: list[_Node | None] | None = None) -> None:
        self.kind = kind
        self.path = path
        self.value = value
        self.child = child
        self.children = children
        self.ref: bytes | None = None


def _leaf(path: str, value: bytes) -> _Node:
    return _Node(_LEAF, path, value)


def _extension(path: str, child: _Node | None) -> _Node | None:
    """An extension over ``child``, merged into it where the trie's canonical form
    wants (a path only ever ends in a branch)."""
    if child is None:
        return None
    if not path:
        return child
    if child.kind == _LEAF:
        return _leaf(path + child.path, child.value)
    if child.kind == _EXTENSION:
        return _Node(_EXTENSION, path + child.path, child=child.child)
    return _Node(_EXTENSION, path, child=child)


def _build(keys: Sequence[str], values: Sequence[bytes], lo: int, hi: int,
           depth: int) -> _Node | None:
    """A fresh subtree of the non-empty items ``keys[lo:hi]`` below ``depth``."""
    live = [i for i in range(lo, hi) if values[i]]
    if not live:
        return None
    if len(live) == 1:
        return _leaf(keys[live[0]][depth:], values[live[0]])
    first, last = keys[live[0]], keys[live[-1]]
    end, limit = depth, len(first)
    while end < limit and first[end] == last[end]:
        end += 1
    if end > depth:
        return _extension(first[depth:end], _build(keys, values, live[0], live[-1] + 1, end))
    children: list[_Node | None] = [None] * 16
    i, stop = live[0], live[-1] + 1
    while i < stop:
        nibble = keys[i][depth]
        j = i + 1
        while j < stop and keys[j][depth] == nibble:
            j += 1
        children[int(nibble, 16)] = _build(keys, values, i, j, depth + 1)
        i = j
    return _Node(_BRANCH, children=children)


def _apply(node: _Node | None, keys: Sequence[str], values: Sequence[bytes],
           lo: int, hi: int, depth: int) -> _Node | None:
    """``node`` (the subtree at ``depth``) with ``keys[lo:hi]`` (sorted) set to
    ``values`` (b"": removed); ``node`` itself when nothing changes."""
    if node is None:
        return _build(keys, values, lo, hi, depth)
    kind = node.kind
    if kind == _LEAF:
        own = keys[lo][:depth] + node.path
        merged_keys = list(keys[lo:hi])
        merged_values = list(values[lo:hi])
        for i, key in enumerate(merged_keys):
            if key == own:
                if merged_values[i] == node.value and hi - lo == 1:
                    return node
                break
        else:
            if not any(merged_values):  # only removals of keys that are not there
                return node
            at = 0
            while at < len(merged_keys) and merged_keys[at] < own:
                at += 1
            merged_keys.insert(at, own)
            merged_values.insert(at, node.value)
        return _build(merged_keys, merged_values, 0, len(merged_keys), depth)
    if kind == _EXTENSION:
        path = node.path
        end = depth + len(path)
        if keys[lo][depth:end] == path and keys[hi - 1][depth:end] == path:
            child = _apply(node.child, keys, values, lo, hi, end)
            if child is node.child:
                return node
            return _extension(path, child)
        # Some key leaves the extension's path: split it at the first difference
        # into (shorter extension ->) branch -> (rest of extension ->) child.
        split = 0
        first, last = keys[lo], keys[hi - 1]
        while (split < len(path) and first[depth + split] == path[split]
               and last[depth + split] == path[split]):
            split += 1
        below = node.child if split + 1 == len(path) else \
            _Node(_EXTENSION, path[split + 1:], child=node.child)
        children: list[_Node | None] = [None] * 16
        children[int(path[split], 16)] = below
        branch = _Node(_BRANCH, children=children)
        new = _apply(branch, keys, values, lo, hi, depth + split)
        if new is branch:  # only removals of keys that are not there
            return node
        return _extension(path[:split], new)
    old_children = node.children
    assert old_children is not None
    new_children = list(old_children)
    changed = False
    i = lo
    while i < hi:
        nibble = keys[i][depth]
        j = i + 1
        while j < hi and keys[j][depth] == nibble:
            j += 1
        slot = int(nibble, 16)
        child = _apply(old_children[slot], keys, values, i, j, depth + 1)
        if child is not old_children[slot]:
            new_children[slot] = child
            changed = True
        i = j
    if not changed:
        return node
    live = [s for s in range(16) if new_children[s] is not None]
    if not live:
        return None
    if len(live) == 1:  # a branch with one child is not canonical: merge it down
        slot = live[0]
        return _extension(format(slot, "x"), new_children[slot])
    return _Node(_BRANCH, children=new_children)


#: a 64-nibble key has at most 64 branches and 64 extensions above its leaf
_MAX_HEIGHT = 130


def _collect(node: _Node, levels: list[list[_Node]]) -> int:
    """Put ``node`` and its unhashed descendants in ``levels`` by height; returns
    ``node``'s height. (A new node has one parent, so nothing is seen twice.)"""
    height = 0
    kind = node.kind
    if kind == _BRANCH:
        for child in node.children:  # type: ignore[union-attr]
            if child is not None and child.ref is None:
                below = _collect(child, levels)
                if below >= height:
                    height = below + 1
    elif kind == _EXTENSION:
        child = node.child
        if child.ref is None:  # type: ignore[union-attr]
            height = _collect(child, levels) + 1  # type: ignore[arg-type]
    levels[height].append(node)
    return height


def _hash_new_nodes(roots: Sequence[_Node | None], backend: str | None) -> list[bytes]:
    """Give every new node under ``roots`` its reference, one Keccak batch per
    height; returns each root's hash."""
    levels: list[list[_Node]] = [[] for _ in range(_MAX_HEIGHT)]
    for root in roots:
        if root is not None and root.ref is None:
            _collect(root, levels)
    for level in levels:
        if not level:
            break
        pending: list[bytes] = []
        pending_nodes: list[_Node] = []
        for node in level:
            encoded = _encode(node)
            if len(encoded) >= 32:
                pending.append(encoded)
                pending_nodes.append(node)
            else:
                node.ref = encoded  # embedded in its parent as is
        if pending:
            for node, digest in zip(pending_nodes, keccak256_batch(pending, backend=backend)):
                node.ref = b"\xa0" + digest
    # A root is hashed whatever its size; one under 32 bytes holds its raw RLP.
    small = [r.ref for r in roots
             if r is not None and r.ref is not None and len(r.ref) < 32]
    small_hashes = iter(keccak256_batch(small, backend=backend)) if small else iter(())
    out = []
    for root in roots:
        if root is None:
            out.append(BLANK_ROOT)
        elif len(root.ref) < 32:  # type: ignore[arg-type]
            out.append(next(small_hashes))
        else:
            out.append(root.ref[1:])  # type: ignore[index]
    return out


def _encode(node: _Node) -> bytes:
    """A node's RLP; its children's references must be known."""
    kind = node.kind
    if kind == _LEAF:
        return _rlp_list(_rlp_bytes(_hex_prefix(node.path, True)) + _rlp_bytes(node.value))
    if kind == _EXTENSION:
        ref = node.child.ref if node.child is not None else None
        assert ref is not None, "an extension's child is hashed before it"
        return _rlp_list(_rlp_bytes(_hex_prefix(node.path, False)) + ref)
    assert node.children is not None
    # join raises on a child without a reference: hashing order is a bug then
    return _rlp_list(b"".join([c.ref if c is not None else _EMPTY_SLOT  # type: ignore[misc]
                               for c in node.children]) + _EMPTY_SLOT)


def hashed_keys(raw: Sequence[bytes], backend: str | None = None) -> list[str]:
    """Keccak-256 of each raw key (an address, a 32-byte slot), as the hex text
    :class:`IncrementalTrie` takes: one batch."""
    return [d.hex() for d in keccak256_batch(list(raw), backend=backend)] if raw else []


class IncrementalTrie:
    """An immutable trie of 64-nibble keys; :meth:`update_many` derives new ones."""

    __slots__ = ("_node", "_root")

    def __init__(self, node: _Node | None, root: bytes) -> None:
        self._node = node
        self._root = root

    @classmethod
    def empty(cls) -> IncrementalTrie:
        return cls(None, BLANK_ROOT)

    @property
    def root(self) -> bytes:
        """The trie's root hash."""
        return self._root

    @property
    def is_empty(self) -> bool:
        return self._node is None

    def update(self, items: Mapping[str, bytes], backend: str | None = None) -> IncrementalTrie:
        """This trie with ``items`` (hex key -> value; b"" removes) applied."""
        return IncrementalTrie.update_many([(self, items)], backend)[0]

    def nodes(self) -> Iterator[tuple[bytes, bytes]]:
        """Every node stored by hash, as ``(hash, rlp)``: what py-trie's
        ``HexaryTrie`` keeps in its database for this root (embedded nodes are
        inside their parents). Lets py-evm read a state pevm built."""
        if self._node is None:
            return
        stack = [self._node]
        while stack:
            node = stack.pop()
            encoded = _encode(node)
            if node is self._node or len(encoded) >= 32:
                yield (self._root if node is self._node else node.ref[1:],  # type: ignore[index]
                       encoded)
            if node.kind == _EXTENSION:
                stack.append(node.child)  # type: ignore[arg-type]
            elif node.kind == _BRANCH:
                stack.extend(c for c in node.children if c is not None)  # type: ignore[union-attr]

    @staticmethod
    def update_many(updates: Sequence[tuple[IncrementalTrie, Mapping[str, bytes]]],
                    backend: str | None = None) -> list[IncrementalTrie]:
        """Apply each ``(trie, items)``; all new nodes of all the tries are hashed
        together, one batch per level."""
        nodes: list[_Node | None] = []
        for trie, items in updates:
            if not items:
                nodes.append(trie._node)
                continue
            keys = sorted(items)
            width = len(keys[0])
            if any(len(k) != width for k in keys) or (
                    trie._node is not None and width != _key_width(trie._node)):
                raise ValueError("IncrementalTrie keys must all have the same length")
            values = [bytes(items[k]) for k in keys]
            nodes.append(_apply(trie._node, keys, values, 0, len(keys), 0))
        roots = _hash_new_nodes(nodes, backend)
        out = []
        for (trie, _), node, root in zip(updates, nodes, roots):
            out.append(trie if node is trie._node else IncrementalTrie(node, root))
        return out


def _key_width(node: _Node) -> int:
    """The key length (nibbles) of a non-empty trie: the depth of any leaf."""
    width = 0
    while node.kind != _LEAF:
        width += len(node.path) + (node.kind == _BRANCH)
        node = node.child if node.kind == _EXTENSION else \
            next(c for c in node.children if c is not None)  # type: ignore[union-attr,assignment]
    return width + len(node.path)
