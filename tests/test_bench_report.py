"""benchmarks/report.py renders what pevm bench measured (the tables of docs/results.md)."""
from __future__ import annotations

import json
import statistics
from typing import Any

import pytest

from benchmarks.report import render, render_model


def _block(name: str, ref: float, ref_phase: float, engine: dict[int, tuple[float, float]]
           ) -> dict:
    one, one_phase = engine[1]
    return {"name": name, "txs": 10, "reference": {
        "seconds": {"median": ref}, "transaction_phase": {"seconds": {"median": ref_phase}}},
        "engine": [{"workers": w, "seconds": {"median": s},
                    "speedup_vs_reference": ref / s, "speedup_vs_one_process": one / s,
                    "ideal_speedup": None, "efficiency": None,
                    "transaction_phase": {"seconds": {"median": p},
                                          "speedup_vs_reference": ref_phase / p,
                                          "speedup_vs_one_process": one_phase / p}}
                   for w, (s, p) in engine.items()]}


DOCUMENT = {"machine": {"cpu_count": 2, "python": "3.11", "platform": "Linux"},
            "date": "2026-11-24T00:00:00", "repeat": 3,
            "blocks": [_block("a", 4.0, 2.0, {1: (2.0, 1.0), 2: (1.0, 0.5)}),
                       _block("b", 6.0, 3.0, {1: (3.0, 2.0), 2: (4.0, 2.5)})]}


def test_rows_per_block_and_the_sums_over_blocks() -> None:
    text = render(DOCUMENT)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 4 + 2          # header, 2 blocks x 2 worker counts, totals
    cells = [c.strip() for c in rows[-2].strip("|").split("|")]
    # one process over both blocks: import 10 s vs 5 s, phase 5 s vs 3 s
    assert cells[:6] == ["**all 2 blocks**", "20", "1", "10.00", "5.00", "2.00"]
    assert cells[9:12] == ["5.00", "3.00", "1.67"]
    two = [c.strip() for c in rows[-1].strip("|").split("|")]
    assert two[2] == "2" and two[4] == "5.00" and two[6] == "1.00"   # 5 s vs 5 s
    assert two[10:13] == ["3.00", "1.67", "1.00"]


def test_the_ceiling_columns_appear_where_it_was_measured() -> None:
    import copy

    document: Any = copy.deepcopy(DOCUMENT)
    block = document["blocks"][0]
    block["ceiling"] = {"2": 1.6}
    block["engine"][1]["transaction_phase"].update(ceiling=1.6, of_ceiling=2.0 / 1.6)
    rows = [line for line in render(document).splitlines()
            if line.startswith("| ") and "---" not in line]
    assert rows[0].endswith("| ceiling | of ceiling |")
    two = [c.strip() for c in rows[2].strip("|").split("|")]
    assert two[2] == "2" and two[-2:] == ["1.60", "125%"]
    assert [c.strip() for c in rows[1].strip("|").split("|")][-2:] == ["-", "-"]
    assert "ceiling" not in render(DOCUMENT)  # none measured: no columns


