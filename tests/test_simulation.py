"""The speedup simulation (:mod:`pevm.simulation`): what it must predict for blocks
whose answer is known, with fixed calibrations (no timing is asserted)."""
from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path

import pytest

import pevm.simulation.calibration as calibration
from pevm.analysis import DependencyGraph, TxAccess
from pevm.cli.main import main
from pevm.engines.parallel import MIN_PARALLEL_TXS
from pevm.engines.workers import NURSERY_FROM
from pevm.simulation import BlockProfile, Calibration, predict, simulate
from pevm.simulation.model import _Proc, _Simulation
from pevm.simulation.profile import scale_to_in_process

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(autouse=True)
def reference_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's decisions the simulation makes weigh costs scaled by this
    machine's probed speed (:func:`~pevm.host.machine_slowness`), which a busy
    machine reads higher; these tests of the model's logic run at the reference
    machine's."""
    import pevm.engines.cost_model as cost_model
    import pevm.simulation.model as model
    for module in (cost_model, model):
        monkeypatch.setattr(module, "machine_slowness", lambda: 1.0)


def independent(n: int) -> list[tuple[int, ...]]:
    return [()] * n


def chain(n: int) -> list[tuple[int, ...]]:
    return [(i - 1,) if i else () for i in range(n)]


def two_hot_spots(n: int) -> list[tuple[int, ...]]:
    """Every 5th transaction extends one chain, every 7th another; the rest free."""
    deps: list[tuple[int, ...]] = []
    last: dict[int, int] = {}
    for i in range(n):
        spot = 5 if i % 5 == 0 else 7 if i % 7 == 0 else None
        if spot is None:
            deps.append(())
        else:
            deps.append((last[spot],) if spot in last else ())
            last[spot] = i
    return deps


#: expensive transactions (1 ms each, a long block) and no engine overhead at all
EXPENSIVE = BlockProfile.uniform([1e-3] * 2000)
FREE = Calibration(cores=2)


def test_independent_block_is_limited_by_the_cores() -> None:
    speedup = predict(EXPENSIVE, independent(2000), [1, 2, 4, 8], FREE)
    assert speedup[1] == 1.0
    # the coordinator and one worker on two cores: close to, never over, 2
    assert 1.8 <= speedup[2] <= 2.0
    for workers in (4, 8):
        assert 1.8 <= speedup[workers] <= 2.0
    many = predict(EXPENSIVE, independent(2000), [8], Calibration(cores=64))
    assert many[8] > 5.0


def test_a_chain_never_speeds_up() -> None:
    for cal in (FREE, Calibration(cores=64),
                Calibration(cores=2, message_s=5e-5, worker_factor=1.2, fork_s=5e-3,
                            stop_s=2e-3)):
        for workers, value in predict(EXPENSIVE, chain(2000), [1, 2, 4, 16], cal).items():
            assert value <= 1.0 + 1e-9, (cal, workers, value)


def test_without_overhead_and_core_limit_it_converges_to_the_ideal() -> None:
    unlimited = Calibration(cores=1024)
    efficiencies = []
    for n in (250, 1000, 4000):
        deps = two_hot_spots(n)
        graph = DependencyGraph([TxAccess(frozenset(), frozenset(), 1000)] * n, deps)
        profile = BlockProfile.uniform([1e-3] * n)
        ideal = graph.ideal_speedup(4)
        assert ideal == pytest.approx(4.0, rel=0.01)   # the hot spots are short
        efficiencies.append(predict(profile, deps, [4], unlimited)[4] / ideal)
    assert efficiencies == sorted(efficiencies)        # longer blocks: closer
    # a third of the transactions are on a hot spot, and the coordinator -- one of
    # the four executors -- re-executes what failed on its own time
    assert 0.7 <= efficiencies[-1] <= 1.0 + 1e-9


@pytest.mark.parametrize("deps", [independent(600), chain(600), two_hot_spots(600)],
                         ids=["independent", "chain", "hot spots"])
