"""The engine's cost model: when workers pay, which transactions are costly, how
long a chunk is (pure functions; the engine's use of them is tested with the engine)."""
from __future__ import annotations

import pytest

from pevm.engines import cost_model
from pevm.host import (MIN_RECOVERIES, REFERENCE_RECOVERY_S, block_slowness,
                       machine_slowness, probe_slowness)
from pevm.engines.cost_model import (SETTLED_AFTER_TXS, WorkEstimate, costly_transactions,
                                     default_chunk_size, with_a_worker_for_costly,
                                     workers_to_start)


def test_workers_pay_only_where_the_work_outweighs_their_overheads():
    def pays(n: int, per_tx: float, workers: int, cores: int) -> bool:
        return cost_model.parallel_pays(n, n * per_tx, workers=workers, cores=cores,
                                        slowness=1.0)

    c, w, s = cost_model.COORDINATOR_TX_S, cost_model.WORKER_TX_S, cost_model.PARALLEL_FIXED_S
    assert pays(1000, 5e-3, workers=2, cores=2)          # 5 s of work
    assert not pays(300, 0.1e-3, workers=2, cores=2)     # 0.03 s of cheap ones
    # at 2 the forked worker runs half the transactions: a transaction costing
    # what shipping half of one costs gains nothing
    assert not pays(10_000, (w + c) / 2, workers=2, cores=2)
    assert not pays(1000, 5e-3, workers=2, cores=1)      # one core
    assert not pays(1000, 5e-3, workers=1, cores=8)
    # two executors on two cores: break-even at (n (w + c) / 2 + 2 S) / n
    n = 1000
    at = (n * (w + c) / 2 + 2 * s) / n
    assert not pays(n, at * 0.99, workers=2, cores=2)
    assert pays(n, at * 1.01, workers=2, cores=2)
    # more workers than cores gain nothing over the cores there are
    assert not pays(n, at * 0.99, workers=4, cores=2)
    # the coordinator commits one shipped transaction after the other: at most
    # 1 / c a second, whatever the workers
    assert not pays(n, c * 1.1, workers=16, cores=32)
    assert pays(n, c * 2, workers=16, cores=32)
    # on a machine twice as slow every overhead doubles
    assert not cost_model.parallel_pays(n, n * at * 1.01, workers=2, cores=2,
                                        slowness=2.0)
    assert cost_model.parallel_pays(n, n * at * 2.02, workers=2, cores=2, slowness=2.0)


def test_what_stays_with_the_coordinator_bounds_what_workers_gain():
    def pays(kept: int, kept_work: float) -> bool:   # 100 transactions of 1 ms
        return cost_model.parallel_pays(100, 0.1, workers=2, cores=2, slowness=1.0,
                                        kept=kept, kept_work=kept_work)

    assert pays(0, 0.0)                 # nothing kept: 2 executors halve it
    assert pays(50, 0.05)               # half kept: the workers take the other half
    # most of it one chain: the coordinator's part alone, with the fixed cost,
    # is longer than the block in one process
    assert not pays(80, 0.1 - cost_model.PARALLEL_FIXED_S / 2)
    assert not pays(99, 0.099)


def test_the_worker_count_stops_where_one_more_costs_more_than_it_gains():
    def count(n: int, per_tx: float, workers: int, cores: int, slowness: float = 1.0) -> int:
        return cost_model.workers_that_pay(n, n * per_tx, workers=workers, cores=cores,
                                           slowness=slowness)

    # costly transactions (5 ms): every core asked for pays
    assert count(1000, 5e-3, workers=16, cores=16) == 16
    # cheap ones (0.3 ms): each worker's fork and stop outweigh its share well
    # before 16, and asking for more, or having more cores, changes nothing
    cheap = count(1000, 0.3e-3, workers=16, cores=16)
    assert 2 < cheap < 16
    assert count(1000, 0.3e-3, workers=32, cores=16) == cheap
    assert count(1000, 0.3e-3, workers=64, cores=64) == cheap
    # on a machine twice as slow the overheads double: fewer pay
    assert 2 <= count(1000, 0.3e-3, workers=16, cores=16, slowness=2.0) < cheap
    # never more than the cores, never more than asked
    assert count(1000, 0.3e-3, workers=16, cores=2) == 2
    assert count(1000, 5e-3, workers=3, cores=16) == 3
    # 1 exactly where workers do not pay
    for n, per_tx, workers in ((300, 0.1e-3, 2), (1000, 5e-3, 2), (1000, 0.3e-3, 16)):
        assert (count(n, per_tx, workers, cores=16) > 1) == cost_model.parallel_pays(
            n, n * per_tx, workers=workers, cores=16, slowness=1.0)
    assert count(300, 0.1e-3, workers=16, cores=16) == 1


