"""The mutations: each breaks one copy of a source in one way, deterministically.

A mutator takes the source's JSON data (already copied), a ``random.Random`` and
the :class:`~pevm.mutations.sources.Source`, changes the data in place and returns
a short description -- or None when it does not apply (no transactions, no
decodable block), and :func:`mutate` tries another kind.

Fixture blocks are edited as raw RLP (nested lists of bytes, see
:mod:`pevm.mutations.rawrlp`), so any value can be written, canonical or not, and a
transaction's bytes can be broken while the block around it stays well-formed (or
not). A mutated fixture block becomes what ethereum/tests calls an invalid block:
``rlp`` and ``expectException`` only, and the case's final expectations are
dropped (the chain no longer ends where the case recorded). Snapshots are JSON-RPC
objects, so their mutations edit JSON fields and usually drop the ``hash`` that
would otherwise reject every edit up front.
"""
from __future__ import annotations

import copy
import random
from typing import Any
from collections.abc import Callable, Sequence

import rlp
from eth_utils import decode_hex

from pevm.mutations import values as V
from pevm.mutations.rawrlp import (Raw, RawTx, decode_tx, encode, encode_tx, flip,
                                   known_keys, re_sign, sender_of, to_int)
from pevm.mutations.sources import FIXTURE, SNAPSHOT, Mutant, Source, rebase_genesis
from pevm.workloads.fixture import HEADER_FIELDS, hex_bytes

Mutator = Callable[[dict[str, Any], random.Random, Source], "str | None"]
DELETE = V.DELETE


