"""Big blocks: one snapshot made from several consecutive ones (``pevm merge``).

Mainnet blocks hold at most a few hundred transactions; measuring how the engine
scales wants more. A merged block runs the transactions of K consecutive blocks, in
order, as one block:

- header context of the first block (number, timestamp, coinbase, difficulty,
  beacon root, ...), the gas limit raised to the sum of the blocks', and the
  *lowest* base fee (and excess blob gas) of the range, so that every transaction
  of the range can still pay it;
- pre-state: each location's first occurrence across the blocks' pre-states
  (:func:`pevm.inputs.prestate.first_occurrence`), leaving out what an earlier
  block created (found by running the earlier blocks through the reference);
- ancestor hashes: the union of the blocks';
- no withdrawals and no uncles (a snapshot skips them anyway).

Its header's ``gasUsed``, ``logsBloom`` and ``receiptsRoot`` cannot be Ethereum's,
so the block carries ``"pevmMerged": {"from", "to", "blocks"}`` and the snapshot
loader leaves those expectations unset; its ``transactionsRoot`` and ``hash`` are
recomputed here, so the loader's checks of both still hold. ``pevm run --check``
compares the engine with py-evm on it. Later blocks' transactions see the first
block's number, timestamp and coinbase, so the result is a realistic workload, not
a replay of mainnet.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth.constants import BLANK_ROOT_HASH, EMPTY_UNCLE_HASH

from pevm.errors import InputError, PevmError
from pevm.forks import mainnet_vm_class
from pevm.gpu import ordered_trie_roots
from pevm.inputs.blockchain_tests import read_json
from pevm.inputs.fetch import partial_dir, publish, write_json
from pevm.inputs.mainnet import _decode_block, _int, is_snapshot_dir
from pevm.inputs.prestate import Touched, first_occurrence, part_from_snapshot, probe_snapshot

MERGED_KEY = "pevmMerged"


class MergeError(PevmError):
    """The snapshots cannot be merged, or the merged block does not run."""


@dataclass
class Source:
    """One snapshot to merge."""

    path: str
    number: int
    block: dict[str, Any]
    pre_state: dict[str, Any]
    hashes: dict[str, Any]


@dataclass
class MergeReport:
    """What ``merge_snapshots`` made."""

    path: str
    numbers: list[int]
    txs: int
    #: gas py-evm's reference used on the merged block
    gas_used: int
    #: what the source blocks' headers say together
    headers_gas_used: int

    @property
    def consecutive(self) -> bool:
        return self.numbers == list(range(self.numbers[0], self.numbers[-1] + 1))


def read_source(path: str) -> Source:
    """A snapshot directory's three files (raises InputError)."""
    if not is_snapshot_dir(path):
        raise InputError(path, "not a snapshot directory (needs block.json and "
                               "pre_state.json)")
    block = read_json(os.path.join(path, "block.json"))
    pre_state = read_json(os.path.join(path, "pre_state.json"))
    hashes_path = os.path.join(path, "block_hashes.json")
    hashes = read_json(hashes_path) if os.path.exists(hashes_path) else {}
    for name, data in (("block.json", block), ("pre_state.json", pre_state),
                       ("block_hashes.json", hashes)):
        if not isinstance(data, dict):
            raise InputError(os.path.join(path, name), "expected a JSON object")
    if MERGED_KEY in block:
        raise InputError(path, "already a merged block; merge the original blocks")
    try:
        number = _int(block["number"], "number")
    except (KeyError, ValueError) as exc:
        raise InputError(os.path.join(path, "block.json"),
                         f"bad block number: {exc}") from exc
    return Source(path, number, block, pre_state, hashes)


