"""The block pipeline: py-evm's own block import, with a pluggable transaction engine.

Every block, whatever its input format or engine, runs through py-evm's
``VM.import_block``: header configuration, the pre-block system steps (EIP-4788,
EIP-2935), the transactions, withdrawals, Prague requests, rewards, finalisation.
Only one step is swapped: ``VM.apply_all_transactions`` is delegated to an
:class:`Engine` (py-evm itself for the reference, pevm's parallel engine otherwise).
This keeps fork rules in exactly one place -- py-evm -- and makes the reference and
the parallel engine differ in nothing but how the transactions run.

The pipeline also observes the import (which accounts and slots were touched, the
finalised header) and turns it into a :class:`~pevm.result.BlockResult`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet

from eth.abc import (BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI,
                     VirtualMachineAPI)
from eth.constants import BLANK_ROOT_HASH as _BLANK_ROOT
from eth.rlp.accounts import Account

from pevm.abc import Engine
from pevm.errors import REJECTION_ERRORS, BlockRejected, describe, raised_by_pevm
from pevm.frame_stack import call_with_roomy_stack
from pevm.pyevm_compat import WriteLog, observe_state, patch_methods
from pevm.gpu import backend_name, ordered_trie_roots
from pevm.result import AccountDiff, BlockResult, EngineStats, Log, Receipt
from pevm.state.body_encoding import encode_receipt, encode_transaction
from pevm.state.layers import FlatStore, StoreNotAttached
from pevm.trie_reader import StoredState

_ABSENT = Account()  # how a missing account reads: zero fields, empty code/storage


@dataclass
class BlockOutcome:
    """What importing one block gave: a result, a rejection, or (rarely) both.

    Both are set when execution finished but py-evm rejected the block afterwards
    (e.g. its header's state root differs from the computed one).
    """

    result: BlockResult | None
    rejection: BlockRejected | None
    seconds: float


@dataclass
class _Observation(WriteLog):
    """What the hooks saw of one import.

    As a :class:`~pevm.pyevm_compat.WriteLog` it collects every account and slot the
    import's states wrote and every account whose storage py-evm wiped
    (self-destruct, EIP-161, re-creation): py-evm's witness lists what the block's
    own state read, not everything written -- not the writes of a state py-evm
    builds while configuring the header (the DAO fork block's irregular balance
    moves), nor all storage writes. The witness's accounts and slots are added too.
    """

    pre_state_root: bytes | None = None
    receipts: tuple[ReceiptAPI, ...] = ()
    stats: EngineStats | None = None
    finalized: BlockAPI | None = None


def hook_vm(vm: Any, engine: Engine, seen: _Observation) -> None:
    """Route ``vm``'s transaction step to ``engine`` and observe the import.

    ``vm`` is the importing VM instance (a py-evm ``VM``: more than
    ``VirtualMachineAPI`` promises, e.g. ``block_preprocessing``).
    """
    # Before the import starts, the VM's header is the one built from the parent:
    # its state root is the parent's. That is the diff's "before" -- not the root
    # at block_preprocessing, which already holds what configure_header changed
    # (the DAO fork block's irregular balance moves, made on ``vm.state``).
    seen.pre_state_root = vm.get_header().state_root
    observe_state(vm.state, seen)

    def block_preprocessing(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(block: BlockAPI) -> None:
            observe_state(vm.state, seen)  # import_block made a fresh state for the block
            original(block)
        return call

    def apply_all_transactions(_original: Callable[..., Any]) -> Callable[..., Any]:
        def call(transactions: Sequence[SignedTransactionAPI],
                 base_header: BlockHeaderAPI) -> Any:
            start = time.perf_counter()
            header, receipts, stats = engine.apply_transactions(vm, transactions,
                                                                base_header)
            stats.transaction_seconds = time.perf_counter() - start
            seen.receipts = tuple(receipts)
            seen.stats = stats
            return header, tuple(receipts), ()
        return call

    def finalize_block(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(block: BlockAPI) -> Any:
            outcome = original(block)
            seen.finalized = outcome.block
            witness = outcome.meta_witness
            seen.accounts |= set(witness.accounts_queried)
            for address in witness.accounts_queried:
                slots = witness.get_slots_queried(address)
                if slots:
                    seen.slots.setdefault(address, set()).update(slots)
            return outcome
        return call

    # for this one import only: the VM instance is not reused, nothing is undone
    patch_methods(vm, {"block_preprocessing": block_preprocessing,
                       "apply_all_transactions": apply_all_transactions,
                       "finalize_block": finalize_block})


def import_with_engine(
    run_import: Callable[[Callable[[VirtualMachineAPI], None]], BlockAPI],
    engine: Engine, db: Any, full_state: bool,
) -> BlockOutcome:
    """Run one block import with ``engine`` and describe what it produced.

    ``run_import(hook)`` performs the import; it must call ``hook(vm)`` on the VM
    that imports the block before the import starts. ``db`` is the database holding
    the pre- and post-state tries; ``full_state`` says whether the state root means
    anything (False for partial mainnet snapshots).
    """
    seen = _Observation()
    start = time.perf_counter()
    rejection: BlockRejected | None = None
    try:
        # the whole import on a roomy frame stack, as the engines run a block's
        # transactions: py-evm's own steps around them (its trie's recursive
        # updates, above all) sit at a frame-stack chunk's edge as easily
        call_with_roomy_stack(run_import, lambda vm: hook_vm(vm, engine, seen))
    except BlockRejected as exc:
        rejection = exc
    except REJECTION_ERRORS as exc:
        if raised_by_pevm(exc):
            raise  # a bug, not a rejection: the CLI shows its traceback
        rejection = BlockRejected(describe(exc))
    seconds = time.perf_counter() - start
    result = None
    if seen.finalized is not None and seen.stats is not None:
        result = _make_result(seen, db, full_state)
    return BlockOutcome(result=result, rejection=rejection, seconds=seconds)


def convert_receipts(receipts: Sequence[ReceiptAPI]) -> tuple[Receipt, ...]:
    """py-evm receipts to pevm's plain records (with per-transaction gas)."""
    out = []
    previous = 0
    for receipt in receipts:
        marker = receipt.state_root
        if len(marker) == 32:
            status, root = None, bytes(marker)
        else:
            status, root = (1 if marker == b"\x01" else 0), None
        cumulative = receipt.gas_used
        out.append(Receipt(
            tx_type=getattr(receipt, "type_id", None) or 0,
            status=status, state_root=root,
            cumulative_gas_used=cumulative, gas_used=cumulative - previous,
            logs=tuple(Log(bytes(log.address), tuple(log.topics), bytes(log.data))
                       for log in receipt.logs),
            bloom=receipt.bloom,
        ))
        previous = cumulative
    return tuple(out)


def _make_result(seen: _Observation, db: Any, full_state: bool) -> BlockResult:
    block = seen.finalized
    assert block is not None and seen.stats is not None
    header = block.header
    diff = state_diff(db, seen.pre_state_root or header.state_root, header.state_root,
                      seen.accounts, seen.slots, seen.wiped)
    # Roots through pevm's batched trie (GPU or CPU): checked against the header.
    roots = ordered_trie_roots([[encode_receipt(r) for r in seen.receipts],
                                [encode_transaction(t) for t in block.transactions]])
    seen.stats.backend = backend_name()
    return BlockResult(
        number=header.block_number,
        receipts=convert_receipts(seen.receipts),
        gas_used=header.gas_used, bloom=header.bloom,
        receipts_root=roots[0], transactions_root=roots[1],
        state_diff=diff, state_root=header.state_root if full_state else None,
        block_hash=block.hash if full_state else None,
        stats=seen.stats,
    )


class _StateReader(Protocol):
    """Reads of one persisted state, as :func:`state_diff` needs them."""

    def account(self, address: bytes) -> Account | None: ...
    def code(self, code_hash: bytes) -> bytes: ...
    def slot(self, address: bytes, account: Account, slot: int) -> int: ...


class _TrieState:
    """A state in py-evm's tries (:class:`~pevm.trie_reader.StoredState`)."""

    def __init__(self, db: Any, root: bytes, nodes: dict[bytes, Any]) -> None:
        self._stored = StoredState(db, root, nodes=nodes)
        self.account = self._stored.account
        self.code = self._stored.code

    def slot(self, address: bytes, account: Account, slot: int) -> int:
        return self._stored.storage(account.storage_root, slot)


class _FlatState:
    """A version of pevm's flat store (:mod:`pevm.state`)."""

    def __init__(self, store: FlatStore, root: bytes) -> None:
        self._version = store.version(root)
        self._codes = store.codes

    def account(self, address: bytes) -> Account | None:
        record = self._version.account(address)
        if record is None:
            return None
        nonce, balance, code_hash = record
        return Account(nonce=nonce, balance=balance, code_hash=code_hash,
                       storage_root=self._version.commitment.storage_root(address))

    def code(self, code_hash: bytes) -> bytes:
        return self._codes[code_hash]

    def slot(self, address: bytes, account: Account, slot: int) -> int:
        return self._version.slot(address, slot)


def _readers(db: Any, pre_root: bytes, post_root: bytes
             ) -> tuple[_StateReader, _StateReader]:
    """Readers of the two states: the flat store's versions where ``db`` has one
    holding both roots, py-evm's persisted tries otherwise."""
    try:
        store: FlatStore | None = FlatStore.of(db)
    except StoreNotAttached:
        store = None
    if store is not None and pre_root in store and post_root in store:
        return _FlatState(store, pre_root), _FlatState(store, post_root)
    nodes: dict[bytes, Any] = {}  # the two roots share most of their nodes
    return _TrieState(db, pre_root, nodes), _TrieState(db, post_root, nodes)


def state_diff(db: Any, pre_root: bytes, post_root: bytes, accounts: set[bytes],
               slots: dict[bytes, set[int]], wiped: AbstractSet[bytes] = frozenset()
               ) -> dict[bytes, AccountDiff]:
    """Per-account differences between two persisted state roots.

    Only ``accounts`` (and their ``slots``) are looked at: the caller passes every
    account and slot the block touched, which is a superset of what changed. An
    account in ``wiped`` whose storage was not empty before is ``storage_cleared``,
    and then exactly the slots with a value after the block are listed (even one
    rewritten to its old value), so that the diff alone rebuilds the storage and
    does not depend on which zeroed slots an engine happened to touch.
    """
    before, after = _readers(db, pre_root, post_root)
    out: dict[bytes, AccountDiff] = {}
    for address in sorted(accounts):
        old_account, new_account = before.account(address), after.account(address)
        old = old_account or _ABSENT
        new = new_account or _ABSENT
        diff = AccountDiff(created=new_account is not None and old_account is None,
                           destroyed=old_account is not None and new_account is None)
        if old.balance != new.balance:
            diff.balance = (old.balance, new.balance)
        if old.nonce != new.nonce:
            diff.nonce = (old.nonce, new.nonce)
        if old.code_hash != new.code_hash:
            diff.code = (before.code(old.code_hash), after.code(new.code_hash))
        diff.storage_cleared = address in wiped and old.storage_root != _BLANK_ROOT
        for slot in sorted(slots.get(address, ())):
            old_value = before.slot(address, old, slot)
            new_value = after.slot(address, new, slot)
            if diff.storage_cleared:
                # the clear says what became 0: a slot is listed when it holds a
                # value -- whichever slots an engine happened to touch
                if new_value:
                    diff.storage[slot] = (old_value, new_value)
            elif old_value != new_value:
                diff.storage[slot] = (old_value, new_value)
        if not diff.is_empty():
            out[bytes(address)] = diff
    return out
