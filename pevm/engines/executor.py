"""Running one transaction incarnation on a state view, and what it produced.

Used the same way in the coordinator (``workers=1``, and re-executions at the
commit point) and in worker processes: :meth:`BlockContext.execute` builds the
fork's own State class on a fresh :class:`~pevm.engines.state_view.StateView` and
calls ``state.apply_transaction(tx)`` -- py-evm's transaction validation, executor
and interpreter, unchanged. The block-level check py-evm makes before each
transaction (``validate_transaction_against_header``: cumulative gas against the
block gas limit) depends on the transactions before it, so the coordinator makes
it at commit time, in block order.

Results are plain picklable records (:class:`TxResult`): read set, write set and
the outcome the merge needs to build py-evm's receipt
(:class:`FinishedComputation` stands in for py-evm's computation there).

Senders: :meth:`BlockContext.sender_of` recovers and checks a signature once
(:func:`pevm.engines.senders.recover_sender`, exactly the checks of py-evm's
``validate_transaction_signature``) and :func:`pin_sender` makes py-evm reuse it:
it fills the transaction's ``sender`` cached property and replaces the
signature re-check on that object with a no-op. Without it py-evm recovers the
public key again on every execution (``transaction.validate()``).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterable, Sequence

from eth.abc import SignedTransactionAPI, VirtualMachineAPI
from pevm.engines.mv_memory import Blocked, Key, TxWrites
from pevm.engines.pre_state import PreState
from pevm.engines.senders import recover_sender
from pevm.engines.state_view import StateView, state_class_for
from pevm.engines.timeline import Activity, Timeline
from pevm.errors import REJECTION_ERRORS, describe, raised_by_pevm
from pevm.pyevm_compat import account_db, pin_sender, pinned_sender, state_database


@dataclass(slots=True)
class TxOutcome:
    """How a transaction ended: what its receipt and the block need.

    ``valid`` is False when py-evm rejected the transaction as invalid at its
    position (``reason`` says why); such an outcome only counts once its reads are
    validated at the commit point.
    """

    valid: bool
    reason: str = ""
    is_error: bool = False
    gas_remaining: int = 0
    gas_refund: int = 0
    data_floor_gas: int = 0
    logs: tuple = ()

    def __reduce__(self) -> tuple:  # see TxWrites.__reduce__
        return (TxOutcome, (self.valid, self.reason, self.is_error, self.gas_remaining,
                            self.gas_refund, self.data_floor_gas, self.logs))


@dataclass(slots=True)
class TxResult:
    """One incarnation's execution: read set, write set, outcome.

    Exactly one of ``outcome``, ``blocked_on`` (a read met an ESTIMATE of that
    transaction) and ``crash`` (an unexpected exception, as text) is set.
    """

    txn: int
    incarnation: int
    reads: dict = field(default_factory=dict)
    writes: TxWrites = field(default_factory=TxWrites)
    outcome: TxOutcome | None = None
    blocked_on: int | None = None
    crash: str | None = None
    worker: int = -1
    #: the sender as recovered where this ran (None: not recoverable)
    sender: bytes | None = None

    def __reduce__(self) -> tuple:  # see TxWrites.__reduce__
        return (TxResult, (self.txn, self.incarnation, self.reads, self.writes,
                           self.outcome, self.blocked_on, self.crash, self.worker,
                           self.sender))

    @property
    def committable(self) -> bool:
        return self.outcome is not None


class FinishedComputation:
    """What py-evm's ``VM.make_receipt``/``finalize_gas_used`` read of a computation."""

    __slots__ = ("_outcome",)

    def __init__(self, outcome: TxOutcome) -> None:
        self._outcome = outcome

    @property
    def is_error(self) -> bool:
        return self._outcome.is_error

    @property
    def data_floor_gas(self) -> int:
        return self._outcome.data_floor_gas

    def get_gas_remaining(self) -> int:
        return self._outcome.gas_remaining

    def get_gas_refund(self) -> int:
        return self._outcome.gas_refund

    def get_log_entries(self) -> tuple:
        return self._outcome.logs