def merge_snapshots(paths: Sequence[str], out: str,
                    touched: Sequence[Touched | None] | None = None) -> MergeReport:
    """Write the merged snapshot of ``paths`` at ``out`` (see module docstring).

    ``touched[i]``: what block ``i`` touched, when the caller knows it already
    (else the block is run to find out). ``out`` must not exist; it appears only
    once the merged block has run through py-evm's reference without rejection.
    """
    if len(paths) < 2:
        raise MergeError("merge needs at least two snapshots")
    if os.path.exists(out):
        raise MergeError(f"{out}: already exists; remove it or choose another -o")
    sources = sorted((read_source(p) for p in paths), key=lambda s: s.number)
    numbers = [s.number for s in sources]
    if len(set(numbers)) != len(numbers):
        raise MergeError(f"the same block twice: {sorted(numbers)}")
    first_fork = mainnet_vm_class(numbers[0])
    for source in sources:
        if mainnet_vm_class(source.number) is not first_fork:
            raise MergeError(f"blocks {numbers[0]} and {source.number} run under "
                             "different fork rules; merge blocks of one fork")
    seen = _touched(sources, {p: t for p, t in zip(paths, touched or ()) if t})
    pre_state = first_occurrence(
        [part_for(source) for source in sources], seen)
    hashes: dict[str, Any] = {}
    for source in sources:
        for key, value in source.hashes.items():
            hashes.setdefault(str(int(key)), value)
    block = merged_block(sources)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    partial = partial_dir(parent, os.path.basename(os.path.abspath(out)))
    try:
        write_json(os.path.join(partial, "block.json"), block)
        write_json(os.path.join(partial, "pre_state.json"), pre_state)
        if hashes:
            write_json(os.path.join(partial, "block_hashes.json"), hashes)
        probe = probe_snapshot(partial)
        if probe.problems or probe.result is None:
            raise MergeError(f"the merged block of {numbers[0]}..{numbers[-1]} does not "
                             f"run: {_explain(probe.problems[0], sources)}")
        publish(partial, out)
    except InputError as exc:
        raise MergeError(f"the merged block is unreadable: {exc}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return MergeReport(out, numbers, len(block["transactions"]), probe.result.gas_used,
                       sum(_int(s.block["gasUsed"], "gasUsed") for s in sources))


def part_for(source: Source) -> Any:
    try:
        return part_from_snapshot(source.pre_state, source.path)
    except ValueError as exc:
        raise InputError(os.path.join(source.path, "pre_state.json"), str(exc)) from exc


def _touched(sources: list[Source], known: dict[str, Touched]) -> list[Touched]:
    """What every block but the last touched (the last's does not matter)."""
    out = []
    for source in sources[:-1]:
        if source.path in known:
            out.append(known[source.path])
            continue
        probe = probe_snapshot(source.path)
        if not probe.ok:
            raise MergeError(f"{source.path}: does not reproduce its own header "
                             f"({probe.problems[0]}); merge verified snapshots only")
        out.append(probe.block_touched())
    return out


def merged_block(sources: list[Source]) -> dict[str, Any]:
    """block.json of the merged block: first block's context, every transaction."""
    first = sources[0].block
    block = {k: v for k, v in first.items() if k not in ("size", "hash")}
    transactions = [tx for s in sources for tx in s.block.get("transactions", [])]
    block["gasLimit"] = hex(sum(_int(s.block["gasLimit"], "gasLimit") for s in sources))
    # Not checked (see module docstring): what the source headers say together.
    block["gasUsed"] = hex(sum(_int(s.block["gasUsed"], "gasUsed") for s in sources))
    bloom = 0
    for source in sources:
        bloom |= _int(source.block["logsBloom"], "logsBloom")
    block["logsBloom"] = "0x" + bloom.to_bytes(256, "big").hex()
    for key in ("baseFeePerGas", "excessBlobGas"):
        if key in first:
            block[key] = hex(min(_int(s.block[key], key) for s in sources))
    if "blobGasUsed" in first:
        block["blobGasUsed"] = hex(sum(_int(s.block.get("blobGasUsed", 0), "blobGasUsed")
                                       for s in sources))
    if "withdrawalsRoot" in first:
        block["withdrawals"], block["withdrawalsRoot"] = [], "0x" + BLANK_ROOT_HASH.hex()
    block["uncles"], block["sha3Uncles"] = [], "0x" + EMPTY_UNCLE_HASH.hex()
    block["transactions"] = transactions
    block[MERGED_KEY] = {"from": sources[0].number, "to": sources[-1].number,
                         "blocks": [s.number for s in sources]}
    vm_class = mainnet_vm_class(sources[0].number)
    decoded = _decode_block("merged block.json", block, vm_class)
    root = ordered_trie_roots([[tx.encode() for tx in decoded.transactions]])[0]
    block["transactionsRoot"] = "0x" + root.hex()
    block_hash = "0x" + decoded.header.copy(transaction_root=root).hash.hex()
    block["hash"] = block_hash
    block["transactions"] = [
        {**tx, "blockHash": block_hash, "blockNumber": first["number"],
         "transactionIndex": hex(index)} for index, tx in enumerate(transactions)]
    return block


def _explain(problem: str, sources: list[Source]) -> str:
    """``problem`` with a transaction index of the merged block traced to its source."""
    marker = "transaction "
    if marker in problem:
        tail = problem.split(marker, 1)[1]
        digits = tail[:len(tail) - len(tail.lstrip("0123456789"))]
        if digits:
            index = int(digits)
            for source in sources:
                count = len(source.block.get("transactions", []))
                if index < count:
                    return f"{problem} (transaction {index} of block {source.number})"
                index -= count
    return problem
