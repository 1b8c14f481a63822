"""The reference engine, recording what each transaction reads and writes.

It runs py-evm's own sequential loop (so the sets are those of the block's true,
sequential semantics) and observes the state
(:func:`pevm.pyevm_compat.observe_state`): every public read and write is logged
against the transaction being applied, at location granularity, in the parallel
engine's vocabulary (:mod:`pevm.engines.locations`) -- ``(BALANCE, address)``,
``NONCE``, ``CODE``, ``EXISTS``, ``EMPTY``, ``(STORAGE, address, slot)``, and
``WIPE`` for a storage wipe or an account's deletion (with its balance, nonce and
code). Positive balance deltas (fee and value credits) are logged as *credits*:
commutative additions that make no read; and once a transaction has credited an
account a positive amount, its existence and emptiness checks of that account
(EIP-161 cleanup of the coinbase after the fee) are settled without reading anything.
A transaction's own sender is modelled as the parallel engine runs it (lazy debits):
until its first frame starts, py-evm's checks of the sender's balance are not reads,
and the sender's debits and nonce increment are commutative like credits -- whether
the sequence holds and the balance covers them is checked at commit, in block order,
not waited for. A contract's call or create opcode opens the same window for the
contract's balance until the new frame starts (the state runs with
:func:`pevm.pyevm_compat.with_value_check_windows`). A later real look at a payer's
balance is a read that depends on every debit and credit before it. Existence and
emptiness are locations of their own, written only by a transaction that actually
changes them (checked at the end of the transaction), so a zero-fee transaction's
emptiness check of a busy coinbase is not a conflict. Writes inside reverted call
frames are kept (an over-approximation: they may add dependencies that did not
matter). Used by :mod:`pevm.analysis` to build the dependency graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from collections.abc import Callable, Sequence

from eth.abc import (BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, StateAPI,
                     VirtualMachineAPI)
from eth_typing import Address

from pevm.engines.locations import (BALANCE, CODE, EMPTY, EXISTS, NONCE, STORAGE, WIPE,
                                    Location)
from pevm.engines.reference import ReferenceEngine
from pevm.engines.state_view import LAZY_DEBIT_TYPES
from pevm.pyevm_compat import (Field, StateObserver, observe_state, patch_methods,
                               report_value_checks)
from pevm.result import EngineStats

#: The locations a reported py-evm read or write is about. TOUCH (a frame starts)
#: and RECORD (no transaction writes whole records) are not in it: they are not logged.
_LOCATIONS: dict[Field, tuple[int, ...]] = {
    Field.BALANCE: (BALANCE,), Field.NONCE: (NONCE,), Field.CODE: (CODE,),
    Field.SLOT: (STORAGE,), Field.EXISTS: (EXISTS,), Field.EMPTY: (EMPTY,),
    Field.WIPE: (WIPE,), Field.DELETE: (BALANCE, NONCE, CODE, WIPE),
}

#: Which of a transaction's location sets a log entry goes to.
Bucket = Literal["reads", "writes", "credits"]


@dataclass
class Access:
    """Locations one transaction read, wrote, and credited."""

    reads: set[Location] = field(default_factory=set)
    writes: set[Location] = field(default_factory=set)
    credits: set[Location] = field(default_factory=set)
    #: Addresses credited a positive amount: they exist and are not empty.
    credited: set[bytes] = field(default_factory=set)
    #: (exists, empty) of every address this transaction changed, before it did.
    before: dict[bytes, tuple[bool, bool]] = field(default_factory=dict)


class _Recorder(StateObserver):
    """Logs what the state reports into the :class:`Access` of the transaction
    being applied (nothing once the last one is done)."""

    def __init__(self, state: StateAPI, transactions: Sequence[SignedTransactionAPI],
                 accesses: list[Access]) -> None:
        self.state = state
        self.transactions = transactions
        self.accesses = accesses
        #: index of the transaction being applied
        self.index = 0
        #: the sender of the transaction being applied, while its debits are lazy
        self.sender: bytes | None = None
        #: the payer whose balance checks are "can it pay?" (checked at commit)
        #: until the next frame starts: the sender before its first frame, a
        #: contract in its call or create opcode (:meth:`value_check`)
        self.window: bytes | None = None
        #: the accounts whose balance the transaction really looked at
        self.balance_read: set[bytes] = set()
        self.start_debits()

    def start_debits(self) -> None:
        """Open the lazy-debit window of the transaction now being applied."""
        self.sender = None
        if self.index < len(self.transactions):
            tx = self.transactions[self.index]
            if getattr(tx, "type_id", None) in LAZY_DEBIT_TYPES:
                self.sender = bytes(tx.sender)
        self.window, self.balance_read = self.sender, set()

    def value_check(self, address: bytes | None) -> None:
        """A contract's call or create opcode starts (None: it ended); see
        :func:`pevm.pyevm_compat.with_value_check_windows`."""
        self.window = None if address is None else bytes(address)

    def current(self) -> Access | None:
        """The access log of the transaction being applied."""
        return self.accesses[self.index] if self.index < len(self.accesses) else None

    def status(self, address: bytes) -> tuple[bool, bool]:
        """Whether ``address`` exists and is empty now. (Called from a callback or
        in quiet mode: these looks are not themselves logged.)"""
        account = Address(address)
        return self.state.account_exists(account), self.state.account_is_empty(account)

    def log(self, kinds: tuple[int, ...], target: Bucket, address: bytes,
            slot: int | None = None) -> None:
        """Log ``address``'s locations of ``kinds`` as the current transaction's."""
        access = self.current()
        if access is None:
            return
        address = bytes(address)
        if address == self.sender and NONCE in kinds:  # the sequence implies it
            if target == "writes":
                access.credits.add((NONCE, address))
            kinds = tuple(k for k in kinds if k != NONCE)
        if BALANCE in kinds and target == "reads" and address not in self.balance_read:
            if address == self.window:  # "can it pay?": checked at commit
                kinds = tuple(k for k in kinds if k != BALANCE)
            else:
                self.balance_read.add(address)  # a real look at the balance
        if not kinds:
            return
        if target != "reads" and address not in access.before:
            access.before[address] = self.status(address)
        bucket = getattr(access, target)
        for kind in kinds:
            bucket.add((kind, address) if slot is None else (kind, address, slot))

    def read(self, address: bytes, what: Field, slot: int | None) -> None:
        """A read; existence and emptiness checks of an account the transaction
        credited a positive amount are settled without one."""
        if what is Field.EXISTS or what is Field.EMPTY:
            access = self.current()
            if access is not None and bytes(address) in access.credited:
                return  # settled by the transaction's own positive credit
        self.log(_LOCATIONS[what], "reads", address, slot)

    def write(self, address: bytes, what: Field, slot: int | None) -> None:
        """A write; a touch only marks that the transaction's first frame started."""
        if what is Field.TOUCH:
            self.window = None  # a frame starts
        elif what is not Field.RECORD:
            self.log(_LOCATIONS[what], "writes", address, slot)

    def balance_delta(self, address: bytes, delta: int) -> None:
        """A credit (a delta >= 0, or a lazy debit: of the sender or the payer in
        the window, whose balance the transaction has not looked at), else a read
        and a write of the balance."""
        address = bytes(address)
        lazy = (address == self.sender or address == self.window) \
            and address not in self.balance_read
        if delta >= 0 or lazy:  # credits and lazy debits
            self.log((BALANCE,), "credits", address)
            access = self.current()
            if delta > 0 and access is not None:
                access.credited.add(bytes(address))
        else:
            self.log((BALANCE,), "reads", address)
            self.log((BALANCE,), "writes", address)

    def transaction_done(self) -> None:
        """The current transaction is applied: log the existence and emptiness it
        changed, and move on to the next."""
        access = self.current()
        if access is not None:
            for address, (existed, was_empty) in access.before.items():
                exists, empty = self.status(address)
                if exists != existed:
                    access.writes.add((EXISTS, address))
                if empty != was_empty:
                    access.writes.add((EMPTY, address))
        self.index += 1
        self.start_debits()


class RecordingEngine(ReferenceEngine):
    """py-evm's sequential loop, logging every transaction's accesses."""

    name = "reference"

    def __init__(self) -> None:
        self.accesses: list[Access] = []

    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        self.accesses = [Access() for _ in transactions]
        recorder = _Recorder(vm.state, transactions, self.accesses)
        observation = observe_state(vm.state, recorder)

        def transaction_applied_hook(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> None:
                with observation.quiet():
                    recorder.transaction_done()
                original(*args, **kwargs)
            return call

        undo_hook = patch_methods(vm, {"transaction_applied_hook": transaction_applied_hook})
        undo_windows = report_value_checks(vm.state, recorder.value_check)
        try:
            return super().apply_transactions(vm, transactions, base_header)
        finally:
            undo_windows()
            undo_hook()
            observation.close()