def test_more_overhead_never_increases_the_speedup(deps: list[tuple[int, ...]]) -> None:
    profile = BlockProfile.uniform([4e-4] * 600)
    for workers in (2, 4):
        last = float("inf")
        for scale in (0.0, 0.1, 0.3, 1.0, 3.0):
            cal = Calibration(cores=4, message_s=5e-5 * scale,
                              worker_factor=1.0 + scale, fork_s=2e-3 * scale,
                              ready_s=3e-3 * scale, stop_s=2e-3 * scale)
            value = predict(profile, deps, [workers], cal)[workers]
            assert value <= last + 1e-9, (workers, scale)
            last = value
        # per-transaction overhead of the coordinator (validation, commit) too
        heavy = BlockProfile.uniform([4e-4] * 600, overhead_s=1e-4)
        assert predict(heavy, deps, [workers], FREE)[workers] <= \
            predict(profile, deps, [workers], FREE)[workers] + 1e-9


def test_deterministic() -> None:
    profile = BlockProfile.uniform([(i % 7 + 1) * 1e-4 for i in range(500)], 1e-5)
    cal = Calibration(cores=2, message_s=4e-5, worker_factor=1.1)
    first = [simulate(profile, two_hot_spots(500), w, cal) for w in (1, 2, 8)]
    again = [simulate(profile, two_hot_spots(500), w, cal) for w in (1, 2, 8)]
    assert first == again


def test_small_blocks_run_in_process() -> None:
    # below the engine's MIN_PARALLEL_TXS no worker is started: exactly 1.0
    n = MIN_PARALLEL_TXS - 1
    result = simulate(BlockProfile.uniform([1e-2] * n), independent(n), 4, FREE)
    assert result.chunks == 0 and result.inline == n
    assert predict(BlockProfile.uniform([1e-2] * n), independent(n), [4], FREE)[4] == 1.0


def test_a_long_transaction_with_a_high_gas_limit_runs_beside_the_rest() -> None:
    # mainnet 12520364's shape: one transaction is half the block, and its gas
    # limit marks it costly -- a worker runs it while the coordinator runs the rest
    # (this once deadlocked the simulation: the costly transaction was left to the
    # workers after they had been given their chunks, and nobody sent it)
    n = 600

    def speedups(heavy: int) -> tuple[float, float]:
        costs = [4e-4] * n
        costs[heavy] = 0.25
        marked = BlockProfile.uniform(costs)
        marked.gas_limits = [21_000] * n
        marked.gas_limits[heavy] = 3_000_000
        unmarked = BlockProfile.uniform(costs)  # no gas limits: nothing is costly
        return (predict(marked, independent(n), [2], FREE)[2],
                predict(unmarked, independent(n), [2], FREE)[2])

    early, early_unmarked = speedups(3)
    assert 1.8 <= early <= 2.0 and early > early_unmarked + 0.3
    # halfway down the block it starts when the in-order run gets there, so the
    # first half cannot hide it: no loss, little gain
    late, late_unmarked = speedups(300)
    assert late_unmarked <= late <= 2.0


def test_profile_and_graph_must_match() -> None:
    with pytest.raises(ValueError):
        simulate(BlockProfile.uniform([1e-3] * 3), independent(4), 2, FREE)


def test_calibration_is_read_from_the_cache_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(calibration, "_CALIBRATION", None)
    stored = Calibration(cores=3, message_s=1e-5, worker_factor=1.5, source="measured")
    path = calibration._cache_path()
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stored.to_json()))

    def never() -> Calibration:
        raise AssertionError("a cached calibration must not be measured again")

    monkeypatch.setattr(calibration, "measure_calibration", never)
    assert calibration.calibrate() == stored
    assert calibration.calibrate() is calibration.calibrate()  # per process too


@pytest.mark.parametrize("now, drift", [
    (1.26, False), (1.38, False), (1.14, False),   # within 10% of 1.26
    (1.45, True), (1.10, True),                     # the calibration block moved
])
def test_a_calibration_drifted_where_its_block_reads_another_speedup_now(
        now: float, drift: bool) -> None:
    cached = Calibration(cores=2, worker_factor=1.77, check_measured=1.26,
                         check_simulated=1.18)
    assert calibration.drifted(cached, now) is drift
    # a fixed calibration has no self-check to compare with: it never drifts
    assert not calibration.drifted(Calibration(cores=2), now)


