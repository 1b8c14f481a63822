"""The scheduler's bookkeeping: chunks, in-order commit, aborts, failures, throttle."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from pevm.engines.scheduler import (DONE, EXECUTE, LOOKAHEAD_ROUNDS, VALIDATE, WAIT,
                                    Scheduler)


@dataclass
class R:
    txn: int
    incarnation: int = 0
    committable: bool = True
    blocked_on: int | None = None


def test_without_workers_every_transaction_runs_in_order_in_process():
    s = Scheduler(3, workers=0)
    for txn in range(3):
        assert s.next_commit() == (EXECUTE, txn)
        assert s.executed_inline(txn) == 0
        s.committed(txn)
    assert s.next_commit() == (DONE, 3)
    assert s.done


def test_chunks_are_ascending_and_bounded_per_worker():
    s = Scheduler(40, workers=2, chunk_size=3, max_outstanding=2)
    assert s.next_chunk(0) == [0, 1, 2]
    assert s.next_chunk(1) == [3, 4, 5]
    assert s.next_chunk(0) == [6, 7, 8]
    assert s.next_chunk(0) is None            # two outstanding already
    assert s.idle_workers() == [1]
    assert s.next_chunk(1) == [9, 10, 11]
    assert s.next_commit() == (WAIT, 0)


def test_fewer_workers_can_start_than_the_scheduler_was_built_for():
    s = Scheduler(100, workers=4, chunk_size=4, max_outstanding=1)
    s.start_with(2, chunk_size=16)        # only two pay; their chunks may be longer
    assert s.idle_workers() == [0, 1]
    assert s.live_workers() == [0, 1]
    assert s.next_chunk(2) is None        # never started
    assert s.chunk_size == 16
    first = s.next_chunk(0)
    assert first is not None and first[0] == 0
    assert s.stats.lost == 0              # nothing was lost: they never held work
    with pytest.raises(ValueError):       # only before any chunk is out
        s.start_with(1, chunk_size=16)


def test_chunks_shrink_towards_the_block_s_end():
    # guided: at most the rest over 2 x max_outstanding x executors, so that no
    # process is left alone with a long run of the last transactions
    s = Scheduler(12, workers=1, chunk_size=4, max_outstanding=1)
    sizes = []
    while (chunk := s.next_chunk(0)) is not None:
        sizes.append(len(chunk))
        s.chunk_done(0)
    assert sizes == [4, 4, 2, 1, 1]
    assert s.next_chunk(0) is None            # nothing left


def test_results_validate_commit_and_abort():
    s = Scheduler(3, workers=1, chunk_size=3)
    s.next_chunk(0)
    for txn in range(3):
        assert s.on_result(R(txn), worker=0)
    s.chunk_done(0)
    assert s.next_commit() == (VALIDATE, 0)
    s.validated(0, True)
    s.committed(0)
    assert s.next_commit() == (VALIDATE, 1)
    s.validated(1, False)                      # abort: new incarnation
    assert s.incarnation[1] == 1
    assert s.next_commit() == (EXECUTE, 1)
    assert s.executed_inline(1) == 1
    s.committed(1)
    assert not s.on_result(R(1, 0))            # committed: stale
    assert s.stats.stale_results == 1
    assert s.next_commit() == (VALIDATE, 2)


def test_stale_incarnations_are_ignored():
    s = Scheduler(2, workers=1, chunk_size=2)
    s.next_chunk(0)
    s.abort(1)
    assert not s.on_result(R(1, incarnation=0), worker=0)
    assert s.on_result(R(1, incarnation=1), worker=0)


def test_blocked_results_run_in_process():
    s = Scheduler(2, workers=1, chunk_size=2)
    s.next_chunk(0)
    s.on_result(R(0, committable=False, blocked_on=None), worker=0)
    assert s.next_commit() == (EXECUTE, 0)
    assert s.stats.crashed == 1 and s.incarnation[0] == 1
    s.executed_inline(0)
    s.committed(0)
    s.on_result(R(1, committable=False, blocked_on=0), worker=0)
    assert s.next_commit() == (EXECUTE, 1)
    assert s.stats.blocked == 1


def test_a_lost_worker_s_transactions_are_redone_first():
    s = Scheduler(40, workers=2, chunk_size=2)
    assert s.next_chunk(0) == [0, 1]
    assert s.next_chunk(1) == [2, 3]
    assert s.next_chunk(0) == [4, 5]
    s.on_result(R(2), worker=1)                # one answer got through
    assert s.worker_lost(1) == [3]
    assert s.alive == {0}
    assert s.next_chunk(1) is None             # dead workers get nothing
    s.on_result(R(0), worker=0)
    s.on_result(R(1), worker=0)
    s.chunk_done(0)                            # worker 0 answered [0, 1]
    assert s.next_chunk(0) == [3]              # the lost one, before new work
    assert s.next_chunk(0) is None             # two outstanding again
    assert s.next_commit() == (VALIDATE, 0)


def test_transactions_of_a_dead_worker_at_the_commit_point_run_in_process():
    s = Scheduler(4, workers=1, chunk_size=4)
    s.next_chunk(0)
    assert s.next_commit() == (WAIT, 0)
    s.worker_lost(0)
    assert s.next_commit() == (EXECUTE, 0)


def test_failing_speculation_pauses_dispatch_and_probes_again():
    s = Scheduler(200, workers=1, chunk_size=4, window=8, probe=5)
    for _ in range(8):
        s.validated(0, False)
    assert s.paused and s.stats.pauses == 1
    assert s.next_chunk(0) is None
    for txn in range(5):
        s.executed_inline(txn)
    assert not s.paused                        # probing
    assert s.next_chunk(0) is not None


def test_a_sender_pipeline_runs_everything_in_order_on_the_coordinator():
    s = Scheduler(200, workers=1, chunk_size=4, window=8, probe=5)
    s.pipeline()
    assert s.pipelined and s.paused and s.keeps_to_coordinator
    for txn in range(200):                     # no probe, ever: no chunk
        assert s.next_chunk(0) is None
        assert s.next_commit() == (EXECUTE, txn)
        s.executed_inline(txn)
        s.committed(txn)
    assert s.done and s.stats.chunks == 0 and s.stats.pauses == 0
    started = Scheduler(200, workers=1, chunk_size=4)
    assert started.next_chunk(0) is not None
    with pytest.raises(ValueError):            # only before any chunk is out
        started.pipeline()


def test_in_flight_below_lists_what_a_worker_cannot_know():
    s = Scheduler(40, workers=2, chunk_size=3)
    s.next_chunk(0)                            # 0..2
    s.next_chunk(1)                            # 3..5
    assert s.in_flight_below(6, worker=1) == [0, 1, 2]
    assert s.in_flight_below(3, worker=0) == []


def test_the_coordinator_runs_ahead_instead_of_waiting():
    s = Scheduler(40, workers=1, chunk_size=4, coordinator_executes=True)
    assert s.next_chunk(0) == [0, 1, 2, 3]
    assert s.next_commit() == (WAIT, 0)
    assert s.claim_ahead() == 4                # the next one nobody has taken
    assert s.on_result(R(4))
    assert s.next_chunk(0) == [5, 6, 7, 8]     # workers go on past it
    for txn in range(4):
        s.on_result(R(txn), worker=0)
    s.chunk_done(0)
    for txn in range(5):                       # validated like a worker's result
        assert s.next_commit() == (VALIDATE, txn)
        s.validated(txn, True)
        s.committed(txn)
    assert s.stats.ahead == 1


def test_the_coordinator_does_not_run_ahead_when_it_may_not():
    only_commits = Scheduler(40, workers=1, chunk_size=4)
    only_commits.next_chunk(0)
    assert only_commits.claim_ahead() is None  # the coordinator only validates
    paused = Scheduler(200, workers=1, chunk_size=4, window=8,
                       coordinator_executes=True)
    for _ in range(8):
        paused.validated(0, False)
    assert paused.paused and paused.claim_ahead() is None
    near = Scheduler(100, workers=1, chunk_size=4, coordinator_executes=True)
    claimed = [near.claim_ahead() for _ in range(72)]
    # up to the lookahead (LOOKAHEAD_ROUNDS x max_outstanding x 2 executors x
    # chunk 4) past the commit point, still at 0
    reach = LOOKAHEAD_ROUNDS * near.max_outstanding * 2 * 4
    assert claimed[:reach] == list(range(reach))
    assert claimed[reach:] == [None] * (72 - reach)


def test_parameters_are_checked():
    with pytest.raises(ValueError):
        Scheduler(3, workers=1, chunk_size=0)
    with pytest.raises(ValueError):
        s = Scheduler(3, workers=0)
        s.committed(1)


def test_a_probe_is_one_chunk_whose_first_verdict_decides():
    s = Scheduler(500, workers=2, chunk_size=4, window=8, probe=3)
    for _ in range(8):
        s.validated(0, False)
    assert s.paused
    for txn in range(3):
        s.executed_inline(txn)
        s.committed(txn)
    assert not s.paused
    first = s.next_chunk(0)
    assert first is not None and first[0] >= s.commit_index + 2 * s.current_chunk
    assert s.next_chunk(1) is None             # one chunk while probing
    s.validated(first[0], False)               # the probe failed: pause again
    s.chunk_done(0)
    assert s.paused and s.stats.pauses == 2
    for txn in range(3, 3 + 6):                # the interval has doubled
        assert s.paused
        s.executed_inline(txn)
        s.committed(txn)
    assert not s.paused
    probe = s.next_chunk(1)
    s.validated(probe[0], True)                # the probe worked: resume
    assert not s.paused and s.next_chunk(0) is not None


def test_chunks_grow_while_speculation_succeeds():
    s = Scheduler(1000, workers=1, chunk_size=32, min_chunk=4)
    assert len(s.next_chunk(0)) == 4
    for txn in range(4):
        s.validated(txn, True)
    assert s.current_chunk == 8
    s.validated(4, False)
    assert s.current_chunk == 4


def test_no_chunk_starts_too_far_past_the_commit_point():
    s = Scheduler(1000, workers=1, chunk_size=4, max_outstanding=100)
    starts = []
    while (chunk := s.next_chunk(0)) is not None:
        starts.append(chunk[0])
    assert starts and max(starts) < 16 + 4 * 2 * 100   # bounded, not the block
    assert s.next_txn < 1000


def test_the_coordinator_leaves_costly_transactions_to_workers():
    s = Scheduler(40, workers=1, chunk_size=4, coordinator_executes=True, costly={5})
    assert s.next_chunk(0) == [0, 1, 2, 3]
    assert s.claim_ahead() == 4
    assert s.claim_ahead() == 6                # 5 is passed over ...
    assert s.next_chunk(0) == [5]              # ... and is the next chunk, alone
    assert s.stats.costly == 1


def test_a_costly_transaction_at_the_commit_point_goes_to_a_worker():
    s = Scheduler(40, workers=1, chunk_size=4, max_outstanding=1,
                  coordinator_executes=True, costly={0})
    assert s.next_commit() == (WAIT, 0)        # not run in-process ...
    assert s.next_chunk(0) == [0]              # ... but sent, exact: it will hold
    assert s.next_commit() == (WAIT, 0)
    assert s.claim_ahead() == 1                # the coordinator runs the others
    s.on_result(R(0), worker=0)
    s.chunk_done(0)
    assert s.next_commit() == (VALIDATE, 0)


def test_while_a_costly_transaction_runs_the_rest_of_the_block_may_run_ahead():
    s = Scheduler(1000, workers=1, chunk_size=4, max_outstanding=1,
                  coordinator_executes=True, costly={0})
    s.next_commit()
    assert s.next_chunk(0) == [0]
    claimed = [s.claim_ahead() for _ in range(999)]
    assert claimed == list(range(1, 1000))     # not bounded by the lookahead


def test_costly_transactions_run_in_process_where_workers_do_not_help():
    alone = Scheduler(10, workers=0, coordinator_executes=True, costly={0})
    assert alone.next_commit() == (EXECUTE, 0)
    validating = Scheduler(10, workers=1, costly={0})   # coordinator only validates
    assert validating.next_commit() == (EXECUTE, 0)
    paused = Scheduler(200, workers=1, chunk_size=4, window=8,
                       coordinator_executes=True, costly={0})
    for _ in range(8):
        paused.validated(1, False)
    assert paused.paused and paused.next_commit() == (EXECUTE, 0)


def test_nothing_queues_behind_a_costly_transaction_on_its_worker():
    s = Scheduler(40, workers=2, chunk_size=4, coordinator_executes=True, costly={0})
    s.next_commit()
    assert s.next_chunk(0) == [0]
    assert s.next_chunk(0) is None             # it would wait behind transaction 0
    assert s.next_chunk(1) == [1, 2, 3, 4]     # another worker takes the next ones
    s.on_result(R(0), worker=0)
    s.chunk_done(0)
    assert s.next_chunk(0) is not None


def test_costly_transactions_beyond_the_lookahead_start_with_the_workers():
    s = Scheduler(400, workers=2, chunk_size=4, max_outstanding=1,
                  coordinator_executes=True, costly={2, 300})
    s.start_ahead()
    assert s.next_chunk(0) == [300]            # far ahead: it starts right away
    assert s.next_chunk(1) == [8, 9, 10, 11]   # near: as before (2 by the others)
    s.chunk_done(1)
    for txn in range(296):
        s.executed_inline(txn)
        s.committed(txn)
    assert s.next_chunk(1) == [296, 297, 298, 299]
    s.chunk_done(1)
    assert s.next_chunk(1) == [301, 302, 303]  # 300 is never run twice ...
    assert s.claim_ahead() == 304


def test_the_coordinator_passes_over_a_costly_transaction_started_early():
    s = Scheduler(400, workers=1, chunk_size=4, coordinator_executes=True,
                  costly={300})
    s.start_ahead()
    assert s.next_chunk(0) == [300]
    for txn in range(298):
        s.executed_inline(txn)
        s.committed(txn)
    assert [s.claim_ahead() for _ in range(3)] == [298, 299, 301]


def test_a_costly_transaction_at_the_commit_point_starts_before_any_chunk():
    s = Scheduler(400, workers=1, chunk_size=4, coordinator_executes=True,
                  costly={0, 300})
    s.start_ahead()
    assert s.next_chunk(0) == [0]              # the commit point's first ...
    assert s.next_chunk(0) is None             # ... with nothing queued behind it
    assert s.next_commit() == (WAIT, 0)
    assert s.claim_ahead() == 1                # the coordinator runs the others


def test_a_costly_transaction_waits_for_no_worker_busy_with_another():
    s = Scheduler(400, workers=1, chunk_size=4, coordinator_executes=True,
                  costly={2, 300})
    s.start_ahead()
    assert s.next_chunk(0) == [300]            # the worker runs a long one
    for txn in range(2):
        s.executed_inline(txn)
        s.committed(txn)
    assert s.next_commit() == (EXECUTE, 2)     # so the coordinator runs this one
    s.executed_inline(2)
    s.committed(2)
    assert s.claim_ahead() == 3


def test_the_coordinator_runs_a_costly_transaction_no_worker_is_free_for():
    s = Scheduler(400, workers=1, chunk_size=4, coordinator_executes=True,
                  costly={5, 300})
    s.start_ahead()
    assert s.next_chunk(0) == [300]
    assert [s.claim_ahead() for _ in range(6)] == [0, 1, 2, 3, 4, 5]


def _validate_chunk(s: Scheduler, worker: int, verdicts: dict[int, bool]) -> None:
    """Answer ``worker``'s oldest chunk and validate and commit each of its
    transactions in turn (a failed one is re-executed in-process)."""
    chunk = s.chunks[worker][0].txns
    for txn in chunk:
        s.on_result(R(txn, s.incarnation[txn]), worker=worker)
    s.chunk_done(worker)
    for txn in chunk:
        assert s.next_commit() == (VALIDATE, txn)
        ok = verdicts.get(txn, True)
        s.validated(txn, ok)
        if not ok:
            assert s.next_commit() == (EXECUTE, txn)
            s.executed_inline(txn)
        s.committed(txn)


def test_a_target_whose_results_keep_failing_stays_with_the_coordinator():
    # transactions 0, 2, 4, ... call "pool", the others each their own account
    targets = ["pool" if t % 2 == 0 else f"eoa{t}" for t in range(40)]
    s = Scheduler(40, workers=1, chunk_size=4, coordinator_executes=True,
                  targets=targets)
    assert s.next_chunk(0) == [0, 1, 2, 3]
    _validate_chunk(s, 0, {0: False})          # one failure: not yet hot
    assert not s.hot
    assert s.next_chunk(0) == [4, 5, 6, 7]
    _validate_chunk(s, 0, {4: False})          # 2 of 4 of its results failed
    assert s.hot.hot == {"pool"}
    # chunks pass over the pool's transactions; the coordinator takes them, in
    # order, instead of waiting
    assert s.next_chunk(0) == [9, 11, 13, 15]
    # the worker learns that the pool's transactions between are still to run
    assert s.in_flight_below(16, worker=0) == [8, 10, 12, 14]
    assert s.next_commit() == (EXECUTE, 8)     # nobody runs it: in-process
    s.executed_inline(8)
    s.committed(8)
    assert s.next_commit() == (WAIT, 9)
    assert s.claim_ahead() == 10
    assert s.claim_ahead() == 12
    assert not s.keeps_to_coordinator           # the worker has its chunks


def test_a_hot_target_s_failures_do_not_pause_the_others_speculation():
    # three transactions in four call "pool" and every one of them fails; the
    # fourth calls an account of its own and succeeds
    targets = ["pool" if t % 4 != 3 else f"eoa{t}" for t in range(64)]
    s = Scheduler(64, workers=1, chunk_size=4, window=8, probe=1000,
                  coordinator_executes=True, targets=targets)
    assert s.next_chunk(0) == [0, 1, 2, 3]
    assert s.next_chunk(0) == [4, 5, 6, 7]     # out before any verdict
    fails = {t: False for t in range(64) if t % 4 != 3}
    # the pool turns hot at its second failure (1): the failures that made it
    # so are forgotten, and its later ones are not held against the rest
    _validate_chunk(s, 0, fails)
    assert s.hot.hot == {"pool"}
    _validate_chunk(s, 0, fails)               # 4, 5, 6 fail as well
    assert not s.conflicted and s.stats.pauses == 0
    # so the others keep running on the worker, the pool's on the coordinator
    assert s.next_chunk(0) == [11, 15, 19, 23]


def test_a_target_turning_hot_ends_the_pause_it_caused_with_a_probe():
    targets = ["pool", "a", "b", "c"] + [
        "pool" if t % 2 == 0 else f"eoa{t}" for t in range(4, 64)]
    s = Scheduler(64, workers=1, chunk_size=8, min_chunk=8, window=4, probe=1000,
                  coordinator_executes=True, targets=targets)
    assert s.next_chunk(0) == list(range(8))
    # three failures of four results, one the pool's: speculation pauses
    # before the pool's second failure makes it hot
    _validate_chunk(s, 0, {0: False, 1: False, 2: False, 4: False})
    assert s.hot.hot == {"pool"} and s.stats.pauses == 1
    # the cause is known and kept from the chunks: a probe asks again at once
    # (not after the interval's 1,000 in-process transactions), and the next
    # verdict (5 succeeded) resumes speculation
    assert not s.paused and not s.conflicted
    chunk = s.next_chunk(0)
    assert chunk and not any(targets[t] == "pool" for t in chunk)


def test_the_coordinator_s_own_failed_runs_ahead_of_a_hot_chain_still_count():
    # the coordinator runs a hot chain ahead while a call of it is out on a
    # worker: each run reads too early and fails, and stopping that is the
    # throttle's job
    s = Scheduler(64, workers=1, chunk_size=4, window=4, probe=1000,
                  coordinator_executes=True, targets=["pool"] * 64)
    s.hot.predict([(0, b"a"), (1, b"a"), (2, b"a")])
    assert s.hot.hot == {"pool"}
    for txn in range(4):
        s.on_result(R(txn))                     # its own result: no worker
        assert s.next_commit() == (VALIDATE, txn)
        s.validated(txn, False)
        s.executed_inline(txn)
        s.committed(txn)
    assert s.paused and s.stats.pauses == 1


def test_a_worker_with_only_hot_transactions_left_recovers_senders():
    s = Scheduler(40, workers=1, chunk_size=4, coordinator_executes=True,
                  targets=["counter"] * 40)
    s.next_chunk(0)
    _validate_chunk(s, 0, {0: False, 1: False})
    assert s.hot.hot == {"counter"}
    assert s.next_chunk(0) is None              # every transaction is the counter's
    assert s.keeps_to_coordinator               # so its idle worker recovers senders
    assert s.claim_ahead() == 4                 # and the coordinator runs them in order


def test_a_target_that_fails_rarely_stays_with_the_workers():
    targets = ["token"] * 40                   # every transaction calls one token
    s = Scheduler(40, workers=1, chunk_size=4, coordinator_executes=True,
                  targets=targets)
    s.next_chunk(0)
    _validate_chunk(s, 0, {0: False})
    for _ in range(3):
        s.next_chunk(0)
        _validate_chunk(s, 0, {})
    s.next_chunk(0)
    _validate_chunk(s, 0, {17: False})         # 2 failures in 20: under a quarter
    assert not s.hot
    assert s.next_chunk(0) is not None


def test_a_sender_calling_one_contract_again_and_again_makes_it_hot_at_once():
    # transactions 0, 2, 4, ... : one exchange paying out through "token"; the
    # others each call their own account
    targets = ["token" if t % 2 == 0 else f"eoa{t}" for t in range(40)]
    s = Scheduler(40, workers=1, chunk_size=4, coordinator_executes=True,
                  targets=targets)
    known = [(t, b"exchange" if t % 2 == 0 else b"user%d" % t) for t in range(6)]
    s.hot.predict(known)                        # "token": 3 calls, all one sender's
    assert s.hot.hot == {"token"}
    assert s.next_chunk(0) == [1, 3, 5, 7]      # before any result failed


def test_a_contract_many_senders_call_is_not_predicted_hot():
    s = Scheduler(40, workers=1, chunk_size=4, coordinator_executes=True,
                  targets=["token"] * 40)
    # one sender makes 3 of its 8 known calls: not half
    s.hot.predict([(t, b"whale" if t < 3 else b"user%d" % t) for t in range(8)])
    assert not s.hot
    # two calls of one sender are not yet a pattern
    s.hot.predict([(0, b"a"), (1, b"a")])
    assert not s.hot
    s.hot.predict([(0, b"a"), (1, b"a"), (2, b"a"), (3, b"b")])  # 3 of 4
    assert s.hot.hot == {"token"}


def test_creations_are_never_predicted_hot():
    s = Scheduler(4, workers=1, chunk_size=4, coordinator_executes=True,
                  targets=[None] * 4)
    s.hot.predict([(t, b"deployer") for t in range(4)])
    assert not s.hot


def test_forced_aborts_and_creations_make_no_target_hot():
    s = Scheduler(8, workers=1, chunk_size=8, coordinator_executes=True,
                  targets=[None, None, None, None, "a", "a", "a", "a"])
    s.next_chunk(0)
    for txn in range(8):
        s.on_result(R(txn), worker=0)
    s.chunk_done(0)
    for txn in range(8):
        assert s.next_commit() == (VALIDATE, txn)
        s.validated(txn, False, forced=txn >= 4)
        s.executed_inline(txn)
        s.committed(txn)
    assert not s.hot
