"""Recovering a transaction's sender: once per block, with py-evm's checks, fast.

py-evm recovers the sender's public key on every execution of a transaction; the
engine recovers and checks it once (:func:`recover_sender`) and pins it on the
transaction object (:func:`pevm.pyevm_compat.pin_sender`), so py-evm reuses it.
Recovery is a large share of a cheap transaction's cost (a plain transfer: about a
third of its time in the engine), and most of that was not the elliptic curve: it
was py-evm's ``get_message_for_signing``, which builds an unsigned-transaction
object (validating every field through its RLP sedes) only to encode it again.
:func:`signing_message` gives the same bytes from the signed transaction's own
encoding, which py-evm has already computed for the block's transaction root:

- a typed transaction (EIP-2930, 1559, 4844, 7702) signs its type byte and the
  RLP list of its fields without the last three (``y_parity, r, s``);
- a legacy transaction before Spurious Dragon signs its first six fields; from
  Spurious Dragon on, an EIP-155 one signs them plus ``chain_id, 0, 0``.

Those rules are py-evm's own ``get_message_for_signing`` implementations; the fast
path is taken only for a transaction class whose method is one of them (any other
-- a fork added later, a subclass that overrides it -- calls py-evm), and the test
suite checks the bytes against py-evm's for every transaction type.

The sender pipeline's helper recovers senders in another process from the
encoding alone (:func:`sender_encoding`, :func:`recover_encoded`): the same cut,
and ``y_parity, r, s`` read from the last fields as py-evm's properties read
them, for the classes whose message and signature properties are py-evm's own
(checked by identity, as above); the tests check it against
:func:`recover_sender` for every transaction type and for altered signatures.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import rlp
from eth.abc import SignedTransactionAPI
from eth.vm.forks.berlin.transactions import AccessListTransaction, TypedTransaction
from eth.vm.forks.cancun.transactions import BlobTransaction
from eth.vm.forks.frontier.transactions import FrontierTransaction
from eth.vm.forks.homestead.transactions import HomesteadTransaction
from eth.vm.forks.london.transactions import DynamicFeeTransaction
from eth.vm.forks.prague.transactions import SetCodeTransaction
from eth.vm.forks.spurious_dragon.transactions import SpuriousDragonTransaction
from eth._utils.numeric import is_even
from eth._utils.transactions import (EIP155_CHAIN_ID_OFFSET, V_OFFSET, extract_chain_id,
                                     is_eip_155_signed_transaction)
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.constants import SECPK1_N
from eth_utils import int_to_big_endian

from pevm.gpu.trie import _rlp_list  # the project's RLP list header (trie nodes too)

try:
    import coincurve
    from eth_keys.backends.coincurve import CoinCurveECCBackend
except ImportError:  # pragma: no cover - coincurve is a dependency of pevm
    CoinCurveECCBackend = ()  # type: ignore[assignment,misc]


def recover_sender(tx: SignedTransactionAPI) -> bytes | None:
    """The sender of ``tx`` if its signature passes py-evm's checks, else None.

    The checks of py-evm's ``validate_transaction_signature`` (a valid signature
    from which a public key is recovered, and that verifies against it), sharing
    one message hash. With the coincurve backend (eth-keys' choice whenever coincurve
    is installed, as it is with pevm) the verification is skipped: it verifies the
    low-s form of the signature against the key recovered from the same signature,
    which holds by construction; and the recovery calls coincurve directly after
    eth-keys' own range checks (``v`` 0 or 1, ``0 <= r, s < n``), which skips
    eth-keys' signature and key objects -- about a third of the recovery's cost.
    None leaves the transaction untouched, so that py-evm finds and reports the
    problem itself, in block order.
    """
    try:
        message_hash = keccak(signing_message(tx))
        v, r, s = tx.y_parity, tx.r, tx.s
    except Exception:  # noqa: BLE001 - any failure: let py-evm report it
        return None
    return _recover(message_hash, v, r, s)


def _recover(message_hash: bytes, v: Any, r: Any, s: Any) -> bytes | None:
    """The address that signed ``message_hash`` as ``(v, r, s)``, under the checks
    :func:`recover_sender` describes; None where they refuse it."""
    try:
        if _coincurve_backend():
            if type(v) is not int or type(r) is not int or type(s) is not int \
                    or v not in (0, 1) or not (0 <= r < SECPK1_N and 0 <= s < SECPK1_N):
                return None  # what eth-keys' Signature refuses: py-evm reports it
            public = coincurve.PublicKey.from_signature_and_message(
                r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,)),
                message_hash, hasher=None)
            return keccak(public.format(compressed=False)[1:])[-20:]
        signature = keys.Signature(vrs=(v, r, s))
        public_key = signature.recover_public_key_from_msg_hash(message_hash)
        if not signature.verify_msg_hash(message_hash, public_key):
            return None
        return public_key.to_canonical_address()
    except Exception:  # noqa: BLE001 - any failure: let py-evm report it
        return None


@functools.cache
def _coincurve_backend() -> bool:
    """Whether eth-keys recovers signatures with coincurve in this process."""
    return isinstance(keys.Signature(vrs=(0, 1, 1)).backend, CoinCurveECCBackend)


def signing_message(tx: SignedTransactionAPI) -> bytes:
    """Exactly ``tx.get_message_for_signing()``, from ``tx``'s own encoding."""
    method = type(tx).get_message_for_signing
    if method is _TYPED_WRAPPER:
        inner, type_id = tx._inner, tx.type_id  # type: ignore[attr-defined]
        if type(inner).get_message_for_signing in _TYPED_PAYLOADS and type_id is not None:
            encoded = rlp.encode(inner)
            items = _item_offsets(encoded)
            if len(items) > 4:  # the fields before y_parity, r, s
                return _typed_message(type_id, encoded, items)
    else:
        eip_155_capable = _LEGACY.get(method)
        if eip_155_capable is not None:
            encoded = rlp.encode(tx)
            items = _item_offsets(encoded)
            if len(items) == 10:  # nine fields and the end: a legacy transaction
                legacy: Any = tx  # a legacy class: it has ``v`` (BaseTransaction's)
                eip_155 = eip_155_capable and is_eip_155_signed_transaction(legacy)
                return _legacy_message(encoded, items, tx.chain_id if eip_155 else None)
    return tx.get_message_for_signing()


