"""Odd values for the mutations: numbers at the edges, wrong sizes, bad text.

Each chooser takes the old value and a ``random.Random`` and returns a new value
(and, where the caller needs one, a description). Values are raw bytes for RLP
edits and JSON values (usually ``0x`` text) for JSON edits; :data:`DELETE` means
"remove the key". The choices are the boundaries where parsers and fork rules
decide: 0, 2**64 - 1 (EIP-2681 nonces), 2**256 (one past uint256), secp256k1's
order for signatures, EIP-3860's initcode limit, lengths one off.
"""
from __future__ import annotations

import random
from typing import Any

from eth_hash.auto import keccak

from pevm.mutations.rawrlp import RawTx, int_bytes, to_int
from pevm.workloads.fixture import hex_bytes, hex_int


class _Delete:
    """A JSON edit's value meaning "remove the key" (see :func:`assign`)."""

    def __repr__(self) -> str:
        return "<deleted>"


DELETE: Any = _Delete()
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: EIP-3860: initcode longer than this is invalid (Shanghai on)
MAX_INITCODE_SIZE = 2 * 24576
#: Code no fork runs: undefined opcodes, INVALID, EOF's magic prefix, a bad jump
INVALID_CODES = (b"\xfe", b"\x0c", b"\x21", b"\xa5", b"\xef\x00\x01", b"\xf6\x00",
                 b"\x60\x00\x56")  # the last: PUSH1 0 JUMP (a jump to a non-JUMPDEST)

SNAPSHOT_HEADER_FIELDS = (
    "parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot",
    "receiptsRoot", "logsBloom", "difficulty", "number", "gasLimit", "gasUsed",
    "timestamp", "extraData", "mixHash", "nonce", "baseFeePerGas", "withdrawalsRoot",
    "blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot", "withdrawals")
SNAPSHOT_TX_FIELDS = (
    "nonce", "gas", "gasPrice", "value", "input", "to", "type", "chainId",
    "maxFeePerGas", "maxPriorityFeePerGas", "accessList", "maxFeePerBlobGas",
    "blobVersionedHashes")
_BYTE_SIZES = {"coinbase": 20, "miner": 20, "to": 20, "bloom": 256, "logsBloom": 256,
               "nonce": 8, "extra_data": 32, "extraData": 32, "data": 0, "input": 0}
_INT_NAMES = {"difficulty", "block_number", "number", "gas_limit", "gasLimit", "gas_used",
              "gasUsed", "timestamp", "base_fee_per_gas", "baseFeePerGas",
              "blob_gas_used", "blobGasUsed", "excess_blob_gas", "excessBlobGas",
              "gas", "gasPrice", "value", "type", "chainId", "maxFeePerGas",
              "maxPriorityFeePerGas", "maxFeePerBlobGas"}


def short(value: Any) -> str:
    text = hex(value) if isinstance(value, int) and not isinstance(value, bool) \
        else repr(value)
    return text if len(text) <= 24 else f"{text[:18]}...({len(text)} chars)"


def raw_int(value: int | bytes) -> bytes:
    return value if isinstance(value, bytes) else int_bytes(value)


def edge_int(old: int, rng: random.Random, limit: int = 0) -> int:
    """A number at an edge: near ``old``, 0, 2**64 - 1, 2**256 - 1, 2**256, ..."""
    options = [old + 1, max(old - 1, 0), 0, 1, 2**63 - 1, 2**64 - 1, 2**64, 2**255,
               2**256 - 1, 2**256, old * 1000 + 7]
    if limit:
        options += [limit, limit + 1]
    return rng.choice(options)


def odd_int_bytes(old: bytes, rng: random.Random, limit: int = 0) -> tuple[bytes, str]:
    """An RLP integer field's new bytes: an edge value, or a non-canonical one."""
    if rng.random() < 0.12:
        padded = b"\x00" + old
        return padded, f"non-canonical {hex_bytes(padded)}"
    value = edge_int(to_int(old), rng, limit)
    return int_bytes(value), short(value)


def odd_bytes(old: bytes, size: int, rng: random.Random) -> bytes:
    """Bytes of the right size but other content, or one byte off, or none."""
    size = size or len(old)
    flipped = bytearray(old or b"\x00")
    flipped[rng.randrange(len(flipped))] ^= 0x01
    return rng.choice([rng.randbytes(size), bytes(flipped), old[:-1], old + b"\x00",
                       b"", bytes(size), rng.randbytes(size + 1)])


