"""Blocks for the parallel engine's differential tests: chains, contracts, intents.

A block is described as a list of *intents* (what each transaction does); the
builder signs them with the right nonces on a fresh chain of the chosen fork, lets
py-evm mine them, and the tests import the mined block on identical fresh chains
with the reference and the parallel engines.

The genesis holds funded keys (key 0 is also the block beneficiary, so the
beneficiary sends transactions too), an existing *empty* account, and hand-assembled
contracts:

``COUNTER``   slot[calldata[0]] += calldata[32]; logs the new value
``READER``    slot 0 := BALANCE(COINBASE) (reads the beneficiary's balance)
``SENDER_READER`` slot 0 := BALANCE(CALLER) (a sender looking at its own balance
              after paying for the transaction)
``REVERTER``  slot 5 := 1, calls COUNTER with its calldata, then REVERTs
``OUTER``     calls REVERTER (which reverts), slot 6 := its status, calls COUNTER
``FACTORY2``  CREATE2(salt = calldata[0]) of CHILD, slot 0 := address, then calls
              the child with gas calldata[32] (0: the call fails; else the child
              self-destructs to the factory)
``FACTORY``   the same with CREATE (addresses follow the factory's nonce)
``DOOMED``    has storage and balance; reads its slot 0, then SELFDESTRUCTs to its
              caller
``PROBE``     stores BALANCE and EXTCODESIZE (``PROBE_HASH``: and EXTCODEHASH) of
              calldata[0], then calls it with calldata[32] wei
``VAULT``     holds ether; sends calldata[0] wei to its caller (a deposit sends
              value and asks for 0) and logs whether that call succeeded
              (``VAULT_PEEK``: then also stores its own balance in slot 1)
CHILD         init: slot 0 := 1; runtime: SELFDESTRUCT to the caller
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth import constants
from eth._utils.address import generate_contract_address, generate_safe_contract_address
from eth.abc import VirtualMachineAPI
from eth.chains.base import MiningChain
from eth.consensus.noproof import NoProofConsensus
from eth.db.atomic import AtomicDB
from eth.vm.forks import (BerlinVM, ByzantiumVM, CancunVM, ConstantinopleVM,
                          HomesteadVM, IstanbulVM, LondonVM, PetersburgVM, PragueVM,
                          ShanghaiVM, SpuriousDragonVM, TangerineWhistleVM)
from eth_keys import keys
from eth_typing import Address

from pevm.compare import compare_results
from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.chain import ChainTarget

KEYS = [keys.PrivateKey(bytes([i + 1]) * 32) for i in range(8)]
ADDRESSES = [k.public_key.to_canonical_address() for k in KEYS]
COINBASE = ADDRESSES[0]
EMPTY = b"\xee" * 20           # exists in the genesis, empty (EIP-161 deletes it)
FRESH = [bytes([0xf0 + i]) * 20 for i in range(3)]   # do not exist

OPS = {
    "STOP": 0x00, "ADD": 0x01, "SLOAD": 0x54, "SSTORE": 0x55, "POP": 0x50,
    "MSTORE": 0x52, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36,
    "CALLDATACOPY": 0x37, "CODECOPY": 0x39, "COINBASE": 0x41, "BALANCE": 0x31,
    "CALLER": 0x33, "CALLVALUE": 0x34, "GAS": 0x5A, "CALL": 0xF1, "CREATE": 0xF0,
    "CREATE2": 0xF5, "RETURN": 0xF3, "REVERT": 0xFD, "SELFDESTRUCT": 0xFF,
    "LOG0": 0xA0, "DUP1": 0x80, "DUP6": 0x85, "SWAP1": 0x90,
    "EXTCODESIZE": 0x3B, "EXTCODEHASH": 0x3F, "ADDRESS": 0x30,
}


def asm(*items: Any) -> bytes:
    """Assemble ``"OP"`` names and ``("PUSH", value, width)`` tuples."""
    out = bytearray()
    for item in items:
        if isinstance(item, tuple):
            _, value, width = item
            out.append(0x5F + width)
            out += int(value).to_bytes(width, "big") if isinstance(value, int) \
                else bytes(value).rjust(width, b"\0")
        else:
            out.append(OPS[item])
    return bytes(out)


def push(value: int | bytes, width: int = 1) -> tuple:
    return ("PUSH", value, width)


def call_code(target: bytes) -> bytes:
    """CALL(gas, target, 0, 0, calldatasize, 0, 0), result left on the stack."""
    return asm(push(0), push(0), "CALLDATASIZE", push(0), push(0), push(target, 20),
               "GAS", "CALL")


COUNTER = b"\x10" * 19 + b"\x01"
READER = b"\x10" * 19 + b"\x02"
SENDER_READER = b"\x10" * 19 + b"\x0a"
REVERTER = b"\x10" * 19 + b"\x03"
OUTER = b"\x10" * 19 + b"\x04"
FACTORY2 = b"\x10" * 19 + b"\x05"
FACTORY = b"\x10" * 19 + b"\x06"
DOOMED = b"\x10" * 19 + b"\x07"
PROBE = b"\x10" * 19 + b"\x08"
PROBE_HASH = b"\x10" * 19 + b"\x09"
VAULT = b"\x10" * 19 + b"\x0b"
VAULT_PEEK = b"\x10" * 19 + b"\x0c"

COUNTER_CODE = asm(push(0), "CALLDATALOAD", "DUP1", "SLOAD", push(32), "CALLDATALOAD",
                   "ADD", "DUP1", push(0), "MSTORE", "SWAP1", "SSTORE", push(32),
                   push(0), "LOG0", "STOP")
READER_CODE = asm("COINBASE", "BALANCE", push(0), "SSTORE", "STOP")
SENDER_READER_CODE = asm("CALLER", "BALANCE", push(0), "SSTORE", "STOP")
COPY_CALLDATA = asm("CALLDATASIZE", push(0), push(0), "CALLDATACOPY")
REVERTER_CODE = asm(push(1), push(5), "SSTORE") + COPY_CALLDATA + call_code(COUNTER) \
    + asm("POP", push(0), push(0), "REVERT")
OUTER_CODE = COPY_CALLDATA + call_code(REVERTER) + asm(push(6), "SSTORE") \
    + call_code(COUNTER) + asm("POP", "STOP")
CHILD_RUNTIME = asm("CALLER", "SELFDESTRUCT")
CHILD_INIT = asm(push(1), push(0), "SSTORE", push(0x33FF, 2), push(0), "MSTORE",
                 push(2), push(30), "RETURN")
assert len(CHILD_INIT) == 16


def _factory(create2: bool) -> bytes:
    create = asm(push(0), "CALLDATALOAD", push(16), push(16), "CALLVALUE", "CREATE2") \
        if create2 else asm(push(16), push(16), "CALLVALUE", "CREATE")
    return asm(push(CHILD_INIT, 16), push(0), "MSTORE") + create + asm(
        "DUP1", push(0), "SSTORE",
        push(0), push(0), push(0), push(0), push(0), "DUP6", push(32), "CALLDATALOAD",
        "CALL", push(1), "SSTORE", "POP", "STOP")


def _probe(with_hash: bool) -> bytes:
    """Reads calldata[0]'s balance, code size (and code hash), stores them, then
    calls it forwarding calldata[32] wei (a zero-value call to a missing account
    touches it: EIP-161 deletes it again at the end of the transaction)."""
    look = asm(push(0), "CALLDATALOAD", "BALANCE", push(1), "SSTORE",
               push(0), "CALLDATALOAD", "EXTCODESIZE", push(2), "SSTORE")
    if with_hash:
        look += asm(push(0), "CALLDATALOAD", "EXTCODEHASH", push(3), "SSTORE")
    return look + asm(push(0), push(0), push(0), push(0), push(32), "CALLDATALOAD",
                      push(0), "CALLDATALOAD", "GAS", "CALL", push(0), "SSTORE",
                      "STOP")


def _vault(peek: bool) -> bytes:
    pay = asm(push(0), push(0), push(0), push(0), push(0), "CALLDATALOAD", "CALLER",
              "GAS", "CALL", push(0), "MSTORE", push(32), push(0), "LOG0")
    return pay + (asm("ADDRESS", "BALANCE", push(1), "SSTORE") if peek else b"") \
        + asm("STOP")


VAULT_CODE = _vault(False)
VAULT_PEEK_CODE = _vault(True)
PROBE_CODE = _probe(False)
PROBE_HASH_CODE = _probe(True)
FACTORY2_CODE = _factory(True)
FACTORY_CODE = _factory(False)
DOOMED_CODE = asm(push(0), "SLOAD", "POP") + CHILD_RUNTIME  # reads slot 0 first


def deploy_code(runtime: bytes) -> bytes:
    """Init code returning ``runtime``."""
    init = asm(push(len(runtime)), push(12), push(0), "CODECOPY", push(len(runtime)),
               push(0), "RETURN")
    assert len(init) == 12
    return init + runtime


def child_address(salt: int) -> bytes:
    return generate_safe_contract_address(Address(FACTORY2), salt, CHILD_INIT)


def created_address(nonce: int) -> bytes:
    return generate_contract_address(Address(FACTORY), nonce)


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


FORKS = {
    "homestead": HomesteadVM, "tangerine": TangerineWhistleVM,
    "spurious": SpuriousDragonVM, "byzantium": ByzantiumVM,
    "constantinople": ConstantinopleVM, "petersburg": PetersburgVM,
    "istanbul": IstanbulVM, "berlin": BerlinVM, "london": LondonVM,
    "shanghai": ShanghaiVM, "cancun": CancunVM, "prague": PragueVM,
}
POS = (ShanghaiVM, CancunVM, PragueVM)


#: what each vault holds in the genesis: a few withdrawals of a few wei empty it
VAULT_FUNDS = 12


def genesis_state() -> dict[bytes, dict[str, Any]]:
    def account(balance: int = 0, code: bytes = b"", storage: dict | None = None,
                nonce: int = 0) -> dict[str, Any]:
        return {"balance": balance, "nonce": nonce, "code": code,
                "storage": storage or {}}

    state = {address: account(10**20) for address in ADDRESSES}
    state[EMPTY] = account()
    state[COUNTER] = account(0, COUNTER_CODE, {0: 5, 1: 7, 2: 0}, nonce=1)
    state[READER] = account(0, READER_CODE, nonce=1)
    state[SENDER_READER] = account(0, SENDER_READER_CODE, nonce=1)
    state[REVERTER] = account(0, REVERTER_CODE, nonce=1)
    state[OUTER] = account(0, OUTER_CODE, {6: 9}, nonce=1)
    state[FACTORY2] = account(0, FACTORY2_CODE, nonce=1)
    state[FACTORY] = account(0, FACTORY_CODE, nonce=1)
    state[DOOMED] = account(1000, DOOMED_CODE, {0: 3, 9: 4}, nonce=1)
    state[PROBE] = account(0, PROBE_CODE, nonce=1)
    state[PROBE_HASH] = account(0, PROBE_HASH_CODE, nonce=1)
    state[VAULT] = account(VAULT_FUNDS, VAULT_CODE, nonce=1)
    state[VAULT_PEEK] = account(VAULT_FUNDS, VAULT_PEEK_CODE, nonce=1)
    return state


def new_chain(vm_class: type[VirtualMachineAPI]) -> MiningChain:
    """A fresh chain at ``vm_class`` from block 0 with :func:`genesis_state`."""
    vm = vm_class.configure(consensus_class=NoProofConsensus)
    if issubclass(vm_class, HomesteadVM) and not issubclass(vm_class, TangerineWhistleVM):
        vm = vm.configure(support_dao_fork=False)
    chain_class = MiningChain.configure("ParallelTestChain",
                                        vm_configuration=((0, vm),), chain_id=1)
    params: dict[str, Any] = {
        "coinbase": COINBASE, "gas_limit": 30_000_000, "timestamp": 1_700_000_000,
        "extra_data": b"", "difficulty": 131072,
    }
    if issubclass(vm_class, LondonVM):
        params["base_fee_per_gas"] = 7
    if issubclass(vm_class, POS):
        params.update(difficulty=0, nonce=b"\x00" * 8,
                      mix_hash=constants.ZERO_HASH32)
    if issubclass(vm_class, CancunVM):
        params["parent_beacon_block_root"] = constants.ZERO_HASH32
    genesis: dict[Any, Any] = genesis_state()  # py-evm wants Address keys: bytes here
    chain = chain_class.from_genesis(AtomicDB(), params, genesis)
    assert isinstance(chain, MiningChain)
    return chain


@dataclass(frozen=True)
class Intent:
    """One transaction to build: ``kind`` with its parameters (see :func:`build_tx`)."""

    kind: str
    sender: int
    a: int = 0
    b: int = 0
    tip: int = 1
    #: the gas limit, where not the kind's default
    gas: int = 0


TARGETS = ADDRESSES + [COINBASE, EMPTY, COUNTER, DOOMED] + FRESH


def build_tx(chain: MiningChain, intent: Intent, nonce: int) -> Any:
    """Sign ``intent`` as a transaction of the chain's fork."""
    vm = chain.get_vm()
    gas, value, data, to = 300_000, 0, b"", b""
    kind = intent.kind
    if kind == "transfer":
        to, value, gas = TARGETS[intent.a % len(TARGETS)], intent.b, 100_000
    elif kind == "incr":
        to, data = COUNTER, word(intent.a % 4) + word(intent.b)
    elif kind == "read_coinbase":
        to = READER
    elif kind == "read_sender":
        to, value = SENDER_READER, intent.b % 2
    elif kind == "revert":
        to, data = REVERTER, word(intent.a % 4) + word(1)
    elif kind == "nested_revert":
        to, data = OUTER, word(intent.a % 4) + word(1)
    elif kind == "create2":
        to, data, value = FACTORY2, word(intent.a % 3) + word(
            50_000 if intent.b % 2 else 0), intent.b % 3
    elif kind == "create":
        to, data = FACTORY, word(0) + word(50_000 if intent.b % 2 else 0)
    elif kind == "kill_child":
        to, value = child_address(intent.a % 3), intent.b % 2
    elif kind == "kill_created":
        to = created_address(1 + intent.a % 3)
    elif kind == "doom":
        to, value = DOOMED, intent.b % 2
    elif kind == "deploy":
        to, data = b"", deploy_code(COUNTER_CODE)
    elif kind in ("vault", "vault_peek"):  # deposit a wei, withdraw b wei
        to = VAULT if kind == "vault" else VAULT_PEEK
        value, data = intent.a, word(intent.b)
    elif kind in ("probe", "probe_hash"):
        targets = FRESH + [EMPTY, DOOMED, COINBASE, COUNTER, child_address(0),
                           created_address(1)]
        target = targets[intent.a % len(targets)]
        value = intent.b % 2
        to = PROBE if kind == "probe" else PROBE_HASH
        data = target.rjust(32, b"\0") + word(value)
    else:
        raise ValueError(kind)
    gas = intent.gas or gas
    key = KEYS[intent.sender % len(KEYS)]
    if isinstance(vm, LondonVM):
        # London's builder: typed-transaction methods are not in py-evm's builder API
        builder: Any = vm.get_transaction_builder()
        unsigned = builder.new_unsigned_dynamic_fee_transaction(
            chain_id=1, nonce=nonce, max_priority_fee_per_gas=intent.tip,
            max_fee_per_gas=10**6, gas=gas, to=to, value=value, data=data,
            access_list=())
    else:
        unsigned = vm.create_unsigned_transaction(
            nonce=nonce, gas_price=intent.tip, gas=gas, to=Address(to), value=value,
            data=data)
    return unsigned.as_signed_transaction(key)