def test_a_call_without_data_weighs_a_plain_transfer():
    class Tx:
        def __init__(self, gas: int, to: bytes, data: bytes = b"") -> None:
            self.gas, self.to, self.data = gas, to, data

    contract = b"\x11" * 20
    assert cost_model.work_weights([
        Tx(121_000, contract),                  # a limit it never uses
        Tx(121_000, contract, b"\xa9\x05"),      # a call with arguments
        Tx(15_000, contract),                   # below a transfer: as given
        Tx(500_000, b"", b"\x60"),              # a creation
    ]) == [21_000, 121_000, 15_000, 500_000]


def test_the_block_s_cold_first_transaction_is_left_out_of_the_estimate():
    estimate = WorkEstimate([21_000] * 100)
    # the first took 4 ms, the next 7 took 1 ms each: 8 ms in all after 8
    assert estimate.remaining(8, 0.011) == pytest.approx(0.011 * 92 / 8)
    estimate.leave_out_first(0.004)
    assert estimate.remaining(8, 0.011) == pytest.approx(0.001 * 92)
    assert estimate.remaining(1, 0.004) == pytest.approx(0.004 * 99)  # only the first
    # by gas as by count: the first one's gas is left out too
    heavy_first = WorkEstimate([210_000] + [21_000] * 9)
    heavy_first.leave_out_first(0.01)
    assert heavy_first.remaining(5, 0.014) == pytest.approx(0.004 * 5 / 4)


def test_a_part_of_the_rest_weighs_its_larger_share_by_count_or_by_gas():
    estimate = WorkEstimate([21_000] * 10 + [210_000] * 10)
    assert estimate.share(10, range(10, 20)) == 1.0          # all of it
    assert estimate.share(5, [5, 6]) == pytest.approx(2 / 15)   # by count
    assert estimate.share(5, [10]) == pytest.approx(210 / 2205)  # by gas
    assert estimate.share(10, [3, 25]) == 0.0                # none of them left
    assert estimate.share(20, []) == 0.0


def test_the_machine_is_gauged_once_within_bounds():
    slowness = machine_slowness()
    assert 0.25 <= slowness <= 8.0
    assert machine_slowness() is slowness              # measured once per process
    # a probe measures again (pevm bench, between blocks), within the same bounds
    assert 0.25 <= probe_slowness() <= 8.0
    assert machine_slowness() is slowness


def test_a_block_gauges_the_machine_by_its_own_sender_recoveries():
    # the fastest of 32 senders at twice the reference's time: twice as slow
    assert block_slowness(2 * REFERENCE_RECOVERY_S, 32) == pytest.approx(2.0)
    assert block_slowness(0.5 * REFERENCE_RECOVERY_S, 10) == pytest.approx(0.5)
    # too few recoveries, or none timed: the process's probe stands
    assert block_slowness(3 * REFERENCE_RECOVERY_S, MIN_RECOVERIES - 1) == \
        machine_slowness()
    assert block_slowness(0.0, 32) == machine_slowness()
    assert block_slowness(float("inf"), 32) == machine_slowness()
    # within the probe's bounds, whatever one disturbed batch took
    assert block_slowness(1.0, 32) == 8.0
    assert block_slowness(1e-9, 32) == 0.25


