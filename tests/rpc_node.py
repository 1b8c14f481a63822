"""A real HTTP JSON-RPC node for ``pevm fetch``'s tests, serving corpus snapshots.

It answers ``eth_getBlockByNumber`` and ``debug_traceBlockByNumber`` with geth's
``prestateTracer`` shape: per transaction, the accounts and slots that transaction
touches as they stand *before it* -- computed by running the corpus block through
py-evm, so a later transaction's prestate shows what earlier ones wrote, accounts a
transaction creates are left out of its own prestate (as geth does), and touched
accounts that do not exist read ``{"balance": "0x0"}``. Faults can be injected:
one-shot per request (HTTP 503, a dropped connection, a JSON-RPC rate limit) or for
good (no debug API, pruned state).
"""
from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.constants import BLANK_ROOT_HASH

from pevm.engines.reference import ReferenceEngine
from pevm.forks import mainnet_vm_class
from pevm.inputs.mainnet import _decode_block, load_snapshot
from pevm.inputs.prestate import Touched, probe_snapshot
from pevm.result import EngineStats


#: how geth lists a touched account that does not exist
ABSENT = {"balance": "0x0"}


def _word(value: int) -> str:
    return f"0x{value:064x}"


class PrestateCapture(ReferenceEngine):
    """py-evm's loop; before each transaction, reads what that transaction touches.

    Like geth, a transaction's prestate leaves out the accounts it creates (absent
    before it, with code, or a nonce though not its sender, after it).
    """

    def __init__(self, touched: list[Touched]) -> None:
        self.touched = touched
        self.prestates: list[dict[str, Any]] = []

    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        state: Any = vm.state
        original = vm.transaction_applied_hook

        def hook(index: int, transactions: Sequence[SignedTransactionAPI],
                 *args: Any) -> None:
            original(index, transactions, *args)
            last, sender = self.prestates[-1], transactions[index].sender
            for key, entry in list(last.items()):
                address = bytes.fromhex(key[2:])
                if entry == ABSENT and (state.get_code(address) or (
                        address != sender and state.get_nonce(address))):
                    del last[key]  # CREATE gives it a nonce (and code): created
            self._capture(state)

        self._capture(state)
        vm.transaction_applied_hook = hook  # type: ignore[method-assign, assignment]
        try:
            return super().apply_transactions(vm, transactions, base_header)
        finally:
            vm.transaction_applied_hook = original  # type: ignore[method-assign]

    def _capture(self, state: Any) -> None:
        index = len(self.prestates)
        if index >= len(self.touched):
            self.prestates.append({})  # after the last transaction: unused
            return
        seen = self.touched[index]
        out: dict[str, Any] = {}
        for address in sorted(seen.accounts):
            key = "0x" + address.hex()
            balance = state.get_balance(address)
            nonce, code = state.get_nonce(address), state.get_code(address)
            if not (balance or nonce or code):
                out[key] = dict(ABSENT)
                continue
            entry: dict[str, Any] = {"balance": hex(balance)}
            if nonce:
                entry["nonce"] = nonce
            if code:
                entry["code"] = "0x" + code.hex()
            slots = sorted(slot for owner, slot in seen.slots if owner == address)
            if slots:
                entry["storage"] = {_word(s): _word(state.get_storage(address, s))
                                    for s in slots}
            out[key] = entry
        self.prestates.append(out)


@dataclass
class ServedBlock:
    block: dict[str, Any]
    prestates: list[dict[str, Any]]
    #: what each transaction touched (py-evm's recording)
    touched: list[Touched]


def serve_snapshot(path: Path) -> ServedBlock:
    """A corpus snapshot as a node would serve it."""
    probe = probe_snapshot(str(path))
    assert probe.ok, probe.problems
    capture = PrestateCapture(probe.touched)
    load_snapshot(str(path)).execute(capture)
    block = json.loads((path / "block.json").read_text())
    return ServedBlock(block, capture.prestates[:len(probe.touched)], probe.touched)


def empty_child(parent: dict[str, Any]) -> dict[str, Any]:
    """A block with no transactions on top of ``parent`` (hash computed)."""
    number = int(parent["number"], 16) + 1
    child = {k: v for k, v in parent.items() if k not in ("hash", "size")}
    child.update(number=hex(number), parentHash=parent["hash"], transactions=[],
                 timestamp=hex(int(parent["timestamp"], 16) + 13), gasUsed="0x0",
                 logsBloom="0x" + "00" * 256, transactionsRoot="0x" + BLANK_ROOT_HASH.hex(),
                 receiptsRoot="0x" + BLANK_ROOT_HASH.hex())
    block = _decode_block("child", child, mainnet_vm_class(number))
    child["hash"] = "0x" + block.header.hash.hex()
    return child


@dataclass
class Node:
    """What the server serves, and what it was asked."""

    blocks: dict[int, ServedBlock] = field(default_factory=dict)
    #: ancestors known only by hash (block_hashes.json, parents)
    hashes: dict[int, str] = field(default_factory=dict)
    #: one per request, consumed in order: "503", "drop", "ratelimit", None
    faults: deque[str | None] = field(default_factory=deque)
    #: for good: "nodebug", "pruned" or None
    mode: str | None = None
    gzip: bool = False
    #: the methods of each request received
    requests: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, served: ServedBlock, hashes: dict[int, str] | None = None) -> None:
        number = int(served.block["number"], 16)
        self.blocks[number] = served
        self.hashes[number - 1] = served.block["parentHash"]
        self.hashes.update(hashes or {})

    def answer(self, call: dict[str, Any], fault: str | None) -> dict[str, Any]:
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": call.get("id")}
        try:
            reply["result"] = self._result(call["method"], call.get("params", []), fault)
        except _Error as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        return reply

    def _result(self, method: str, params: list[Any], fault: str | None) -> Any:
        if fault == "ratelimit":
            raise _Error(-32005, "rate limit exceeded, try again later")
        number = int(params[0], 16)
        if method == "eth_getBlockByNumber":
            if number in self.blocks:
                block = self.blocks[number].block
                if params[1]:
                    return block
                return {**block, "transactions": [tx["hash"] for tx in block["transactions"]]}
            if number in self.hashes:
                return {"number": hex(number), "hash": self.hashes[number]}
            return None
        if method == "debug_traceBlockByNumber":
            if self.mode == "nodebug":
                raise _Error(-32601, "the method debug_traceBlockByNumber does not "
                                     "exist/is not available")
            if self.mode == "pruned":
                raise _Error(-32000, "missing trie node 0f3c6a (path )")
            if number not in self.blocks:
                raise _Error(-32000, f"block #{number} not found")
            served = self.blocks[number]
            return [{"txHash": tx["hash"], "result": pre}
                    for tx, pre in zip(served.block["transactions"], served.prestates)]
        raise _Error(-32601, f"the method {method} does not exist/is not available")


class _Error(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RpcServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        node = self.server.node
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        with node.lock:
            node.requests.append([c["method"] for c in calls])
            fault = node.faults.popleft() if node.faults else None
        if fault == "drop":
            self.close_connection = True  # no answer at all
            return
        if fault == "503":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answers = [node.answer(c, fault) for c in calls]
        data = json.dumps(answers if isinstance(payload, list) else answers[0]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if node.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            data = gzip.compress(data)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read ``Node.requests`` instead."""


class RpcServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, node: Node) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.node = node
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> RpcServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()
