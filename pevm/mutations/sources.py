"""The blocks the mutation harness breaks, and how a mutant goes back to disk.

A :class:`Source` is one BlockchainTests case or one mainnet snapshot as plain JSON
data. A mutant is written to a fresh temporary path and read back through pevm's own
loaders (:func:`pevm.inputs.discover.list_cases`), so the harness exercises the same
loading path as ``pevm run``.

Large blocks are trimmed to their first transactions: a prefix of a valid block
still executes, and the header fields that depend on the transactions (gas used,
bloom, roots) are taken from py-evm's reference execution of the prefix, so the
trimmed block is valid again and each mutation starts from a block that passes.
Likewise :func:`rebase_genesis` gives a fixture whose pre-state was changed a
matching genesis, so the changed state is executed instead of refused at load.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from typing import Any
from collections.abc import Sequence

import rlp
from pevm.pyevm_compat import normalize_account_state
from eth_hash.auto import keccak
from eth_utils import decode_hex

from pevm.engines.reference import ReferenceEngine
from pevm.gpu import AccountState, state_root
from pevm.inputs.blockchain_tests import read_json
from pevm.inputs.discover import list_cases
from pevm.inputs.mainnet import SNAPSHOT_FILES
from pevm.pipeline import BlockOutcome
from pevm.task import BlockTask
from pevm.workloads.fixture import header_json, hex_bytes

FIXTURE, SNAPSHOT = "fixture", "snapshot"
HASHES_FILE = "block_hashes.json"


@dataclass(frozen=True)
class Source:
    """A real block to mutate: one fixture case or one mainnet snapshot.

    ``data`` is the case's JSON object (fixtures) or ``{file name: JSON}`` of the
    snapshot directory; ``case`` names the case, ``directory`` the snapshot's
    folder name (its block number: pevm reads the fork from it).
    """

    label: str
    kind: str
    data: dict[str, Any] = field(repr=False, compare=False)
    case: str = ""
    directory: str = ""

    @property
    def transactions(self) -> int:
        """Transactions in the source's largest block (as its JSON lists them)."""
        if self.kind == SNAPSHOT:
            return len(self.data["block.json"].get("transactions") or ())
        return max((_rlp_tx_count(b) for b in self.data.get("blocks", ())), default=0)


@dataclass
class Mutant:
    """A source broken in one way: ``kind`` and a short ``description`` say how."""

    source: Source
    kind: str
    description: str
    data: dict[str, Any] = field(repr=False)
    #: the seed :func:`pevm.mutations.mutant_for_seed` made it from (None: other)
    seed: int | None = None

    def write(self, directory: str) -> str:
        """The mutant as a fixture file or snapshot folder under ``directory``."""
        return write_input(self.source, self.data, directory)


_paths = itertools.count()


def write_input(source: Source, data: dict[str, Any], directory: str) -> str:
    """Write ``data`` shaped like ``source``; returns the path pevm should read.

    Every call writes a new path: pevm caches the last fixture file it parsed by
    path, and a rewritten file under the same name would be read stale.
    """
    index = next(_paths)
    if source.kind == FIXTURE:
        path = os.path.join(directory, f"mutant-{index}.json")
        with open(path, "w") as handle:
            json.dump({source.case: data}, handle)
        return path
    path = os.path.join(directory, f"mutant-{index}", source.directory)
    os.makedirs(path)
    for name, value in data.items():
        with open(os.path.join(path, name), "w") as handle:
            json.dump(value, handle)
    return path


def load_sources(paths: Sequence[str], max_txs: int | None = None) -> list[Source]:
    """Every case under ``paths`` (files, snapshot folders, directories), in a
    stable order; blocks with more than ``max_txs`` transactions are trimmed."""
    listing = list_cases(list(paths))
    listing.raise_for_named()
    sources = []
    for ref in listing.cases:
        if ref.kind == "snapshot":
            files = {name: read_json(os.path.join(ref.source, name))
                     for name in (*SNAPSHOT_FILES, HASHES_FILE)
                     if os.path.exists(os.path.join(ref.source, name))}
            source = Source(ref.source, SNAPSHOT, files,
                            directory=os.path.basename(os.path.normpath(ref.source)))
        else:
            raw = ref.load().raw  # type: ignore[attr-defined]  # a FixtureCase
            source = Source(f"{ref.source}::{ref.name}", FIXTURE, raw, case=ref.name)
        sources.append(trim(source, max_txs) if max_txs is not None else source)
    return sources