def _typed_message(type_id: int, encoded: bytes, items: list[int]) -> bytes:
    """A typed transaction's signing message from its payload's encoding
    (``items``, its fields' offsets): the type byte and the fields before
    ``y_parity, r, s``."""
    return bytes((type_id,)) + _rlp_list(encoded[items[0]:items[-4]])


def _legacy_message(encoded: bytes, items: list[int], chain_id: int | None) -> bytes:
    """A legacy transaction's signing message from its encoding (``items``, its
    fields' offsets): its first six fields, and EIP-155's ``chain_id, 0, 0``
    unless ``chain_id`` is None."""
    payload = encoded[items[0]:items[6]]
    if chain_id is not None:
        payload += rlp.encode(int_to_big_endian(chain_id)) + b"\x80\x80"
    return _rlp_list(payload)


#: :func:`sender_encoding`'s kinds besides a typed transaction's type (1 and up):
#: a legacy transaction that signs its first six fields ...
LEGACY = -1
#: ... and one that adds EIP-155's ``chain_id, 0, 0`` where its ``v`` says so
LEGACY_EIP155 = -2


def sender_encoding(tx: SignedTransactionAPI, *,
                    cached_only: bool = False) -> tuple[int, bytes] | None:
    """``tx`` as :func:`recover_encoded` recovers its sender in another process:
    the kind of its signing message (:data:`LEGACY`, :data:`LEGACY_EIP155`, or a
    typed transaction's type) and the encoding the message is cut from. None for
    a class whose signing message or signature fields pevm does not know to be
    py-evm's own: that one travels as the object.

    ``cached_only``: None, too, where py-evm has not encoded the transaction yet
    (rlp's cache is empty). The bytes pickle far faster than the object (0.1
    against 3-4 ms for 1,000 transfers), but rlp's serializer takes ~15 us to
    encode a legacy transaction, where a mainnet block's come with their
    encodings cached."""
    cls: Any = type(tx)
    kind = _encoding_kind(cls)
    if kind is None:
        return None
    encoded: Any = tx
    if kind == _TYPED:
        encoded, kind = tx._inner, tx.type_id  # type: ignore[attr-defined]
        payload: Any = type(encoded)
        if not kind or not _signs_its_fields(payload):
            return None
    if cached_only and getattr(encoded, "_cached_rlp", None) is None:
        return None
    return kind, rlp.encode(encoded)


