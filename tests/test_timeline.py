"""Where the time goes: per-process timelines, the breakdown and Chrome traces."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth.vm.forks import CancunVM

from pevm.cli.main import main
from pevm.engines.parallel import ParallelEngine
from pevm.engines.timeline import Activity, Timeline, Trace, breakdown
from pevm.inputs.discover import list_cases
from tests.parallel_support import Intent, assert_same, build_block, import_block, \
    reference

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"
INTENTS = [Intent(kind, 1 + i % 7, i % 3, 1 + i % 2)
           for i, kind in enumerate(["incr", "transfer", "read_coinbase", "incr",
                                     "nested_revert", "transfer"] * 8)]


def test_a_timeline_sums_by_activity_and_keeps_slices_only_when_tracing():
    quiet, tracing = Timeline(), Timeline(tracing=True)
    for timeline in (quiet, tracing):
        end = timeline.add(Activity.EXECUTE, 1.0, 1.5, txn=3, incarnation=0)
        assert end == 1.5
        timeline.add(Activity.EXECUTE, 2.0, 2.25, txn=4, incarnation=1)
        timeline.add(Activity.WAIT, 3.0, 4.0)
        assert timeline.seconds == {"execute": 0.75, "wait": 1.0}
    assert quiet.slices == []
    assert tracing.slices == [("execute", 1.0, 1.5, 3, 0), ("execute", 2.0, 2.25, 4, 1),
                              ("wait", 3.0, 4.0, -1, -1)]


def test_take_hands_over_what_was_recorded_and_absorb_adds_it_up():
    worker, coordinator_copy = Timeline(tracing=True), Timeline(tracing=True)
    worker.add(Activity.MESSAGE, 0.0, 0.5)
    coordinator_copy.absorb(*worker.take())
    assert worker.seconds == {} and worker.slices == []
    worker.add(Activity.MESSAGE, 1.0, 1.25)
    coordinator_copy.absorb(*worker.take())
    assert coordinator_copy.seconds == {"message": 0.75}
    assert len(coordinator_copy.slices) == 2


def test_breakdown_names_the_rest_of_the_wall_time():
    timeline = Timeline()
    timeline.add(Activity.EXECUTE, 0.0, 0.5)
    timeline.add(Activity.MESSAGE, 0.5, 0.75)
    assert breakdown(timeline, 1.0, "idle") == {"execute": 0.5, "message": 0.25,
                                               "idle": 0.25}
    assert breakdown(timeline, 0.5, "other")["other"] == 0.0  # never negative


def test_a_trace_is_chrome_trace_events_one_track_per_process():
    coordinator, worker = Timeline(tracing=True), Timeline(tracing=True)
    coordinator.add(Activity.COMMIT, 10.0, 10.001, txn=0, incarnation=0)
    worker.add(Activity.EXECUTE, 9.5, 10.0, txn=0, incarnation=0)
    trace = Trace()
    trace.add_block("block 7", 2, {"coordinator": coordinator, "worker 0": worker})
    names = {e["pid"]: e["args"]["name"] for e in trace.events
             if e["name"] == "process_name"}
    assert sorted(names.values()) == ["2 workers: coordinator", "2 workers: worker 0"]
    slices = [e for e in trace.events if e["ph"] == "X"]
    assert {(names[e["pid"]], e["name"]) for e in slices} == {
        ("2 workers: coordinator", "commit"), ("2 workers: worker 0", "execute")}
    execute = next(e for e in slices if e["name"] == "execute")
    commit = next(e for e in slices if e["name"] == "commit")
    # the earliest slice is the origin, even when it comes from a later track
    assert execute["ts"] == 0.0 and commit["ts"] == pytest.approx(500_000.0)
    assert commit["dur"] == pytest.approx(1000.0)
    assert commit["args"] == {"block": "block 7", "tx": 0, "incarnation": 0}
    document = trace.to_json()
    assert document["traceEvents"] is trace.events
    json.dumps(document)  # serialisable as it is


def test_the_engine_traces_every_transaction_and_its_result_is_unchanged():
    block = build_block(CancunVM, INTENTS)
    want = reference(CancunVM, block)
    engine = ParallelEngine(workers=2, min_parallel_txs=2, fork_after=0, chunk_size=4)
    engine.trace = Trace()
    got = import_block(CancunVM, block, engine)
    assert_same(want, got)
    events = engine.trace.events
    tracks = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    slices = [e for e in events if e["ph"] == "X"]
    executed = {e["args"]["tx"] for e in slices
                if e["name"] in ("execute", "re-execute")}
    committed = [e["args"]["tx"] for e in slices if e["name"] == "commit"]
    assert executed == set(range(len(INTENTS)))
    assert committed == list(range(len(INTENTS)))    # in block order, each once
    assert all(tracks[e["pid"]] == "2 workers: coordinator"
               for e in slices if e["name"] in ("commit", "validate", "merge"))
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in slices)
    if got.result.stats.workers == 2:  # the workers were started and did work
        # two executors: the coordinator and one forked worker
        assert set(tracks.values()) == {"2 workers: coordinator", "2 workers: worker 0"}
        assert set(engine.last_detail.breakdown) == {"coordinator", "worker 0"}
        # a forked process's first write to each page it shares faults: a worker
        # that ran transactions has written to its stack and heap at least
        assert engine.last_detail.page_faults["worker 0"] > 0
    assert set(engine.last_detail.page_faults) == set(engine.last_detail.breakdown)
    coordinator = engine.last_detail.breakdown["coordinator"]
    assert coordinator["commit"] > 0 and coordinator["merge"] > 0
    assert all(value >= 0 for process in engine.last_detail.breakdown.values()
               for value in process.values())


def test_the_breakdown_is_kept_without_tracing_and_slices_are_not():
    block = build_block(CancunVM, INTENTS)
    engine = ParallelEngine(workers=1)
    import_block(CancunVM, block, engine)
    assert engine.trace is None
    assert set(engine.last_detail.breakdown) == {"coordinator"}
    assert engine.last_detail.breakdown["coordinator"]["execute"] > 0
    assert set(engine.last_detail.page_faults) == {"coordinator"}
    assert engine.last_detail.page_faults["coordinator"] >= 0


def test_pevm_run_writes_a_trace_file(tmp_path, capsys):
    out = tmp_path / "trace.json"
    assert main(["run", str(FIXTURE), "--workers", "2", "--trace", str(out), "-q"]) == 0
    document = json.loads(out.read_text())
    names = {e["name"] for e in document["traceEvents"]}
    assert {"process_name", "execute", "commit", "merge"} <= names
    assert [p.name for p in tmp_path.iterdir()] == ["trace.json"]  # no temporary left
    # each slice names its case beside the block (blocks of a corpus share numbers)
    cases = {ref.name for ref in list_cases([str(FIXTURE)]).cases}
    slices = [e for e in document["traceEvents"] if e["ph"] == "X"]
    assert slices and {e["args"]["case"] for e in slices} == cases


def test_pevm_run_trace_needs_the_parallel_engine(tmp_path, capsys):
    out = tmp_path / "trace.json"
    assert main(["run", str(FIXTURE), "--engine", "reference",
                 "--trace", str(out)]) == 2
    assert "--trace" in capsys.readouterr().err and not out.exists()


def test_pevm_bench_traces_every_worker_count_and_reports_the_breakdown(tmp_path):
    out, report = tmp_path / "trace.json", tmp_path / "bench.json"
    assert main(["bench", str(FIXTURE), "--workers", "1,2", "--repeat", "1",
                 "--trace", str(out), "--json", str(report)]) == 0
    names = {e["args"]["name"] for e in json.loads(out.read_text())["traceEvents"]
             if e["name"] == "process_name"}
    assert {"1 worker: coordinator"} <= names
    rows = json.loads(report.read_text())["blocks"][0]["engine"]
    assert [row["workers"] for row in rows] == [1, 2]
    for row in rows:
        assert "coordinator" in row["breakdown"]
        assert row["breakdown"]["coordinator"]["execute"] >= 0
        # the same processes' page faults, counted over the same imports
        assert set(row["page_faults"]) == set(row["breakdown"])
        assert all(isinstance(count, int) and count >= 0
                   for count in row["page_faults"].values())
