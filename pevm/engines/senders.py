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
from eth._utils.transactions import is_eip_155_signed_transaction
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
                return bytes((type_id,)) + _rlp_list(encoded[items[0]:items[-4]])
    else:
        build = _LEGACY.get(method)
        if build is not None:
            return build(tx)
    return tx.get_message_for_signing()


def _legacy(tx: Any, eip_155_capable: bool) -> bytes:
    encoded = rlp.encode(tx)
    items = _item_offsets(encoded)
    if len(items) != 10:  # nine fields and the end: not a legacy transaction's shape
        return tx.get_message_for_signing()
    payload = encoded[items[0]:items[6]]
    if eip_155_capable and is_eip_155_signed_transaction(tx):
        payload += rlp.encode(int_to_big_endian(tx.chain_id)) + b"\x80\x80"
    return _rlp_list(payload)


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
_LEGACY: dict[Callable[..., bytes], Callable[[Any], bytes]] = {
    FrontierTransaction.get_message_for_signing: lambda tx: _legacy(tx, False),
    HomesteadTransaction.get_message_for_signing: lambda tx: _legacy(tx, False),
    SpuriousDragonTransaction.get_message_for_signing: lambda tx: _legacy(tx, True),
}
