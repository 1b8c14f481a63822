"""What things cost, as the parallel engine's decisions assume it.

* When workers pay: after its in-process warm-up the engine knows what a
  transaction of the block costs here; :func:`parallel_pays` weighs finishing the
  block in-process against starting workers, with the per-transaction overheads of
  going parallel measured on the project's 2-core machine (below), and
  :func:`warm_up_settled` says when the warm-up has seen enough.
* Which transactions are costly, before any runs: :func:`costly_transactions`
  guesses by gas limit (the scheduler keeps them off the coordinator).
* How long a chunk is: :func:`default_chunk_size` weighs a message's cost against
  the speculative work a conflict wastes.

The simulation (:mod:`pevm.simulation`) makes the same decisions with the same
functions.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from pevm.host import usable_cores

#: What going parallel costs on top of the transactions' own work, per transaction
#: a forked worker runs, measured on the 2-core machine (per-process breakdowns at
#: 2 workers against 1, five imports each, generated 1,000-transaction transfer,
#: withdrawal and ERC-20 blocks, session 11): the coordinator's CPU -- messages,
#: validation, bookkeeping beyond 1 worker's -- 60-78 us; the worker's messages
#: ~30 us and its slowdown beside the coordinator (execution and sender recovery,
#: against the same work alone) ~27 us, with as much again for the coordinator's own
#: transactions. The coordinator's also bounds the commit rate. Plus a cost that
#: does not shrink with workers: the fork, the first round trip, the tail where one
#: worker is still busy. See :func:`parallel_pays`. (Sessions 5-10 used 190 and 140
#: us, measured before the overheads were cut: mainnet 11814555 -- an exchange's
#: withdrawals at ~0.3 ms a transaction -- then stayed in-process, 1.00x at 2
#: workers against 1.21x with these, 6 alternating rounds.)
COORDINATOR_TX_S = 80e-6
WORKER_TX_S = 80e-6
PARALLEL_FIXED_S = 0.04

#: The warm-up ends early once this many transactions ran and the rest of the
#: block is clearly long (:func:`warm_up_settled`).
SETTLED_AFTER_TXS = 8
#: ... clearly long: at least this much in-process work left, by the warm-up's
#: mean -- several times what starting workers costs, so that a mean off by half
#: still leaves parallelism paying.
SETTLED_WORK_S = 0.25


def parallel_pays(remaining: int, seconds_per_tx: float, workers: int,
                  cores: int | None = None) -> bool:
    """Whether running the rest of a block on ``workers`` executing processes (the
    coordinator and ``workers - 1`` forked workers) should finish it sooner than
    the coordinator alone (the engine decides when parallelism pays).

    ``remaining`` transactions are left, each costing about ``seconds_per_tx`` (the
    warm-up's mean) in-process: the work ``R``. The forked workers run about a
    share ``f = (workers - 1) / workers`` of them, and each of those costs ``w``
    (:data:`WORKER_TX_S`) more in the worker and ``c`` (:data:`COORDINATOR_TX_S`)
    in the coordinator, which also commits them one after the other; plus the
    fixed cost ``S`` (:data:`PARALLEL_FIXED_S`). On ``p = min(workers, cores)``
    cores the estimate is ``max((R + n f (w + c)) / p, n f c) + S``, and the
    workers start when it is below ``R``. It ignores conflicts (the scheduler's
    throttle limits what they cost), so it errs towards parallel on a block that
    conflicts.
    """
    cores = cores or usable_cores()
    parallel = min(workers, cores)
    if parallel < 2 or remaining < 2:
        return False
    work = remaining * seconds_per_tx
    shipped = remaining * (workers - 1) / workers
    estimate = max((work + shipped * (WORKER_TX_S + COORDINATOR_TX_S)) / parallel,
                   shipped * COORDINATOR_TX_S)
    return estimate + PARALLEL_FIXED_S < work


def warm_up_settled(done: int, elapsed: float, remaining: int) -> bool:
    """Whether the in-process warm-up has seen enough to start workers now.

    The warm-up runs until ``fork_after`` so that a short block never pays for
    workers; a block whose rest is long by the first transactions' mean (``done``
    of them in ``elapsed`` seconds, ``remaining`` left) has nothing to gain from
    waiting, and every millisecond more of it runs in one process. Whether workers
    pay is still :func:`parallel_pays`'s to say.
    """
    return done >= SETTLED_AFTER_TXS and remaining * elapsed / done >= SETTLED_WORK_S


#: a transaction is costly when its gas limit is at least this ...
COSTLY_GAS = 1_000_000
#: ... and at least this many times the block's median gas limit
COSTLY_OVER_MEDIAN = 10


def costly_transactions(gas_limits: Sequence[int]) -> frozenset[int]:
    """Transactions likely to run far longer than the block's others, by gas limit.

    The gas limit is the only cost a transaction states before it runs; on the
    corpus' large mainnet blocks the few transactions that take a third to a half
    of the block (0.3-1.5 s) are among its highest limits, at 10x the median or more.
    A wrong guess costs little: a costly transaction runs on a worker instead of
    the coordinator, and is validated like any other result.
    """
    if not gas_limits:
        return frozenset()
    floor = max(COSTLY_GAS, COSTLY_OVER_MEDIAN * statistics.median(gas_limits))
    return frozenset(i for i, gas in enumerate(gas_limits) if gas >= floor)


def transaction_targets(transactions: Sequence[Any]) -> list[bytes | None]:
    """Each transaction's target: the account it calls, None for a creation.

    The scheduler's guess of which transactions touch the same contract: a target
    whose speculative results keep failing validation becomes hot, and its
    transactions stay with the coordinator, in order, instead of running on a
    worker against state the coordinator is about to change.
    """
    return [bytes(tx.to) if tx.to else None for tx in transactions]


def default_chunk_size(n: int, workers: int) -> int:
    """Chunk length: about 8 chunks per worker per block, between 4 and 48.

    Long enough that a message's cost (tens of microseconds each way plus
    pickling) is small next to the work it carries, short enough that conflicts
    found at the commit point waste little speculative work.
    """
    if workers <= 0:
        return max(1, n)
    return max(4, min(48, -(-n // (workers * 8))))


__all__ = ["COORDINATOR_TX_S", "COSTLY_GAS", "COSTLY_OVER_MEDIAN", "PARALLEL_FIXED_S",
           "SETTLED_AFTER_TXS", "SETTLED_WORK_S", "WORKER_TX_S", "costly_transactions",
           "default_chunk_size", "parallel_pays", "transaction_targets", "warm_up_settled"]