def test_the_rest_of_a_block_is_weighed_by_count_and_by_gas_limit():
    # ten cheap transactions, then ten with ten times their gas limit
    estimate = WorkEstimate([21_000] * 10 + [210_000] * 10)
    assert estimate.remaining(5, 0.01) == pytest.approx(0.01 + 0.2)   # by gas
    assert estimate.remaining(10, 0.02) == pytest.approx(0.2)
    assert estimate.remaining(15, 0.12) == pytest.approx(0.12 * 1.05 / 1.26)
    # the other way round the count weighs more: cheap ones left, but slow so far
    assert WorkEstimate([210_000] * 10 + [21_000] * 10).remaining(10, 0.2) == \
        pytest.approx(0.2)
    assert estimate.remaining(20, 0.22) == 0.0       # nothing left
    assert estimate.remaining(0, 0.0) == 0.0         # nothing seen: no evidence
    # a zero gas limit (malformed, rejected later) divides nothing by zero
    assert WorkEstimate([0, 0]).remaining(1, 0.01) == pytest.approx(0.01)


def test_costly_transactions_stand_out_by_gas_limit():
    transfers = [21_000] * 50
    assert costly_transactions(transfers) == frozenset()
    assert costly_transactions(transfers + [2_000_000, 900_000]) == {50}  # 1M floor
    swaps = [300_000] * 50
    assert costly_transactions(swaps + [2_000_000, 3_000_000]) == {51}  # 10x median
    assert costly_transactions([]) == frozenset()


def test_default_chunk_size_bounds():
    assert default_chunk_size(10, 2) == 4
    assert default_chunk_size(10_000, 2) == 48
    assert default_chunk_size(160, 2) == 10
    assert default_chunk_size(7, 0) == 7


def test_a_serial_run_is_one_chain_through_every_transaction():
    serial = cost_model.serial_run
    chain = [(), (0,), (1,), (2,), (3,)]
    assert serial(chain, 0, 5) and serial(chain, 2, 5)
    # a dependency from before the window does not join it
    assert not serial([(), (), (0,), (2,)], 1, 4)
    # one transaction off the chain: two processes could run it beside the rest
    assert not serial([(), (0,), (1,), (), (2,)], 0, 5)
    # a fan (both depend on the first, not on each other) is not a chain
    assert not serial([(), (0,), (0,)], 0, 3)
    # a chain through a longer dependency counts: 0 <- 2 <- 1 is not one, 0 <- 1 <- 2 is
    assert serial([(), (0,), (0, 1)], 0, 3)
    # too few to tell, or a window starting before the block
    assert not serial([()], 0, 1) and not serial(chain, -2, 3)


def test_a_warm_up_stops_early_once_the_rest_is_clearly_too_short_for_workers():
    def short(done: int, work: float) -> bool:
        return cost_model.clearly_short(done, 372, work, 2, cores=2, slowness=1.0)
    # 372 transactions of ~0.11 ms: workers would not pay (as parallel_pays says)
    assert not cost_model.parallel_pays(372, 0.040, 2, cores=2, slowness=1.0)
    assert short(8, 0.040) and short(16, 0.040) and short(256, 0.040)
    # asked only from the 8th transaction on, and at powers of two
    assert not short(4, 0.040)
    assert not short(12, 0.040) and not short(100, 0.040)
    # a rest long enough for workers goes on warming up
    assert cost_model.parallel_pays(372, 0.2, 2, cores=2, slowness=1.0)
    assert not short(8, 0.2)
    # one core: workers never pay, and the warm-up ends at once
    assert cost_model.clearly_short(8, 372, 0.2, 2, cores=1, slowness=1.0)


def test_the_warm_up_verdict_weighs_time_and_length_before_shortness():
    verdict, WarmUp = cost_model.warm_up_verdict, cost_model.WarmUp
    # time is up: workers are weighed now, whatever the rest looks like
    assert verdict(8, 372, 0.001, 2, out_of_time=True, cores=2) is WarmUp.SETTLED
    # a rest clearly too short for workers ends the warm-up here
    assert verdict(8, 372, 0.001, 2, out_of_time=False, cores=2) is WarmUp.SHORT
    # between two looks, or before the 8th transaction, it goes on
    assert verdict(12, 368, 0.001, 2, out_of_time=False, cores=2) is WarmUp.GO_ON
    assert verdict(4, 376, 0.001, 2, out_of_time=False, cores=2) is WarmUp.GO_ON