def test_totals_only() -> None:
    rows = [line for line in render(DOCUMENT, totals_only=True).splitlines()
            if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 2 and all("all 2 blocks" in row for row in rows[1:])


def test_a_bench_document_round_trips() -> None:
    from pevm.bench import BlockBench, Timing

    ref = Timing("reference", 1, [3.0, 2.0, 4.0], [1.5, 1.0, 2.0])
    engine = [Timing("parallel", 1, [2.0, 2.0, 2.5], [1.0, 0.9, 1.1]),
              Timing("parallel", 2, [1.5, 1.2, 1.9], [0.6, 0.5, 0.7])]
    engine[1].breakdown = {"coordinator": {"execute": 0.3}, "worker 0": {"execute": 0.3}}
    engine[1].page_faults = {"coordinator": 5, "worker 0": 4}
    engine[1].slowness = [1.25]
    bench = BlockBench("b", "src", 10, 1000, ref, engine, {"1": 1.0, "2": 2.0},
                       ceiling={"2": 1.5})
    again = BlockBench.from_json(bench.to_json())
    assert again.to_json() == bench.to_json()
    row = again.rows()[1]
    assert row["decision_slowness"] == [1.25]
    assert row["speedup_vs_reference"] == 3.0 / 1.5
    assert row["transaction_phase"]["speedup_vs_one_process"] == 1.0 / 0.6
    assert row["transaction_phase"]["of_ceiling"] == 1.0 / 0.6 / 1.5
    # round by round: 1.0/0.6, 0.9/0.5, 1.1/0.7
    assert row["transaction_phase"]["paired_vs_one_process"] == {
        "median": 1.0 / 0.6, "min": 1.1 / 0.7, "max": 0.9 / 0.5}


def test_process_totals_add_up_a_case_block_by_block() -> None:
    from pevm.bench import ProcessTotals
    from pevm.engines.detail import ParallelDetail

    # a case of three blocks: the second ran in one process, the first in two;
    # the third was too short to decide anything (slowness 0.0: left out)
    totals = ProcessTotals()
    totals.add(ParallelDetail(
        breakdown={"coordinator": {"execute": 0.25, "merge": 0.125},
                   "worker 0": {"execute": 0.5}},
        page_faults={"coordinator": 10, "worker 0": 7}, slowness=1.4))
    totals.add(ParallelDetail(breakdown={"coordinator": {"execute": 0.5}},
                              page_faults={"coordinator": 1}, slowness=1.6))
    totals.add(ParallelDetail(breakdown={"coordinator": {"execute": 0.125}}))
    assert totals.breakdown == {"coordinator": {"execute": 0.875, "merge": 0.125},
                                "worker 0": {"execute": 0.5}}
    assert totals.page_faults == {"coordinator": 11, "worker 0": 7}
    assert totals.slowness == [1.4, 1.6]


def test_paired_ratios_cancel_a_slow_spell_that_the_medians_keep() -> None:
    from pevm.bench import paired_ratios

    # the machine runs at half speed in the middle round: both engines slow down
    one, two = [1.0, 2.0, 1.2], [0.5, 1.0, 1.0]
    assert statistics.median(one) / statistics.median(two) == 1.2
    assert paired_ratios(one, two) == {"median": 2.0, "min": 1.2, "max": 2.0}
    assert paired_ratios([], []) is None


def test_the_paired_column_shows_median_and_range() -> None:
    import copy

    document: Any = copy.deepcopy(DOCUMENT)
    document["blocks"][0]["engine"][1]["transaction_phase"]["paired_vs_one_process"] = {
        "median": 1.9, "min": 1.5, "max": 2.25}
    rows = [line for line in render(document).splitlines()
            if line.startswith("| ") and "---" not in line]
    assert rows[0].endswith("| vs 1 process | paired (range) |")
    assert rows[2].endswith("| 1.90 (1.50-2.25) |")
    assert rows[3].endswith("| - |")   # a document without it (an older run)


def test_memory_table_lists_each_configuration_with_a_peak() -> None:
    from benchmarks.report import render_memory

    document = {"blocks": [_block("a", 4.0, 2.0, {1: (2.0, 1.0), 4: (1.0, 0.5)})]}
    block = document["blocks"][0]
    block["reference"]["peak_memory"] = {"pss_mib": 500.0, "rss_sum_mib": 501.0,
                                         "processes": 1}
    block["engine"][1]["peak_memory"] = {"pss_mib": 1012.4, "rss_sum_mib": 2556.1,
                                         "processes": 5}
    rows = [line for line in render_memory(document).splitlines()[2:]]
    assert len(rows) == 2                  # the one-process run had no peak recorded
    assert rows[1].split("|")[2:7] == [" pevm ", " 4 ", " 5 ", " 1,012 ", " 2,556 "]


def test_the_model_against_the_measurement() -> None:
    def block(name: str, one: tuple[float, float], two: tuple[float, float]) -> dict:
        return {"name": name, "engine": [
            {"workers": w, "transaction_phase": {"seconds": {"median": m, "min": f}}}
            for w, (m, f) in ((1, one), (2, two))]}

    document = {"blocks": [block("a", (1.0, 0.9), (0.5, 0.5)),    # 2.00x (1.80x)
                           block("b", (2.0, 2.0), (2.5, 2.0))]}   # 0.80x (1.00x)
    simulated = [{"case": "a", "ideal_speedup": {"2": 2.0, "16": 10.0},
                  "ideal_speedup_by_time": {"2": 1.6},
                  "simulated_speedup": {"1": 1.0, "2": 1.8, "4": 2.5, "8": 3.0,
                                        "16": 3.2, "64": 3.0}},
                 {"case": "b", "ideal_speedup": {"2": 1.5, "16": 1.5},
                  "simulated_speedup": {"1": 1.0, "2": 1.0, "4": 1.0}},
                 {"case": "c", "ideal_speedup": {"2": 2.0, "16": 2.0},
                  "simulated_speedup": {"1": 1.0, "2": 1.5}}]   # not measured
    text = render_model(document, simulated)
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1] == ["a", "2.00 / 1.60", "1.80", "2.00 (1.80)", "-10%", "100% / 125%",
                       "2.50 / 3.00 / 3.20 / 3.00", "10.00"]
    assert rows[2][1] == "1.50 / -"        # an analysis without measured times
    assert rows[2][3:6] == ["0.80 (1.00)", "+25%", "53% / -"]
    assert rows[3][3:6] == ["-", "-", "-"]
    assert "Within 15% on 1 of 2 blocks; mean absolute error 18%." in text
    assert "workers | ideal | simulated" not in text   # measured at 1 and 2 only


