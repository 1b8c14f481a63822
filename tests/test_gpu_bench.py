"""``pevm hashbench`` and pevm.gpu.bench on tiny settings (no timing asserted)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pevm.cli.main import main
from pevm.gpu import bench


def test_batch_sizes() -> None:
    assert bench.batch_sizes(1000, 1_000_000) == [1000, 10_000, 100_000, 1_000_000]
    assert bench.batch_sizes(1000, 5000) == [1000, 5000]
    assert bench.batch_sizes(1000, 1000) == [1000]


def test_make_accounts_deterministic() -> None:
    a, b = bench.make_accounts(50, seed=3), bench.make_accounts(50, seed=3)
    assert a == b and len(a) == 50
    assert sum(1 for s in a.values() if s.code) == 5


def test_hashbench_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = main(["hashbench", "--backend", "cpu", "--sizes", "32,136", "--max-batch", "2000",
                 "--accounts", "300", "--min-time", "0.01", "--rounds", "1", "--quiet",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Keccak-256, 32-byte messages" in text and "State root" in text
    report = json.loads(out.read_text())
    methods = {r["method"] for r in report["keccak"]}
    assert {"eth-hash", "cpu-loop", "cpu-numpy"} <= methods
    assert all(r["hashes_per_s"] > 0 for r in report["keccak"] if "skipped" not in r)
    (root,) = report["state_root"]
    assert root["roots_match"] is True and root["accounts"] == 300


def test_hashbench_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["hashbench", "--sizes", "0,x"])
    assert main(["hashbench", "--json", "/nonexistent-dir/r.json", "--quiet"]) == 2


def test_hashbench_incremental_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = main(["hashbench", "--backend", "cpu", "--accounts", "300,1000", "--update", "10,50",
                 "--only-update", "--rounds", "1", "--quiet", "--json", str(out)])
    assert code == 0
    assert "Incremental state root" in capsys.readouterr().out
    records = json.loads(out.read_text())["incremental_root"]
    assert [(r["accounts"], r["updated"]) for r in records] == [
        (300, 10), (300, 50), (1000, 10), (1000, 50)]
    for r in records:  # py-evm's AccountDB, doing the same writes, reaches the same root
        assert r["roots_match"] is True
        assert r["seconds"] > 0 and r["pyevm_seconds"] > 0
        assert r["speedup_vs_pyevm"] == pytest.approx(r["pyevm_seconds"] / r["seconds"])


def test_hashbench_only_update_needs_update() -> None:
    assert main(["hashbench", "--only-update", "--quiet"]) == 2