def trim(source: Source, max_txs: int) -> Source:
    """``source`` with its block cut to the first ``max_txs`` transactions and made
    valid again (see module docstring); unchanged when it is small enough or is
    not a one-block case."""
    if source.transactions <= max_txs:
        return source
    data = copy.deepcopy(source.data)
    if source.kind == SNAPSHOT:
        block = data["block.json"]
        block["transactions"] = block["transactions"][:max_txs]
        _, outcome = reference_outcome(source, data)
        result = _require_result(source, outcome)
        block.update(gasUsed=hex(result.gas_used),
                     logsBloom=hex_bytes(result.bloom.to_bytes(256, "big")),
                     transactionsRoot=hex_bytes(result.transactions_root),
                     receiptsRoot=hex_bytes(result.receipts_root))
        block.pop("hash", None)  # the header changed; nothing to check it against
    else:
        if len(data["blocks"]) != 1:
            return source
        block = data["blocks"][0]
        raw = rlp.decode(decode_hex(block["rlp"]))
        raw[1] = raw[1][:max_txs]
        block["rlp"] = hex_bytes(rlp.encode(raw))
        if "transactions" in block:
            block["transactions"] = block["transactions"][:max_txs]
        task, outcome = reference_outcome(source, data)
        result = _require_result(source, outcome)
        assert task.block is not None
        header = task.block.header.copy(
            gas_used=result.gas_used, bloom=result.bloom,
            receipt_root=result.receipts_root, transaction_root=result.transactions_root,
            state_root=result.state_root)
        trimmed = task.block.copy(header=header)
        if trimmed.hash != result.block_hash:
            raise ValueError(f"{source.label}: the trimmed block's header does not "
                             f"match py-evm's execution of it")
        block["rlp"] = hex_bytes(rlp.encode(trimmed))
        block["blockHeader"] = header_json(header)
        data.pop("postState", None)
        data["postStateHash"] = hex_bytes(result.state_root)
        data["lastblockhash"] = hex_bytes(trimmed.hash)
    return replace(source, label=f"{source.label}[:{max_txs}]", data=data)


def reference_outcome(source: Source, data: dict[str, Any]
                      ) -> tuple[BlockTask, BlockOutcome]:
    """The first block of ``data`` (shaped like ``source``) run by py-evm."""
    with tempfile.TemporaryDirectory(prefix="pevm-trim-") as directory:
        path = write_input(source, data, directory)
        case = list_cases([path]).cases[0].load()
        task = next(iter(case.start().tasks()))
        return task, task.execute(ReferenceEngine())


def rebase_genesis(data: dict[str, Any]) -> bool:
    """Give a fixture case the genesis its (changed) ``pre`` implies: the new
    state root in ``genesisRLP`` and ``genesisBlockHeader``, and every block's
    parent hash following the renamed chain. False when ``pre`` does not load
    (then the case keeps its genesis, and pevm must report the bad input)."""
    try:
        pre = normalize_account_state(data["pre"])
        root = state_root({address: AccountState(a["nonce"], a["balance"],
                                                 dict(a["storage"]), a["code"])
                           for address, a in pre.items()})
        genesis = rlp.decode(decode_hex(data["genesisRLP"]))
        old_hash = keccak(rlp.encode(genesis[0]))
        genesis[0][3] = root
    except Exception:  # noqa: BLE001 - any value the loader refuses: keep it so
        return False
    renamed = {old_hash: keccak(rlp.encode(genesis[0]))}
    data["genesisRLP"] = hex_bytes(rlp.encode(genesis))
    if isinstance(data.get("genesisBlockHeader"), dict):
        data["genesisBlockHeader"].update(stateRoot=hex_bytes(root),
                                          hash=hex_bytes(renamed[old_hash]))
    for block in data.get("blocks") or ():
        try:
            raw = rlp.decode(decode_hex(block["rlp"]))
            parent = raw[0][0]
            old = keccak(rlp.encode(raw[0]))
        except Exception:  # noqa: BLE001 - an undecodable block stays as it is
            continue
        if parent in renamed:
            raw[0][0] = renamed[parent]
            renamed[old] = keccak(rlp.encode(raw[0]))
            block["rlp"] = hex_bytes(rlp.encode(raw))
            if isinstance(block.get("blockHeader"), dict):
                block["blockHeader"].update(parentHash=hex_bytes(renamed[parent]),
                                            hash=hex_bytes(renamed[old]))
    return True


def _require_result(source: Source, outcome: BlockOutcome) -> Any:
    if outcome.result is None:
        raise ValueError(f"{source.label}: cannot trim: the prefix did not execute "
                         f"({outcome.rejection})")
    return outcome.result


def _rlp_tx_count(block: dict[str, Any]) -> int:
    if "transactions" in block:
        return len(block["transactions"])
    try:
        return len(rlp.decode(decode_hex(block["rlp"]))[1])
    except (KeyError, ValueError, TypeError, IndexError, rlp.DecodingError):
        return 0