def test_the_model_says_how_many_cores_it_was_simulated_on() -> None:
    document = {"blocks": [{"name": "a", "engine": [
        {"workers": w, "transaction_phase": {"seconds": {"median": m, "min": m}}}
        for w, m in ((1, 1.0), (2, 0.8))]}]}
    row = {"case": "a", "ideal_speedup": {"2": 2.0, "16": 10.0},
           "simulated_speedup": {"1": 1.0, "2": 1.3, "4": 1.3, "64": 1.3}}
    assert "cores" not in render_model(document, [row])  # no calibration recorded
    text = render_model(document, [row | {"calibration": {"cores": 2}}])
    assert "Simulated on 2 cores, the calibration's: past 2 workers" in text
    # a calibration with cores for every count needs no such word
    assert "Simulated on" not in render_model(document, [row | {"calibration": {"cores": 64}}])


def test_the_model_against_a_many_core_measurement_at_every_count() -> None:
    engine = [{"workers": w, "transaction_phase": {"seconds": {"median": m, "min": m}}}
              for w, m in ((1, 4.0), (2, 2.5), (4, 2.0), (16, 4.0))]
    document = {"blocks": [{"name": "a", "engine": engine}]}
    simulated = [{"case": "a", "ideal_speedup": {"2": 2.0, "4": 3.9, "16": 12.0},
                  "simulated_speedup": {"1": 1.0, "2": 1.5, "4": 2.0, "8": 1.5}}]
    lines = render_model(document, simulated).splitlines()
    beyond = [[c.strip() for c in line.strip("|").split("|")]
              for line in lines[lines.index("| block | workers | ideal | simulated | "
                                            "measured (fastest) | error |") + 2:]
              if line.startswith("| ")]
    # 4 workers: 2.0 simulated against 4.0 / 2.0 measured; 16 was not simulated
    assert beyond == [["a", "4", "3.90", "2.00", "2.00 (2.00)", "+0%"]]
    assert lines[-1] == "Within 15% on 1 of 1 block-and-count pairs; mean absolute error 0%."


def test_the_state_layer_table_gives_each_import_and_its_share_outside_the_phase() -> None:
    from benchmarks.report import render_state_layer
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in render_state_layer(DOCUMENT).splitlines()[2:]]
    # block a: py-evm 4 s (2 s outside its 2 s phase), pevm at 1 worker 2 s (1 s)
    assert rows[0] == ["a", "10", "4.000", "2.000", "2.00x", "50%", "50%"]
    assert rows[1] == ["b", "10", "6.000", "3.000", "2.00x", "50%", "33%"]
    # in all: 10 s vs 5 s; outside the phase 5 of 10 s and 2 of 5 s
    assert rows[2] == ["**total**", "", "10.00", "5.00", "**2.00x**", "50.0%", "40.0%"]


