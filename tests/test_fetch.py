"""``pevm fetch`` against a real HTTP JSON-RPC node, and ``pevm merge``.

The node (:mod:`tests.rpc_node`) serves corpus snapshots in geth's shapes, with
per-transaction prestates computed by py-evm, so the fetcher meets what it meets on
a real node: later transactions seeing earlier ones' writes, a contract created and
called in the same block (15752489), BLOCKHASH reads of older ancestors (19923400),
touched accounts that do not exist. The corpus has no two consecutive blocks, so
``pevm merge`` is tested on non-consecutive blocks of one fork (its mechanics do not
depend on it), and ``fetch --merge`` on a corpus block and an empty block the node
makes up on top of it.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pevm.cli.main import main
from pevm.inputs.mainnet import _bytes, _int
from pevm.inputs.prestate import StatePart, Touched, first_occurrence

from .conftest import corpus_dir
from .rpc_node import Node, RpcServer, ServedBlock, empty_child, serve_snapshot

#: Cancun, reads an older ancestor through BLOCKHASH; receiptsRoot checked.
CANCUN = 19923400
#: Paris; transaction 123 calls the contract transaction 122 creates.
CREATES = 15752489
#: Frontier, one transaction: the fast block of the error and retry tests.
SMALL = 46147


def _mainnet() -> Path:
    corpus = corpus_dir()
    if corpus is None or not (corpus / "mainnet").is_dir():
        pytest.skip("needs the corpus' mainnet snapshots (set PEVM_CORPUS or place the "
                    "corpus at ../shared/corpus)")
    return corpus / "mainnet"


@pytest.fixture(scope="module")
def served() -> dict[int, tuple[ServedBlock, dict[int, str]]]:
    mainnet = _mainnet()
    out = {}
    for number in (CANCUN, CREATES, SMALL):
        path = mainnet / str(number)
        hashes_file = path / "block_hashes.json"
        hashes = ({int(k): v for k, v in json.loads(hashes_file.read_text()).items()}
                  if hashes_file.exists() else {})
        out[number] = (serve_snapshot(path), hashes)
    return out


@pytest.fixture
def node(served: dict[int, tuple[ServedBlock, dict[int, str]]]) -> Node:
    node = Node()
    for block, hashes in served.values():
        node.add(block, hashes)
    return node


def fetch(server: RpcServer, out: Path, *args: str) -> int:
    return main(["fetch", "--rpc", server.url, "-o", str(out), "--retry-delay", "0.01",
                 *args])


def meaning(pre_state: dict[str, Any], touched: Touched) -> dict[bytes, Any]:
    """What a pre-state says about the locations a block touches: for each touched
    account that exists, (balance, nonce, code, its touched non-zero slots)."""
    out = {}
    for key, account in pre_state.items():
        address = _bytes(key, "address", 20)
        if address not in touched.accounts:
            continue
        code = b""
        if account.get("code"):
            bytecode = _bytes(account["code"]["bytecode"], "code")
            code = bytecode[:_int(account["code"].get("original_len", len(bytecode)), "len")]
        storage = {_int(s, "slot"): _int(v, "value")
                   for s, v in (account.get("storage") or {}).items()}
        storage = {s: v for s, v in storage.items() if v and (address, s) in touched.slots}
        basic = (_int(account["basic"]["balance"], "balance"),
                 _int(account["basic"]["nonce"], "nonce"))
        if basic != (0, 0) or code or storage:
            out[address] = (*basic, code, storage)
    return out


def test_fetched_blocks_reproduce_their_headers_and_the_corpus_pre_state(
        tmp_path: Path, node: Node, served: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    mainnet = _mainnet()
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, str(CANCUN), str(CREATES), "--concurrency", "2") == 0
    # One batched request per block, one more for the older ancestor BLOCKHASH reads.
    assert sorted(node.requests) == sorted(
        [["eth_getBlockByNumber", "debug_traceBlockByNumber"]] * 2
        + [["eth_getBlockByNumber"]])
    for number in (CANCUN, CREATES):
        fetched = json.loads((tmp_path / str(number) / "pre_state.json").read_text())
        corpus = json.loads((mainnet / str(number) / "pre_state.json").read_text())
        touched = Touched()
        for seen in served[number][0].touched:
            touched.update(seen)
        assert meaning(fetched, touched) == meaning(corpus, touched)
        assert json.loads((tmp_path / str(number) / "block.json").read_text()) \
            == json.loads((mainnet / str(number) / "block.json").read_text())
    # The contract transaction 122 creates is in transaction 123's prestate, not in
    # the block's pre-state.
    created = served[CREATES][0].block["transactions"][123]["to"]
    assert created in served[CREATES][0].prestates[123]
    assert created not in json.loads((tmp_path / str(CREATES) / "pre_state.json").read_text())
    assert json.loads((tmp_path / str(CANCUN) / "block_hashes.json").read_text()) \
        == json.loads((mainnet / str(CANCUN) / "block_hashes.json").read_text())
    capsys.readouterr()
    assert main(["run", str(tmp_path), "--engine", "reference", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["number"], r["status"]) for r in rows] == [(CREATES, "passed"),
                                                          (CANCUN, "passed")]


def test_retries_survive_503_dropped_connections_and_rate_limits(
        tmp_path: Path, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    node.faults.extend(["503", "drop", "ratelimit", "503"])
    node.gzip = True
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, str(SMALL)) == 0
    assert len(node.requests) == 5  # four refused, then the answer
    assert (tmp_path / str(SMALL) / "pre_state.json").is_file()
    assert main(["run", str(tmp_path / str(SMALL)), "--engine", "reference", "-q"]) == 0


def test_gives_up_after_the_retries(tmp_path: Path, node: Node,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    node.faults.extend(["503"] * 3)
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, str(SMALL), "--retries", "2") == 2
    assert "HTTP 503" in capsys.readouterr().err
    assert not (tmp_path / str(SMALL)).exists()


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("pevm: error: ")
    return lines[0]


@pytest.mark.parametrize("mode, words", [
    ("nodebug", ("debug_traceBlockByNumber", "archive node")),
    ("pruned", ("missing trie node", "archive node")),
])
def test_non_archive_nodes_are_one_clear_error(
        tmp_path: Path, node: Node, mode: str, words: tuple[str, ...],
        capsys: pytest.CaptureFixture[str]) -> None:
    node.mode = mode
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, str(SMALL)) == 2
    line = _one_error_line(capsys)
    assert all(word in line for word in words), line


def test_unknown_block_unreachable_node_and_bad_url(
        tmp_path: Path, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, "99999999") == 2
    assert "block 99999999 does not exist" in _one_error_line(capsys)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["fetch", "--rpc", f"http://127.0.0.1:{port}/key123", "-o",
                 str(tmp_path), str(SMALL), "--retries", "1", "--retry-delay", "0.01"]) == 2
    line = _one_error_line(capsys)
    assert f"127.0.0.1:{port}/..." in line and "refused" in line.lower()
    assert "key123" not in line  # a provider's key in the URL is not printed
    assert main(["fetch", "--rpc", "localhost:8545", "-o", str(tmp_path), "1"]) == 2
    assert "http://" in _one_error_line(capsys)


def test_a_block_that_does_not_reproduce_its_header_is_not_kept(
        tmp_path: Path, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    served = node.blocks[SMALL]
    sender = served.block["transactions"][0]["from"]
    wrong = json.loads(json.dumps(served.prestates))
    wrong[0][sender]["nonce"] = wrong[0][sender].get("nonce", 0) + 1
    node.blocks[SMALL] = ServedBlock(served.block, wrong, served.touched)
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, str(SMALL)) == 1
    out = capsys.readouterr()
    assert f"block {SMALL}: not kept: py-evm rejects it" in out.out + out.err
    assert "nonce" in (out.out + out.err).lower()
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_resume_skips_present_blocks_and_cleans_partial_ones(
        tmp_path: Path, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, str(SMALL)) == 0
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        leftover = tmp_path / f".{SMALL + 1}.partial-{dead.pid}-x"
        leftover.mkdir()
        (leftover / "block.json").write_text("{")
        node.requests.clear()
        capsys.readouterr()
        assert fetch(server, tmp_path, str(SMALL)) == 0
    assert node.requests == []
    assert f"skipped: {SMALL}" in capsys.readouterr().err
    assert not leftover.exists()


def test_fetch_merge_groups_consecutive_blocks(tmp_path: Path, node: Node,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    node.add(ServedBlock(empty_child(node.blocks[SMALL].block), [], []))
    with RpcServer(node) as server:
        assert fetch(server, tmp_path, f"{SMALL}..{SMALL + 1}", "--merge", "2") == 0
    merged = tmp_path / "merged" / f"{SMALL}-{SMALL + 1}"
    block = json.loads((merged / "block.json").read_text())
    assert block["pevmMerged"] == {"from": SMALL, "to": SMALL + 1,
                                   "blocks": [SMALL, SMALL + 1]}
    assert main(["run", str(merged), "--check", "--workers", "1", "-q"]) == 0


def test_merge_runs_with_check_bench_and_analyze(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Two Cancun blocks of the corpus; not consecutive on mainnet (see module doc).
    mainnet = _mainnet()
    sources = [mainnet / "19923400", mainnet / "19426587"]
    out = tmp_path / "big"
    assert main(["merge", *map(str, sources), "-o", str(out)]) == 0
    said = capsys.readouterr()
    assert "not consecutive" in said.err and "61 transactions" in said.out
    block = json.loads((out / "block.json").read_text())
    first = json.loads((sources[1] / "block.json").read_text())
    second = json.loads((sources[0] / "block.json").read_text())
    assert block["number"] == first["number"] and block["miner"] == first["miner"]
    assert [tx["hash"] for tx in block["transactions"]] == \
        [tx["hash"] for tx in first["transactions"] + second["transactions"]]
    assert int(block["gasLimit"], 16) == int(first["gasLimit"], 16) * 2
    assert int(block["baseFeePerGas"], 16) == min(int(first["baseFeePerGas"], 16),
                                                  int(second["baseFeePerGas"], 16))
    assert main(["run", str(out), "--check", "--workers", "2", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["txs"] == 61 and row["status"] == "passed"
    # The headers' gas together is not what the merged block uses: unchecked.
    assert row["gas_used"] != int(first["gasUsed"], 16) + int(second["gasUsed"], 16)
    assert main(["analyze", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["txs"] == 61
    # Merging again onto it, or across forks, is refused with one line.
    assert main(["merge", *map(str, sources), "-o", str(out)]) == 2
    assert "already exists" in _one_error_line(capsys)
    assert main(["merge", str(sources[0]), str(mainnet / "17666333"), "-o",
                 str(tmp_path / "x")]) == 2
    assert "different fork rules" in _one_error_line(capsys)


def test_first_occurrence_keeps_the_first_view_and_leaves_out_created_accounts() -> None:
    a, b, c = b"\xaa" * 20, b"\xbb" * 20, b"\xcc" * 20
    record = {"basic": {"balance": "0x1", "nonce": 0}, "code": None, "code_hash": None}
    later = {"basic": {"balance": "0x9", "nonce": 1}, "code": None, "code_hash": None}
    parts = [StatePart({a: record, b: None}, {a: {1: 5}}),
             # a's slot 1 was written by the first; c was created by it; b appeared.
             StatePart({a: later, b: later, c: later}, {a: {1: 6, 2: 7}, c: {1: 1}})]
    touched = [Touched({a, c}, {(a, 1)}), Touched({a, b, c}, {(a, 1), (a, 2)})]
    assert first_occurrence(parts, touched) == {
        "0x" + a.hex(): {**record, "storage": {"0x1": "0x5", "0x2": "0x7"}}}
    # Without knowing what the first touched, c is taken from the second view.
    assert "0x" + c.hex() in first_occurrence(parts)
