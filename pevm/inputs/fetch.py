"""Fetching mainnet blocks from a JSON-RPC node as verified snapshots (``pevm fetch``).

Per block, one batched request asks for the block with its transactions
(``eth_getBlockByNumber(n, true)``) and for every transaction's pre-state
(``debug_traceBlockByNumber(n, {"tracer": "prestateTracer"})``). The block's
pre-state is each location's first occurrence in block order
(:func:`pevm.inputs.prestate.first_occurrence`). The snapshot is then run through
py-evm's reference exactly as ``pevm run`` loads it; that run also says which
ancestors BLOCKHASH reads (their hashes are fetched with ``eth_getBlockByNumber(k,
false)``, batched) and what each transaction touched, and the block is run again
until both are settled -- usually once, twice when it reads BLOCKHASH.

A block is kept only when the run reproduces its header's ``gasUsed``,
``logsBloom`` and, from Byzantium, ``receiptsRoot``: it is written in a hidden
temporary directory beside its final place and renamed there once verified, so a
block directory that exists is complete, and an interrupted fetch resumes where it
stopped.
"""
from __future__ import annotations

import json
import os
import re
from enum import StrEnum
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pevm.errors import InputError
from pevm.inputs.mainnet import _int, is_snapshot_dir
from pevm.inputs.prestate import Touched, first_occurrence, part_from_prestate, probe_snapshot
from pevm.inputs.rpc import BlockNotFound, RpcClient, RpcError

#: Runs of the reference before a block's pre-state and ancestor hashes settle.
MAX_RUNS = 4
PRESTATE_TRACER = {"tracer": "prestateTracer"}


class FetchStatus(StrEnum):
    """What became of one block of a ``pevm fetch`` run."""

    #: fetched, verified through py-evm and written
    WRITTEN = "written"
    #: already in the output directory: not fetched again
    PRESENT = "present"
    #: could not be fetched or verified (the outcome's ``error`` says why)
    FAILED = "failed"


WRITTEN, PRESENT, FAILED = FetchStatus.WRITTEN, FetchStatus.PRESENT, FetchStatus.FAILED
#: where ``--merge`` puts the merged blocks, under the output directory
MERGED_DIR = "merged"
_PARTIAL = re.compile(r"^\.(.+)\.partial-(\d+)-")


@dataclass
class RawBlock:
    """What the node said about one block."""

    number: int
    block: dict[str, Any]
    #: per transaction, the prestateTracer result
    prestates: list[Any]


@dataclass
class BlockOutcome:
    """What became of one requested block."""

    number: int
    status: FetchStatus
    path: str
    reason: str = ""
    txs: int = 0
    #: reference runs it took to settle the pre-state and the ancestor hashes
    runs: int = 0
    #: what the block touched (known when it was just fetched; for --merge)
    touched: Touched | None = field(default=None, repr=False)


def parse_range(text: str) -> list[int]:
    """``N`` or ``A..B`` (inclusive; decimal or 0x-hex) as block numbers."""
    first, sep, last = text.partition("..")
    try:
        start = _int(first.strip(), "block")
        end = _int(last.strip(), "block") if sep else start
    except ValueError:
        raise InputError(text, "expected a block number or a range A..B") from None
    if start < 0 or end < start:
        raise InputError(text, "expected a range A..B with 0 <= A <= B")
    return list(range(start, end + 1))


def download(client: RpcClient, number: int) -> RawBlock:
    """The block and its transactions' pre-states, in one batched request."""
    block, trace = client.batch([
        ("eth_getBlockByNumber", [hex(number), True]),
        ("debug_traceBlockByNumber", [hex(number), PRESTATE_TRACER]),
    ], return_errors=True)
    if isinstance(block, RpcError):
        raise block
    if block is None:
        raise BlockNotFound(f"{client.name}: block {number} does not exist "
                            "(eth_getBlockByNumber returned null)")
    if isinstance(trace, RpcError):
        raise trace
    transactions = block.get("transactions") if isinstance(block, dict) else None
    if not isinstance(transactions, list) or not isinstance(trace, list):
        raise RpcError(f"{client.name}: block {number}: unexpected answer shape "
                       "(expected a block object and a list of traces)")
    if len(trace) != len(transactions):
        raise RpcError(f"{client.name}: block {number}: {len(trace)} traces for "
                       f"{len(transactions)} transactions")
    prestates = []
    for index, (item, tx) in enumerate(zip(trace, transactions)):
        if not isinstance(item, dict):
            raise RpcError(f"{client.name}: block {number} transaction {index}: "
                           "malformed trace")
        if item.get("error"):
            raise RpcError(f"{client.name}: block {number} transaction {index}: "
                           f"tracing failed: {item['error']}")
        if item.get("txHash") and isinstance(tx, dict) and tx.get("hash") \
                and item["txHash"].lower() != tx["hash"].lower():
            raise RpcError(f"{client.name}: block {number}: trace {index} is of "
                           f"transaction {item['txHash']}, not {tx['hash']}")
        prestates.append(item.get("result", item))
    return RawBlock(number, block, prestates)


def block_dir(out_dir: str, number: int) -> str:
    return os.path.join(out_dir, str(number))


def partial_dir(out_dir: str, name: str) -> str:
    """A fresh hidden directory beside ``out_dir/name`` to write it in."""
    return tempfile.mkdtemp(prefix=f".{name}.partial-{os.getpid()}-", dir=out_dir)