def test_the_breakdown_gives_each_process_s_time_by_activity_in_ms() -> None:
    from benchmarks.report import render_breakdown
    document = {"blocks": [_block("a", 4.0, 2.0, {1: (2.0, 1.0), 2: (1.0, 0.5)})]}
    one, two = document["blocks"][0]["engine"]
    one["breakdown"] = {"coordinator": {"execute": 0.8, "merge": 0.1, "other": 0.1}}
    two["breakdown"] = {"coordinator": {"execute": 0.3, "message": 0.05, "other": 0.15},
                        "worker 0": {"execute": 0.4, "idle": 0.02}}
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in render_breakdown(document).splitlines()]
    # only the activities some row has, in the engine's order, the rest of the time last
    assert rows[0] == ["block", "workers", "process", "execute", "message", "merge",
                       "other", "idle", "total"]
    assert rows[2] == ["a", "1", "coordinator", "800.0", "", "100.0", "100.0", "", "1000.0"]
    assert rows[3] == ["a", "2", "coordinator", "300.0", "50.0", "", "150.0", "", "500.0"]
    assert rows[4] == ["a", "2", "worker 0", "400.0", "", "", "", "20.0", "420.0"]
    # a document from before the breakdown existed says so instead of an empty table
    assert "No per-process breakdown" in render_breakdown(DOCUMENT)


def test_the_breakdown_adds_each_process_s_page_faults_where_the_document_has_them():
    from benchmarks.report import render_breakdown
    document = {"blocks": [_block("a", 4.0, 2.0, {1: (2.0, 1.0), 2: (1.0, 0.5)})]}
    one, two = document["blocks"][0]["engine"]
    one["breakdown"] = {"coordinator": {"execute": 0.8}}
    two["breakdown"] = {"coordinator": {"execute": 0.3}, "worker 0": {"execute": 0.4}}
    two["page_faults"] = {"coordinator": 4022, "worker 0": 3276}
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in render_breakdown(document).splitlines()]
    assert rows[0][-1] == "page faults"
    # a row without a count (here: a document's 1-worker row from before) stays empty
    assert [row[-1] for row in rows[2:]] == ["", "4,022", "3,276"]


def test_the_variants_table_sets_each_against_the_engine_at_the_same_count() -> None:
    from benchmarks.report import render_variants
    document = {"blocks": [_block("a", 4.0, 2.0, {1: (2.0, 1.0), 2: (1.0, 0.5)})]}
    document["blocks"][0]["variants"] = [
        {"variant": "worker_nice=0", "workers": 2, "transaction_phase": {
            "seconds": {"median": 0.625}, "speedup_vs_base": 0.8,
            "paired_vs_base": {"median": 0.79, "min": 0.7, "max": 0.9}}}]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in render_variants(document).splitlines()]
    assert rows[2] == ["a", "worker_nice=0", "2", "0.625", "0.500", "0.80",
                       "0.79 (0.70-0.90)"]
    assert "No variants" in render_variants(DOCUMENT)