@pytest.mark.parametrize("now, measured_again", [(1.30, False), (1.45, True)])
def test_a_cached_calibration_is_checked_against_the_machine_now(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: float,
        measured_again: bool) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(calibration, "_CALIBRATION", None)
    stale = Calibration(cores=2, worker_factor=1.77, check_measured=1.26,
                        check_simulated=1.18, source="measured")
    fresh = Calibration(cores=2, worker_factor=1.28, check_measured=1.45,
                        check_simulated=1.24, source="measured")
    path = calibration._cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stale.to_json()))
    checks: list[int] = []

    def speedup_now() -> float:
        checks.append(1)
        return now
    monkeypatch.setattr(calibration, "speedup_now", speedup_now)
    monkeypatch.setattr(calibration, "measure_until_consistent",
                        lambda status=None: fresh)
    said: list[str] = []
    got = calibration.calibrate(status=said.append)
    assert checks == [1]
    assert got == (fresh if measured_again else stale)
    # what is used is what the cache holds for the next process
    assert Calibration(**json.loads(path.read_text())) == got
    if measured_again:
        assert any("reads 1.45x at 2 workers now against 1.26x" in s for s in said)
    # checked once per process
    assert calibration.calibrate() is got and checks == [1]


def test_cli_simulate_json(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    used = Calibration(cores=2, message_s=3e-5, worker_factor=1.1,
                       check_measured=1.5, check_simulated=1.6)
    monkeypatch.setattr(calibration, "_CALIBRATION", used)
    fixture = FIXTURES / "erc20_small.json"
    assert main(["analyze", str(fixture), "--simulate", "1,2", "--json",
                 "--profile-repeat", "1"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines() if line]
    assert rows
    # the calibration used goes with every row, and to stderr in words
    assert "worker factor 1.10" in captured.err and "warning" not in captured.err
    for row in rows:
        assert Calibration(**row["calibration"]) == used
        assert "ideal_speedup" in row
        simulated = row["simulated_speedup"]
        assert set(simulated) == {"1", "2"}
        assert simulated["1"] == 1.0
        assert all(isinstance(v, float) and v > 0 for v in simulated.values())
        # the graph's ideal again, weighed by measured times: keys as the ideal's
        by_time = row["ideal_speedup_by_time"]
        assert set(by_time) == set(row["ideal_speedup"])
        assert by_time["1"] == 1.0
        assert 1.0 <= by_time["2"] <= 2.0 and by_time["inf"] >= by_time["16"]


def test_cli_simulate_table(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(calibration, "_CALIBRATION", Calibration(cores=2))
    fixture = FIXTURES / "erc20_small.json"
    assert main(["analyze", str(fixture), "--simulate", "2,32",
                 "--profile-repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "simulated" in out and "32 w" in out and "ideal by time" in out


def test_a_calibration_whose_self_check_is_off_is_reported(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    off = Calibration(cores=2, worker_factor=1.73, check_measured=1.11,
                      check_simulated=1.79)
    assert off.check_error == pytest.approx(1.79 / 1.11 - 1)
    assert "measured 1.11x, simulated 1.79x (+61%)" in off.describe()
    assert Calibration(cores=2).check_error is None  # a fixed one has no self-check
    monkeypatch.setattr(calibration, "_CALIBRATION", off)
    assert main(["analyze", str(FIXTURES / "erc20_small.json"), "--simulate", "2",
                 "--profile-repeat", "1"]) == 0
    err = capsys.readouterr().err
    assert "worker factor 1.73" in err
    assert "warning: the calibration's self-check is off by +61%" in err


@pytest.mark.parametrize("errors, kept, measured", [
    ((0.61, 0.05), 0.05, 2),         # consistent on the second try: stop there
    ((0.61, -0.2, 0.3), -0.2, 3),    # never consistent: the least off of three
    ((0.1,), 0.1, 1),                # consistent at once: measured once
])
def test_a_calibration_is_measured_again_while_its_self_check_is_off(
        monkeypatch: pytest.MonkeyPatch, errors: tuple[float, ...], kept: float,
        measured: int) -> None:
    made = iter(Calibration(cores=2, check_measured=1.5, check_simulated=1.5 * (1 + e),
                            source=f"attempt {i}") for i, e in enumerate(errors))
    calls: list[Calibration] = []

    def measure() -> Calibration:
        calls.append(next(made))
        return calls[-1]
    monkeypatch.setattr(calibration, "measure_calibration", measure)
    said: list[str] = []
    best = calibration.measure_until_consistent(said.append, attempts=3)
    assert best.check_error == pytest.approx(kept)
    assert len(calls) == measured
    assert len(said) == measured - 1  # "measuring again" before each retry


@pytest.mark.parametrize("value", ["0", "1,x", "", "-2", "two"])
def test_cli_simulate_rejects_bad_worker_counts(value: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(FIXTURES / "erc20_small.json"), "--simulate", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--simulate" in err and "worker counts" in err


def test_hot_targets_keep_a_conflicting_contract_s_chain_off_the_workers() -> None:
    # the two hot spots' transactions each call their own contract; the rest call
    # accounts of their own: the simulated scheduler learns the hot targets from
    # its verdicts, as the engine's does, and fails fewer results
    n = 1000
    deps = two_hot_spots(n)
    plain = BlockProfile.uniform([4e-4] * n, 1e-5)
    targeted = BlockProfile.uniform([4e-4] * n, 1e-5)
    targeted.targets = [b"five" if i % 5 == 0 else b"seven" if i % 7 == 0
                        else i.to_bytes(4, "big") for i in range(n)]
    cal = Calibration(cores=2, message_s=3e-5, worker_factor=1.1)
    without, with_targets = (simulate(p, deps, 2, cal) for p in (plain, targeted))
    assert with_targets.validation_failures * 2 < without.validation_failures
    assert with_targets.seconds < without.seconds


def test_a_sender_s_chain_into_one_contract_is_kept_off_the_workers_from_the_start(
        ) -> None:
    # every third transaction is one sender's call into "pool", each depending on
    # the one before; the rest are free. With the senders known the simulated
    # engine makes "pool" hot when its workers start (as the engine's does from
    # its warm-up's senders) instead of after its first failures.
    n = 600
    deps = [((i - 3,) if i >= 3 else ()) if i % 3 == 0 else () for i in range(n)]
    learned = BlockProfile.uniform([4e-4] * n, 1e-5)
    learned.targets = [b"pool" if i % 3 == 0 else i.to_bytes(4, "big")
                       for i in range(n)]
    predicted = BlockProfile.uniform([4e-4] * n, 1e-5)
    predicted.targets = learned.targets
    predicted.senders = [b"bot" if i % 3 == 0 else b"user%d" % i for i in range(n)]
    cal = Calibration(cores=2, message_s=3e-5, worker_factor=1.1)
    without, with_senders = (simulate(p, deps, 2, cal) for p in (learned, predicted))
    assert without.validation_failures >= 2    # hot only after its failures
    assert with_senders.validation_failures == 0


def test_a_waiting_coordinator_recovers_senders_the_workers_then_skip() -> None:
    # workers ten times slower than in-process: the coordinator reaches the end
    # of its lookahead and, as the engine does, recovers the next senders instead of
    # waiting; the chunks it sends later carry them, so what the workers run is
    # priced without those recoveries (the calibration's worker factor is fitted
    # over exactly this, SimResult.worker_run_s); recovery a share of each
    # transaction below the sender pipeline's (cost_model.PIPELINE_SHARE), so it
    # speculates
    n, execution, recovery = 2400, 1e-3, 1.5e-4
    slow = Calibration(cores=2, worker_factor=10.0)
    with_senders = BlockProfile.uniform([execution] * n)
    with_senders.recover_s = [recovery] * n
    handed = simulate(with_senders, independent(n), 2, slow)
    assert handed.worker_runs > 0
    # at least ten of the workers' transactions came with their sender
    assert handed.worker_run_s <= handed.worker_runs * execution - 10 * recovery
    none_to_recover = simulate(BlockProfile.uniform([execution] * n), independent(n),
                               2, slow)
    assert none_to_recover.worker_run_s == pytest.approx(
        none_to_recover.worker_runs * execution)


def _idle() -> Generator[float | None, None, None]:
    yield None


@pytest.mark.parametrize("forked", [1, NURSERY_FROM - 1, NURSERY_FROM, 15])
def test_the_coordinator_forks_each_worker_or_only_the_nursery(forked: int) -> None:
    """As the engine: below NURSERY_FROM workers the coordinator forks each one
    (and feeds it before the next); from it, it forks the nursery once and worker
    ``w`` comes up ``w + 1`` forks later."""
    fork = 0.01
    sim = _Simulation(EXPENSIVE, independent(2000), forked + 1,
                      Calibration(cores=64, fork_s=fork))
    sim.procs.append(_Proc(_idle()))  # the coordinator's place (run() puts it there)
    coordinator_time = sum(step or 0.0 for step in sim._start_workers(range(0)))
    forks = 1 if forked >= NURSERY_FROM else forked
    assert coordinator_time == pytest.approx(forks * fork)
    assert len(sim.procs) == 1 + forked and sim.started
    assert all(proc.inbox for proc in sim.procs[1:])  # each fed its first chunks
    # each worker's first job is its wait to come up (after the coordinator's forks)
    starts = [next(proc.gen) for proc in sim.procs[1:]]
    if forked >= NURSERY_FROM:
        assert starts == pytest.approx([(w + 1) * fork for w in range(forked)])
    else:
        assert starts == [0.0] * forked


def test_the_profile_is_scaled_to_the_in_process_run_s_totals() -> None:
    """Executions and recoveries add up to the engine's in-process time for each;
    each transaction keeps its share, and its recovery stays part of its execution."""
    profile = BlockProfile.uniform([0.004, 0.002, 0.006])
    profile.recover_s[:] = [0.001, 0.001, 0.002]
    scale_to_in_process(profile, execute_s=0.0040, recover_s=0.0020)
    runs = [e - r for e, r in zip(profile.exec_s, profile.recover_s)]
    assert sum(runs) == pytest.approx(0.0040)
    assert sum(profile.recover_s) == pytest.approx(0.0020)
    assert runs == pytest.approx([0.0015, 0.0005, 0.0020])  # 3:1:4, as measured
    assert profile.recover_s == pytest.approx([0.0005, 0.0005, 0.0010])


def test_a_profile_without_the_in_process_totals_stays_as_measured() -> None:
    profile = BlockProfile.uniform([0.004, 0.002])
    scale_to_in_process(profile, execute_s=0.0, recover_s=0.0)
    assert profile.exec_s == [0.004, 0.002]


def test_a_block_of_cheap_transactions_with_costly_senders_simulates_as_a_pipeline(
        ) -> None:
    # 1,000 transactions of 140 us, 70 us of them recovering the sender: as the
    # engine's warm-up would, the simulation's first look starts a sender pipeline
    # -- no chunk, everything executed by the coordinator, the worker recovering
    # senders -- and predicts it faster than one process; where recovery is a
    # share below cost_model.PIPELINE_SHARE, it speculates
    n, cal = 1000, Calibration(cores=2, message_s=3e-5, worker_factor=1.1)
    cheap = BlockProfile.uniform([1.4e-4] * n, 1e-6)
    cheap.recover_s = [7e-5] * n
    one, two = simulate(cheap, independent(n), 1, cal), simulate(cheap, independent(n), 2, cal)
    assert two.chunks == 0 and two.worker_runs == 0 and two.inline == n
    assert two.worker_cpu_s > 0              # the worker recovered senders
    assert one.seconds / two.seconds > 1.1
    costly = BlockProfile.uniform([1.4e-4] * n, 1e-6)
    costly.recover_s = [1e-5] * n
    assert simulate(costly, independent(n), 2, cal).chunks > 0


def test_a_sender_pipeline_runs_on_the_recovery_helper_unforked() -> None:
    # as the engine's default (ParallelEngine(persistent_helper=True)): the
    # pipeline's worker is the process's recovery helper, running already -- no
    # fork, no wait for it to come up, no stop at the block's end -- and the
    # coordinator pickles each batch's transactions for it; a worker forked per
    # block inherits them instead
    n = 1000
    cal = Calibration(cores=2, message_s=3e-5, worker_factor=1.1,
                      fork_s=0.01, ready_s=0.005, stop_s=0.01)
    block = BlockProfile.uniform([1.4e-4] * n, 1e-6)
    block.recover_s = [7e-5] * n
    helper = simulate(block, independent(n), 2, cal)
    forked = simulate(block, independent(n), 2, cal, persistent_helper=False)
    assert helper.chunks == forked.chunks == 0      # both ran as pipelines
    assert helper.worker_cpu_s > 0 and forked.worker_cpu_s > 0
    # the fork and the stop, less the block's start message and the picklings
    assert forked.seconds - helper.seconds > cal.fork_s + cal.stop_s - 0.002
    pricey = BlockProfile.uniform([1.4e-4] * n, 1e-6)
    pricey.recover_s = [7e-5] * n
    pricey.tx_dump_s = [2e-5] * n
    # the helper is sent the transactions of every sender the warm-up left (most
    # of the block): the coordinator pays their pickling; a forked worker's
    # pipeline does not
    more = simulate(pricey, independent(n), 2, cal).coordinator_cpu_s - helper.coordinator_cpu_s
    assert more > 0.8 * n * 2e-5
    assert simulate(pricey, independent(n), 2, cal, persistent_helper=False) \
        .coordinator_cpu_s == pytest.approx(forked.coordinator_cpu_s)
