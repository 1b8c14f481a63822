"""Building a :class:`~pevm.workloads.scenario.Scenario`'s block with py-evm.

:func:`build_block` (what :meth:`Scenario.build <pevm.workloads.scenario.Scenario.build>`
runs) signs the scenario's intents with correct nonces and fees, puts its genesis
state in a fresh chain, executes the block through the fork's own
``VM.import_block`` (pre-block system steps, transactions, withdrawals, post-block
requests, finalisation) while recording what it writes, and returns the
:class:`~pevm.workloads.scenario.Built` block with its receipts and post-state.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from typing import Any

from eth.abc import ReceiptAPI, SignedTransactionAPI, StateAPI, VirtualMachineAPI
from eth.chains.mainnet import MainnetChain
from eth.constants import BLANK_ROOT_HASH, ZERO_ADDRESS, ZERO_HASH32
from eth.db.atomic import AtomicDB
from eth.tools.builder.chain import disable_pow_check
from eth.vm.forks import CancunVM, LondonVM, ParisVM, PragueVM, ShanghaiVM
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.datatypes import PrivateKey
from eth_typing import Address
from eth_utils import ValidationError

from pevm.pyevm_compat import WriteLog, observed_vm_class
from pevm.workloads.scenario import (
    BLOCK_TIME, CHAIN_ID, COINBASE, GENESIS_BASE_FEE, GENESIS_DIFFICULTY, GWEI, AccountSpec,
    Built, GenerationFailed, Intent, Scenario, WorkloadError,
)


# -- signing ---------------------------------------------------------------------
def _sign_all(scenario: Scenario, base_fee: int | None,
              progress: Callable[[str, int, int], None] | None
              ) -> tuple[list[SignedTransactionAPI], list[bytes]]:
    # the fork's own builder: its typed-transaction methods are not in py-evm's API
    builder: Any = scenario.vm_class.get_transaction_builder()
    rng = random.Random(f"pevm workloads {scenario.seed} fees")
    nonces: dict[bytes, int] = {}
    key_objects: dict[bytes, PrivateKey] = {}
    types = scenario.tx_types
    weights = {0: 20, 1: 15, 2: 65}
    signed: list[SignedTransactionAPI] = []
    senders: list[bytes] = []
    total = len(scenario.intents)
    for index, intent in enumerate(scenario.intents):
        sender = intent.sender.address
        nonce = nonces.get(sender, scenario.pre.get(sender, AccountSpec()).nonce)
        nonces[sender] = nonce + 1
        key = key_objects.get(sender)
        if key is None:
            key = key_objects[sender] = keys.PrivateKey(intent.sender.private_key)
        tx_type = intent.tx_type
        if tx_type is None:
            tx_type = rng.choices(types, weights=[weights[t] for t in types])[0]
        elif tx_type not in types:
            raise WorkloadError(f"{scenario.network} has no type-{tx_type} transactions")
        tip = rng.randrange(1, 4) * GWEI // rng.choice((1, 2, 4))
        base = base_fee if base_fee is not None else GWEI
        to = intent.to if intent.to is not None else b""
        access_list = tuple((address, tuple(slots)) for address, slots in intent.access)
        if tx_type == 2:
            if rng.random() < 0.7:
                access_list = ()
            unsigned = builder.new_unsigned_dynamic_fee_transaction(
                chain_id=CHAIN_ID, nonce=nonce, max_priority_fee_per_gas=tip,
                max_fee_per_gas=2 * base + tip, gas=intent.gas, to=to,
                value=intent.value, data=intent.data, access_list=access_list)
        elif tx_type == 1:
            unsigned = builder.new_unsigned_access_list_transaction(
                chain_id=CHAIN_ID, nonce=nonce, gas_price=base + tip, gas=intent.gas,
                to=to, value=intent.value, data=intent.data, access_list=access_list)
        else:
            unsigned = builder.create_unsigned_transaction(
                nonce=nonce, gas_price=base + tip, gas=intent.gas, to=to,
                value=intent.value, data=intent.data)
        transaction = unsigned.as_signed_transaction(key, chain_id=CHAIN_ID)
        if tx_type:
            # py-evm signs typed transactions into London's class; the block's sedes
            # needs the fork's own, so round-trip through the fork's builder.
            transaction = builder.decode(transaction.encode())
        signed.append(transaction)
        senders.append(sender)
        if progress is not None:
            progress("signing", index + 1, total)
    return signed, senders


# -- execution -------------------------------------------------------------------
def _recording_vm(vm_class: type[VirtualMachineAPI], writes: WriteLog,
                  on_applied: Callable[[int, Any, ReceiptAPI], None]) -> type:
    """``vm_class`` logging into ``writes`` what every state it builds writes (the
    genesis state included) and calling ``on_applied`` after each transaction."""

    def transaction_applied_hook(self: Any, transaction_index: int, transactions: Any,
                                 base_header: Any, partial_header: Any, computation: Any,
                                 receipt: ReceiptAPI) -> None:
        on_applied(transaction_index, computation, receipt)

    # transaction_applied_hook is py-evm's public hook for subclasses
    return type(f"Recording{vm_class.__name__}", (observed_vm_class(vm_class, writes),),
                {"transaction_applied_hook": transaction_applied_hook})


def _genesis_params(scenario: Scenario, gas_limit: int) -> dict[str, Any]:
    merged = scenario.has(ParisVM)
    params: dict[str, Any] = {
        "coinbase": ZERO_ADDRESS,
        "difficulty": 0 if merged else GENESIS_DIFFICULTY,
        "gas_limit": gas_limit,
        "timestamp": 0,
        "extra_data": b"",
        "mix_hash": ZERO_HASH32,
        "nonce": b"\0" * 8,
    }
    if scenario.has(LondonVM):
        params["base_fee_per_gas"] = GENESIS_BASE_FEE
    if scenario.has(ShanghaiVM):
        params["withdrawals_root"] = BLANK_ROOT_HASH
    if scenario.has(CancunVM):
        params["blob_gas_used"] = 0
        params["excess_blob_gas"] = 0
        params["parent_beacon_block_root"] = ZERO_HASH32
    if scenario.has(PragueVM):
        params["requests_hash"] = hashlib.sha256(b"").digest()
    return params


def _state_dict(pre: dict[bytes, AccountSpec]) -> dict[bytes, dict[str, Any]]:
    return {address: {"balance": spec.balance, "nonce": spec.nonce, "code": spec.code,
                      "storage": dict(spec.storage)}
            for address, spec in pre.items()}


def block_gas_limit(intents: Sequence[Intent]) -> int:
    """A gas limit that fits every transaction (at least 30M, like mainnet)."""
    need = sum(intent.gas for intent in intents)
    return max(30_000_000, need + need // 10 + 1_000_000)


def build_block(scenario: Scenario, progress: Callable[[str, int, int], None] | None,
                check: bool) -> Built:
    """See :meth:`Scenario.build <pevm.workloads.scenario.Scenario.build>`."""
    if not scenario.intents:
        raise WorkloadError("a block needs at least one transaction")
    gas_limit = block_gas_limit(scenario.intents)
    written = WriteLog()
    receipts: list[ReceiptAPI] = []
    errors: list[str | None] = []
    total = len(scenario.intents)

    def report(phase: str, done: int, of: int) -> None:
        if progress is not None:
            progress(phase, done, of)

    def on_applied(index: int, computation: Any, receipt: ReceiptAPI) -> None:
        receipts.append(receipt)
        errors.append(repr(computation.error) if computation.is_error else None)
        report("executing", index + 1, total)
        if index + 1 == total:
            report("state root", 0, 1)

    vm_class = _recording_vm(scenario.vm_class, written, on_applied)
    chain_class = disable_pow_check(MainnetChain.configure(
        __name__="PevmWorkloadChain", vm_configuration=((0, vm_class),)))
    base_db = AtomicDB()
    pre = {address: spec for address, spec in scenario.pre.items()}
    report("genesis", 0, 1)
    chain = chain_class.from_genesis(base_db, _genesis_params(scenario, gas_limit),
                                     _state_dict(pre))
    report("genesis", 1, 1)
    genesis_header = chain.get_canonical_head()
    genesis_block = chain.get_canonical_block_by_number(0)

    header_params: dict[str, Any] = {
        "coinbase": COINBASE, "timestamp": genesis_header.timestamp + BLOCK_TIME,
        "gas_limit": gas_limit, "extra_data": b"pevm workloads",
    }
    if scenario.has(CancunVM):
        header_params["parent_beacon_block_root"] = keccak(
            b"pevm workloads: beacon root" + scenario.seed.to_bytes(8, "big", signed=True))
    header = chain.create_header_from_parent(genesis_header, **header_params)
    base_fee = getattr(header, "base_fee_per_gas", None)
    transactions, senders = _sign_all(scenario, base_fee, progress)
    withdrawals = tuple(
        Withdrawal(index=index, validator_index=validator, address=Address(address),
                   amount=amount) for index, validator, address, amount in
        scenario.withdrawals)

    vm = chain.get_vm(header)
    block_fields: dict[str, Any] = {"transactions": transactions, "uncles": []}
    if scenario.has(ShanghaiVM):
        block_fields["withdrawals"] = withdrawals
    draft = vm.get_block_class()(header, **block_fields)
    try:
        block = vm.import_block(draft).block
        chain.validate_block(block)
    except ValidationError as exc:
        index = len(receipts)
        where = ""
        if index < total:
            where = f" at transaction {index} ({scenario.intents[index].label or 'tx'})"
        raise GenerationFailed(f"py-evm rejected the generated block{where}: {exc}") from exc
    chain.chaindb.persist_block(block)
    report("state root", 1, 1)

    if check:
        for index, (intent, receipt) in enumerate(zip(scenario.intents, receipts)):
            succeeded = _receipt_succeeded(receipt)
            if succeeded != intent.expect_success:
                raise GenerationFailed(
                    f"transaction {index} ({intent.label or 'tx'}) "
                    f"{'succeeded' if succeeded else 'failed: ' + str(errors[index])}, "
                    f"but was meant to {'succeed' if intent.expect_success else 'revert'}")

    state = vm.state
    report("post-state", 0, 1)
    post = _post_state(state, pre, written)
    report("post-state", 1, 1)
    return Built(network=scenario.network, vm_class=scenario.vm_class,
                 genesis_header=genesis_header, genesis_block=genesis_block, pre=pre,
                 block=block, transactions=tuple(transactions), senders=tuple(senders),
                 intents=tuple(scenario.intents), receipts=tuple(receipts),
                 errors=tuple(errors), state=state, post=post, withdrawals=withdrawals)


def _receipt_succeeded(receipt: ReceiptAPI) -> bool:
    # Byzantium and later: the state_root field holds the status byte.
    return receipt.state_root == b"\x01"


def _post_state(state: StateAPI, pre: dict[bytes, AccountSpec],
                written: WriteLog) -> dict[bytes, AccountSpec]:
    """Every account after the block, with its non-zero storage.

    Accounts and slots the block never wrote keep their genesis values; everything
    it wrote (or wiped) is read back from py-evm's post-state.
    """
    post: dict[bytes, AccountSpec] = {}
    for raw_address in set(pre) | written.accounts:
        address = Address(raw_address)
        spec = pre.get(address)
        if address not in written.accounts and spec is not None:
            post[address] = AccountSpec(spec.balance, spec.nonce, spec.code,
                                        dict(spec.storage))
            continue
        if not state.account_exists(address):
            continue
        wiped = address in written.wiped
        storage: dict[int, int] = {}
        slots = written.slots.get(address, set())
        if spec is not None and not wiped:
            storage.update(spec.storage)
        else:
            slots = slots | set(spec.storage if spec else ())
        for slot in slots:
            value = state.get_storage(address, slot)
            if value:
                storage[slot] = value
            else:
                storage.pop(slot, None)
        post[address] = AccountSpec(balance=state.get_balance(address),
                                    nonce=state.get_nonce(address),
                                    code=state.get_code(address), storage=storage)
    return post
