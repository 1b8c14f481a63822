"""The merge: a block's committed results into py-evm's state, and its receipts.

The last step of the parallel engine (:mod:`pevm.engines.parallel`): after every
transaction has committed in the multi-version memory, the block's writes go into
``vm.state`` (py-evm's ``AccountDB``) through py-evm's own state API, and the
receipts and header are made by the fork's own ``vm.make_receipt``,
``vm.add_receipt_to_header`` and ``vm.increment_blob_gas_used`` -- folded into one
header copy where the fork uses py-evm's stock steps (Frontier's, whose header step
also computes the state root once more per transaction, or Byzantium's). From
Byzantium on the receipts' blooms come from one block-wide cache
(:mod:`pevm.engines.blooms`).
"""
from __future__ import annotations

from typing import Any, cast
from collections.abc import Sequence

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.vm.forks.byzantium import ByzantiumVM

from pevm.engines.blooms import BloomCache, with_cached_bloom
from pevm.engines.executor import FinishedComputation, TxResult
from pevm.engines.locations import BALANCE, CODE, EXISTS, NONCE, OPENED, STORAGE
from pevm.engines.mv_memory import MVMemory, TxWrites
from pevm.engines.pre_state import PreState
from pevm.pyevm_compat import account_updater


def merge_block(vm: VirtualMachineAPI, base_header: BlockHeaderAPI,
                transactions: Sequence[SignedTransactionAPI],
                committed: Sequence[TxResult | None], before_last: TxWrites | None,
                pre: PreState) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...]]:
    """Write a block's committed results into ``vm.state`` and make its receipts.

    ``committed``: every transaction's committed result, in block order;
    ``before_last``: the committed state before the last transaction (py-evm locks
    the journal before each transaction, so after the block only the last one's
    changes are unlocked: the merge reproduces that). From Byzantium on, the state
    is written once per location; before it, transaction by transaction, because
    each receipt carries the state root after its transaction.
    """
    state = vm.state
    per_tx_roots = not isinstance(vm, ByzantiumVM)
    if not per_tx_roots and transactions:
        assert before_last is not None
        apply_writes(state, before_last, pre)
        state.lock_changes()
        last = committed[len(transactions) - 1]
        assert last is not None
        apply_writes(state, last.writes, pre)
    header = base_header
    receipts = []
    fold = _foldable_header_steps(type(vm))
    check = not _receipts_valid_by_construction(type(vm))
    # Byzantium's stock make_receipt hands the logs to the transaction's own step
    blooms = BloomCache() if _stock_steps(type(vm)) is ByzantiumVM else None
    if blooms is not None:
        blooms.prepare(result.outcome.logs for result in committed
                       if result is not None and result.outcome is not None)
    for txn, tx in enumerate(transactions):
        result = committed[txn]
        assert result is not None and result.outcome is not None
        if per_tx_roots:
            state.lock_changes()
            apply_writes(state, result.writes, pre)
        computation: Any = FinishedComputation(result.outcome)  # what it reads
        receipt = vm.make_receipt(
            header, tx if blooms is None else with_cached_bloom(tx, blooms),
            computation, state)
        if check:
            vm.validate_receipt(receipt)
        if fold:
            # make_receipt reads only the running gas_used of the header
            header = cast(BlockHeaderAPI, _RunningHeader(header, receipt.gas_used))
        else:
            header = vm.add_receipt_to_header(header, receipt)
            header = vm.increment_blob_gas_used(header, tx)
        receipts.append(receipt)
    if fold:
        header = _fold_header(base_header, receipts, transactions, type(vm), state)
    return header, tuple(receipts)


class _RunningHeader:
    """The header as ``make_receipt`` sees it between two transactions (gas only)."""

    __slots__ = ("_header", "gas_used")

    def __init__(self, header: Any, gas_used: int) -> None:
        self._header: Any = header if not isinstance(header, _RunningHeader) \
            else header._header
        self.gas_used = gas_used

    def __getattr__(self, name: str) -> Any:
        return getattr(self._header, name)


def _foldable_header_steps(vm_class: Any) -> bool:
    """Whether the fork's per-transaction header updates are py-evm's stock ones
    (bloom OR, gas used, and before Byzantium the state root; blob gas sum), which
    fold into one header copy."""
    from eth.vm.forks.cancun import CancunVM
    from eth.vm.forks.frontier import FrontierVM
    return (_stock_steps(vm_class) is not None
            and vm_class.increment_blob_gas_used in (
                FrontierVM.increment_blob_gas_used,
                CancunVM.increment_blob_gas_used))


