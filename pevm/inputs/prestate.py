"""Building a snapshot's ``pre_state.json`` from pieces, and probing a snapshot.

Both ``pevm fetch`` and ``pevm merge`` have the same problem: they hold several
partial views of the state, in order -- one per transaction (geth's
``prestateTracer``: what each transaction touched, as it stood before that
transaction) or one per block (the ``pre_state.json`` of consecutive blocks) -- and
need the state before the first. The value of a location before the first is its
*first occurrence*: later views show what earlier transactions or blocks wrote.

One case needs more than the views: a location an earlier element *touched* without
the view listing it did not exist before that element. geth drops the accounts a
transaction creates from that transaction's prestate, and a block's
``pre_state.json`` lists only the accounts that existed; a later view then shows
the new contract with its code, which must not be in the pre-state (the creation
would collide with it). :func:`first_occurrence` therefore takes, per element, what
its execution touched -- recorded by :class:`SnapshotProbe` when the block runs
through py-evm's reference -- and leaves out such locations.

:func:`probe_snapshot` runs a snapshot directory through py-evm's sequential
reference, exactly as ``pevm run`` loads it, and says whether it reproduces its
header, what each transaction touched and which ancestors BLOCKHASH asked for.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.vm.state import MAX_PREV_HEADER_DEPTH
from eth_hash.auto import keccak

from pevm.compare import compare_expectations
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.mainnet import _address, _bytes, _int, load_snapshot
from pevm.pyevm_compat import (Field, StateObserver, account_db as pyevm_account_db,
                               observe_state, patch_methods)
from pevm.result import BlockResult, EngineStats


@dataclass
class Touched:
    """What one transaction (or block) touched: accounts, slots, storage wipes."""

    accounts: set[bytes] = field(default_factory=set)
    slots: set[tuple[bytes, int]] = field(default_factory=set)
    wiped: set[bytes] = field(default_factory=set)

    def update(self, other: Touched) -> None:
        self.accounts |= other.accounts
        self.slots |= other.slots
        self.wiped |= other.wiped


@dataclass
class StatePart:
    """One view: accounts (a pre-state record without storage, None = seen absent)
    and slot values, as that transaction or block saw them before it ran."""

    accounts: dict[bytes, dict[str, Any] | None] = field(default_factory=dict)
    slots: dict[bytes, dict[int, int]] = field(default_factory=dict)


def account_record(balance: int, nonce: int, code: bytes) -> dict[str, Any]:
    """An account in ``pre_state.json``'s format (storage added separately)."""
    return {"basic": {"balance": hex(balance), "nonce": nonce},
            "code": ({"bytecode": "0x" + code.hex(), "original_len": len(code),
                      "jump_table": None} if code else None),
            "code_hash": "0x" + keccak(code).hex() if code else None}


def part_from_prestate(result: Any, where: str) -> StatePart:
    """One transaction's ``prestateTracer`` result (geth's shape) as a view.

    Missing fields are zero or empty. An account with nothing in it (geth lists
    the touched accounts that do not exist as ``{"balance": "0x0"}``) was absent.
    """
    if not isinstance(result, dict):
        raise ValueError(f"{where}: expected an object of accounts, got "
                         f"{type(result).__name__}")
    part = StatePart()
    for key, entry in result.items():
        what = f"{where}: account {key}"
        address = _address(key, what)
        if not isinstance(entry, dict):
            raise ValueError(f"{what}: expected an object")
        balance = _int(entry.get("balance", 0), f"{what}: balance")
        nonce = _int(entry.get("nonce", 0), f"{what}: nonce")
        code = _bytes(entry.get("code") or "0x", f"{what}: code")
        slots = {_int(slot, f"{what}: storage slot"): _int(value, f"{what}: storage")
                 for slot, value in (entry.get("storage") or {}).items()}
        exists = balance or nonce or code or any(slots.values())
        part.accounts[address] = account_record(balance, nonce, code) if exists else None
        if exists:
            part.slots[address] = slots
    return part


def part_from_snapshot(pre_state: dict[str, Any], where: str) -> StatePart:
    """A ``pre_state.json`` (corpus format) as a view; records are kept as they are."""
    part = StatePart()
    for key, account in pre_state.items():
        address = _address(key, f"{where}: account {key}")
        if not isinstance(account, dict):
            raise ValueError(f"{where}: account {key}: expected an object")
        part.accounts[address] = {k: v for k, v in account.items() if k != "storage"}
        part.slots[address] = {
            _int(slot, f"{where}: storage slot"): _int(value, f"{where}: storage")
            for slot, value in (account.get("storage") or {}).items()}
    return part


