"""A built block as a BlockchainTests case, and deterministic fixture files.

The layout follows ethereum/tests and execution-spec-tests ``BlockchainTests``:
``{caseName: {network, sealEngine, genesisBlockHeader, genesisRLP, pre, blocks,
postState, lastblockhash}}``; each block carries ``rlp``, ``blockHeader``,
``transactions`` (with ``sender``), ``uncleHeaders`` and, from Shanghai,
``withdrawals``. Numbers are even-length ``0x`` hex, as in those fixtures, so the
file loads through py-evm's ``normalize_blockchain_fixtures`` and
``new_chain_from_fixture`` (and so through pevm's loader).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import rlp

from pevm.output_files import check_writable, write_atomically
from pevm.pyevm_compat import field_names
from pevm.workloads.scenario import AccountSpec, Built

#: py-evm header attribute -> fixture field, in the order fixtures list them.
HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("parent_hash", "parentHash"), ("uncles_hash", "uncleHash"),
    ("coinbase", "coinbase"), ("state_root", "stateRoot"),
    ("transaction_root", "transactionsTrie"), ("receipt_root", "receiptTrie"),
    ("bloom", "bloom"), ("difficulty", "difficulty"), ("block_number", "number"),
    ("gas_limit", "gasLimit"), ("gas_used", "gasUsed"), ("timestamp", "timestamp"),
    ("extra_data", "extraData"), ("mix_hash", "mixHash"), ("nonce", "nonce"),
    ("base_fee_per_gas", "baseFeePerGas"), ("withdrawals_root", "withdrawalsRoot"),
    ("blob_gas_used", "blobGasUsed"), ("excess_blob_gas", "excessBlobGas"),
    ("parent_beacon_block_root", "parentBeaconBlockRoot"),
    ("requests_hash", "requestsHash"),
)


def hex_int(value: int) -> str:
    """``0x`` + an even number of hex digits (``0x00`` for zero)."""
    text = f"{value:x}"
    return "0x" + ("0" + text if len(text) % 2 else text)


def hex_bytes(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def header_json(header: Any) -> dict[str, str]:
    names = field_names(header)
    out: dict[str, str] = {}
    for attribute, name in HEADER_FIELDS:
        if attribute not in names:
            continue
        value = getattr(header, attribute)
        if attribute == "bloom":
            out[name] = hex_bytes(value.to_bytes(256, "big"))
        elif isinstance(value, int):
            out[name] = hex_int(value)
        else:
            out[name] = hex_bytes(value)
    out["hash"] = hex_bytes(header.hash)
    return out


def account_json(spec: AccountSpec) -> dict[str, Any]:
    return {
        "balance": hex_int(spec.balance),
        "nonce": hex_int(spec.nonce),
        "code": hex_bytes(spec.code),
        "storage": {hex_int(slot): hex_int(value)
                    for slot, value in sorted(spec.storage.items()) if value},
    }


def state_json(state: dict[bytes, AccountSpec]) -> dict[str, Any]:
    return {hex_bytes(address): account_json(spec) for address, spec in sorted(state.items())}


def transaction_json(tx: Any, sender: bytes) -> dict[str, Any]:
    type_id = getattr(tx, "type_id", None) or 0
    out: dict[str, Any] = {
        "type": hex_int(type_id),
        "chainId": hex_int(tx.chain_id if type_id else _legacy_chain_id(tx)),
        "nonce": hex_int(tx.nonce),
        "gasLimit": hex_int(tx.gas),
        "to": hex_bytes(tx.to) if tx.to else "",
        "value": hex_int(tx.value),
        "data": hex_bytes(tx.data),
        "r": hex_int(tx.r),
        "s": hex_int(tx.s),
        "sender": hex_bytes(sender),
    }
    if type_id == 0:
        out["gasPrice"] = hex_int(tx.gas_price)
        out["v"] = hex_int(tx.v)
    else:
        out["v"] = hex_int(tx.y_parity)
        out["accessList"] = [
            {"address": hex_bytes(address),
             "storageKeys": ["0x" + slot.to_bytes(32, "big").hex() for slot in slots]}
            for address, slots in tx.access_list]
        if type_id == 1:
            out["gasPrice"] = hex_int(tx.gas_price)
        else:
            out["maxFeePerGas"] = hex_int(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = hex_int(tx.max_priority_fee_per_gas)
    return out


def _legacy_chain_id(tx: Any) -> int:
    # EIP-155: v = chain_id * 2 + 35 + parity; v of 27/28 means no chain id.
    return (tx.v - 35) // 2 if tx.v >= 35 else 0


def withdrawal_json(withdrawal: Any) -> dict[str, str]:
    return {"index": hex_int(withdrawal.index),
            "validatorIndex": hex_int(withdrawal.validator_index),
            "address": hex_bytes(withdrawal.address),
            "amount": hex_int(withdrawal.amount)}


def fixture_case(built: Built) -> dict[str, Any]:
    """The BlockchainTests case (the value under the case name) of a built block."""
    block = built.block
    block_json: dict[str, Any] = {
        "blockHeader": header_json(block.header),
        "transactions": [transaction_json(tx, sender)
                         for tx, sender in zip(block.transactions, built.senders)],
        "uncleHeaders": [],
        "rlp": hex_bytes(rlp.encode(block)),
        "blocknumber": str(block.number),
    }
    if hasattr(block, "withdrawals"):
        block_json["withdrawals"] = [withdrawal_json(w) for w in block.withdrawals]
    return {
        "network": built.network,
        "sealEngine": "NoProof",
        "genesisBlockHeader": header_json(built.genesis_header),
        "genesisRLP": hex_bytes(rlp.encode(built.genesis_block)),
        "pre": state_json(built.pre),
        "blocks": [block_json],
        "postState": state_json(built.post),
        "lastblockhash": hex_bytes(block.hash),
        "config": {"network": built.network, "chainid": hex_int(1)},
    }


def dumps(fixture: dict[str, Any]) -> str:
    """The fixture as text: sorted keys, fixed indentation, a final newline."""
    return json.dumps(fixture, indent=1, sort_keys=True) + "\n"


def write_fixture(fixture: dict[str, Any], path: str) -> int:
    """Write ``fixture`` to ``path`` (``-``: stdout) atomically; returns the byte count."""
    text = dumps(fixture)
    data = text.encode()
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return len(data)
    check_writable(path)
    write_atomically(path, data)
    return len(data)
