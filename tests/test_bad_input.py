"""Bad input gets a one-line error naming the file, a non-zero exit, no traceback."""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak

from pevm.cli.main import main

from .conftest import corpus_dir


FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, out: str, *needles: str) -> None:
    text = err + out
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in output:\n{text}"


def test_truncated_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "truncated.json"
    bad.write_text('{"case": {"network": "Cancun", "blocks": [')
    code, out, err = run_cli(capsys, "run", str(bad), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, str(bad), "not valid JSON")
    # a file that never became a case is named alone, not with an empty case name
    assert f"first: {bad}\n" in out.replace("\n ", " ")


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", str(tmp_path / "missing.json"))
    assert code == 2
    assert_one_line_error(err, out, "missing.json", "no such file")


def test_fixture_missing_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "nokeys.json"
    bad.write_text(json.dumps({"c1": {"network": "Cancun", "blocks": []}}))
    code, out, err = run_cli(capsys, "run", str(bad), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, str(bad), "genesisBlockHeader", "pre")


@pytest.mark.parametrize("key, value, needle", [
    ("blocks", {"0": {}}, "'blocks' must be a JSON list, got dict"),
    ("pre", "0x00", "'pre' must be a JSON object, got str"),
    ("genesisBlockHeader", [], "'genesisBlockHeader' must be a JSON object, got list"),
    ("network", 7, "'network' must be a string, got int"),
])
def test_fixture_keys_of_the_wrong_shape_are_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        key: str, value: Any, needle: str) -> None:
    fixture = json.loads(FIXTURE.read_text())
    for case in fixture.values():
        case[key] = value
    bad = tmp_path / "shape.json"
    bad.write_text(json.dumps(fixture))
    code, out, err = run_cli(capsys, "run", str(bad), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, str(bad), needle)


def test_a_genesis_that_does_not_match_names_both_roots_in_hex(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"
    data = json.loads(fixture.read_text())
    for case in data.values():
        case["genesisBlockHeader"]["stateRoot"] = "0x" + "00" * 32
    bad = tmp_path / "genesis.json"
    bad.write_text(json.dumps(data))
    code, out, err = run_cli(capsys, "run", str(bad), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, str(bad), "invalid genesis", "0x" + "00" * 32)
    assert "b'" not in err + out


def test_unknown_network_in_fixture(tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "net.json"
    bad.write_text(json.dumps({"c1": {"network": "Atlantis", "genesisBlockHeader": {},
                                      "pre": {}, "blocks": []}}))
    code, out, err = run_cli(capsys, "run", str(bad), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, str(bad), "Atlantis")


def test_unknown_network_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "run", str(tmp_path), "--network", "Atlantis")
    assert code == 2
    assert_one_line_error(err, out, "unknown network", "Atlantis")


def test_not_a_fixture_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2, 3]")
    code, out, err = run_cli(capsys, "run", str(bad), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, str(bad), "not a BlockchainTests file")