def test_without_evidence_as_many_start_as_asked_up_to_the_cores():
    assert workers_to_start(4, cores=2) == 2     # more than cores only add overheads
    assert workers_to_start(2, cores=16) == 2
    assert workers_to_start(8, cores=1) == 1     # one core: the coordinator alone
    assert workers_to_start(1, cores=4) == 1


def test_a_warm_up_stopped_at_a_costly_transaction_before_its_first_look_starts_a_worker():
    early = SETTLED_AFTER_TXS - 1
    # the cost model said one process, but the warm-up stopped so that a worker
    # runs the costly transaction next, after too few to price the rest by
    assert with_a_worker_for_costly(1, 1, True, workers=2, cores=2) == 2
    assert with_a_worker_for_costly(1, early, True, workers=8, cores=16) == 2
    assert with_a_worker_for_costly(1, 1, True, workers=4, cores=1) == 1  # one core
    # otherwise the cost model's count stands: a look ran, or no costly one is next
    assert with_a_worker_for_costly(1, SETTLED_AFTER_TXS, True, workers=2, cores=2) == 1
    assert with_a_worker_for_costly(1, 1, False, workers=2, cores=2) == 1
    assert with_a_worker_for_costly(5, 1, True, workers=8, cores=16) == 5


def test_a_sender_pipeline_pays_where_its_recovery_share_and_estimate_say_so():
    def pays(work: float, recovery: float, n: int = 1000, workers: int = 2,
             cores: int = 2, speculation_pays: bool = True) -> bool:
        return cost_model.pipeline_pays(n, work, recovery, workers, cores=cores,
                                        slowness=1.0, speculation_pays=speculation_pays)

    per_tx, fixed = cost_model.PIPELINE_TX_S, cost_model.PIPELINE_FIXED_S
    share, margin = cost_model.PIPELINE_SHARE, cost_model.PIPELINE_MARGIN

    def speculating(work: float, n: int = 1000) -> float:
        return cost_model.speculation_estimate(n, work, 2, cores=2, slowness=1.0)[1]

    # the pipeline's estimate is the work less its recovery, plus its overheads,
    # and must be the margin below the work; where speculation could run the rest,
    # the recovery must be at least the share
    overheads = 1000 * per_tx + fixed
    work = 0.370
    assert overheads < share * work
    assert pays(work, share * work)
    assert not pays(work, share * work * 0.99)
    # 1,000 transfers (session 40's look: 160 ms, 58 of them recovering senders)
    assert pays(0.160, 0.058)
    # at the share, a pipeline even where speculation's estimate is the lower one:
    # on three days of four the pipeline ran faster (sessions 45-48, docs/results.md)
    assert speculating(0.160) < 0.160 - share * 0.160 + overheads
    assert pays(0.160, share * 0.160)
    # mainnet 5891667's look: 372 left, 63 ms, 20 of them recovering
    assert pays(0.063, 0.020, n=372)
    # mainnet 4330482's: 229 left, 53 ms, 12 recovering -- below the share, so
    # not against speculation, although the estimate alone would say so ...
    assert 0.053 - 0.012 + 229 * per_tx + fixed < 0.053
    assert 0.012 < share * 0.053
    assert not pays(0.053, 0.012, n=229)
    assert pays(0.053, share * 0.053, n=229)
    # ... but where workers would not pay (its looks find so), the estimate decides
    assert pays(0.053, 0.012, n=229, speculation_pays=False)
    # at the share, its estimate must still beat the rest in one process: a rest
    # of many cheap transactions whose overheads are more than a quarter of it
    cheap_n = 4000
    cheap_overheads = cheap_n * per_tx + fixed
    cheap_work = cheap_overheads / 0.3
    assert not pays(cheap_work, share * cheap_work, n=cheap_n)
    assert pays(cheap_work, (0.3 + margin) * 1.01 * cheap_work, n=cheap_n)
    # where the warm-up found that speculation pays nothing (a chain, a rest too
    # short for it), the in-process work is the bar: break-even at the overheads
    # and the margin
    even = overheads + margin * work
    assert pays(work, even * 1.01, speculation_pays=False)
    assert not pays(work, even * 0.99, speculation_pays=False)
    # mainnet 4370000's looks: the pipeline estimated 0.5-1.4% faster, within the
    # noise a busy machine adds to two processes -- it stays in one
    recovery_4370000 = 81 * per_tx + fixed + 0.01 * 0.030
    assert 0.030 - recovery_4370000 + 81 * per_tx + fixed < 0.030
    assert not pays(0.030, recovery_4370000, n=81, speculation_pays=False)
    # ... as it is against speculation, above the share (a short rest of 100)
    short = 0.008
    short_even = 100 * per_tx + fixed + margin * short
    assert short_even * 0.99 > share * short
    assert pays(short, short_even * 1.01, n=100)
    assert not pays(short, short_even * 0.99, n=100)
    # against speculation, only where exactly two processes can execute ...
    assert not pays(0.063, 0.020, n=372, cores=1)
    assert not pays(0.063, 0.020, n=372, workers=1)
    assert not pays(0.063, 0.020, n=372, workers=4, cores=4)
    assert pays(0.063, 0.020, n=372, workers=4, cores=2)
    assert pays(0.063, 0.020, n=372, workers=2, cores=16)
    # ... where speculation pays nothing, wherever two can
    assert pays(0.160, 0.058, workers=4, cores=4, speculation_pays=False)
    assert not pays(0.160, 0.058, cores=1, speculation_pays=False)
    assert not pays(0.160, 0.058, workers=1, speculation_pays=False)
    # nothing left, or no work measured
    assert not pays(0.160, 0.058, n=1)
    assert not pays(0.0, 0.0)