def first_occurrence(parts: Sequence[StatePart],
                     touched: Sequence[Touched] | None = None) -> dict[str, Any]:
    """The state before ``parts[0]`` ran, as ``pre_state.json`` (see module docstring).

    ``touched[i]``: what element ``i`` touched (None: not known, so nothing is left
    out for it).
    """
    first_account: dict[bytes, int] = {}
    first_slot: dict[tuple[bytes, int], int] = {}
    first_wipe: dict[bytes, int] = {}
    for index, seen in enumerate(touched or ()):
        for address in seen.accounts:
            first_account.setdefault(address, index)
        for location in seen.slots:
            first_slot.setdefault(location, index)
        for address in seen.wiped:
            first_wipe.setdefault(address, index)
    accounts: dict[bytes, tuple[int, dict[str, Any] | None]] = {}
    slots: dict[bytes, dict[int, tuple[int, int]]] = {}
    for index, part in enumerate(parts):
        for address, record in part.accounts.items():
            accounts.setdefault(address, (index, record))
        for address, values in part.slots.items():
            mine = slots.setdefault(address, {})
            for slot, value in values.items():
                mine.setdefault(slot, (index, value))
    out: dict[str, Any] = {}
    for address in sorted(accounts):
        index, record = accounts[address]
        if record is None or first_account.get(address, index) < index:
            continue  # absent before the first element (or created by an earlier one)
        storage = {}
        for slot, (seen_at, value) in sorted(slots.get(address, {}).items()):
            earlier = min(first_slot.get((address, slot), seen_at),
                          first_wipe.get(address, seen_at))
            if earlier >= seen_at:
                storage[hex(slot)] = hex(value)
        out["0x" + address.hex()] = {**record, "storage": storage}
    return out


class _Touches(StateObserver):
    """Logs every account and slot a state is asked about, and every wipe, against
    the transaction being applied (none after the last one)."""

    def __init__(self, touched: list[Touched]) -> None:
        self.touched = touched
        self.position = 0

    def read(self, address: bytes, what: Field, slot: int | None) -> None:
        if self.position >= len(self.touched):
            return
        seen = self.touched[self.position]
        seen.accounts.add(bytes(address))
        if what is Field.SLOT:
            assert slot is not None
            seen.slots.add((bytes(address), int(slot)))
        elif what is Field.WIPE or what is Field.DELETE:
            seen.wiped.add(bytes(address))

    write = read


class SnapshotProbe(ReferenceEngine):
    """py-evm's reference loop, recording what each transaction touches (any
    account or slot it asks the account database about) and the ancestors
    BLOCKHASH reads. Only the sets matter here, not who depends on whom, so this
    is deliberately simpler than :mod:`pevm.engines.recording`."""

    def __init__(self) -> None:
        #: per transaction
        self.touched: list[Touched] = []
        #: block numbers BLOCKHASH asked for that are within its 256-block window
        self.ancestors: set[int] = set()

    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        self.touched = [Touched() for _ in transactions]
        touches = _Touches(self.touched)
        state: Any = vm.state
        observation = observe_state(state, touches)

        def quiet(original: Callable[..., Any]) -> Callable[..., Any]:
            # Computing a state root (after every transaction before Byzantium)
            # asks about every account changed so far: not the transaction's touches.
            def call(*args: Any, **kwargs: Any) -> Any:
                with observation.quiet():
                    return original(*args, **kwargs)
            return call

        def ancestors(original: Callable[[int], bytes]) -> Callable[[int], bytes]:
            def get_ancestor_hash(block_number: int) -> bytes:
                if 0 <= state.block_number - block_number - 1 < MAX_PREV_HEADER_DEPTH \
                        and block_number >= 0:
                    self.ancestors.add(int(block_number))
                return original(block_number)
            return get_ancestor_hash

        def counting(original: Callable[..., None]) -> Callable[..., None]:
            def next_transaction(*args: Any, **kwargs: Any) -> None:
                touches.position += 1
                original(*args, **kwargs)
            return next_transaction

        undo = [patch_methods(pyevm_account_db(state),
                              {"make_state_root": quiet, "persist": quiet}),
                patch_methods(state, {"get_ancestor_hash": ancestors}),
                patch_methods(vm, {"transaction_applied_hook": counting})]
        try:
            return super().apply_transactions(vm, transactions, base_header)
        finally:
            for step in reversed(undo):
                step()
            observation.close()


@dataclass
class Probe:
    """A snapshot run through the reference: the verdict and what it touched."""

    #: why the block does not reproduce its header (empty: it does)
    problems: list[str]
    #: per transaction
    touched: list[Touched]
    ancestors: set[int]
    result: BlockResult | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def block_touched(self) -> Touched:
        """Everything the block's transactions touched."""
        out = Touched()
        for seen in self.touched:
            out.update(seen)
        return out


def probe_snapshot(path: str) -> Probe:
    """Run the snapshot at ``path`` through py-evm's reference (raises InputError)."""
    task = load_snapshot(path)
    engine = SnapshotProbe()
    outcome = task.execute(engine)
    problems = []
    if outcome.rejection is not None:
        problems.append(f"py-evm rejects it: {outcome.rejection}")
    if outcome.result is not None:
        problems.extend(str(m) for m in compare_expectations(task.expect, outcome.result))
    elif outcome.rejection is None:  # pragma: no cover - the pipeline always has one
        problems.append("the import gave no result")
    return Probe(problems, engine.touched, engine.ancestors, outcome.result)
