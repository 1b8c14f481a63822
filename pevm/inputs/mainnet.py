"""Ethereum mainnet block snapshots: ``block.json`` + ``pre_state.json`` (+ hashes).

``block.json`` is the JSON-RPC ``eth_getBlockByNumber(n, true)`` form;
``pre_state.json`` holds every account and slot the block's transactions touch as
it stood before the block; ``block_hashes.json`` (optional) gives ancestors' hashes
for BLOCKHASH. Fork rules come from py-evm's mainnet configuration by number.

A snapshot is a *partial* state, so three things differ from a full import, each
because the data to do it is absent: header validation (needs the parent header) is
skipped, block rewards and withdrawals (they touch accounts outside the snapshot)
are skipped, and no state root is reported. Everything the transactions do -- and so
``gasUsed``, ``logsBloom`` and, from Byzantium, ``receiptsRoot`` -- is checked.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from eth.abc import BlockAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.consensus.context import ConsensusContext
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3, EMPTY_UNCLE_HASH, ZERO_HASH32
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.vm.chain_context import ChainContext
from eth_hash.auto import keccak
from eth_typing import Address
from eth_utils import ValidationError, to_canonical_address

from pevm.errors import InputError
from pevm.forks import mainnet_vm_class
from pevm.inputs.blockchain_tests import read_json
from pevm.abc import Engine
from pevm.pipeline import BlockOutcome, import_with_engine
from pevm.pyevm_compat import field_names, header_class_of
from pevm.state.backend import (StateBackend, chain_db_class, load_state, new_database,
                                vm_class_on)
from pevm.task import BlockTask, Expectations

BYZANTIUM_BLOCK = 4_370_000
MAINNET_CHAIN_ID = 1
SNAPSHOT_FILES = ("block.json", "pre_state.json")


def absent_snapshot_files(path: str) -> list[str]:
    """Those of :data:`SNAPSHOT_FILES` that the directory ``path`` lacks: none in a
    snapshot directory, one in a snapshot half fetched or half copied."""
    return [name for name in SNAPSHOT_FILES
            if not os.path.isfile(os.path.join(path, name))]


def is_snapshot_dir(path: str) -> bool:
    return not absent_snapshot_files(path)


def missing_snapshot_file(path: str) -> str | None:
    """The one of :data:`SNAPSHOT_FILES` missing from a directory that holds the
    other (a snapshot half fetched or half copied); None otherwise."""
    absent = absent_snapshot_files(path)
    return absent[0] if len(absent) == 1 else None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    raise ValueError(f"{what}: expected a number, got {value!r}")


def _bytes(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise ValueError(f"{what}: expected 0x-prefixed hex, got {value!r}")
    data = bytes.fromhex(value[2:])
    if length is not None and len(data) != length:
        raise ValueError(f"{what}: expected {length} bytes, got {len(data)}")
    return data


def _address(value: Any, what: str) -> Address:
    return Address(_bytes(value, what, 20))


class SnapshotVMMixin:
    """What a VM running on a partial snapshot must not do (see module docstring)."""

    snapshot_previous_hashes: tuple[bytes, ...] = ()

    @property
    def previous_hashes(self) -> tuple[bytes, ...]:
        return self.snapshot_previous_hashes

    def configure_header(self, **fields: Any) -> Any:
        # py-evm derives some fields (difficulty) from the parent, which a snapshot
        # lacks; the block's own values are the right ones.
        return self.get_header().copy(**fields)  # type: ignore[attr-defined]

    def validate_block(self, block: BlockAPI) -> None:
        """Header validation needs the parent header; a snapshot has none."""

    def _assign_block_rewards(self, block: BlockAPI) -> None:
        """Rewards credit accounts outside the snapshot."""

    def apply_all_withdrawals(self, withdrawals: Sequence[Any]) -> None:
        """Withdrawals credit accounts outside the snapshot."""


_SNAPSHOT_VM_CLASSES: dict[type, type] = {}


def snapshot_vm_class(vm_class: type) -> type:
    if vm_class not in _SNAPSHOT_VM_CLASSES:
        _SNAPSHOT_VM_CLASSES[vm_class] = type(
            f"Snapshot{vm_class.__name__}", (SnapshotVMMixin, vm_class), {})
    return _SNAPSHOT_VM_CLASSES[vm_class]


class SnapshotTarget:
    """A partial pre-state in a fresh database; imports one block onto it."""

    full_state = False

    def __init__(self, vm_class: type, db: AtomicDB, pre_root: bytes,
                 previous_hashes: tuple[bytes, ...],
                 chain_db_class: type[ChainDB]) -> None:
        self.vm_class = snapshot_vm_class(vm_class)
        self.chain_db_class = chain_db_class
        self.db = db
        self.pre_root = pre_root
        self.previous_hashes = previous_hashes

    def execute(self, block: BlockAPI, engine: Engine) -> BlockOutcome:
        def run_import(hook: Callable[[VirtualMachineAPI], None]) -> BlockAPI:
            header = block.header.copy(
                state_root=self.pre_root, gas_used=0, bloom=0, uncles_hash=EMPTY_UNCLE_HASH,
                receipt_root=BLANK_ROOT_HASH, transaction_root=BLANK_ROOT_HASH,
                **({"blob_gas_used": 0} if hasattr(block.header, "blob_gas_used")
                   else {}),
                **({"withdrawals_root": BLANK_ROOT_HASH}
                   if hasattr(block.header, "withdrawals_root") else {}),
            )
            vm = self.vm_class(header=header, chaindb=self.chain_db_class(self.db),
                               chain_context=ChainContext(MAINNET_CHAIN_ID),
                               consensus_context=ConsensusContext(self.db))
            vm.snapshot_previous_hashes = self.previous_hashes
            hook(vm)
            return vm.import_block(block).block

        return import_with_engine(run_import, engine, self.db, full_state=False)


def load_snapshot(path: str, backend: StateBackend = StateBackend.PYEVM) -> BlockTask:
    """Read a mainnet snapshot directory into a task whose pre-state lives on
    ``backend`` (raises InputError)."""
    block_json = read_json(os.path.join(path, "block.json"))
    pre_json = read_json(os.path.join(path, "pre_state.json"))
    hashes_path = os.path.join(path, "block_hashes.json")
    hashes_json = read_json(hashes_path) if os.path.exists(hashes_path) else {}
    if not isinstance(block_json, dict):
        raise InputError(os.path.join(path, "block.json"), "expected a JSON object")
    if not isinstance(pre_json, dict):
        raise InputError(os.path.join(path, "pre_state.json"), "expected a JSON object")
    try:
        number = _int(block_json["number"], "number")
    except (KeyError, ValueError) as exc:
        raise InputError(os.path.join(path, "block.json"),
                         f"bad block number: {exc}") from exc
    vm_class = mainnet_vm_class(number)
    block = _decode_block(os.path.join(path, "block.json"), block_json, vm_class)
    db = new_database(backend)
    pre_root = _load_pre_state(os.path.join(path, "pre_state.json"), pre_json, db, backend)
    previous = _previous_hashes(hashes_path, hashes_json, number, block.header.parent_hash)
    expect = Expectations(
        gas_used=block.header.gas_used, bloom=block.header.bloom,
        transactions_root=block.header.transaction_root,
        receipts_root=block.header.receipt_root if number >= BYZANTIUM_BLOCK else None,
    )
    merged = block_json.get("pevmMerged")
    if merged:
        # Made by `pevm merge` from several blocks: these header values are not
        # Ethereum's (its transactionsRoot and hash are recomputed, so still checked).
        expect.gas_used = expect.bloom = expect.receipts_root = None
    case = f"mainnet-{number}" + (f"..{merged.get('to')}" if isinstance(merged, dict) else "")
    return BlockTask(source=path, case=case, index=0,
                     network=vm_class.fork, vm_class=vm_class, block=block,
                     target=SnapshotTarget(vm_class_on(backend, vm_class), db, pre_root,
                                           previous, chain_db_class(backend)),
                     expect=expect)


def _decode_block(source: str, data: dict[str, Any],
                  vm_class: type[VirtualMachineAPI]) -> BlockAPI:
    block_class: Any = vm_class.get_block_class()
    header_class = header_class_of(block_class)
    try:
        fields: dict[str, Any] = dict(
            parent_hash=_bytes(data["parentHash"], "parentHash", 32),
            uncles_hash=_bytes(data["sha3Uncles"], "sha3Uncles", 32),
            coinbase=_address(data["miner"], "miner"),
            state_root=_bytes(data["stateRoot"], "stateRoot", 32),
            transaction_root=_bytes(data["transactionsRoot"], "transactionsRoot", 32),
            receipt_root=_bytes(data["receiptsRoot"], "receiptsRoot", 32),
            bloom=_int(data["logsBloom"], "logsBloom"),
            difficulty=_int(data["difficulty"], "difficulty"),
            block_number=_int(data["number"], "number"),
            gas_limit=_int(data["gasLimit"], "gasLimit"),
            gas_used=_int(data["gasUsed"], "gasUsed"),
            timestamp=_int(data["timestamp"], "timestamp"),
            extra_data=_bytes(data["extraData"], "extraData"),
            mix_hash=_bytes(data["mixHash"], "mixHash", 32),
            nonce=_bytes(data["nonce"], "nonce", 8),
        )
        optional = (("baseFeePerGas", "base_fee_per_gas", _int),
                    ("withdrawalsRoot", "withdrawals_root", _bytes),
                    ("blobGasUsed", "blob_gas_used", _int),
                    ("excessBlobGas", "excess_blob_gas", _int),
                    ("parentBeaconBlockRoot", "parent_beacon_block_root", _bytes))
        header_fields = set(field_names(header_class))
        for key, name, parse in optional:
            if name in header_fields:
                fields[name] = parse(data[key], key)
        header = header_class(**fields)
        # required, as JSON-RPC always gives them: a block read without its
        # transactions would run as an empty one and only fail against its header
        transactions = [_decode_transaction(i, tx, vm_class)
                        for i, tx in enumerate(data["transactions"])]
        block_kwargs: dict[str, Any] = {"transactions": transactions, "uncles": []}
        if "withdrawals" in field_names(block_class):
            from eth.vm.forks.shanghai.withdrawals import Withdrawal
            block_kwargs["withdrawals"] = [
                Withdrawal(_int(w["index"], "withdrawal.index"),
                           _int(w["validatorIndex"], "withdrawal.validatorIndex"),
                           _address(w["address"], "withdrawal.address"),
                           _int(w["amount"], "withdrawal.amount"))
                for w in data["withdrawals"]]
    except KeyError as exc:
        raise InputError(source, f"missing field {exc.args[0]!r}") from exc
    except (ValueError, TypeError, AttributeError, ValidationError) as exc:
        raise InputError(source, f"malformed block: {exc}") from exc
    if "hash" in data and header.hash != _bytes(data["hash"], "hash", 32):
        raise InputError(source, "header fields do not hash to the block's 'hash'")
    return block_class(header, **block_kwargs)


def _decode_transaction(index: int, tx: dict[str, Any],
                        vm_class: type[VirtualMachineAPI]) -> SignedTransactionAPI:
    if not isinstance(tx, dict):
        raise ValueError(f"transaction {index}: expected a transaction object, got "
                         f"{str(tx)[:24]!r} (a block fetched with its full "
                         f"transactions, eth_getBlockByNumber(n, true), has them)")
    # the fork's own builder: its typed-transaction methods are not in py-evm's API
    builder: Any = vm_class.get_transaction_builder()
    kind = _int(tx.get("type", "0x0"), "type")
    to = _address(tx["to"], "to") if tx.get("to") else b""
    common = dict(nonce=_int(tx["nonce"], "nonce"), gas=_int(tx["gas"], "gas"), to=to,
                  value=_int(tx["value"], "value"), data=_bytes(tx["input"], "input"))
    r, s = _int(tx["r"], "r"), _int(tx["s"], "s")
    if kind == 0:
        signed = builder.new_transaction(gas_price=_int(tx["gasPrice"], "gasPrice"),
                                         v=_int(tx["v"], "v"), r=r, s=s, **common)
    else:
        access_list = [(_address(item["address"], "accessList.address"),
                        [_int(key, "accessList.storageKeys")
                         for key in item["storageKeys"]])
                       for item in tx.get("accessList", [])]
        y_parity = _int(tx.get("yParity", tx.get("v")), "yParity")
        typed = dict(chain_id=_int(tx.get("chainId", "0x1"), "chainId"),
                     access_list=access_list, y_parity=y_parity, r=r, s=s, **common)
        if kind == 1:
            signed = builder.new_access_list_transaction(
                gas_price=_int(tx["gasPrice"], "gasPrice"), **typed)
        elif kind == 2:
            signed = builder.new_dynamic_fee_transaction(
                max_priority_fee_per_gas=_int(tx["maxPriorityFeePerGas"], "maxPriorityFeePerGas"),
                max_fee_per_gas=_int(tx["maxFeePerGas"], "maxFeePerGas"), **typed)
        elif kind == 3:
            signed = builder.new_blob_transaction(
                max_priority_fee_per_gas=_int(tx["maxPriorityFeePerGas"], "maxPriorityFeePerGas"),
                max_fee_per_gas=_int(tx["maxFeePerGas"], "maxFeePerGas"),
                max_fee_per_blob_gas=_int(tx["maxFeePerBlobGas"], "maxFeePerBlobGas"),
                blob_versioned_hashes=[_bytes(h, "blobVersionedHashes", 32)
                                       for h in tx["blobVersionedHashes"]],
                **typed)
        else:
            raise ValueError(f"transaction {index}: unsupported type {kind}")
    if "hash" in tx and signed.hash != _bytes(tx["hash"], "hash", 32):
        raise ValueError(f"transaction {index}: fields do not hash to its 'hash'")
    try:
        sender = signed.sender
    except Exception as exc:  # eth-keys raises several types for bad signatures
        raise ValueError(f"transaction {index}: invalid signature ({exc})") from exc
    if "from" in tx and sender != _address(tx["from"], "from"):
        raise ValueError(f"transaction {index}: invalid signature: recovers "
                         f"0x{sender.hex()}, not {tx['from']}")
    return signed


#: The fields of a ``pre_state.json`` account, of its ``basic`` and of its ``code``.
#: Anything else is refused: a field pevm does not read (a misspelt ``storage``, a
#: ``balance`` beside ``basic``) would otherwise leave the account silently other
#: than its author meant, and the block would run on the wrong state.
ACCOUNT_FIELDS = ("basic", "code", "code_hash", "storage")
BASIC_FIELDS = ("balance", "nonce")
CODE_FIELDS = ("bytecode", "original_len", "jump_table")


def _known_fields(record: Any, allowed: Sequence[str], holder: str) -> None:
    """ValueError naming the first field of ``record`` (a JSON object) that is not
    one of ``allowed``."""
    if not isinstance(record, dict):
        raise ValueError(f"{holder}: expected a JSON object, got {record!r}")
    for name in record:
        if name not in allowed:
            raise ValueError(f"unknown field {name!r} in {holder} (it has "
                             f"{', '.join(allowed)})")


def _load_pre_state(source: str, data: dict[str, Any], db: AtomicDB,
                    backend: StateBackend) -> bytes:
    """Put the snapshot's accounts into ``db`` on ``backend``; returns the root."""
    accounts: dict[bytes, tuple[int, int, bytes, dict[int, int]]] = {}
    for key, account in data.items():
        try:
            address = to_canonical_address(key)
            _known_fields(account, ACCOUNT_FIELDS, "the account")
            basic = account["basic"]
            _known_fields(basic, BASIC_FIELDS, "basic")
            code = b""
            code_info = account.get("code")
            want = account.get("code_hash")
            if code_info:
                _known_fields(code_info, CODE_FIELDS, "code")
                bytecode = _bytes(code_info["bytecode"], "code.bytecode")
                length = _int(code_info.get("original_len", len(bytecode)),
                              "code.original_len")
                if not 0 <= length <= len(bytecode):
                    raise ValueError(f"code.original_len {length} is outside the "
                                     f"{len(bytecode)} bytes of code.bytecode")
                code = bytecode[:length]
                if want and keccak(code) != _bytes(want, "code_hash", 32):
                    raise ValueError("code does not hash to code_hash")
            elif want and _bytes(want, "code_hash", 32) != EMPTY_SHA3:
                # the account has code the snapshot does not carry: running it as
                # an account without code would give a wrong answer
                raise ValueError(f"code_hash {want} but no code")
            storage: dict[int, int] = {}
            for slot, value in (account.get("storage") or {}).items():
                slot_number, number = _int(slot, "storage slot"), _int(value, "storage value")
                if not (0 <= slot_number < 2**256 and 0 <= number < 2**256):
                    raise ValueError(f"storage {slot} = {value} is outside uint256")
                if number:
                    storage[slot_number] = number
            balance, nonce = _int(basic["balance"], "balance"), _int(basic["nonce"], "nonce")
            if not (0 <= balance < 2**256 and 0 <= nonce < 2**64):
                raise ValueError("balance or nonce out of range")
            accounts[address] = (nonce, balance, code, storage)
        except KeyError as exc:
            raise InputError(source, f"account {key}: missing field {exc.args[0]!r}") from exc
        except (ValueError, TypeError, AttributeError, ValidationError) as exc:
            raise InputError(source, f"account {key}: malformed: {exc}") from exc
    return load_state(backend, db, accounts)


def _previous_hashes(source: str, data: Any, number: int,
                     parent_hash: bytes) -> tuple[bytes, ...]:
    """Ancestor hashes, most recent first, as py-evm's BLOCKHASH reads them."""
    if not isinstance(data, dict):
        raise InputError(source, "expected a JSON object of {number: hash}")
    known: dict[int, bytes] = {number - 1: parent_hash}
    try:
        for key, value in data.items():
            known[int(key)] = _bytes(value, f"hash of block {key}", 32)
    except ValueError as exc:
        raise InputError(source, f"malformed: {exc}") from exc
    depth = min(256, number)
    return tuple(known.get(number - 1 - i, ZERO_HASH32) for i in range(depth))
