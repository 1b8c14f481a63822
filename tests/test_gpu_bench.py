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


def test_a_spent_budget_skips_what_is_left_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a budget spent before the first measurement: nothing runs, everything is
    # reported as skipped for that reason (a run under a time limit still reports)
    report = bench.run(sizes=[32], max_batch=2000, accounts=[300], backend="cpu",
                       pyevm=False, min_time=0.01, rounds=1, budget=1e-9)
    assert report["keccak"] and all(r.get("skipped") == bench.OVER_BUDGET
                                    for r in report["keccak"])
    assert report["state_root"] == [{"accounts": 300, "backend": "cpu",
                                     "skipped": bench.OVER_BUDGET}]
    assert "over the run's --budget" in bench.format_report(report)
    # a budget that is not spent changes nothing
    report = bench.run(sizes=[32], max_batch=2000, accounts=[300], backend="cpu",
                       pyevm=False, min_time=0.01, rounds=1, budget=600)
    assert not any("skipped" in r for r in report["keccak"])
    assert report["state_root"][0]["batched_s"] > 0
    out = tmp_path / "report.json"
    assert main(["hashbench", "--backend", "cpu", "--sizes", "32", "--max-batch", "1000",
                 "--accounts", "300", "--budget", "1e-9", "--quiet", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["budget"] == 1e-9
    assert "skipped: over the run's --budget" in capsys.readouterr().out


def test_hashbench_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["hashbench", "--sizes", "0,x"])
    assert main(["hashbench", "--json", "/nonexistent-dir/r.json", "--quiet"]) == 2
    assert main(["hashbench", "--budget", "0", "--quiet"]) == 2


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