def publish(partial: str, final: str) -> None:
    """Move a verified snapshot into place (one rename: never half there)."""
    os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
    os.chmod(partial, 0o755)  # mkdtemp's directories are private to their owner
    os.rename(partial, final)


def clean_partials(out_dir: str) -> None:
    """Remove what interrupted runs left in ``out_dir`` and ``out_dir/merged``
    (those whose process is gone)."""
    for directory in (out_dir, os.path.join(out_dir, MERGED_DIR)):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            match = _PARTIAL.match(name)
            if match and not _alive(int(match.group(2))):
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this run has not started any yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: str, data: Any) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, separators=(",", ":"))


def build_snapshot(client: RpcClient, raw: RawBlock, out_dir: str) -> BlockOutcome:
    """Turn ``raw`` into a verified snapshot at ``out_dir/<number>`` (see module)."""
    number = raw.number
    final = block_dir(out_dir, number)
    outcome = BlockOutcome(number, FAILED, final, txs=len(raw.prestates))
    try:
        parts = [part_from_prestate(p, f"block {number} transaction {i}")
                 for i, p in enumerate(raw.prestates)]
    except ValueError as exc:
        outcome.reason = f"malformed prestateTracer result: {exc}"
        return outcome
    hashes: dict[int, str] = {number - 1: raw.block.get("parentHash", "")}
    partial = partial_dir(out_dir, str(number))
    try:
        write_json(os.path.join(partial, "block.json"), raw.block)
        touched: list[Touched] | None = None
        written: set[int] = set()
        for runs in range(1, MAX_RUNS + 1):
            outcome.runs = runs
            pre_state = first_occurrence(parts, touched)
            write_json(os.path.join(partial, "pre_state.json"), pre_state)
            if written:
                write_json(os.path.join(partial, "block_hashes.json"),
                           {str(n): hashes[n] for n in sorted(written)})
            probe = probe_snapshot(partial)
            # The parent's hash is the header's own parentHash: never missing.
            wanted = probe.ancestors - written - {number - 1}
            settled = first_occurrence(parts, probe.touched) == pre_state
            if not wanted and settled:
                break
            fetch_hashes(client, sorted(wanted - hashes.keys()), hashes)
            written |= probe.ancestors
            touched = probe.touched
        else:
            outcome.reason = (f"the pre-state or the ancestor hashes did not settle "
                              f"after {MAX_RUNS} runs")
            return outcome
        if not probe.ok:
            more = len(probe.problems) - 1
            outcome.reason = probe.problems[0] + (f" (and {more} more)" if more else "")
            return outcome
        if probe.ancestors - written:
            # Only the parent, whose hash the loader takes from the header; listed
            # all the same, so that the file names every ancestor the block reads.
            write_json(os.path.join(partial, "block_hashes.json"),
                       {str(n): hashes[n] for n in sorted(probe.ancestors | written)})
        publish(partial, final)
        outcome.status, outcome.touched = WRITTEN, probe.block_touched()
        return outcome
    except InputError as exc:
        outcome.reason = exc.message
        return outcome
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def fetch_hashes(client: RpcClient, numbers: Sequence[int], into: dict[int, str]) -> None:
    """Ancestors' hashes (``eth_getBlockByNumber(k, false)``, batched) into ``into``."""
    if not numbers:
        return
    answers = client.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    for n, header in zip(numbers, answers):
        if not isinstance(header, dict) or not header.get("hash"):
            raise BlockNotFound(f"{client.name}: ancestor block {n} not found "
                                "(eth_getBlockByNumber returned null)")
        into[n] = header["hash"]


def fetch_blocks(client: RpcClient, numbers: Iterable[int], out_dir: str,
                 concurrency: int = 4,
                 report: Callable[[BlockOutcome], None] | None = None
                 ) -> list[BlockOutcome]:
    """Fetch, verify and write every block of ``numbers`` (in order) under ``out_dir``.

    Downloads run on ``concurrency`` threads, a few blocks ahead; verification runs
    here, one block at a time, in block order. Blocks already present are skipped.
    An RpcError stops the whole fetch (the blocks written so far stay).
    """
    os.makedirs(out_dir, exist_ok=True)
    clean_partials(out_dir)
    outcomes: list[BlockOutcome] = []

    def done(outcome: BlockOutcome) -> None:
        outcomes.append(outcome)
        if report is not None:
            report(outcome)

    todo: deque[int] = deque()
    for number in numbers:
        if is_snapshot_dir(block_dir(out_dir, number)):
            done(BlockOutcome(number, PRESENT, block_dir(out_dir, number)))
        else:
            todo.append(number)
    window: deque[tuple[int, Future[RawBlock]]] = deque()
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency),
                              thread_name_prefix="pevm-fetch")
    finished = False
    try:
        while todo or window:
            # Keep the threads busy a little ahead of verification, without
            # holding a whole range's traces in memory.
            while todo and len(window) < 2 * max(1, concurrency):
                number = todo.popleft()
                window.append((number, pool.submit(download, client, number)))
            number, future = window.popleft()
            done(build_snapshot(client, future.result(), out_dir))
        finished = True
    finally:
        # On an error or Ctrl-C, do not wait for downloads nobody will verify.
        pool.shutdown(wait=finished, cancel_futures=True)
    return outcomes
