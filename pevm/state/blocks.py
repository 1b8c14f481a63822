"""Blocks on the flat backend: body tries from pevm's batched trie, cheap copies.

py-evm builds each of these tries in ``HexaryTrie`` (one key at a time, every node
re-encoded), stores its nodes, and then -- in the same import -- reads the block's
transactions back through the trie to persist the block and, from Prague on, its
receipts to collect the deposit requests: on a 1,000-transaction block that was a
third of everything outside the transaction phase. On the flat backend:

* :class:`BatchedBlockTriesVM` computes the three roots with
  :func:`~pevm.gpu.trie.ordered_trie_roots_and_nodes` (one Keccak batch per trie
  level, CUDA or the C loop) over the bodies' RLP from
  :mod:`pevm.state.body_encoding`, and stores the same nodes py-evm would; its
  ``validate_block`` takes the transaction root from that pass too, where py-evm
  would build the trie again in ``HexaryTrie`` (its own import finds that root in
  a cache the batched pass leaves cold: ~0.5 s of a 1,000-transaction import);
* :class:`FlatChainDB` remembers the lists it was given, by root, and answers
  py-evm's reads of a block's transactions and receipts from them. A root is the
  hash of its content, so a remembered list can never be stale; anything not
  remembered is read from the stored trie as py-evm does. It writes the
  transactions' hash lookups with :func:`~pevm.state.body_encoding.encode_lookup`;
* :func:`shallow_copy_block_class` gives the VM a block class whose ``copy``
  shares the unchanged fields instead of deep-copying them: py-evm copies the
  block four times per import (``block.copy(header=...)``), and rlp's ``copy``
  rebuilds every transaction each time although rlp objects are immutable.

The reference never runs on these classes: it stays py-evm's own.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth.abc import (BlockAPI, BlockHeaderAPI, ReceiptAPI, ReceiptDecoderAPI,
                     SignedTransactionAPI, TransactionDecoderAPI, WithdrawalAPI)
from eth.db.schema import SchemaV1
from eth.vm import base as vm_base
from eth_typing import Hash32

from pevm.gpu.trie import ordered_trie_roots_and_nodes
from pevm.pyevm_compat import ChainDBOwnCaches, patch_methods
from pevm.state.body_encoding import encode_lookup, encode_receipt, encode_transaction

_SHALLOW: dict[type, type] = {}


def shallow_copy_block_class(block_class: type[BlockAPI]) -> type[BlockAPI]:
    """``block_class`` whose ``copy(**fields)`` keeps the other fields' objects
    (cached per class)."""
    shallow = _SHALLOW.get(block_class)
    if shallow is None:
        def copy(self: Any, *args: Any, **kwargs: Any) -> Any:
            if args:  # positional overrides: rlp's own way
                return block_class.copy(self, *args, **kwargs)
            fields = {name: getattr(self, name) for name in self._meta.field_names}
            fields.update(kwargs)
            return type(self)(**fields)

        shallow = _SHALLOW[block_class] = type(block_class.__name__, (block_class,),
                                               {"copy": copy})
    return shallow


class FlatChainDB(ChainDBOwnCaches):
    """py-evm's ``ChainDB`` that answers reads of the block bodies it was given
    from memory (see the module docstring)."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self._lists: dict[bytes, tuple[Any, ...]] = {}

    def remember(self, root: bytes, items: Sequence[Any]) -> None:
        """Keep the (immutable) objects whose ordered trie has root ``root``."""
        self._lists[root] = tuple(items)

    def has_root(self, root: bytes, items: Sequence[Any]) -> bool:
        """Whether ``items`` are the very objects remembered under ``root`` (so
        their ordered trie's root is ``root``)."""
        known = self._lists.get(root)
        return known is not None and len(known) == len(items) and \
            all(mine is theirs for mine, theirs in zip(known, items))

    def get_receipts(self, header: BlockHeaderAPI,
                     receipt_decoder: type[ReceiptDecoderAPI]) -> tuple[ReceiptAPI, ...]:
        known = self._lists.get(header.receipt_root)
        if known is not None:
            return known
        return super().get_receipts(header, receipt_decoder)

    def _get_block_transactions(  # type: ignore[override]
        self, transaction_root: bytes, transaction_decoder: type[TransactionDecoderAPI],
    ) -> tuple[SignedTransactionAPI, ...]:
        known = self._lists.get(transaction_root)
        if known is not None:
            return known
        return super()._get_block_transactions(transaction_root, transaction_decoder)

    @staticmethod
    def _add_transaction_to_canonical_chain(db: Any, transaction_hash: Hash32,
                                            block_header: BlockHeaderAPI,
                                            index: int) -> None:
        """py-evm's lookup from a transaction's hash to its block and index, with the
        same value encoded without rlp's serializer (:func:`encode_lookup`)."""
        db.set(SchemaV1.make_transaction_hash_to_block_lookup_key(transaction_hash),
               encode_lookup(block_header.block_number, index))