def test_speculations_estimate_is_the_formula_parallel_pays_weighs():
    c, w, s = cost_model.COORDINATOR_TX_S, cost_model.WORKER_TX_S, cost_model.PARALLEL_FIXED_S

    def best(n: int, work: float, workers: int = 2) -> tuple[int, float]:
        return cost_model.speculation_estimate(n, work, workers, cores=2, slowness=1.0)

    # two processes on two cores: half the rest shipped, each shipped transaction
    # costing both overheads, the work split in two, plus the fixed cost
    count, estimate = best(1000, 0.160)
    assert count == 2
    assert estimate == pytest.approx((0.160 + 500 * (w + c)) / 2 + s)
    # where no count pays: the coordinator alone, at the work itself
    assert best(100, 0.040) == (1, 0.040)
    assert best(1000, 0.160, workers=1) == (1, 0.160)
    assert best(1, 0.160) == (1, 0.160)


def test_the_warm_up_starts_a_sender_pipeline_at_its_first_look_that_says_so():
    verdict, WarmUp = cost_model.warm_up_verdict, cost_model.WarmUp
    slow = machine_slowness()
    work = 0.160 * slow
    assert verdict(8, 992, work, 2, False, cores=2, recovery=0.5 * work) is WarmUp.PIPELINE
    # from the 8th transaction on, before time or length settle it
    assert verdict(4, 996, work, 2, False, cores=2, recovery=0.5 * work) is WarmUp.GO_ON
    assert verdict(8, 992, work, 2, True, cores=2, recovery=0.5 * work) is WarmUp.PIPELINE
    # a share below PIPELINE_SHARE: speculation is weighed
    below = 0.9 * cost_model.PIPELINE_SHARE * work
    assert verdict(8, 992, work, 2, False, cores=2, recovery=below) is WarmUp.SETTLED
    # a rest too short for speculation: the pipeline's estimate alone decides,
    # from the second look that finds it short (the first's estimate can be far
    # short, and a pipeline is never weighed again)
    short = 0.040 * slow
    assert verdict(8, 100, short, 2, False, cores=2, recovery=0.0) is WarmUp.SHORT
    assert verdict(8, 100, short, 2, False, cores=2,
                   recovery=0.2 * short) is WarmUp.SHORT
    assert verdict(16, 92, short, 2, False, cores=2, recovery=0.0) is WarmUp.SHORT
    assert verdict(16, 92, short, 2, False, cores=2,
                   recovery=0.2 * short) is WarmUp.PIPELINE
    # on one core nothing runs beside the coordinator
    assert verdict(8, 992, work, 2, False, cores=1, recovery=0.5 * work) is not \
        WarmUp.PIPELINE
