"""``pevm run`` end to end: verdicts, mismatch reports, JSON lines and exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pevm.cli.main import main

from .conftest import corpus_dir

BURN_VERIFY = "ethtests/ethereum-tests/BlockchainTests/ValidBlocks/bcEIP1559/burnVerify.json"


@pytest.fixture
def burn_verify(tmp_path: Path) -> dict:
    corpus = corpus_dir()
    if corpus is None or not (corpus / BURN_VERIFY).exists():
        pytest.skip(f"needs {BURN_VERIFY} from the corpus (set PEVM_CORPUS)")
    return json.loads((corpus / BURN_VERIFY).read_text())


def _write(tmp_path: Path, data: dict, name: str = "case.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_valid_fixture_passes_with_json(tmp_path: Path, burn_verify: dict,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, burn_verify)
    code = main(["run", str(path), "--engine", "reference", "--check", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    rows = _json_lines(out)
    fixture = next(iter(burn_verify.values()))
    assert len(rows) == len(fixture["blocks"])
    for row, block in zip(rows, fixture["blocks"]):
        for key in ("source", "case", "block", "txs", "gas_used", "ok", "mismatches",
                    "seconds"):
            assert key in row
        assert row["ok"] is True and row["mismatches"] == []
        assert row["txs"] == len(block["transactions"])
        assert row["gas_used"] == int(block["blockHeader"]["gasUsed"], 16)
        assert "reference" in row["seconds"] and "engine" in row["seconds"]


def test_header_mismatch_is_reported_precisely(tmp_path: Path, burn_verify: dict,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    fixture = next(iter(burn_verify.values()))
    real = int(fixture["blocks"][1]["blockHeader"]["gasUsed"], 16)
    fixture["blocks"][1]["blockHeader"]["gasUsed"] = hex(real + 1)
    path = _write(tmp_path, burn_verify)
    code = main(["run", str(path), "--engine", "reference", "--json"])
    rows = _json_lines(capsys.readouterr().out)
    assert code == 1
    bad = [r for r in rows if not r["ok"]]
    assert [r["block"] for r in bad] == [1]
    assert bad[0]["mismatches"] == [{"tx": None, "field": "header.gasUsed",
                                     "expected": str(real + 1), "actual": str(real)}]


def test_post_state_mismatch_names_account_and_field(
        tmp_path: Path, burn_verify: dict, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = next(iter(burn_verify.values()))
    address = sorted(fixture["postState"])[1]
    real = int(fixture["postState"][address]["balance"], 16)
    fixture["postState"][address]["balance"] = hex(real + 7)
    path = _write(tmp_path, burn_verify)
    code = main(["run", str(path), "--engine", "reference"])
    captured = capsys.readouterr()
    assert code == 1
    text = captured.out + captured.err
    assert f"postState[{address}].balance: expected {real + 7}, got {real}" in text


def test_filter_and_network_skip(tmp_path: Path, burn_verify: dict,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, burn_verify)
    code = main(["run", str(path), "--engine", "reference", "--network", "Prague",
                 "--json"])
    captured = capsys.readouterr()
    # every case skipped: the run checked nothing, which is not a pass
    assert code == 2
    assert _json_lines(captured.out) == []
    assert "network is not Prague" in captured.err
    assert "no block to run" in captured.err
    code = main(["run", str(path), "--engine", "reference", "--filter", "no-such-case"])
    assert code == 2


def test_directory_walk_skips_non_fixture_json(tmp_path: Path, burn_verify: dict,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, burn_verify, "a.json")
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    code = main(["run", str(tmp_path), "--engine", "reference", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert len(_json_lines(captured.out)) == 7
    assert "not a BlockchainTests file" in captured.err


def test_help_explains_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--engine", "--workers", "--check", "--json", "--filter", "--network",
                   "Exit status"):
        assert option in text
