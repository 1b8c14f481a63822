"""Raw RLP for the mutations: encode anything, decode and re-sign transactions.

Blocks are edited as pyrlp's raw form (nested lists of bytes) rather than as
py-evm objects, because py-evm's classes refuse the very values the harness wants
to write (a 33-byte root, a non-canonical integer, a transaction that is not RLP).
:class:`Raw` marks bytes spliced in as an already-encoded item, so a broken
transaction can sit inside a block whose outer lengths are right.

Transactions are re-signed with the keys pevm's workload generator derives
(:class:`pevm.workloads.scenario.KeyRing`) and the two well-known keys of
ethereum/tests and execution-spec-tests, so a transaction with odd fields can still
carry a valid signature and reach execution.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError

from pevm.mutations.sources import FIXTURE, Source
from pevm.workloads.scenario import KeyRing

#: Raw fields of each transaction type, in RLP order (type 0: legacy).
TX_FIELDS: dict[int, tuple[str, ...]] = {
    0: ("nonce", "gas_price", "gas", "to", "value", "data", "v", "r", "s"),
    1: ("chain_id", "nonce", "gas_price", "gas", "to", "value", "data", "access_list",
        "y_parity", "r", "s"),
    2: ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas", "to",
        "value", "data", "access_list", "y_parity", "r", "s"),
    3: ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas", "to",
        "value", "data", "access_list", "max_fee_per_blob_gas", "blob_versioned_hashes",
        "y_parity", "r", "s"),
    4: ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas", "to",
        "value", "data", "access_list", "authorization_list", "y_parity", "r", "s"),
}

#: The sending keys of ethereum/tests (a94f53...) and execution-spec-tests (8a0a19...).
TEST_KEYS = (
    bytes.fromhex("45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8"),
    bytes.fromhex("9e7645d0cfd9c3a04eb7a9db59a4eb7d359f2e75c9164a9d6b9a7d54e1b6a36f"),
)


class Raw(bytes):
    """Bytes spliced into an encoding as they are (an item already encoded)."""


def encode(item: Any) -> bytes:
    """RLP of raw lists and bytes, :class:`Raw` items copied verbatim."""
    if isinstance(item, Raw):
        return bytes(item)
    if isinstance(item, (bytes, bytearray)):
        return rlp.encode(bytes(item))
    payload = b"".join(encode(x) for x in item)
    return _length_prefix(len(payload), 0xC0) + payload


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    size = int_bytes(length)
    return bytes([offset + 55 + len(size)]) + size


def int_bytes(value: int) -> bytes:
    """Big-endian, no leading zeros (RLP's canonical integer; 0 is empty)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def to_int(value: Any) -> int:
    return int.from_bytes(value, "big") if isinstance(value, bytes) else 0


def flip(data: bytes, rng: random.Random) -> tuple[bytes, list[int]]:
    """``data`` with one to three random bytes changed; the positions."""
    buf = bytearray(data)
    positions = sorted(rng.sample(range(len(buf)), min(len(buf), rng.randint(1, 3))))
    for position in positions:
        buf[position] ^= rng.randrange(1, 256)
    return bytes(buf), positions


@dataclass
class RawTx:
    """A transaction as raw fields (``names`` say which is which)."""

    type: int
    fields: list[Any]

    @property
    def names(self) -> tuple[str, ...]:
        return TX_FIELDS[self.type]


def decode_tx(item: Any) -> RawTx | None:
    """A block body's transaction item as fields, or None if it does not parse."""
    if isinstance(item, list):
        fields, kind = item, 0
    elif isinstance(item, bytes) and item and item[0] in TX_FIELDS and item[0] != 0:
        try:
            fields, kind = rlp.decode(item[1:]), item[0]
        except rlp.DecodingError:
            return None
    else:
        return None
    if not isinstance(fields, list) or len(fields) != len(TX_FIELDS[kind]):
        return None
    return RawTx(kind, list(fields))


def encode_tx(tx: RawTx) -> Any:
    """The block body item for ``tx`` (a list, or a typed transaction's string)."""
    return list(tx.fields) if tx.type == 0 else bytes([tx.type]) + encode(tx.fields)


def _signing_hash(tx: RawTx, chain_id: int | None = None) -> tuple[bytes, int | None]:
    """The hash a sender signs, and (legacy) the EIP-155 chain id it includes."""
    if tx.type:
        return keccak(bytes([tx.type]) + encode(tx.fields[:-3])), None
    if chain_id is None:
        v = to_int(tx.fields[6])
        chain_id = (v - 35) // 2 if v >= 35 else None
    if chain_id is None:
        return keccak(encode(tx.fields[:6])), None
    return keccak(encode(tx.fields[:6] + [int_bytes(chain_id), b"", b""])), chain_id


def sender_of(tx: RawTx) -> bytes | None:
    """The address ``tx``'s signature recovers, or None for an invalid signature."""
    digest, chain_id = _signing_hash(tx)
    v = to_int(tx.fields[-3])
    recovery = v if tx.type else (v - 27 if chain_id is None else v - 35 - 2 * chain_id)
    try:
        signature = keys.Signature(vrs=(recovery, to_int(tx.fields[-2]),
                                        to_int(tx.fields[-1])))
        return signature.recover_public_key_from_msg_hash(digest).to_canonical_address()
    except (BadSignature, ValidationError, ValueError):
        return None


def re_sign(tx: RawTx, secret: bytes, rng: random.Random) -> str:
    """Sign ``tx`` again with ``secret`` (a legacy one now and then for another
    chain id); what was done, for the mutation's description."""
    chain_id = None
    note = "re-signed"
    if tx.type == 0 and rng.random() < 0.15:
        chain_id = rng.choice([0, 2, 2**32])
        note = f"re-signed for chain id {chain_id}"
    digest, chain_id = _signing_hash(tx, chain_id)
    signature = keys.PrivateKey(secret).sign_msg_hash(digest)
    if tx.type:
        v = signature.v
    else:
        v = 27 + signature.v if chain_id is None else 35 + 2 * chain_id + signature.v
    tx.fields[-3:] = [int_bytes(v), int_bytes(signature.r), int_bytes(signature.s)]
    return note


def known_keys(source: Source) -> dict[bytes, bytes]:
    """Address -> private key for the senders whose keys the harness can derive."""
    info = source.data.get("_info") if source.kind == FIXTURE else None
    if isinstance(info, dict) and isinstance(info.get("seed"), int):
        return _keys(info["seed"], len(source.data.get("pre") or ()))
    return _keys(0, 0)


@lru_cache(maxsize=16)
def _keys(seed: int, count: int) -> dict[bytes, bytes]:
    ring = KeyRing(seed)
    found: dict[bytes, bytes] = {ring[i].address: ring[i].private_key
                                 for i in range(count)}
    for secret in TEST_KEYS:
        found[keys.PrivateKey(secret).public_key.to_canonical_address()] = secret
    return found