class BlockContext:
    """What every execution of one block's transactions shares, in one process.

    Built from the importing VM: the fork's State class (wrapped by
    :func:`~pevm.engines.state_view.state_class_for`), the block's execution
    context, and a flat cache of the pre-transaction state (``vm.state``).
    """

    def __init__(self, vm: VirtualMachineAPI,
                 transactions: Sequence[SignedTransactionAPI]) -> None:
        self.vm = vm
        self.vm_class = type(vm)
        self.transactions = transactions
        state = vm.state
        self.state_class = state_class_for(type(state))
        self.execution_context = state.execution_context
        self.db = state_database(state)
        self.pre_root = state.state_root
        self.pre = PreState(account_db(state))
        #: this process's time by activity (a forked worker installs its own)
        self.timeline = Timeline()
        self._unrecoverable: set[int] = set()
        #: senders recovered in this process (their time: the timeline's RECOVER),
        #: and the fastest one's seconds (the machine's speed now:
        #: :func:`~pevm.host.block_slowness`)
        self.recovered = 0
        self.fastest_recovery_s = float("inf")

    def sender_of(self, txn: int) -> bytes | None:
        """Recover (once, in this process) and pin the sender of ``txn``."""
        tx = self.transactions[txn]
        pinned = pinned_sender(tx)
        if pinned is not None or txn in self._unrecoverable:
            return pinned
        start = time.perf_counter()
        sender = recover_sender(tx)
        took = self.timeline.add(Activity.RECOVER, start, txn=txn) - start
        self.fastest_recovery_s = min(self.fastest_recovery_s, took)
        self.recovered += 1
        if sender is None:
            self._unrecoverable.add(txn)
        else:
            pin_sender(tx, sender)
        return sender

    def mean_recovery_s(self) -> float:
        """Seconds per sender recovered in this process so far (0.0 before any)."""
        if not self.recovered:
            return 0.0
        return self.timeline.seconds.get(Activity.RECOVER.value, 0.0) / self.recovered

    def recover_senders(self, txns: Iterable[int]) -> list[tuple[int, bytes | None]]:
        """:meth:`sender_of` for each of ``txns``, one after the other.

        Why a batch: recovering senders back to back, rather than each between two
        executions, was 15-22% cheaper each on the blocks measured -- the
        elliptic-curve code and its tables stay in the CPU's caches (1,000
        transfers in one process: recovery 56.6 -> 48.1 ms, the transaction phase
        8% shorter; mainnet 17666333 56.0 -> 43.6 ms)."""
        return [(txn, self.sender_of(txn)) for txn in txns]

    def known_sender(self, txn: int) -> bytes | None:
        """The sender of ``txn`` if this process has it already (no recovery)."""
        return pinned_sender(self.transactions[txn])

    def has_sender(self, txn: int) -> bool:
        """Whether this process has the sender of ``txn`` (the recovery batches'
        test: :func:`~pevm.engines.sender_batches.recovery_batch`,
        :func:`~pevm.engines.sender_batches.waiting_batch`)."""
        return self.known_sender(txn) is not None

    def adopt_sender(self, txn: int, sender: bytes | None) -> None:
        """Pin a sender another process recovered (and checked) for ``txn``."""
        if sender is not None and pinned_sender(self.transactions[txn]) is None:
            pin_sender(self.transactions[txn], sender)

    def execute(self, txn: int, incarnation: int, read: Callable[[Key], Any],
                worker: int = -1, speculative: bool = False) -> TxResult:
        """Run ``transactions[txn]`` on a view whose outside reads go to ``read``
        (``speculative``: ahead of the commit point; a worker's always are)."""
        tx = self.transactions[txn]
        sender = self.sender_of(txn)
        start = time.perf_counter()
        try:
            return self._execute(tx, txn, incarnation, read, worker,
                                 sender, speculative or worker >= 0)
        finally:
            self.timeline.add(Activity.REEXECUTE if incarnation else Activity.EXECUTE,
                              start, txn=txn, incarnation=incarnation)

    def _execute(self, tx: SignedTransactionAPI, txn: int, incarnation: int,
                 read: Callable[[Key], Any], worker: int,
                 sender: bytes | None, speculative: bool) -> TxResult:
        # Lazy sender debits pay off where execution is speculative; at the
        # commit point reads are final and exact ones cost nothing more.
        view = StateView(read, self.pre_root, lazy_debits=speculative)
        state = self.state_class(view, self.execution_context, self.db)
        result = TxResult(txn=txn, incarnation=incarnation, worker=worker,
                          sender=sender)
        try:
            computation = state.apply_transaction(tx)
        except Blocked as blocked:
            result.blocked_on = blocked.txn
            result.reads = view.reads
            return result
        except REJECTION_ERRORS as exc:
            result.reads = view.reads
            if raised_by_pevm(exc):  # a bug in the view, reported as a crash
                result.crash = traceback.format_exc(limit=20)
                return result
            # py-evm refused the transaction (at this position, with these reads);
            # the coordinator confirms it natively before rejecting the block
            result.outcome = TxOutcome(valid=False,
                                       reason=describe(exc))
            return result
        except Exception:  # noqa: BLE001 - reported, re-run where it can raise
            result.reads = view.reads
            result.crash = traceback.format_exc(limit=20)
            return result
        result.reads = view.reads
        result.writes = view.writes()
        result.outcome = TxOutcome(
            valid=True, is_error=computation.is_error,
            gas_remaining=computation.get_gas_remaining(),
            gas_refund=computation.get_gas_refund(),
            data_floor_gas=getattr(computation, "data_floor_gas", 0) or 0,
            logs=tuple(computation.get_log_entries()),
        )
        return result

    def gas_used(self, txn: int, outcome: TxOutcome) -> int:
        """The gas ``transactions[txn]`` used, by the fork's own accounting."""
        vm_class: Any = self.vm_class  # a py-evm VM: more than VirtualMachineAPI
        return vm_class.finalize_gas_used(self.transactions[txn],
                                          FinishedComputation(outcome))