def build_block(vm_class: type, intents: Sequence[Intent]) -> Any:
    """Mine ``intents`` (nonces assigned in order) on a fresh chain; the block."""
    chain = new_chain(vm_class)
    nonces: dict[int, int] = {}
    transactions = []
    for intent in intents:
        sender = intent.sender % len(KEYS)
        transactions.append(build_tx(chain, intent, nonces.get(sender, 0)))
        nonces[sender] = nonces.get(sender, 0) + 1
    result, _, _ = chain.mine_all(transactions, coinbase=COINBASE)
    return result.imported_block


def fresh_copy(block: Any) -> Any:
    """The block with freshly decoded transaction objects (engines pin senders on
    the objects they run: each import gets its own)."""
    builder = type(block).get_transaction_builder()
    return block.copy(transactions=[builder.decode(tx.encode())
                                    for tx in block.transactions])


def import_block(vm_class: type, block: Any, engine: Any) -> Any:
    """Import ``block`` with ``engine`` on a fresh chain; the BlockOutcome."""
    block = fresh_copy(block)
    return ChainTarget(new_chain(vm_class)).execute(block, engine)


def assert_same(reference: Any, outcome: Any, label: str = "") -> None:
    """Same rejection status (and index) and, if executed, no result difference."""
    assert (reference.rejection is None) == (outcome.rejection is None), \
        f"{label}: rejection {reference.rejection} vs {outcome.rejection}"
    if reference.rejection is not None:
        assert str(reference.rejection) == str(outcome.rejection), \
            f"{label}: rejected with {reference.rejection} vs {outcome.rejection}"
    assert (reference.result is None) == (outcome.result is None), label
    if reference.result is not None:
        problems = compare_results(reference.result, outcome.result)
        assert problems == [], f"{label}: " + "; ".join(map(str, problems))


