"""The reference engine, recording what each transaction reads and writes.

It runs py-evm's own sequential loop (so the sets are those of the block's true,
sequential semantics) and observes the state's account database: every public read
and write is logged against the transaction being applied, at location granularity
-- ``(address, "balance")``, ``"nonce"``, ``"code"``, ``"exists"``,
``(address, "storage", slot)``. Positive balance deltas (fee and value credits) are
logged as *credits*: commutative additions that make no read; and once a transaction
has credited an account a positive amount, its existence and emptiness checks of
that account (EIP-161 cleanup of the coinbase after the fee) are settled without
reading anything. A transaction's own sender is modelled as the parallel engine runs
it (lazy debits): until its first frame starts, py-evm's checks of the sender's
balance are not reads, and the sender's debits and nonce increment are commutative
like credits -- whether the sequence holds and the balance covers them is checked at
commit, in block order, not waited for. A later real look at the sender's balance is
a read that depends on every debit and credit before it. Existence and emptiness
are locations of their own, written only by a transaction that actually changes
them (checked at the end of the transaction), so a zero-fee transaction's emptiness
check of a busy coinbase is not a conflict. Writes inside reverted call frames are
kept (an over-approximation: they may add dependencies that did not matter). Used
by :mod:`pevm.analysis` to build the dependency graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Hashable, Sequence

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI

from pevm.engines.reference import ReferenceEngine
from pevm.pyevm_compat import account_db as pyevm_account_db
from pevm.engines.state_view import LAZY_DEBIT_TYPES
from pevm.result import EngineStats

#: AccountDB method -> (kind, locations it touches given the address and slot).
_READS: dict[str, tuple[str, ...]] = {
    "get_balance": ("balance",), "get_nonce": ("nonce",), "get_code": ("code",),
    "get_code_hash": ("code",), "account_exists": ("exists",),
    "account_has_code_or_nonce": ("code", "nonce"),
    "account_is_empty": ("empty",),
}
_WRITES: dict[str, tuple[str, ...]] = {
    "set_balance": ("balance",), "set_nonce": ("nonce",), "set_code": ("code",),
    "delete_code": ("code",),
    "delete_account": ("balance", "nonce", "code", "storage"),
    "delete_storage": ("storage",),
}
_READ_WRITES: dict[str, tuple[str, ...]] = {"increment_nonce": ("nonce",)}


@dataclass
class Access:
    """Locations one transaction read, wrote, and credited."""

    reads: set[Hashable] = field(default_factory=set)
    writes: set[Hashable] = field(default_factory=set)
    credits: set[Hashable] = field(default_factory=set)
    #: Addresses credited a positive amount: they exist and are not empty.
    credited: set[bytes] = field(default_factory=set)
    #: (exists, empty) of every address this transaction changed, before it did.
    before: dict[bytes, tuple[bool, bool]] = field(default_factory=dict)


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
        position = {"tx": 0, "depth": 0}
        account_db: Any = pyevm_account_db(vm.state)
        state: Any = vm.state
        installed: list[tuple[Any, str, bool, Any]] = []

        # the sender of the transaction being applied, while its debits are lazy
        debits: dict[str, Any] = {}

        def start_debits(index: int) -> None:
            sender = None
            if index < len(transactions):
                tx = transactions[index]
                if getattr(tx, "type_id", None) in LAZY_DEBIT_TYPES:
                    sender = bytes(tx.sender)
            debits.update(sender=sender, window=True, read=False)

        def lazy_sender(address: bytes) -> bool:
            return debits.get("sender") == bytes(address) and not debits["read"]

        def log(kinds: tuple[str, ...], target: str, address: bytes,
                slot: int | None = None) -> None:
            if position["depth"] or position["tx"] >= len(self.accesses):
                return
            access = self.accesses[position["tx"]]
            if debits.get("sender") == bytes(address):
                if "nonce" in kinds:  # the sequence implies it: commutative
                    if target == "writes":
                        access.credits.add((bytes(address), "nonce"))
                    kinds = tuple(k for k in kinds if k != "nonce")
                if "balance" in kinds and target == "reads" and not debits["read"]:
                    if debits["window"]:  # "can it pay?": checked at commit
                        kinds = tuple(k for k in kinds if k != "balance")
                    else:
                        debits["read"] = True  # a real look at the balance
                if not kinds:
                    return
            if target != "reads" and bytes(address) not in access.before:
                access.before[bytes(address)] = status(address)
            bucket = getattr(access, target)
            for kind in kinds:
                if kind == "storage" and slot is not None:
                    bucket.add((bytes(address), "storage", slot))
                else:
                    bucket.add((bytes(address), kind))

        exists_now, empty_now = account_db.account_exists, account_db.account_is_empty

        def status(address: bytes) -> tuple[bool, bool]:
            position["depth"] += 1
            try:
                return exists_now(address), empty_now(address)
            finally:
                position["depth"] -= 1

        def wrap(owner: Any, name: str, make: Callable[[Callable[..., Any]], Any]) -> None:
            original = getattr(owner, name)
            installed.append((owner, name, name in vars(owner), vars(owner).get(name)))
            setattr(owner, name, make(original))

        def observed(kinds: tuple[str, ...], targets: tuple[str, ...]) -> Any:
            def make(original: Callable[..., Any]) -> Callable[..., Any]:
                def call(address: bytes, *args: Any, **kwargs: Any) -> Any:
                    for target in targets:
                        log(kinds, target, address)
                    position["depth"] += 1
                    try:
                        return original(address, *args, **kwargs)
                    finally:
                        position["depth"] -= 1
                return call
            return make

        def settled_by_credit(kinds: tuple[str, ...]) -> Any:
            def make(original: Callable[..., Any]) -> Callable[..., Any]:
                logged = observed(kinds, ("reads",))(original)
                silent = observed(kinds, ())(original)  # nothing inside is a read

                def call(address: bytes, *args: Any, **kwargs: Any) -> Any:
                    current = self.accesses[min(position["tx"], len(self.accesses) - 1)]
                    settled = bytes(address) in current.credited
                    return (silent if settled else logged)(address, *args, **kwargs)
                return call
            return make

        for name, kinds in _READS.items():
            if name in ("account_exists", "account_is_empty"):
                wrap(account_db, name, settled_by_credit(kinds))
            else:
                wrap(account_db, name, observed(kinds, ("reads",)))
        for name, kinds in _WRITES.items():
            wrap(account_db, name, observed(kinds, ("writes",)))
        for name, kinds in _READ_WRITES.items():
            wrap(account_db, name, observed(kinds, ("reads", "writes")))

        def storage_get(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(address: bytes, slot: int, *args: Any, **kwargs: Any) -> Any:
                log(("storage",), "reads", address, slot)
                return original(address, slot, *args, **kwargs)
            return call

        def storage_set(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(address: bytes, slot: int, value: int) -> Any:
                log(("storage",), "writes", address, slot)
                return original(address, slot, value)
            return call

        def delta_balance(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(address: bytes, delta: int) -> Any:
                if delta >= 0 or lazy_sender(address):  # credits and lazy debits
                    log(("balance",), "credits", address)
                    if delta > 0 and position["tx"] < len(self.accesses):
                        self.accesses[position["tx"]].credited.add(bytes(address))
                else:
                    log(("balance",), "reads", address)
                    log(("balance",), "writes", address)
                position["depth"] += 1
                try:
                    return original(address, delta)
                finally:
                    position["depth"] -= 1
            return call

        def touch(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(address: bytes) -> Any:
                debits["window"] = False  # a frame starts
                return original(address)
            return call

        wrap(account_db, "touch_account", touch)
        wrap(account_db, "get_storage", storage_get)
        wrap(account_db, "set_storage", storage_set)
        wrap(state, "delta_balance", delta_balance)
        original_hook = vm.transaction_applied_hook

        def next_transaction(*args: Any, **kwargs: Any) -> None:
            if position["tx"] < len(self.accesses):
                access = self.accesses[position["tx"]]
                for address, (existed, was_empty) in access.before.items():
                    exists, empty = status(address)
                    if exists != existed:
                        access.writes.add((address, "exists"))
                    if empty != was_empty:
                        access.writes.add((address, "empty"))
            position["tx"] += 1
            start_debits(position["tx"])
            original_hook(*args, **kwargs)

        start_debits(0)
        vm.transaction_applied_hook = next_transaction  # type: ignore[method-assign]
        try:
            return super().apply_transactions(vm, transactions, base_header)
        finally:
            vm.transaction_applied_hook = original_hook  # type: ignore[method-assign]
            for owner, name, had_own, previous in reversed(installed):
                if had_own:
                    setattr(owner, name, previous)
                else:
                    vars(owner).pop(name, None)
