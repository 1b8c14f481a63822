"""The engine's sender-recovery batches, as pure functions of the block's progress.

Which senders the warm-up recovers before the fork, which batch an idle worker
recovers ahead of a coordinator that runs the block in order, and which the
coordinator recovers itself instead of waiting (``pevm.engines.sender_batches``;
the engine and the simulation call the same functions).
"""
from __future__ import annotations

from pevm.engines import sender_batches


def test_the_workers_start_with_the_warm_up_s_senders_and_one_batch_beyond():
    batch = sender_batches.WARM_UP_SENDER_BATCH
    senders = sender_batches.warm_up_senders
    assert senders(0, 1000) == range(batch)          # no warm-up: the first batch
    assert senders(1, 1000) == range(2 * batch)      # the warm-up's batch, one more
    assert senders(batch, 1000) == range(2 * batch)
    assert senders(batch + 1, 1000) == range(3 * batch)
    assert senders(batch + 1, batch + 5) == range(batch + 5)   # never past the block
    # the warm-up's batches grow with it: 0-32, 32-64, 64-128, 128-256, ...
    assert [sender_batches.warm_up_batch_end(t) for t in (0, batch, 2 * batch, 4 * batch)] \
        == [batch, 2 * batch, 4 * batch, 8 * batch]
    assert senders(2 * batch + 1, 1000) == range(5 * batch)  # in 64-128, one more
    assert senders(4 * batch, 1000) == range(5 * batch)
    assert senders(4 * batch + 1, 1000) == range(9 * batch)


def test_recovery_batches_start_half_a_batch_ahead_and_skip_known_senders():
    batch_size = sender_batches.RECOVERY_BATCH
    recovery_batch = sender_batches.recovery_batch
    # from half a batch past the commit point, a whole batch, the frontier after it
    batch, frontier = recovery_batch(0, 10, 1000, lambda txn: False)
    assert batch == list(range(10 + batch_size // 2, 10 + batch_size // 2 + batch_size))
    assert frontier == batch[-1] + 1
    # the next batch goes on from the frontier; senders already known are skipped
    even = recovery_batch(frontier, 10, 1000, lambda txn: txn % 2 == 0)[0]
    assert even[0] == frontier + (frontier % 2 == 0) and all(t % 2 for t in even)
    assert len(even) == batch_size
    # at the block's end: what is left, then nothing
    assert recovery_batch(990, 10, 1000, lambda txn: False) == (list(range(990, 1000)), 1000)
    assert recovery_batch(1000, 10, 1000, lambda txn: False) == ([], 1000)


def test_waiting_batches_start_at_the_first_untaken_transaction():
    size = sender_batches.WAITING_SENDER_BATCH
    waiting_batch = sender_batches.waiting_batch
    batch, frontier = waiting_batch(0, 40, 1000, lambda txn: False)
    assert batch == list(range(40, 40 + size)) and frontier == 40 + size
    # on from the frontier (ahead of the untaken ones), skipping known senders
    assert waiting_batch(frontier, 40, 1000, lambda txn: txn % 2 == 0) == \
        (list(range(frontier + 1, frontier + 2 * size, 2)), frontier + 2 * size)
    # from further on when everything up to there has been taken since
    assert waiting_batch(frontier, 500, 1000, lambda txn: False)[0][0] == 500
    assert waiting_batch(996, 40, 1000, lambda txn: False) == ([996, 997, 998, 999], 1000)
    assert waiting_batch(1000, 40, 1000, lambda txn: False) == ([], 1000)
