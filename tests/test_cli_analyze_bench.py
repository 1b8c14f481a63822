"""``pevm analyze`` and ``pevm bench`` on a real block: outputs and their schema."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pevm.cli.main import main
from pevm.memory import supported as memory_supported

from .conftest import corpus_dir


@pytest.fixture
def snapshot() -> Path:
    corpus = corpus_dir()
    if corpus is None or not (corpus / "mainnet" / "930196").is_dir():
        pytest.skip("needs the corpus mainnet block 930196 (set PEVM_CORPUS)")
    return corpus / "mainnet" / "930196"


def test_analyze_json_and_dot(snapshot: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    dot = tmp_path / "graph.dot"
    assert main(["analyze", str(snapshot), "--json", "--dot", str(dot)]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["txs"] == 18
    assert set(row["ideal_speedup"]) == {"1", "2", "4", "8", "16", "inf"}
    assert row["ideal_speedup"]["1"] == 1.0
    assert 1.0 <= row["ideal_speedup"]["2"] <= 2.0
    assert row["critical_path"]["count"] >= 1
    text = dot.read_text()
    assert text.startswith("digraph") and "t17" in text


def test_bench_writes_json_schema_and_plot(snapshot: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    assert main(["bench", str(snapshot), "--workers", "1,2", "--repeat", "1",
                 "--json", str(out), "--plot", str(png), "--memory"]) == 0
    # the tables say what machine they were measured on
    assert "machine: " in capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["machine"]["cpu_count"] >= 1
    assert {"cpu_model", "threads_per_core", "slowness"} <= set(document["machine"])
    # the machine's speed, probed before the block and after it
    probes = document["machine"]["slowness_probes"]
    assert len(probes) == 2 and probes[0] == document["machine"]["slowness"]
    assert all(0.25 <= p <= 8.0 for p in probes)
    assert document["command"].startswith("pevm bench ") and "--memory" in document["command"]
    [block] = document["blocks"]
    assert block["txs"] == 18 and block["gas"] > 0
    assert block["reference"]["seconds"]["median"] > 0
    for row in block["engine"]:
        for key in ("workers", "seconds", "speedup_vs_reference",
                    "speedup_vs_one_process", "ideal_speedup", "efficiency"):
            assert key in row
        assert set(row["seconds"]) >= {"median", "min", "max"}
        phase = row["transaction_phase"]
        # the engine's own phase is part of the whole import it was timed in
        assert 0 < phase["seconds"]["median"] <= row["seconds"]["median"]
        assert phase["speedup_vs_reference"] > 0
        if memory_supported():
            assert row["peak_memory"]["pss_mib"] > 0
            assert row["peak_memory"]["rss_sum_mib"] >= row["peak_memory"]["pss_mib"]
    assert [row["workers"] for row in block["engine"]] == [1, 2]
    # 18 transactions: too few for workers, one process at both counts
    assert [row["processes_ran"] for row in block["engine"]] == [1, 1]
    assert block["engine"][0]["speedup_vs_one_process"] == 1.0
    assert png.stat().st_size > 1000


def test_bench_ceiling_is_reported_beside_the_engine(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", str(snapshot), "--workers", "1,2", "--repeat", "1",
                 "--ceiling", "--json", str(out)]) == 0
    [block] = json.loads(out.read_text())["blocks"]
    assert set(block["ceiling"]) == {"2"} and block["ceiling"]["2"] > 0
    one, two = (row["transaction_phase"] for row in block["engine"])
    assert one["ceiling"] is None and one["of_ceiling"] is None
    assert two["ceiling"] == block["ceiling"]["2"]
    assert two["of_ceiling"] == pytest.approx(
        two["speedup_vs_one_process"] / block["ceiling"]["2"])


def test_a_ceiling_copy_that_fails_is_an_error_not_a_number(tmp_path: Path) -> None:
    from pevm.ceiling import copies_at_once
    from pevm.errors import PevmError
    from pevm.inputs.discover import CaseRef

    missing = CaseRef(str(tmp_path / "gone.json"), "case", "fixture", "Prague")
    with pytest.raises(PevmError, match="ceiling run failed"):
        copies_at_once(missing, 2)


def test_bench_refuses_to_time_an_engine_that_differs_from_py_evm(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import pevm.bench
    from pevm.compare import Mismatch

    calls = []

    def differs(expected, actual, limit=10):
        calls.append((expected, actual))
        return [Mismatch("gas_used", "1", "2")]

    monkeypatch.setattr(pevm.bench, "compare_results", differs)
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"
    code = main(["bench", str(fixture), "--workers", "1", "--repeat", "1"])
    assert code == 1                     # a mismatch, as in pevm run
    assert "differs from py-evm" in capsys.readouterr().err
    assert calls and calls[0][0] is not calls[0][1]


def test_bench_alternates_the_engines_order_after_py_evm(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a run's place in the round moves its time: the engines' order is reversed
    # every other timed round, py-evm's reference always first
    import pevm.bench
    from pevm.inputs.discover import list_cases

    runs: list[tuple[str, int]] = []
    original = pevm.bench._run_once

    def recorded(ref, engine, results=None, totals=None):
        runs.append((engine.name, getattr(engine, "workers", 1)))
        return original(ref, engine, results, totals)

    monkeypatch.setattr(pevm.bench, "_run_once", recorded)
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"
    [ref] = list_cases([str(fixture)]).cases
    pevm.bench.bench_case(ref, [1, 2], repeat=3, warmup=1, min_time=0)
    rounds = [runs[i:i + 3] for i in range(0, len(runs), 3)]
    assert len(rounds) == 4
    reference = ("reference", 1)
    one, two = ("parallel", 1), ("parallel", 2)
    # warm-up round, then three timed rounds: 1 and 2 workers, reversed, again
    assert rounds == [[reference, two, one], [reference, one, two],
                      [reference, two, one], [reference, one, two]]


def test_a_short_import_is_timed_as_the_mean_of_several(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pevm.bench
    from pevm.bench import MAX_LOOPS, loops_for
    from pevm.inputs.discover import list_cases

    # as many imports as span the minimum, at most MAX_LOOPS; 0 disables it
    assert loops_for(0.2, 0.05) == 1
    assert loops_for(0.01, 0.05) == 5
    assert loops_for(0.012, 0.05) == 5
    assert loops_for(0.0, 0.05) == MAX_LOOPS
    assert loops_for(0.001, 0.0) == 1
    # the count comes from the warm-up round's fastest import; each timed sample
    # of every configuration is then the mean of that many imports: py-evm's in a
    # row, the engines' alternating import by import (a VM's speed drifts over a
    # sample's span), their order reversed every other import
    seen: list[float] = []

    def three(seconds: float, min_time: float) -> int:
        seen.append(seconds)
        return 3

    monkeypatch.setattr(pevm.bench, "loops_for", three)
    runs: list[str] = []
    original = pevm.bench._run_once

    def recorded(ref, engine, results=None, totals=None):
        name = f"{engine.name}{getattr(engine, 'workers', '')}"
        runs.append(name)
        _, phase, txs, gas = original(ref, engine, results, totals)
        # the nth import of a configuration "takes" n/100 s, its phase n/1000 s
        return runs.count(name) / 100, runs.count(name) / 1000, txs, gas

    monkeypatch.setattr(pevm.bench, "_run_once", recorded)
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"
    [ref] = list_cases([str(fixture)]).cases
    bench = pevm.bench.bench_case(ref, [2], repeat=2, warmup=1)
    assert seen == [0.01]
    one, two = "parallel1", "parallel2"
    assert runs == ["reference", two, one] + \
        ["reference"] * 3 + [one, two, two, one, one, two] + \
        ["reference"] * 3 + [two, one, one, two, two, one]
    assert bench.loops == 3 and bench.to_json()["loops"] == 3
    # imports 2-4, then 5-7, of each configuration: their means
    for timing in (bench.reference, *bench.engine):
        assert timing.samples == pytest.approx([0.03, 0.06])
        assert timing.phase_samples == pytest.approx([0.003, 0.006])


def test_a_variant_is_timed_beside_the_engine_as_it_ships(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an A/B of a tuning option: the variant runs in the same rounds at each
    # worker count, is checked against py-evm like the engine, and is reported
    # against the engine as it ships at the same count
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"
    out = tmp_path / "bench.json"
    assert main(["bench", str(fixture), "--workers", "2", "--repeat", "2",
                 "--min-time", "0", "--variant", "chunk_size=4,max_outstanding=1",
                 "--variant", "worker_nice=0", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "variants against the engine as it ships" in printed
    [block] = json.loads(out.read_text())["blocks"]
    assert [row["workers"] for row in block["engine"]] == [1, 2]   # unchanged
    assert [(row["variant"], row["workers"]) for row in block["variants"]] == [
        ("chunk_size=4,max_outstanding=1", 2), ("worker_nice=0", 2)]
    two = next(row for row in block["engine"] if row["workers"] == 2)
    for row in block["variants"]:
        phase = row["transaction_phase"]
        assert len(phase["seconds"]["samples"]) == 2
        shipped = two["transaction_phase"]["seconds"]["median"]
        assert phase["speedup_vs_base"] == pytest.approx(
            shipped / phase["seconds"]["median"])
        assert phase["paired_vs_base"]["min"] <= phase["paired_vs_base"]["median"] \
            <= phase["paired_vs_base"]["max"]
    from pevm.bench import BlockBench
    again = BlockBench.from_json(block)
    assert [t.options for t in again.variants] == [
        {"chunk_size": 4, "max_outstanding": 1}, {"worker_nice": 0}]


def test_a_variant_that_is_no_option_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"
    with pytest.raises(SystemExit) as exit_:
        main(["bench", str(fixture), "--variant", "chunk_sise=4"])
    assert exit_.value.code == 2
    assert "unknown engine option 'chunk_sise'" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--cores", "4"], ["--recalibrate"],
                                    ["--profile-repeat", "2"],
                                    ["--background-load", "1"]])
def test_analyze_refuses_a_simulation_option_without_simulate(
        option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    fixture = Path(__file__).parent.parent / "fixtures" / "erc20_small.json"
    assert main(["analyze", str(fixture), *option]) == 2
    out, err = capsys.readouterr()
    assert f"{option[0]} shapes the simulation: add --simulate LIST" in err
    assert out == ""  # refused before any block ran


def test_bench_says_which_imports_ran_as_a_sender_pipeline(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the bundled transfers fixture, forked at once and held to the pipeline by a
    # variant: its row counts the imports that ran so, and the table says it
    fixture = Path(__file__).parent.parent / "fixtures" / "transfers_c100.json"
    out = tmp_path / "bench.json"
    assert main(["bench", str(fixture), "--workers", "2", "--repeat", "1",
                 "--min-time", "0", "--json", str(out), "--variant",
                 "sender_pipeline=True,fork_after=0,min_parallel_txs=2"]) == 0
    assert "2 (pipeline)" in capsys.readouterr().out
    [block] = json.loads(out.read_text())["blocks"]
    [variant] = block["variants"]
    assert variant["sender_pipelines"] == 1
    one = next(row for row in block["engine"] if row["workers"] == 1)
    assert one["sender_pipelines"] == 0
    assert block["reference"].get("sender_pipelines") is None