# ----------------------------------------------------------------- fixtures
def _blocks(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    blocks = data.get("blocks")
    return [(i, b) for i, b in enumerate(blocks if isinstance(blocks, list) else ())
            if isinstance(b, dict) and isinstance(b.get("rlp"), str)]


def _block_bytes(data: dict[str, Any], rng: random.Random
                 ) -> tuple[int, dict[str, Any], bytes] | None:
    candidates = []
    for index, block in _blocks(data):
        try:
            candidates.append((index, block, decode_hex(block["rlp"])))
        except ValueError:
            continue
    return rng.choice(candidates) if candidates else None


def _raw_block(data: dict[str, Any], rng: random.Random, min_txs: int = 0
               ) -> tuple[int, dict[str, Any], list[Any]] | None:
    """A decodable block as raw RLP lists: [header, transactions, uncles, ...]."""
    candidates = []
    for index, block in _blocks(data):
        try:
            raw = rlp.decode(decode_hex(block["rlp"]))
        except (ValueError, TypeError, rlp.DecodingError):
            continue
        if (isinstance(raw, list) and len(raw) >= 3 and isinstance(raw[0], list)
                and isinstance(raw[1], list) and len(raw[1]) >= min_txs):
            candidates.append((index, block, raw))
    return rng.choice(candidates) if candidates else None


def _set_block(data: dict[str, Any], block: dict[str, Any], encoded: bytes,
               kind: str) -> None:
    block.clear()
    block.update(rlp=hex_bytes(encoded), expectException=f"pevm mutation: {kind}")
    forget_final_state(data)


def forget_final_state(data: dict[str, Any]) -> None:
    """Drop a case's post-state and last block hash: after a mutation they no
    longer say where the chain ends (pevm skips an empty ``lastblockhash``)."""
    data.pop("postState", None)
    data.pop("postStateHash", None)
    if "lastblockhash" in data:
        data["lastblockhash"] = "0x"


def _whole_block_mutator(kind: str,
                         edit: Callable[[bytes, random.Random], tuple[bytes, str]]
                         ) -> Mutator:
    """A fixture mutator rewriting a block's bytes: ``edit(bytes, rng)`` returns
    the new bytes and what it did."""
    def mutator(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
        picked = _block_bytes(data, rng)
        if picked is None or not picked[2]:
            return None
        index, block, encoded = picked
        mutated, what = edit(encoded, rng)
        _set_block(data, block, mutated, kind)
        return f"block {index}: {what} (of {len(encoded)} bytes)"
    return mutator


def _flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    mutated, positions = flip(data, rng)
    return mutated, f"flipped byte(s) {positions}"


def _raw_tx_mutator(kind: str, edit: Callable[[list[Any], int, random.Random],
                                              tuple[str, bytes | None]]) -> Mutator:
    """A fixture mutator breaking one transaction's raw item: ``edit(raw block,
    index, rng)`` changes ``raw[1][index]`` and returns what it did and, when it
    built the block's bytes itself, those (else the raw block is re-encoded)."""
    def mutator(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
        picked = _raw_block(data, rng, min_txs=1)
        if picked is None:
            return None
        index, block, raw = picked
        tx = rng.randrange(len(raw[1]))
        what, encoded = edit(raw, tx, rng)
        _set_block(data, block, encoded if encoded is not None else encode(raw), kind)
        return f"block {index} tx {tx}: {what}"
    return mutator


def _tx_bytes(item: Any) -> bytes:
    """A transaction's own bytes: a typed one's string, a legacy one's list encoding."""
    return bytes(item) if isinstance(item, bytes) else encode(item)


def _flip_tx(raw: list[Any], tx: int, rng: random.Random) -> tuple[str, bytes | None]:
    item = raw[1][tx]
    mutated, positions = flip(_tx_bytes(item), rng)
    # A typed transaction stays an RLP string; a legacy one is spliced in as is.
    raw[1][tx] = mutated if isinstance(item, bytes) else Raw(mutated)
    return f"flipped byte(s) {positions} of its encoding", None


def _cut_tx(raw: list[Any], tx: int, rng: random.Random) -> tuple[str, bytes | None]:
    item = raw[1][tx]
    mutated, what = V.cut(_tx_bytes(item), rng)
    new_item = mutated if isinstance(item, bytes) else Raw(mutated)
    if rng.random() < 0.5:
        # Lengths of the enclosing lists recomputed: the block's RLP is well-formed.
        raw[1][tx] = new_item
        return f"{what}; outer RLP re-encoded", None
    # Spliced into the old bytes: the enclosing lengths are now wrong.
    whole, old = encode(raw), encode(item)
    at = whole.find(old)
    return (f"{what}; outer RLP lengths left stale",
            whole[:at] + encode(new_item) + whole[at + len(old):])


def _retype_tx(raw: list[Any], tx: int, rng: random.Random) -> tuple[str, bytes | None]:
    item = raw[1][tx]
    old = item[0] if isinstance(item, bytes) and item else 0
    payload = item[1:] if isinstance(item, bytes) else encode(item)
    new = rng.choice([t for t in (0, 1, 2, 3, 4, 5, 0x7F, 0x80, 0xFF) if t != old])
    raw[1][tx] = Raw(payload) if new == 0 else bytes([new]) + payload
    return f"type {old} -> {new}", None


def _fixture_tx(data: dict[str, Any], rng: random.Random
                ) -> tuple[int, dict[str, Any], list[Any], int, RawTx] | None:
    picked = _raw_block(data, rng, min_txs=1)
    if picked is None:
        return None
    index, block, raw = picked
    order = list(range(len(raw[1])))
    rng.shuffle(order)
    for tx in order:
        decoded = decode_tx(raw[1][tx])
        if decoded is not None:
            return index, block, raw, tx, decoded
    return None


def tx_signature(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
    picked = _fixture_tx(data, rng)
    if picked is None:
        return None
    index, block, raw, tx, decoded = picked
    which = rng.randrange(3)
    name = decoded.names[-3 + which]
    old = to_int(decoded.fields[-3 + which])
    value = V.signature_value(name, old, rng)
    decoded.fields[-3 + which] = V.raw_int(value)
    raw[1][tx] = encode_tx(decoded)
    _set_block(data, block, encode(raw), "tx-signature")
    return f"block {index} tx {tx}: {name} {V.short(old)} -> {V.short(value)}"


def _tx_field_change(data: dict[str, Any], rng: random.Random, source: Source,
                     resign: bool) -> str | None:
    picked = _fixture_tx(data, rng)
    if picked is None:
        return None
    index, block, raw, tx, decoded = picked
    secret = None
    if resign:
        # Only a transaction whose sender's key is known can be signed again.
        keys = known_keys(source)
        for candidate in [tx] + [i for i in range(len(raw[1])) if i != tx]:
            decoded_candidate = decode_tx(raw[1][candidate])
            if decoded_candidate is None:
                continue
            secret = keys.get(sender_of(decoded_candidate) or b"")
            if secret is not None:
                tx, decoded = candidate, decoded_candidate
                break
        if secret is None:
            return None
    gas_limit = to_int(raw[0][9]) if len(raw[0]) > 9 and isinstance(raw[0][9], bytes) else 0
    what = V.change_tx_field(decoded, rng, gas_limit)
    if secret is not None:
        what += "; " + re_sign(decoded, secret, rng)
    raw[1][tx] = encode_tx(decoded)
    kind = "tx-resign" if resign else "tx-field"
    _set_block(data, block, encode(raw), kind)
    return f"block {index} tx {tx}: {what}"


def tx_field(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
    return _tx_field_change(data, rng, source, resign=False)


def tx_resign(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
    return _tx_field_change(data, rng, source, resign=True)


def header_field(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
    picked = _raw_block(data, rng)
    if picked is None:
        return None
    index, block, raw = picked
    header = raw[0]
    field = rng.randrange(len(header) + 2)
    if field == len(header):
        header.pop()
        what = "dropped the header's last field"
    elif field == len(header) + 1:
        header.append(rng.choice([b"", b"\x01", rng.randbytes(32)]))
        what = "appended a header field"
    elif not isinstance(header[field], bytes):
        return None
    else:
        name = HEADER_FIELDS[field][0] if field < len(HEADER_FIELDS) else f"#{field}"
        header[field], what = V.header_value(name, header[field], rng)
    _set_block(data, block, encode(raw), "header-field")
    return f"block {index}: {what}"


def _list_edit(kind: str, items: list[Any], rng: random.Random) -> str | None:
    """Reorder, drop or duplicate entries of a transaction list in place."""
    n = len(items)
    if kind == "tx-reorder":
        if n < 2:
            return None
        order = list(range(n))
        while order == sorted(order):
            rng.shuffle(order)
        items[:] = [items[i] for i in order]
        return f"new order {order}" if n <= 16 else "shuffled"
    if kind == "tx-drop":
        if n < 1:
            return None
        dropped = sorted(rng.sample(range(n), min(n, rng.choice([1, 1, 1, 2, 2, n]))))
        items[:] = [item for i, item in enumerate(items) if i not in dropped]
        return f"dropped {dropped}" if len(dropped) < n else "dropped all"
    if n < 1:
        return None
    source, target = rng.randrange(n), rng.randrange(n + 1)
    items.insert(target, copy.deepcopy(items[source]))
    return f"tx {source} duplicated at {target}"


def _tx_list_mutator(kind: str) -> tuple[Mutator, Mutator]:
    def fixture(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
        picked = _raw_block(data, rng)
        if picked is None:
            return None
        index, block, raw = picked
        what = _list_edit(kind, raw[1], rng)
        if what is not None:
            _set_block(data, block, encode(raw), kind)
        return what and f"block {index}: {what}"

    def snapshot(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
        txs = data["block.json"].get("transactions")
        return _list_edit(kind, txs, rng) if isinstance(txs, list) else None

    return fixture, snapshot


# ---------------------------------------------------------------- snapshots
def _unhash(target: dict[str, Any], rng: random.Random, drop_from: float = 0.0) -> str:
    """Mostly drop the ``hash`` (and sometimes ``from``) that pevm checks an edited
    object against, so most mutants get past the loader's consistency checks."""
    notes = []
    if rng.random() < 0.9 and target.pop("hash", None) is not None:
        notes.append("hash dropped")
    if rng.random() < drop_from and target.pop("from", None) is not None:
        notes.append("from dropped")
    return f" ({', '.join(notes)})" if notes else ""


def snapshot_header(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
    block = data["block.json"]
    names = [k for k in V.SNAPSHOT_HEADER_FIELDS if k in block]
    name = rng.choice(names)
    old = block[name]
    V.assign(block, name, V.json_value(name, old, rng))
    return f"{name} {V.short(old)} -> {V.short(block.get(name, DELETE))}{_unhash(block, rng)}"


def _snapshot_tx_mutator(edit: Callable[[dict[str, Any], random.Random], str | None]
                         ) -> Mutator:
    """A snapshot mutator editing one transaction's JSON object with ``edit``."""
    def mutator(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
        txs = [(i, tx) for i, tx in enumerate(data["block.json"].get("transactions")
                                              or ()) if isinstance(tx, dict)]
        if not txs:
            return None
        index, tx = rng.choice(txs)
        what = edit(tx, rng)
        return what and f"tx {index}: {what}{_unhash(tx, rng, drop_from=0.5)}"
    return mutator


def _json_tx_field(tx: dict[str, Any], rng: random.Random) -> str:
    name = rng.choice(sorted(k for k in V.SNAPSHOT_TX_FIELDS if k in tx) or ["nonce"])
    old = tx.get(name, DELETE)
    V.assign(tx, name, V.json_value(name, old, rng))
    return f"{name} {V.short(old)} -> {V.short(tx.get(name, DELETE))}"


def _json_tx_signature(tx: dict[str, Any], rng: random.Random) -> str:
    name = rng.choice([k for k in ("v", "r", "s", "yParity") if k in tx] or ["v"])
    old = tx.get(name, DELETE)
    value = V.signature_value("y_parity" if name == "yParity" else name,
                              V.number_of(old), rng)
    tx[name] = hex(value)
    return f"{name} {V.short(old)} -> {hex(value)}"


def _json_tx_hex(tx: dict[str, Any], rng: random.Random) -> str | None:
    names = sorted(k for k, v in tx.items()
                   if isinstance(v, str) and v.startswith("0x") and len(v) > 2
                   and k not in ("hash", "blockHash", "from"))
    if not names:
        return None
    name = rng.choice(names)
    tx[name], what = V.hex_text_edit(tx[name], rng)
    return f"{name} {what}"


# ---------------------------------------------------------------- pre-state
def pre_account(data: dict[str, Any], rng: random.Random, source: Source) -> str | None:
    snapshot = source.kind == SNAPSHOT
    pre = data.get("pre_state.json" if snapshot else "pre")
    if not isinstance(pre, dict) or not pre:
        return None
    involved = sorted(set(_involved_addresses(data, snapshot)) & {k.lower() for k in pre})
    by_lower = {key.lower(): key for key in pre}
    address = by_lower[rng.choice(involved)] if involved and rng.random() < 0.8 \
        else rng.choice(sorted(pre))
    account = pre[address]
    what = V.odd_account(pre, address, account, snapshot, rng)
    if not snapshot:
        forget_final_state(data)
        if rebase_genesis(data):
            what += "; genesis rebased"
    return f"account {address}: {what}"


def _involved_addresses(data: dict[str, Any], snapshot: bool) -> list[str]:
    """Senders and recipients the source's JSON names (fixtures: ``sender``)."""
    if snapshot:
        txs = data["block.json"].get("transactions") or []
        keys = ("from", "to")
    else:
        txs = [tx for _, b in _blocks(data) for tx in b.get("transactions") or []]
        keys = ("sender", "to")
    return [str(tx[k]).lower() for tx in txs if isinstance(tx, dict)
            for k in keys if tx.get(k)]


# ----------------------------------------------------------------- registry
_REORDER, _DROP, _DUPLICATE = (_tx_list_mutator(kind) for kind in
                               ("tx-reorder", "tx-drop", "tx-duplicate"))

#: kind -> (mutator for fixture cases, mutator for snapshots); None: not for that
KINDS: dict[str, tuple[Mutator | None, Mutator | None]] = {
    "block-rlp-flip": (_whole_block_mutator("block-rlp-flip", _flip_bytes), None),
    "block-rlp-truncate": (_whole_block_mutator("block-rlp-truncate", V.cut), None),
    "tx-rlp-flip": (_raw_tx_mutator("tx-rlp-flip", _flip_tx), None),
    "tx-rlp-truncate": (_raw_tx_mutator("tx-rlp-truncate", _cut_tx), None),
    "tx-type": (_raw_tx_mutator("tx-type", _retype_tx), None),
    "tx-field": (tx_field, _snapshot_tx_mutator(_json_tx_field)),
    "tx-resign": (tx_resign, None),
    "tx-signature": (tx_signature, _snapshot_tx_mutator(_json_tx_signature)),
    "tx-reorder": _REORDER,
    "tx-drop": _DROP,
    "tx-duplicate": _DUPLICATE,
    "header-field": (header_field, snapshot_header),
    "json-hex": (None, _snapshot_tx_mutator(_json_tx_hex)),
    "pre-account": (pre_account, pre_account),
}


class NoMutation(ValueError):
    """No mutation kind (of those asked for) applies to a source."""


def mutate(source: Source, rng: random.Random,
           only: Sequence[str] | None = None) -> Mutant:
    """A copy of ``source`` broken in one way chosen by ``rng`` (deterministic);
    ``only``: the kinds to choose from (default: all that apply)."""
    column = 0 if source.kind == FIXTURE else 1
    kinds = [kind for kind, pair in KINDS.items()
             if pair[column] is not None and (not only or kind in only)]
    for kind in rng.sample(kinds, len(kinds)):
        data = copy.deepcopy(source.data)
        mutator = KINDS[kind][column]
        assert mutator is not None
        description = mutator(data, rng, source)
        if description is not None:
            return Mutant(source, kind, description, data)
    asked = f" of kind {', '.join(only)}" if only else ""
    raise NoMutation(f"{source.label}: no mutation{asked} applies")


def mutant_for_seed(sources: Sequence[Source], seed: int,
                    only: Sequence[str] | None = None) -> Mutant:
    """The mutant numbered ``seed``: the source and the mutation both follow from
    it, so a seed alone (with the same sources and ``only``) reproduces a mutant."""
    rng = random.Random(seed)
    mutant = mutate(sources[rng.randrange(len(sources))], rng, only)
    mutant.seed = seed
    return mutant