def test_the_script_refuses_a_missing_or_malformed_file_with_one_line(tmp_path, capsys
                                                                      ) -> None:
    from benchmarks.report import main
    assert main([str(tmp_path / "absent.json")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("report.py: cannot read") for line in err)
    other = tmp_path / "hashbench.json"  # JSON, but not a bench document
    other.write_text(json.dumps({"machine": {}, "keccak": []}))
    assert main([str(other)]) == 2
    assert "not a pevm bench --json document" in capsys.readouterr().err


def test_the_script_refuses_a_plot_it_cannot_write_before_reading(tmp_path, capsys
                                                                   ) -> None:
    from benchmarks.report import main
    # the input is never read: a path it cannot plot to stops it first
    absent = str(tmp_path / "absent.json")
    missing_dir = str(tmp_path / "nowhere" / "speedup.png")
    assert main([absent, "--plot", missing_dir]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"report.py: {missing_dir}: directory") and "Traceback" not in err
    pytest.importorskip("matplotlib", reason="--plot needs the bench extra's matplotlib")
    assert main([absent, "--plot", str(tmp_path / "speedup.xyz")]) == 2
    err = capsys.readouterr().err
    assert "does not write .xyz files" in err and "Traceback" not in err


def test_the_script_plots_the_model_against_the_bench_whole(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs the bench extra's matplotlib")
    from benchmarks.report import main
    bench, model = tmp_path / "bench.json", tmp_path / "model.jsonl"
    bench.write_text(json.dumps({"blocks": [{"name": "a", "engine": [
        {"workers": w, "transaction_phase": {"seconds": {"median": m, "min": m}}}
        for w, m in ((1, 1.0), (2, 0.6))]}]}))
    model.write_text(json.dumps({"case": "a", "ideal_speedup": {"1": 1.0, "2": 1.8},
                                 "simulated_speedup": {"1": 1.0, "2": 1.5}}) + "\n")
    target = tmp_path / "model.svg"
    assert main([str(bench), "--model", str(model), "--plot", str(target)]) == 0
    assert target.read_text().lstrip().startswith("<?xml")  # the format its name asks
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_run_whose_machine_speed_moved_says_so() -> None:
    from pevm.bench_report import SPEED_SPREAD, speed_note
    assert speed_note([1.2]) is None                      # nothing to compare
    assert speed_note([1.2, 1.25, 1.2 * SPEED_SPREAD]) is None  # within the spread
    note = speed_note([1.2, 1.5, 1.3])
    assert note is not None
    assert "slowness 1.20-1.50x over 3 probes" in note and "25%" in note


def test_a_block_in_one_process_at_every_count_gauges_the_run_s_noise() -> None:
    from pevm.bench import BlockBench, Timing
    from pevm.bench_report import same_path_note

    def bench(name: str, one: float, two: float, ran: int) -> BlockBench:
        at_two = Timing("parallel", 2, [two], [two],
                        breakdown={f"p{i}": {"execute": two} for i in range(ran)})
        return BlockBench(name, "src", 9, 1, Timing("reference", 1, [3.0], [3.0]),
                          [Timing("parallel", 1, [one], [one],
                                  breakdown={"coordinator": {"execute": one}}), at_two],
                          None)
    # in one process at 2 workers: 0.84x is the run's noise, 0.97x is not
    assert same_path_note([bench("quiet", 1.0, 1.03, ran=1)]) is None
    note = same_path_note([bench("noisy", 1.0, 1.19, ran=1), bench("quiet", 1.0, 1.03, 1)])
    assert note is not None and "noisy 0.84x at 2 workers" in note and "quiet" not in note
    # where workers ran, the ratio is the engine's, not a gauge
    assert same_path_note([bench("parallel", 1.0, 1.19, ran=2)]) is None


def test_the_script_repeats_what_bench_said_about_the_run_s_noise(tmp_path, capsys
                                                                    ) -> None:
    from benchmarks.report import main
    from pevm.bench import BlockBench, Timing
    one = Timing("parallel", 1, [1.0], [1.0], breakdown={"coordinator": {}})
    two = Timing("parallel", 2, [1.25], [1.25], breakdown={"coordinator": {}})
    block = BlockBench("same-path", "src", 9, 1, Timing("reference", 1, [3.0], [3.0]),
                       [one, two], None)
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"machine": {"cpu_count": 2, "python": "3.11.7",
                                            "platform": "Linux",
                                            "slowness": 1.2,
                                            "slowness_probes": [1.2, 1.5]},
                                "date": "2026-12-05T00:00:00", "repeat": 1,
                                "blocks": [block.to_json()]}))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "Note: this machine's speed moved during the run (slowness 1.20-1.50x" in out
    assert "Note: same-path 0.80x at 2 workers" in out


def test_a_worker_count_says_how_many_processes_ran_where_fewer_did() -> None:
    from pevm.bench_report import workers_cell
    assert workers_cell({"workers": 16, "processes_ran": 9}) == "16 (9 ran)"
    assert workers_cell({"workers": 2, "processes_ran": 1}) == "2 (1 ran)"   # in-process
    assert workers_cell({"workers": 4, "processes_ran": 4}) == "4"
    assert workers_cell({"workers": 4}) == "4"      # a document from before the field
    # a block run as a sender pipeline says so, beside the processes that ran
    assert workers_cell({"workers": 2, "processes_ran": 2, "sender_pipelines": 3}) == \
        "2 (pipeline)"
    assert workers_cell({"workers": 4, "processes_ran": 2, "sender_pipelines": 1}) == \
        "4 (2 ran, pipeline)"
    assert workers_cell({"workers": 2, "processes_ran": 2, "sender_pipelines": 0}) == "2"

