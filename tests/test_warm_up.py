"""The warm-up's looks (pevm.engines.warm_up.WarmUpLooks): when the in-process
start of a block looks at its evidence, and what each look decides. The engine's
warm-up and the simulation's both run on this one rule; the engine's tests
(tests/test_engine_warm_up.py) check it in place."""
from __future__ import annotations

import pytest

from pevm.engines import cost_model
from pevm.engines.cost_model import SERIAL_STEP, SETTLED_AFTER_TXS
from pevm.engines.warm_up import WarmUpLooks

N = 1000  # the block's transactions


@pytest.fixture(autouse=True)
def reference_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost model scales its bars by the machine's probed speed; these tests of
    the rule run at the reference machine's."""
    monkeypatch.setattr(cost_model, "machine_slowness", lambda: 1.0)


class Chain:
    """A ``chain()`` answer that records whether it was asked."""

    def __init__(self, serial: bool) -> None:
        self.serial, self.asked = serial, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.serial


def looks() -> WarmUpLooks:
    return WarmUpLooks(N, workers=2, cores=2)


def test_before_enough_transactions_ran_a_look_only_goes_on():
    rule, chain = looks(), Chain(False)
    assert rule.due(0) and rule.due(SETTLED_AFTER_TXS - 1)
    assert not rule.look(SETTLED_AFTER_TXS - 1, 10.0, 5.0, False, chain)
    assert not rule.pipeline and chain.asked == 0
    assert rule.due(SETTLED_AFTER_TXS)                # the next one looks again


def test_time_up_ends_the_warm_up_where_its_latest_transactions_are_no_chain():
    rule, chain = looks(), Chain(False)
    assert rule.look(4, 0.001, 0.0, True, chain)
    assert chain.asked == 1 and not rule.pipeline


def test_a_rest_too_short_for_workers_skips_looks_until_twice_as_many_ran():
    rule, chain = looks(), Chain(False)
    assert not rule.look(8, 0.001, 0.0, False, chain)   # 1 ms left: workers never pay
    assert rule.short_reason == (f"{N - 8} transactions left after 8 in-process, "
                                 "about 1.0 ms: workers would not pay")
    assert not rule.due(15) and rule.due(16)
    assert chain.asked == 0 and not rule.pipeline


def test_a_rest_largely_sender_recovery_ends_the_warm_up_as_a_sender_pipeline():
    # 200 ms left, 100 of them recovering senders: half, above PIPELINE_SHARE,
    # and the pipeline's estimate (the other 100 ms, 6 us a transaction and 2 ms
    # once: 108 ms) is below the 200 ms in one process
    rule, chain = looks(), Chain(False)
    assert rule.look(8, 0.2, 0.1, False, chain)
    assert rule.pipeline and chain.asked == 0     # in order anyway: no chain test


def test_a_long_rest_ends_the_warm_up_unless_it_runs_as_one_chain():
    rule = looks()
    assert rule.look(8, 0.2, 0.0, False, Chain(False))
    assert not rule.pipeline                      # workers are weighed next
    # one chain, no recovery to save: the warm-up goes on, and looks again later
    rule, chain = looks(), Chain(True)
    assert not rule.look(8, 0.2, 0.0, False, chain)
    assert chain.asked == 1 and not rule.pipeline
    assert not rule.due(8 + SERIAL_STEP - 1) and rule.due(8 + SERIAL_STEP)


def test_a_chain_whose_recovery_outweighs_the_pipelines_costs_runs_as_one():
    # 40 of 200 ms recovering: a share below PIPELINE_SHARE, so speculating would
    # be weighed -- but a chain gains nothing from speculation, and the pipeline
    # saves 40 ms for its ~8 ms of costs
    rule = looks()
    assert rule.look(8, 0.2, 0.04, False, Chain(False))
    assert not rule.pipeline                      # no chain: speculation is weighed
    rule, chain = looks(), Chain(True)
    assert rule.look(8, 0.2, 0.04, False, chain)
    assert chain.asked == 1 and rule.pipeline


def test_a_look_scales_the_pipelines_costs_by_the_speed_it_is_given():
    # 100 ms left, 30 of them recovering senders: on the reference machine the
    # pipeline's estimate (70 ms and its costs, 6 us a transaction and 2 ms once:
    # 78 ms) is below the 100 ms in one process; on a machine four times as slow
    # its costs (32 ms) are more than the recovery it saves, and the rest -- too
    # short for workers at that speed -- runs on in-process
    fast, slow = looks(), looks()
    assert fast.look(8, 0.1, 0.03, False, Chain(False), slowness=1.0)
    assert fast.pipeline
    assert not slow.look(8, 0.1, 0.03, False, Chain(False), slowness=4.0)
    assert not slow.pipeline and slow.short_reason