def recover_encoded(kind: int, encoding: bytes) -> bytes | None:
    """Exactly ``recover_sender(tx)`` for ``(kind, encoding) = sender_encoding(tx)``,
    from the bytes alone: the signing message cut as :func:`signing_message` cuts
    it, and ``y_parity, r, s`` read from the last fields as py-evm's properties
    read them (a legacy ``v`` is the parity plus 27; from Spurious Dragon on, a
    ``v`` of 35 or more is EIP-155's: chain id and parity, odd for parity 0).
    Raises ``ValueError`` for an encoding of another shape."""
    items = _item_offsets(encoding)
    if kind > 0:
        if len(items) <= 4:
            raise ValueError("a typed transaction without its signature's fields")
        v, r, s = (_uint(encoding, at) for at in items[-4:-1])
        message = _typed_message(kind, encoding, items)
    elif kind in (LEGACY, LEGACY_EIP155) and len(items) == 10:
        v, r, s = (_uint(encoding, at) for at in items[6:9])
        eip_155 = kind == LEGACY_EIP155 and v >= EIP155_CHAIN_ID_OFFSET
        message = _legacy_message(encoding, items, extract_chain_id(v) if eip_155 else None)
        v = int(is_even(v)) if eip_155 else v - V_OFFSET
    else:
        raise ValueError(f"not a signed transaction's encoding of kind {kind}")
    return _recover(keccak(message), v, r, s)


def _uint(encoded: bytes, pos: int) -> int:
    """The integer RLP item at ``pos`` (big-endian, as py-evm's sedes decode it)."""
    if encoded[pos] >= 0xc0:
        raise ValueError("a list where an integer field belongs")
    start, end = _span(encoded, pos)
    return int.from_bytes(encoded[start:end], "big")


def _item_offsets(encoded: bytes) -> list[int]:
    """Where each item of the RLP list ``encoded`` starts, and where the last ends."""
    start, end = _span(encoded, 0)
    offsets = [start]
    while offsets[-1] < end:
        offsets.append(_span(encoded, offsets[-1])[1])
    return offsets


def _span(encoded: bytes, pos: int) -> tuple[int, int]:
    """(payload start, item end) of the RLP item at ``pos``."""
    prefix = encoded[pos]
    if prefix < 0x80:
        return pos, pos + 1
    if prefix <= 0xb7:
        return pos + 1, pos + 1 + prefix - 0x80
    if 0xc0 <= prefix <= 0xf7:
        return pos + 1, pos + 1 + prefix - 0xc0
    size_len = prefix - (0xb7 if prefix < 0xc0 else 0xf7)
    start = pos + 1 + size_len
    return start, start + int.from_bytes(encoded[pos + 1:start], "big")


#: py-evm's typed-transaction wrapper delegates to its payload's method
_TYPED_WRAPPER = TypedTransaction.get_message_for_signing
#: payloads whose message is their fields without ``y_parity, r, s``
_TYPED_PAYLOADS = frozenset(cls.get_message_for_signing for cls in (
    AccessListTransaction, DynamicFeeTransaction, BlobTransaction, SetCodeTransaction))
#: legacy transactions: whether the fork's method knows EIP-155
_LEGACY: dict[Callable[..., bytes], bool] = {
    FrontierTransaction.get_message_for_signing: False,
    HomesteadTransaction.get_message_for_signing: False,
    SpuriousDragonTransaction.get_message_for_signing: True,
}
#: :func:`_encoding_kind` of py-evm's typed-transaction wrapper
_TYPED = 0
_LEGACY_FIELDS = ("nonce", "gas_price", "gas", "to", "value", "data", "v", "r", "s")


@functools.cache
def _encoding_kind(cls: Any) -> int | None:
    """:data:`LEGACY`, :data:`LEGACY_EIP155` or :data:`_TYPED` for a class whose
    signing message and signature fields are py-evm's own, as
    :func:`recover_encoded` reads them; None for any other."""
    method = cls.get_message_for_signing
    if method is _TYPED_WRAPPER:
        delegated = all(getattr(cls, name) is getattr(TypedTransaction, name)
                        for name in ("y_parity", "r", "s"))
        return _TYPED if delegated else None
    eip_155_capable = _LEGACY.get(method)
    if eip_155_capable is None or cls._meta.field_names != _LEGACY_FIELDS:
        return None
    if eip_155_capable:
        own = cls.y_parity is SpuriousDragonTransaction.y_parity and \
            cls.chain_id is SpuriousDragonTransaction.chain_id
        return LEGACY_EIP155 if own else None
    return LEGACY if cls.y_parity is FrontierTransaction.y_parity else None


@functools.cache
def _signs_its_fields(cls: Any) -> bool:
    """Whether a typed payload class signs its fields without the last three,
    which are ``y_parity, r, s``."""
    return cls.get_message_for_signing in _TYPED_PAYLOADS and \
        tuple(cls._meta.field_names[-3:]) == ("y_parity", "r", "s")