@pytest.mark.parametrize("command", ["run", "bench"])
def test_paths_without_a_block_are_an_error_not_a_pass(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    # a directory whose only JSON is not a fixture: nothing to check or time
    (tmp_path / "notes.json").write_text("{}")
    code, out, err = run_cli(capsys, command, str(tmp_path))
    assert code == 2
    assert_one_line_error(err, out, "no block to", str(tmp_path),
                          "1 skipped: not a BlockchainTests file")


@pytest.mark.parametrize("missing", ["block.json", "pre_state.json"])
def test_a_snapshot_directory_missing_one_file_says_which(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str) -> None:
    snapshot = tmp_path / "12345"
    snapshot.mkdir()
    for name in ("block.json", "pre_state.json"):
        if name != missing:
            (snapshot / name).write_text("{}")
    code, out, err = run_cli(capsys, "run", str(snapshot))
    assert code == 2
    assert_one_line_error(err, out, str(snapshot),
                          f"a snapshot directory without {missing}")
    # found on a walk, it is passed over for that reason beside a block that runs
    shutil.copy(Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json",
                tmp_path)
    code, out, err = run_cli(capsys, "run", str(tmp_path), "--engine", "reference")
    assert code == 0, out + err
    assert f"skipped 1: a snapshot directory without {missing}" in out
    assert "not a BlockchainTests file" not in out + err


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_filter_that_matches_no_case_is_an_error(
        capsys: pytest.CaptureFixture[str], command: str) -> None:
    fixture = str(Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json")
    code, out, err = run_cli(capsys, command, fixture, "--filter", "no-such-case")
    assert code == 2
    assert_one_line_error(err, out, "no block to", "--filter no-such-case")


def _snapshot_copy(tmp_path: Path, number: str = "46147") -> Path:
    corpus = corpus_dir()
    if corpus is None or not (corpus / "mainnet" / number).is_dir():
        pytest.skip(f"needs the corpus mainnet block {number} (set PEVM_CORPUS)")
    target = tmp_path / number
    shutil.copytree(corpus / "mainnet" / number, target)
    return target


def test_mainnet_invalid_signature(tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot_copy(tmp_path)
    block = json.loads((snap / "block.json").read_text())
    tx = block["transactions"][0]
    tx["s"] = hex(int(tx["s"], 16) ^ 0xFFFF)  # still a number, no longer the signature
    tx.pop("hash")  # the hash check would catch it first; we test the signature check
    (snap / "block.json").write_text(json.dumps(block))
    code, out, err = run_cli(capsys, "run", str(snap), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, "block.json", "transaction 0", "signature")


@pytest.mark.parametrize("change, needles", [
    # read as an empty block, it would only fail against its header's roots
    (lambda block: block.pop("transactions"), ("missing field 'transactions'",)),
    # eth_getBlockByNumber(n, false): hashes where the transactions should be
    (lambda block: block.update(transactions=[t["hash"] for t in block["transactions"]]),
     ("transaction 0", "expected a transaction object", "eth_getBlockByNumber")),
])
def test_mainnet_block_without_its_transactions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        change: Callable[[dict[str, Any]], None], needles: tuple[str, ...]) -> None:
    snap = _snapshot_copy(tmp_path)
    block = json.loads((snap / "block.json").read_text())
    change(block)
    (snap / "block.json").write_text(json.dumps(block))
    code, out, err = run_cli(capsys, "run", str(snap), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, "block.json", *needles)


def test_mainnet_shanghai_block_without_its_withdrawals(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # from Shanghai on the block's withdrawals are required, as its transactions are
    snap = _snapshot_copy(tmp_path, "19923400")
    block = json.loads((snap / "block.json").read_text())
    del block["withdrawals"]
    (snap / "block.json").write_text(json.dumps(block))
    code, out, err = run_cli(capsys, "run", str(snap), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, "block.json", "missing field 'withdrawals'")


def test_mainnet_malformed_pre_state(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot_copy(tmp_path)
    pre = json.loads((snap / "pre_state.json").read_text())
    address = sorted(pre)[0]
    pre[address]["basic"]["balance"] = "0xnot-hex"
    (snap / "pre_state.json").write_text(json.dumps(pre))
    code, out, err = run_cli(capsys, "run", str(snap), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, "pre_state.json", address, "malformed")


def test_mainnet_missing_account_field(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot_copy(tmp_path)
    pre = json.loads((snap / "pre_state.json").read_text())
    address = sorted(pre)[0]
    del pre[address]["basic"]
    (snap / "pre_state.json").write_text(json.dumps(pre))
    code, out, err = run_cli(capsys, "run", str(snap), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, "pre_state.json", address, "basic")


@pytest.mark.parametrize("change, needles", [
    # a field pevm does not read would leave the account other than meant
    (lambda account: account.update(balance="0x1"), ("unknown field 'balance'",
                                                     "basic, code, code_hash, storage")),
    (lambda account: account["basic"].update(nonse=1), ("unknown field 'nonse' in basic",)),
    (lambda account: account.update(code=None, code_hash="0x" + "ab" * 32),
     ("but no code",)),
    (lambda account: account.update(code={"bytecode": "0x6000", "original_len": 3},
                                    code_hash=None), ("original_len 3",)),
    (lambda account: account.update(code={"bytecode": "0x6000", "size": 2},
                                    code_hash=None), ("unknown field 'size' in code",)),
])
def test_mainnet_pre_state_account_fields_are_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        change: Callable[[dict[str, Any]], None], needles: tuple[str, ...]) -> None:
    snap = _snapshot_copy(tmp_path)
    pre = json.loads((snap / "pre_state.json").read_text())
    address = sorted(pre)[0]
    change(pre[address])
    (snap / "pre_state.json").write_text(json.dumps(pre))
    code, out, err = run_cli(capsys, "run", str(snap), "--engine", "reference")
    assert code == 2
    assert_one_line_error(err, out, "pre_state.json", address, *needles)


def test_mainnet_pre_state_empty_code_hash_without_code_is_accepted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an account without code may name the empty code's hash
    snap = _snapshot_copy(tmp_path)
    pre = json.loads((snap / "pre_state.json").read_text())
    address = next(a for a in sorted(pre) if not pre[a]["code"])
    pre[address]["code_hash"] = "0x" + keccak(b"").hex()
    (snap / "pre_state.json").write_text(json.dumps(pre))
    code, out, err = run_cli(capsys, "run", str(snap), "--engine", "reference")
    assert code == 0, err + out


def test_debug_shows_traceback_for_errors(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--debug", "run", str(tmp_path), "--network", "X")
    assert code == 2
    assert "Traceback" in err