def cut(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """``data`` truncated somewhere, cut by a few bytes, or with junk appended."""
    choice = rng.randrange(3)
    if choice == 0 and data:
        at = rng.randrange(len(data))
        return data[:at], f"truncated to {at} bytes"
    if choice == 1 and data:
        drop = rng.randint(1, min(4, len(data)))
        return data[:-drop], f"last {drop} byte(s) cut"
    junk = rng.randbytes(rng.randint(1, 4))
    return data + junk, f"{len(junk)} byte(s) appended"


def header_value(name: str, old: bytes, rng: random.Random) -> tuple[bytes, str]:
    if name in _INT_NAMES:
        new, text = odd_int_bytes(old, rng)
    else:
        new = odd_bytes(old, _BYTE_SIZES.get(name, 32), rng)
        if name == "extra_data" and rng.random() < 0.5:
            new = rng.randbytes(rng.choice([0, 31, 32, 33, 100]))
        text = short(hex_bytes(new))
    return new, f"header {name} {short(hex_bytes(old))} -> {text}"


def signature_value(name: str, old: int, rng: random.Random) -> int:
    """A new v / y_parity / r / s: a wrong parity or chain id, zero, the curve
    order, high-s (malleable, invalid from Homestead), random."""
    if name in ("v", "y_parity"):
        return rng.choice([old ^ 1, 0, 1, 2, 26, 27, 28, 29, 35, 36, old + 2, 2**64,
                           2**256 - 1])
    return rng.choice([0, 1, SECP256K1_N, SECP256K1_N + 1, 2**256 - 1,
                       SECP256K1_N - old if old else 1, old ^ 1,
                       int.from_bytes(rng.randbytes(32), "big")])


def change_tx_field(tx: RawTx, rng: random.Random, gas_limit: int) -> str:
    """Change one non-signature field of ``tx`` in place; what changed."""
    name = rng.choice(list(tx.names[:-3]) + ["initcode"])
    if name == "initcode":
        # A creation with initcode over EIP-3860's limit and gas to pay for it.
        size = MAX_INITCODE_SIZE + rng.choice([1, 32, 1000])
        fields = dict(zip(tx.names, range(len(tx.names))))
        tx.fields[fields["to"]] = b""
        tx.fields[fields["data"]] = bytes(size)
        tx.fields[fields["gas"]] = int_bytes(min(gas_limit or 10**7, 10**7))
        return f"creation with {size} bytes of initcode"
    index = tx.names.index(name)
    old = tx.fields[index]
    if name == "to":
        tx.fields[index] = rng.choice([b"", rng.randbytes(20), old[:19], old + b"\x00",
                                       bytes(19) + b"\x01", bytes(19) + b"\x0a"])
    elif name == "data":
        tx.fields[index] = rng.choice([old + rng.randbytes(rng.randint(1, 64)),
                                       old[:len(old) // 2], b"", b"\xfe" * 33])
    elif name in ("access_list", "authorization_list", "blob_versioned_hashes"):
        tx.fields[index] = rng.choice([
            [], [[rng.randbytes(20), [rng.randbytes(32)]]], [[bytes(19), []]],
            [b"junk"], [rng.randbytes(32)], [b"\x01" + rng.randbytes(31)]])
    elif not isinstance(old, bytes):
        tx.fields[index] = rng.randbytes(8)
    else:
        tx.fields[index], _ = odd_int_bytes(old, rng, gas_limit if name == "gas" else 0)
    return f"{name} {short(_show(old))} -> {short(_show(tx.fields[index]))}"


def _show(value: Any) -> Any:
    return hex_bytes(value) if isinstance(value, bytes) else value


# --------------------------------------------------------------------- JSON
def assign(target: dict[str, Any], key: str, value: Any) -> None:
    if value is DELETE:
        target.pop(key, None)
    else:
        target[key] = value


def number_of(value: Any) -> int:
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return 0


def json_number(old: Any, rng: random.Random) -> Any:
    """An odd JSON number: an edge value as hex, negative, odd-length or non-hex
    text, a bare JSON number, a boolean, null, or gone."""
    if rng.random() < 0.5:
        return hex_int(edge_int(number_of(old), rng))
    return rng.choice(["-0x01", "0x123", "0xzz", "", "0x", None, 7, -7, True, 1.5,
                       DELETE])


def json_bytes(old: Any, size: int, rng: random.Random) -> Any:
    """Odd JSON bytes: other content, one byte off, odd-length or non-hex text."""
    raw = bytes.fromhex(old[2:]) if isinstance(old, str) and old.startswith("0x") \
        and len(old) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in old[2:]) \
        else b""
    if rng.random() < 0.6:
        return hex_bytes(odd_bytes(raw, size or len(raw), rng))
    return rng.choice(["0x" + "a" * (2 * (size or 2) - 1), "0xzz", "", None, 12, DELETE,
                       (old if isinstance(old, str) else "0x") + "g"])


def json_value(name: str, old: Any, rng: random.Random) -> Any:
    if name in ("accessList", "blobVersionedHashes", "withdrawals"):
        return rng.choice([[], "junk", [{}], [{"address": "0x12", "storageKeys": []}],
                           ["0x" + "00" * 31], None, DELETE])
    # A header's nonce is 8 bytes (0x + 16 digits); a transaction's is a number.
    header_nonce = name == "nonce" and isinstance(old, str) and len(old) == 18
    if name in _INT_NAMES or (name == "nonce" and not header_nonce):
        return json_number(old, rng)
    return json_bytes(old, _BYTE_SIZES.get(name, 32), rng)


def hex_text_edit(text: str, rng: random.Random) -> tuple[str, str]:
    """A hex string with one digit changed, a digit cut (odd length), a byte cut,
    or a non-hex character inserted."""
    body = text[2:]
    at = rng.randrange(len(body))
    choice = rng.randrange(4)
    if choice == 0:
        digit = rng.choice([d for d in "0123456789abcdef" if d != body[at].lower()])
        return "0x" + body[:at] + digit + body[at + 1:], f"hex digit {at} changed"
    if choice == 1:
        return "0x" + body[:-1], "last hex digit cut (odd length)"
    if choice == 2:
        return "0x" + body[:-2], "last byte cut"
    return "0x" + body[:at] + "x" + body[at:], f"non-hex character at {at}"


def odd_account(pre: dict[str, Any], address: str, account: Any, snapshot: bool,
                rng: random.Random) -> str:
    """Give one pre-state account an odd field; what was done."""
    what = rng.choice(["balance", "nonce", "code", "storage", "account"])
    if what == "account" or not isinstance(account, dict):
        choice = rng.randrange(5)
        if choice == 0:
            del pre[address]
            return "removed"
        if choice in (1, 2):
            pre[address] = {} if choice == 1 else "0x00"
            return f"replaced by {pre[address]!r}"
        new = rng.choice([address[:-1], address[:-2], "0x" + "zz" * 20, address + "00"])
        pre[new] = pre.pop(address)
        return f"address key -> {new!r}"
    basic = account.get("basic") if snapshot else account
    if what in ("balance", "nonce"):
        if not isinstance(basic, dict):
            return "nothing (no basic fields)"
        old = basic.get(what, DELETE)
        if what == "nonce" and rng.random() < 0.4:
            new = hex_int(rng.choice([2**64 - 1, 2**64 - 2, 2**64, number_of(old) + 1]))
        elif what == "balance" and rng.random() < 0.4:
            new = hex_int(rng.choice([0, 1, 2**256 - 1, 2**255]))
        else:
            new = json_number(old, rng)
        assign(basic, what, new)
        return f"{what} {short(old)} -> {short(new)}"
    if what == "code":
        return _odd_code(account, snapshot, rng)
    return _odd_storage(account, rng)


def _odd_code(account: dict[str, Any], snapshot: bool, rng: random.Random) -> str:
    code = rng.choice(INVALID_CODES + (rng.randbytes(rng.randint(1, 64)), b""))
    text = hex_bytes(code) if rng.random() < 0.8 else rng.choice(["0x5", "0xzz", None])
    if not snapshot:
        assign(account, "code", text if rng.random() < 0.95 else DELETE)
        return f"code -> {short(account.get('code', DELETE))}"
    account["code"] = {"bytecode": text, "original_len": len(code)} if code else None
    if rng.random() < 0.8:  # else the old code_hash stays: a mismatch to report
        account["code_hash"] = hex_bytes(keccak(code)) if code else None
    return f"code -> {short(text)}"


def _odd_storage(account: dict[str, Any], rng: random.Random) -> str:
    storage = account.get("storage")
    if not isinstance(storage, dict) or rng.random() < 0.15:
        new = rng.choice([[], None, "0x", DELETE])
        assign(account, "storage", new)
        return f"storage -> {short(new)}"
    slot = rng.choice(sorted(storage) or ["0x00"])
    if rng.random() < 0.25:
        new_slot = rng.choice([hex_int(2**256), "-0x01", "0xzz", "0x123"])
        storage[new_slot] = storage.pop(slot, "0x01")
        return f"storage slot {slot} renamed {new_slot}"
    value = rng.choice([hex_int(2**256 - 1), hex_int(2**256), "-0x01", "0x1", "0xzz",
                        "", None, 5])
    storage[slot] = value
    return f"storage[{slot}] -> {short(value)}"