def _stock_steps(vm_class: Any) -> type | None:
    """The py-evm VM (FrontierVM or ByzantiumVM) whose ``make_receipt`` and
    ``add_receipt_to_header`` the fork uses unchanged, or None if it overrides
    either."""
    from eth.vm.forks.frontier import FrontierVM
    for stock in (ByzantiumVM, FrontierVM):
        if (getattr(vm_class.make_receipt, "__func__", None)
                is getattr(stock.make_receipt, "__func__", None)
                and vm_class.add_receipt_to_header is stock.add_receipt_to_header):
            return stock
    return None


def _receipts_valid_by_construction(vm_class: Any) -> bool:
    """Whether ``validate_receipt`` cannot fail on what ``make_receipt`` makes:
    both are py-evm's stock ones (Frontier's or Byzantium's), whose receipt computes
    its bloom from its own logs (or takes it from :class:`~pevm.engines.blooms.BloomCache`,
    which computes the same bits) and from Byzantium on its status from the
    computation -- exactly what the check re-derives (a third of the merge's time
    on a 1,000-transaction ERC-20 block). A fork that overrides either keeps the
    check."""
    stock = _stock_steps(vm_class)
    return (stock is not None
            and getattr(vm_class.validate_receipt, "__func__", None)
            is stock.validate_receipt.__func__)  # type: ignore[attr-defined]


def _fold_header(base: BlockHeaderAPI, receipts: list[ReceiptAPI],
                 transactions: Sequence[SignedTransactionAPI],
                 vm_class: Any, state: Any) -> BlockHeaderAPI:
    """What py-evm's per-transaction header updates add up to, in one copy."""
    if not receipts:
        return base
    from eth.vm.forks.cancun import CancunVM
    from eth.vm.forks.cancun.state import get_total_blob_gas
    bloom = int(base.bloom)
    for receipt in receipts:
        bloom |= int(receipt.bloom)
    fields: dict[str, Any] = {"bloom": bloom, "gas_used": receipts[-1].gas_used}
    if _stock_steps(vm_class) is not ByzantiumVM:
        # Frontier's step sets the state root after each receipt: the last one counts
        fields["state_root"] = state.make_state_root()
    if vm_class.increment_blob_gas_used is CancunVM.increment_blob_gas_used:
        fields["blob_gas_used"] = base.blob_gas_used + sum(
            get_total_blob_gas(tx) for tx in transactions)
    return base.copy(**fields)


def final_writes(mv: MVMemory) -> TxWrites:
    """The block's net effect from the committed state, as one write set."""
    return TxWrites(values=dict(mv.committed), deltas={}, wiped=tuple(sorted(mv.wiped)))


def apply_writes(state: Any, writes: TxWrites,
                 pre: PreState | None = None) -> None:
    """Write a write set into py-evm's state (``vm.state``) through its own API.

    Per account: storage wipe first, then balance, nonce and code, then storage
    slots; an account left non-existent is deleted last, one that only came into
    existence (a touch) is touched.

    Before wiping an account's storage, the slots of it that the block read from
    the pre-state (``pre``; possibly in a worker process) are read once more
    through ``state``: py-evm's access log -- from which the pipeline learns which
    slots a wipe changed -- then lists them as it would after a sequential run.
    """
    accounts: dict[bytes, dict[int, Any]] = {}
    slots: dict[bytes, list[tuple[int, int]]] = {}
    for key, value in writes.values.items():
        if key[0] == STORAGE:
            slots.setdefault(key[1], []).append((key[2], value))
        elif key[0] == OPENED:
            continue  # bookkeeping of the engine, not state
        else:
            accounts.setdefault(key[1], {})[key[0]] = value
    for address in writes.deltas:
        accounts.setdefault(address, {})
    wiped = set(writes.wiped)
    read_before_wipe = pre.slots_of(wiped) if pre is not None else {}
    update = account_updater(state)
    for address in sorted(set(accounts) | set(slots) | wiped):
        fields = accounts.get(address, {})
        if address in wiped:
            for slot in read_before_wipe.get(address, ()):
                state.get_storage(address, slot)
            state.delete_storage(address)
        wrote_field = False
        delta = writes.deltas.get(address)
        if update is not None and \
                (BALANCE in fields or NONCE in fields or delta is not None):
            update(address, fields.get(BALANCE), fields.get(NONCE), delta or 0)
            wrote_field = True
        else:
            if BALANCE in fields:
                state.set_balance(address, fields[BALANCE])
                wrote_field = True
            if delta is not None:
                state.delta_balance(address, delta)
                wrote_field = True
            if NONCE in fields:
                state.set_nonce(address, fields[NONCE])
                wrote_field = True
        if CODE in fields:
            code = fields[CODE]
            if code:
                state.set_code(address, code)
            else:
                state.delete_code(address)
            wrote_field = True
        for slot, value in sorted(slots.get(address, ())):
            state.set_storage(address, slot, value)
        exists = fields.get(EXISTS)
        if exists is False:
            state.delete_account(address)
        elif exists is True and not wrote_field:
            state.touch_account(address)
