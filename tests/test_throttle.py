"""The conflict throttle on its own: when speculation pauses, probes and resumes."""
from pevm.engines.throttle import MAX_PROBE, Throttle


def fail(throttle: Throttle, times: int) -> None:
    for _ in range(times):
        throttle.verdict(False)


def run_inline(throttle: Throttle, times: int) -> list[bool]:
    return [throttle.executed_inline() for _ in range(times)]


def test_a_quarter_failed_is_conflicted_and_over_half_pauses():
    t = Throttle(window=8, probe=4)
    for ok in (True, True, True, False):
        t.verdict(ok)
    assert not t.conflicted                    # one in four is not more than a quarter
    t.verdict(False)
    assert t.conflicted and not t.paused       # two in five
    fail(t, 2)
    assert t.paused and t.conflicted and t.pauses == 1   # four in seven


def test_a_few_verdicts_do_not_pause():
    t = Throttle(window=16, probe=4)
    fail(t, 7)                                 # the window needs half its size
    assert not t.paused
    fail(t, 1)
    assert t.paused


def test_a_pause_ends_in_a_probe_after_the_interval():
    t = Throttle(window=8, probe=3)
    assert not t.executed_inline()             # running in-process unpaused: nothing
    fail(t, 4)
    assert run_inline(t, 3) == [False, False, True]
    assert t.probing and not t.paused and not t.conflicted


def test_a_failed_probe_doubles_the_interval_and_a_clean_window_resets_it():
    t = Throttle(window=4, probe=3)
    fail(t, 4)                                 # never fewer than four verdicts
    run_inline(t, 3)
    t.verdict(False)                           # the probe failed
    assert t.paused and t.pauses == 2
    assert run_inline(t, 6) == [False] * 5 + [True]
    t.verdict(True)                            # the probe worked: resume
    assert not t.paused and not t.probing
    for _ in range(3):
        t.verdict(True)                        # a full window of successes
    fail(t, 3)                                 # three of four
    assert t.paused and t.pauses == 3
    assert run_inline(t, 6) == [False] * 5 + [True]   # back to 3, doubled once


def test_the_interval_stops_growing():
    t = Throttle(window=4, probe=MAX_PROBE // 2)
    fail(t, 4)
    for _ in range(3):                         # probes after MAX_PROBE / 2, then
        assert any(run_inline(t, MAX_PROBE))   # MAX_PROBE, then MAX_PROBE again
        t.verdict(False)
    assert run_inline(t, MAX_PROBE) == [False] * (MAX_PROBE - 1) + [True]


def test_a_held_throttle_stays_paused_and_never_probes():
    # a sender pipeline: chosen up front, so no probe asks speculation again
    t = Throttle(window=8, probe=4)
    t.hold()
    assert t.paused and t.held and t.conflicted and t.pauses == 0
    assert not any(run_inline(t, 100))
    assert t.paused and not t.probing


def test_explained_failures_are_forgotten_and_a_pause_they_caused_probes_at_once():
    t = Throttle(window=8, probe=100)
    for ok in (True, True, False, False):
        t.verdict(ok)
    assert t.conflicted and not t.explained()  # not paused: nothing to resume
    assert not t.conflicted                    # ... but the failures are forgotten
    fail(t, 4)
    assert t.paused
    assert t.explained()                       # paused by them: a probe starts
    assert t.probing and not t.paused and not t.conflicted
    t.verdict(False)                           # whose first verdict decides, as ever
    assert t.paused and t.pauses == 2


def test_a_held_throttle_stays_paused_when_failures_are_explained():
    t = Throttle(window=8, probe=4)
    t.hold()
    assert not t.explained()
    assert t.paused and not t.probing