def reference(vm_class: type, block: Any) -> Any:
    return import_block(vm_class, block, ReferenceEngine())


def module_block(vm_class: type, intents: Sequence[Intent]) -> tuple[Any, Any]:
    """The fixtures ``block`` (``intents`` mined on ``vm_class``) and ``want``
    (py-evm's import of it), built once per test module:
    ``block, want = module_block(CancunVM, INTENTS)``."""

    @pytest.fixture(scope="module")
    def block() -> Any:
        return build_block(vm_class, intents)

    @pytest.fixture(scope="module")
    def want(block: Any) -> Any:
        return reference(vm_class, block)

    return block, want


def hypothesis_profile_examples(default: int) -> int:
    """``PEVM_HYPOTHESIS_EXAMPLES`` overrides the examples per property test."""
    return int(os.environ.get("PEVM_HYPOTHESIS_EXAMPLES", default))


#: a block of every kind of intent, each kind's edge cases side by side, twice
MIXED = [
    Intent("transfer", 1, 0, 5, tip=1),          # value to the beneficiary
    Intent("incr", 2, 0, 1),
    Intent("incr", 3, 0, 2),                     # same slot as the one before
    Intent("read_coinbase", 4),                  # reads every fee credit so far
    Intent("transfer", 0, 2, 7, tip=0),          # the beneficiary sends
    Intent("nested_revert", 5, 1),
    Intent("revert", 6, 2),
    Intent("create2", 1, 0, 1),                  # create and destroy in one tx
    Intent("create2", 2, 0, 0),                  # create again (same salt)
    Intent("kill_child", 3, 0, 1),
    Intent("create", 4, 0, 1),
    Intent("kill_created", 5, 0),
    Intent("doom", 6, 0, 1),                     # self-destruct with storage
    Intent("transfer", 7, 14, 0, tip=0),         # zero value to an empty account
    Intent("transfer", 1, 15, 3),                # value to a fresh account
    Intent("deploy", 2),
    Intent("incr", 1, 1, 0),                     # no-op write
    Intent("read_coinbase", 3),
    Intent("transfer", 2, 15, 1),
    Intent("doom", 4, 0, 0),                     # call the destroyed account
    Intent("probe_hash", 5, 0, 0),               # touch a missing account
    Intent("probe", 6, 4, 1),                    # value to the destroyed one
    Intent("probe_hash", 7, 3, 0),               # the existing empty account
] * 2


def in_process_import(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
                      replacement: Any, **options: Any) -> tuple[ParallelEngine, Any]:
    """Import MIXED at 2 workers with ``owner.<name>`` replaced; it must run in one
    process and equal py-evm. (A test of whether workers pay fixes what the
    clock would decide: ``sender_pipeline=False``, as the look at the sender
    pipeline weighs measured times, and a warm-up that settles by count
    (``SETTLED_WORK_S`` 0 and a long ``fork_after``) -- a short ``fork_after`` can
    run out before the first transaction on a loaded machine, and a warm-up that
    ran none starts the workers without asking ``workers_that_pay``.)"""
    monkeypatch.setattr(owner, name, replacement)
    engine, got = import_checked(2, **options)
    assert got.result.stats.workers == 1
    return engine, got


def import_checked(workers: int, **options: Any) -> tuple[ParallelEngine, Any]:
    """Import MIXED at ``workers`` with the engine's ``options``; it must equal
    py-evm. Returns the engine and the import."""
    block = build_block(CancunVM, MIXED)
    engine = ParallelEngine(workers=workers, min_parallel_txs=2, **options)
    got = import_block(CancunVM, block, engine)
    assert_same(reference(CancunVM, block), got)
    return engine, got
