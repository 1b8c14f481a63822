"""Which senders are recovered when: the engine's sender-recovery batches.

Recovering a transaction's sender (:mod:`pevm.engines.senders`) is a large share
of a cheap transaction's cost, needs nothing but the transaction, and is cheaper
back to back than one at a time between executions (its tables stay in the CPU's
caches). Whoever executes a transaction first recovers its sender once and the
others adopt it (:meth:`BlockContext.adopt_sender
<pevm.engines.executor.BlockContext.adopt_sender>`), so the only question is when,
and in which process, each batch is recovered:

- the warm-up recovers growing batches as it reaches them
  (:func:`warm_up_batch_end`), and, before speculation's workers start, one batch
  beyond (:func:`warm_up_senders`), so that the hot-target prediction sees a
  chain that starts past the warm-up (a sender pipeline leaves it to its helper);
- while the coordinator runs the block in order, idle workers recover the senders
  ahead of it (:func:`recovery_batch`);
- a coordinator that would otherwise wait for a worker recovers a few of the next
  untaken transactions' senders itself (:func:`waiting_batch`).

These are pure functions of the block's progress: the engine's warm-up and run
(:mod:`pevm.engines.warm_up`, :mod:`pevm.engines.block_run`) and the simulation
(:mod:`pevm.simulation.model`) call the same ones, so that the model follows the
engine.
"""
from __future__ import annotations

from collections.abc import Callable

#: Senders per recovery task handed to an idle worker while the coordinator runs
#: the block in order (speculation paused, or hot targets).
RECOVERY_BATCH = 64
#: Senders the warm-up recovers at a time, back to back (cheaper than one by one
#: between executions: :meth:`BlockContext.recover_senders`), at first; a batch
#: then grows with the warm-up (:func:`warm_up_batch_end`)
WARM_UP_SENDER_BATCH = 32
#: Senders the coordinator recovers at a time while it would otherwise wait for a
#: worker's results (:func:`waiting_batch`): small, so that results arriving
#: meanwhile wait at most ~0.4 ms for it.
WAITING_SENDER_BATCH = 8


def warm_up_batch_end(txn: int) -> int:
    """The end of the warm-up's batch of senders that starts at ``txn``: the
    batch is as long as the warm-up so far, and at least
    :data:`WARM_UP_SENDER_BATCH` (0-32, 32-64, 64-128, ...).

    The longer the batches, the cheaper each recovery (its tables stay in the
    CPU's caches); a warm-up that forks early should not have recovered much that
    the workers would have recovered in parallel. Growing with the warm-up keeps
    what it recovers ahead at most as long as what it ran. Batches of 32
    throughout cost a block that stays in one process up to 2% against 1
    worker's recovery of all its senders back to back (1 worker against 2 held
    in one process, alternating in one process: the 1,000-transaction hot spot
    0.980x, growing batches 1.002x, one batch of all 1.003x; mainnet 6196166
    0.988x, 0.995x, 0.997x)."""
    return txn + max(WARM_UP_SENDER_BATCH, txn)


def warm_up_senders(done: int, n: int) -> range:
    """The transactions whose senders are known when the workers start, after a
    warm-up that ran ``done`` of the block's ``n``: the warm-up's batches
    (:func:`warm_up_batch_end`), one as it reaches each, and
    :data:`WARM_UP_SENDER_BATCH` beyond, recovered just before the fork (the
    simulation follows it).

    The batch beyond is for :meth:`HotTargets.predict
    <pevm.engines.hot_targets.HotTargets.predict>`: a sender's chain of calls that
    starts just past the warm-up is otherwise seen only after the workers' chunks
    hold it (mainnet 4370000 after a 19-transaction warm-up: 8-13 failed results
    against 0-3). The workers inherit those senders, so their recovery moves
    ahead of the fork rather than adding to the block."""
    return range(min(n, warm_up_batches(done, n).stop + WARM_UP_SENDER_BATCH))


def warm_up_batches(done: int, n: int) -> range:
    """The transactions whose senders a warm-up that ran ``done`` of the block's
    ``n`` recovered in its own batches (:func:`warm_up_batch_end`), one as it
    reached each: what a sender pipeline starts with, since it recovers no batch
    beyond (:func:`warm_up_senders`)."""
    end = 0
    while end < done:
        end = warm_up_batch_end(end)
    return range(min(n, end))


def recovery_batch(frontier: int, commit_index: int, n: int,
                   known: Callable[[int], bool]) -> tuple[list[int], int]:
    """The next senders for an idle worker to recover while the coordinator runs
    the block in order (the engine's policy; the simulation follows it): up to
    :data:`RECOVERY_BATCH` transactions whose sender the coordinator does not ``known``, from the
    ``frontier`` of earlier batches but at least half a batch past the commit
    point -- far enough ahead that the batch is done before the coordinator gets
    there (nearer ones it recovers itself). Returns the batch and the new frontier.
    """
    return _unknown_senders(max(frontier, commit_index + RECOVERY_BATCH // 2), n,
                            known, RECOVERY_BATCH)


def waiting_batch(frontier: int, next_txn: int, n: int,
                  known: Callable[[int], bool]) -> tuple[list[int], int]:
    """The next senders for the coordinator to recover itself while it would wait
    for a worker (the engine's policy; the simulation follows it): up to
    :data:`WAITING_SENDER_BATCH` unknown ones from the first transaction nobody has
    taken (``next_txn``) or the ``frontier`` of earlier batches. Whoever executes
    them later finds them recovered: the coordinator itself, or a worker, to which
    the chunk's :class:`~pevm.engines.workers.Run` message hands them. Returns the
    batch and the new frontier."""
    return _unknown_senders(max(frontier, next_txn), n, known, WAITING_SENDER_BATCH)


def _unknown_senders(txn: int, n: int, known: Callable[[int], bool],
                     size: int) -> tuple[list[int], int]:
    batch: list[int] = []
    while txn < n and len(batch) < size:
        if not known(txn):
            batch.append(txn)
        txn += 1
    return batch, txn


__all__ = ["RECOVERY_BATCH", "WAITING_SENDER_BATCH", "WARM_UP_SENDER_BATCH",
           "recovery_batch", "waiting_batch", "warm_up_batch_end", "warm_up_batches",
           "warm_up_senders"]
