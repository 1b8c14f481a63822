"""A block's transactions and receipts as RLP, without rlp's generic serializer.

An import encodes every receipt and transaction of the block for the body tries
(:class:`~pevm.state.blocks.BatchedBlockTriesVM`), and the result's roots and
py-evm's chain database encode them again. The first encoding of a py-evm receipt
goes through rlp's ``Serializable``/sedes machinery -- about 8 us for a receipt
without logs here -- and a typed receipt or transaction adds its type byte through
``eth_utils.to_bytes`` (4.4 us, once per object). On 1,000 transfers that was 25 ms
of an import's 56 ms outside the transaction phase.

:func:`encode_receipt` writes exactly the bytes ``receipt.encode()`` gives for
py-evm's own ``Receipt`` and ``Log`` classes (checked against rlp on random
receipts by tests/test_body_encoding.py), and leaves the objects as py-evm's
``encode()`` leaves them: rlp's cache (``_cached_rlp``, which rlp itself fills on
an immutable ``Serializable``) holds the inner receipt's encoding and a typed
receipt's ``_type_byte`` cached property its type byte, so every later
``encode()`` is a lookup. Anything else -- another receipt class, a value out of
its field's range -- is left to py-evm's ``encode()``, which raises what it raises.
:func:`encode_transaction` fills a typed transaction's type byte the same way, and
:func:`encode_lookup` writes the chain database's transaction lookup (block number
and index: rlp took 4.4 us for its two integers, this 0.7 us).
"""
from __future__ import annotations

from typing import Any

from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.berlin.receipts import TypedReceipt
from eth.vm.forks.berlin.transactions import TypedTransaction

from pevm.gpu.trie import _rlp_bytes, _rlp_int, _rlp_list

#: rlp's cache attribute on a ``Serializable`` (``rlp.encode(obj, cache=True)``)
_CACHE = "_cached_rlp"


def encode_receipt(receipt: Any) -> bytes:
    """``receipt.encode()``, the same bytes, for py-evm's receipt classes."""
    if type(receipt) is Receipt:
        return _plain(receipt)
    if isinstance(receipt, TypedReceipt) and type(receipt._inner) is Receipt:
        _fill_type_byte(receipt)
        _plain(receipt._inner)
    return receipt.encode()


def encode_transaction(transaction: Any) -> bytes:
    """``transaction.encode()``, with a typed transaction's type byte filled first."""
    if isinstance(transaction, TypedTransaction):
        _fill_type_byte(transaction)
    return transaction.encode()


def encode_lookup(block_number: int, index: int) -> bytes:
    """``rlp.encode(BlockDataKey(block_number, index))``: where py-evm's chain
    database finds a transaction by its hash."""
    return _rlp_list(_rlp_int(block_number) + _rlp_int(index))


def _fill_type_byte(obj: Any) -> None:
    """What ``_type_byte`` (a cached property: ``to_bytes(type_id)``) computes, for
    a type id of one byte below 0x80 -- the only ones EIP-2718 allows."""
    type_id = obj.type_id
    if "_type_byte" not in obj.__dict__ and type(type_id) is int and 0 <= type_id < 0x80:
        obj.__dict__["_type_byte"] = bytes((type_id,))


def _plain(receipt: Receipt) -> bytes:
    """An untyped receipt's RLP, cached in it as rlp's own encode would."""
    cached = getattr(receipt, _CACHE, None)
    if cached:
        return cached
    try:
        encoded = _receipt_rlp(receipt)
    except (TypeError, ValueError, OverflowError):
        return receipt.encode()  # a value py-evm's sedes reject: its own error
    setattr(receipt, _CACHE, encoded)
    return encoded


def _receipt_rlp(receipt: Receipt) -> bytes:
    """[state_root (binary), gas_used (big_endian_int), bloom (256 bytes),
    logs: [[address (20 bytes), [topic (32 bytes)...], data (binary)]...]]."""
    logs = []
    for log in receipt.logs:
        address, data = log.address, log.data
        if type(log) is not Log or type(address) is not bytes \
                or len(address) not in (0, 20) or type(data) is not bytes:
            raise TypeError("not a plain py-evm log")
        topics = b"".join([_rlp_bytes(_uint(topic).to_bytes(32, "big"))
                           for topic in log.topics])
        logs.append(_rlp_list(_rlp_bytes(address) + _rlp_list(topics) + _rlp_bytes(data)))
    state_root = receipt.state_root
    if type(state_root) is not bytes:
        raise TypeError("state_root is not bytes")
    return _rlp_list(_rlp_bytes(state_root)
                     + _rlp_int(_uint(receipt.gas_used))
                     + _rlp_bytes(_uint(receipt.bloom).to_bytes(256, "big"))
                     + _rlp_list(b"".join(logs)))


def _uint(value: Any) -> int:
    """``value`` where rlp's integer sedes take it: an int, not a bool; int.to_bytes
    then raises OverflowError for a negative or too large one, as the sedes do."""
    if type(value) is not int:
        raise TypeError(f"{type(value).__name__} is not an int")
    return value


__all__ = ["encode_lookup", "encode_receipt", "encode_transaction"]
