"""Receipts' log blooms from one block-wide cache, for the merge's receipts.

py-evm's ``Receipt`` computes its bloom when it is made, item by item through
eth-bloom: a Keccak-256 of the log's address and of each topic (serialised to 32
bytes), three bits from each hash. A block's logs repeat the same items -- the
token contract's address, the ``Transfer`` event's topic, a hot wallet's address in
every transfer it sends -- and each receipt hashes them again. On mainnet block
15537394 (80 transactions, one of them an airdrop with thousands of logs) that was
86% of a 266 ms merge, serial on the coordinator at every worker count.

:class:`BloomCache` keeps each item's three bits for the block, so an item is
hashed once, and the merge hands it the whole block's logs first
(:meth:`BloomCache.prepare`: the items in one batch). :func:`with_cached_bloom`
hands py-evm's stock ``make_receipt`` (the VM's, which computes the cumulative gas
and the status) a transaction whose own receipt step passes that bloom to
``Receipt``, which then skips computing it. The
bits are eth-bloom's: the low 11 bits of each of the hash's first three big-endian
16-bit words. Only the transaction classes whose ``make_receipt`` is py-evm's stock
one (logs, then ``Receipt(state_root=status, gas_used, logs)``, wrapped for a typed
transaction) are replaced; any other keeps its own.

The stand-in also makes the ``Receipt`` object without rlp's keyword-argument
checks (:func:`_new_receipt`): ``Receipt.__init__`` hands its four fields on as
keywords, and rlp's ``Serializable`` then validates and reorders them (duplicate
names, unknown and missing ones) -- 3 of the 4 us a receipt costs, for arguments
that are right by construction. The object is the one ``Receipt(...)`` builds,
field by field.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.berlin.transactions import AccessListTransaction, TypedTransaction
from eth.vm.forks.cancun.transactions import BlobTransaction
from eth.vm.forks.frontier.transactions import FrontierTransaction
from eth.vm.forks.london.transactions import DynamicFeeTransaction
from eth.vm.forks.prague.transactions import SetCodeTransaction
from eth_hash.auto import keccak
from rlp.sedes.serializable import BaseSerializable, Serializable

from pevm.gpu.keccak import keccak256_batch

LogEntry = tuple[bytes, tuple[int, ...], bytes]


#: py-evm's transaction-level ``make_receipt`` steps that build a plain ``Receipt``
#: from the logs, and the typed wrapper's (which wraps its payload's)
_PLAIN = frozenset(cls.make_receipt for cls in (
    FrontierTransaction, AccessListTransaction, DynamicFeeTransaction, BlobTransaction,
    SetCodeTransaction))
_TYPED = TypedTransaction.make_receipt


#: ``Receipt`` is rlp's ``Serializable`` with these fields in this order (what
#: :func:`_new_receipt` relies on; otherwise it calls py-evm's constructor)
_PLAIN_RECEIPT = Receipt._meta.field_names == ("state_root", "gas_used", "bloom", "logs") \
    and Receipt.__mro__[1:3] == (Serializable, BaseSerializable)


def _new_receipt(state_root: bytes, gas_used: int, bloom: int,
                 logs: list[Log]) -> Receipt:
    """``Receipt(state_root=..., gas_used=..., logs=..., bloom=...)``, made with
    the fields in ``Receipt``'s order (rlp's keyword checks skipped)."""
    if not _PLAIN_RECEIPT:
        return Receipt(state_root=state_root, gas_used=gas_used, logs=logs, bloom=bloom)
    # Receipt has no __new__ of its own (its ABC bases make mypy call it abstract)
    receipt: Receipt = object.__new__(Receipt)  # type: ignore[type-abstract]
    BaseSerializable.__init__(receipt, state_root, gas_used, bloom, logs)
    return receipt


def _digest_bits(digest: bytes) -> int:
    return (1 << (((digest[0] << 8) | digest[1]) & 2047)
            | 1 << (((digest[2] << 8) | digest[3]) & 2047)
            | 1 << (((digest[4] << 8) | digest[5]) & 2047))


def _item_bits(item: bytes) -> int:
    return _digest_bits(keccak(item))


class BloomCache:
    """Each log item's bloom bits, computed once per block."""

    def __init__(self) -> None:
        #: address (bytes) or topic (int) -> its three bits; the two key types
        #: never compare equal, so one dict serves both
        self._bits: dict[bytes | int, int] = {}

    def prepare(self, receipts_logs: Iterable[Iterable[LogEntry]]) -> None:
        """Hash every item of these receipts' logs not cached yet, in one batch
        (:func:`pevm.gpu.keccak.keccak256_batch`): one call into the fastest
        Keccak there is, instead of one ``eth_hash`` call per item -- where
        ``eth_hash`` falls back to pycryptodome's Python wrapper (no pysha3, as on
        Python 3.12), 5-10 us an item against ~1.5 us."""
        bits = self._bits
        new: dict[bytes | int, bytes] = {}
        for log_entries in receipts_logs:
            for address, topics, _data in log_entries:
                if address not in bits:
                    new[address] = address
                for topic in topics:
                    if topic not in bits:
                        new[topic] = topic.to_bytes(32, "big")
        if new:
            digests = keccak256_batch(list(new.values()))
            for item, digest in zip(new, digests):
                bits[item] = _digest_bits(digest)

    def bloom(self, log_entries: Iterable[LogEntry]) -> int:
        """The bloom of a receipt with these logs (eth-bloom's value)."""
        bits = self._bits
        value = 0
        for address, topics, _data in log_entries:
            found = bits.get(address)
            if found is None:
                found = bits[address] = _item_bits(address)
            value |= found
            for topic in topics:
                found = bits.get(topic)
                if found is None:
                    found = bits[topic] = _item_bits(topic.to_bytes(32, "big"))
                value |= found
        return value


def with_cached_bloom(tx: SignedTransactionAPI, cache: BloomCache) -> SignedTransactionAPI:
    """``tx`` for ``vm.make_receipt``: where its receipt step is py-evm's stock one,
    a stand-in whose receipt takes its bloom from ``cache``; otherwise ``tx``."""
    step = type(tx).make_receipt
    if step in _PLAIN:
        typed = False
    elif step is _TYPED and type(tx._inner).make_receipt in _PLAIN:  # type: ignore[attr-defined]
        typed = True
    else:
        return tx
    return _BloomedTransaction(tx, cache, typed)  # type: ignore[return-value]


class _BloomedTransaction:
    """The transaction as ``make_receipt`` sees it, its own receipt step aside."""

    __slots__ = ("_tx", "_cache", "_typed")

    def __init__(self, tx: SignedTransactionAPI, cache: BloomCache, typed: bool) -> None:
        self._tx = tx
        self._cache = cache
        self._typed = typed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def make_receipt(self, status: bytes, gas_used: int,
                     log_entries: tuple[LogEntry, ...]) -> ReceiptAPI:
        receipt = _new_receipt(
            status, gas_used, self._cache.bloom(log_entries),
            [Log(address, topics, data) for address, topics, data in log_entries])
        if not self._typed:
            return receipt
        tx: Any = self._tx
        return tx.receipt_builder.typed_receipt_class(tx.type_id, receipt)