class BatchedBlockTriesVM:
    """VM mixin: the block's body roots from pevm's batched trie (module docstring).

    Overrides ``VM.set_block_transactions_and_withdrawals`` with the same result:
    the block with its transactions (and withdrawals) and a header carrying their
    roots and the receipts root, every trie node stored in the chain database.
    """

    chaindb: Any

    def set_block_transactions_and_withdrawals(
        self, base_block: BlockAPI, new_header: BlockHeaderAPI,
        transactions: Sequence[SignedTransactionAPI], receipts: Sequence[ReceiptAPI],
        withdrawals: Sequence[WithdrawalAPI] | None = None,
    ) -> BlockAPI:
        lists: list[Sequence[Any]] = [transactions, receipts]
        encoded = [[encode_transaction(tx) for tx in transactions],
                   [encode_receipt(receipt) for receipt in receipts]]
        if withdrawals:
            lists.append(withdrawals)
            encoded.append([withdrawal.encode() for withdrawal in withdrawals])
        roots, nodes = ordered_trie_roots_and_nodes(encoded)
        self.chaindb.persist_trie_data_dict(nodes)
        if isinstance(self.chaindb, FlatChainDB):
            for root, items in zip(roots, lists):
                self.chaindb.remember(root, items)
        block_fields: dict[str, Any] = {"transactions": transactions}
        header_fields = {"transaction_root": roots[0], "receipt_root": roots[1]}
        if withdrawals:
            block_fields["withdrawals"] = withdrawals
            header_fields["withdrawals_root"] = roots[2]
        block_fields["header"] = new_header.copy(**header_fields)
        return base_block.copy(**block_fields)

    def validate_block(self, block: BlockAPI) -> None:
        """py-evm's checks of ``block``, with the transaction root its
        ``VM.validate_block`` computes again taken from the batched trie.

        Why: py-evm's own import builds that root first (in the step overridden
        above) and finds it again in ``make_trie_root_and_nodes``' cache; the batched
        step leaves that cache cold, and rebuilding the root in ``HexaryTrie`` took
        ~0.46 s of a 1,000-transfer block's ~1 s import. The transactions that
        :meth:`set_block_transactions_and_withdrawals` gave the block have the root
        it computed from them; any others get theirs from the batched trie.
        """
        chaindb = self.chaindb
        claimed = block.header.transaction_root

        def transaction_root(items: Sequence[SignedTransactionAPI]
                             ) -> tuple[bytes, dict[bytes, bytes]]:
            if isinstance(chaindb, FlatChainDB) and chaindb.has_root(claimed, items):
                return claimed, {}
            (root,), nodes = ordered_trie_roots_and_nodes(
                [[encode_transaction(tx) for tx in items]])
            return root, nodes

        # py-evm's validate_block names the function as its module's global: the
        # patch is module-wide, for this call only (the block's workers are gone)
        undo = patch_methods(vm_base, {"make_trie_root_and_nodes":
                                       lambda _original: transaction_root})
        try:
            super().validate_block(block)  # type: ignore[misc]
        finally:
            undo()
