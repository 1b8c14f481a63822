"""What things cost, as the parallel engine's decisions assume it.

* When workers pay, and how many: after its in-process warm-up the engine knows
  what a transaction of the block costs here; :func:`parallel_pays` weighs
  finishing the block in-process against starting workers, with the
  per-transaction overheads of going parallel measured on the project's 2-core
  machine (below), :func:`workers_that_pay` picks the count of processes with the
  lowest estimate, and :func:`warm_up_settled` says when the warm-up has seen
  enough.
* Whether the rest runs as a sender pipeline instead (:func:`pipeline_pays`):
  the coordinator executes everything in order while a worker recovers senders,
  where recovery is a large enough share of the rest for that to beat
  speculating, and the pipeline is estimated faster than one process.
* Which transactions are costly, before any runs: :func:`costly_transactions`
  guesses by gas limit (the scheduler keeps them off the coordinator).
* How long a chunk is: :func:`default_chunk_size` weighs a message's cost against
  the speculative work a conflict wastes.
* Whether the warm-up goes on although its time is up: :func:`serial_run`, while its
  latest transactions form one dependency chain.

The simulation (:mod:`pevm.simulation`) makes the same decisions with the same
functions.
"""
from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from pevm.host import machine_slowness, usable_cores

#: What going parallel costs on top of the transactions' own work, per transaction
#: a forked worker runs, in seconds on the reference machine of
#: :func:`~pevm.host.machine_slowness` (scaled by it elsewhere). Measured there in
#: session 15 (per-process breakdowns at 2 workers against 1, mainnet 11814555 and
#: a generated 1,000-transaction transfer block): the coordinator's CPU --
#: messages, validation, bookkeeping beyond 1 worker's -- 40-44 us; the worker's
#: messages 17-19 us and its slowdown beside the coordinator (execution and sender
#: recovery, against the same work alone) 16-25 us. The coordinator's also bounds
#: the commit rate. Plus a cost that does not shrink with workers: the fork, the
#: first round trip, the tail where one worker is still busy. See
#: :func:`parallel_pays`. (Session 11 measured 80, 80 us and used 40 ms on a
#: machine about half as fast, where the probe reads about 2: the same costs.)
COORDINATOR_TX_S = 40e-6
WORKER_TX_S = 40e-6
PARALLEL_FIXED_S = 0.02
#: What each forked worker beyond the first costs, in the same seconds: its fork
#: (by the coordinator, or from ``NURSERY_FROM`` workers by the nursery, where each
#: later worker starts one fork later), its stop and reap
#: (:data:`PARALLEL_FIXED_S` holds the first's), and the chunks and messages it
#: adds. The simulation's calibration measures fork + stop per worker at 6.3 ms on
#: the reference machine and 9.7 ms on a 16-core device whose slowness reads 2.47
#: (3.9 ms scaled); on that device each worker from 8 to 16 added 14-26 ms to the
#: transaction phase of ERC-20 and mainnet blocks (5.6-10.4 ms scaled; session
#: 27). Without it every count up to the cores looked best. See
#: :func:`workers_that_pay`.
EXTRA_WORKER_S = 0.006

#: The warm-up ends early once this many transactions ran and the rest of the
#: block is clearly long (:func:`warm_up_settled`).
SETTLED_AFTER_TXS = 8
#: ... clearly long: at least this much in-process work left (reference-machine
#: seconds), by the warm-up (:class:`WorkEstimate`) -- 3.5 times the fixed cost of
#: going parallel (:data:`PARALLEL_FIXED_S`). Whether workers then start is still
#: :func:`parallel_pays`'s to say; below the bar the warm-up runs its full
#: ``fork_after``, and a block of 80-150 ms spent a third of itself in one process
#: before asking. Measured in session 21 (alternating processes, 6-8 rounds, 2
#: workers vs 1, transaction phase), 0.125 s against 0.07 s: mainnet 11814555
#: 0.97-0.98x -> 1.10-1.14x (it now starts workers), 5283152 1.18-1.32x ->
#: 1.38-1.40x; 5891667 (50 ms) stays in one process either way; 0.03-0.05 s sent
#: it to workers, 0.92x.
SETTLED_WORK_S = 0.07


#: A call without data is weighed as a plain transfer, whatever its gas limit
#: (:func:`work_weights`).
PLAIN_TRANSFER_GAS = 21_000


def work_weights(transactions: Sequence[Any]) -> list[int]:
    """Each transaction's weight in :class:`WorkEstimate`: its gas limit, except
    that a call without data weighs a plain transfer's 21,000. Exchanges and
    wallets send plain transfers with limits of 60,000-250,000 that they never
    use, and they cost the same ~0.15 ms here whatever the limit (mainnet
    4370000: nine at 121,000 beside one sender's chain of contract calls at
    200,000 that cost 3.6 ms each); weighed by their limits they hid how much of
    the block the chain is. A call without data to a contract runs only its
    receive or fallback code, little next to a call that passes arguments."""
    return [min(tx.gas, PLAIN_TRANSFER_GAS) if tx.to and not tx.data else tx.gas
            for tx in transactions]


class WorkEstimate:
    """How long the rest of a block should take in-process, from its warm-up.

    The warm-up ran the first ``done`` transactions in ``elapsed`` seconds. The
    rest is weighed two ways, and the larger estimate counts: by the transactions
    left at the warm-up's mean, and by their gas limits -- the only cost a
    transaction states before it runs; a call without data at a plain
    transfer's, :func:`work_weights` -- at the warm-up's time per unit of gas
    limit. The count misses a block whose heavy transactions come after its cheap
    ones (mainnet 12244000 ran 29 of its 133 transactions in a 30 ms warm-up; the
    104 left took 0.72 s, not the 0.1 s their count said, and the engine stayed in
    one process: 1.00x at 2 workers, 1.61x weighed by gas limit); the gas limit
    misses first transactions that are slow for their limit (cold state: mainnet
    12159808 then ran 26 transactions in-process where the count had settled after
    8, 1.43x against 1.58x). Either sign of a long rest starts workers sooner, as
    :func:`parallel_pays` errs towards parallel anyway.
    """

    def __init__(self, weights: Sequence[int]) -> None:
        self.n = len(weights)
        #: weights (:func:`work_weights`) of transactions ``0..i-1``, for every ``i``
        self._prefix = [0, *itertools.accumulate(max(gas, 1) for gas in weights)]
        #: (k, seconds): transactions ``0..k-1`` ended that many seconds in, and
        #: the estimate leaves them out (:meth:`leave_out_first`)
        self._first: tuple[int, float] = (0, 0.0)

    def leave_out_first(self, elapsed: float) -> None:
        """The block's first transaction ended ``elapsed`` seconds in: from the
        second on, :meth:`remaining` weighs the rest by the transactions after
        it. The first pays for the block's cold start -- the first reads of the
        pre-state, of its sender and the coinbase -- at 2-4 times the cost of the
        next (mainnet 5891667, exchange withdrawals: 0.44 ms, then 0.11-0.21 ms);
        counted in a warm-up of 8 it doubled the estimate of the rest, 72-82 ms
        against the ~41 ms it takes, and workers started where they lost 8-15%."""
        self._first = (1, elapsed)

    def remaining(self, done: int, elapsed: float) -> float:
        """Seconds for transactions ``done..n-1``, after ``0..done-1`` took
        ``elapsed`` (the first of them left out: :meth:`leave_out_first`)."""
        first, before = self._first if done > self._first[0] else (0, 0.0)
        if done <= first:
            return 0.0
        prefix = self._prefix
        span = max(elapsed - before, 0.0)
        by_count = span * (self.n - done) / (done - first)
        by_gas = span * (prefix[self.n] - prefix[done]) / (prefix[done] - prefix[first])
        return max(by_count, by_gas)

    def share(self, done: int, txns: Iterable[int]) -> float:
        """The part of transactions ``done..n-1``'s work that ``txns`` (among
        them) weigh: the larger of their share by count and by gas limit, as
        :meth:`remaining` takes the larger estimate."""
        prefix = self._prefix
        chosen = [t for t in txns if done <= t < self.n]
        left = self.n - done
        if not chosen or left <= 0:
            return 0.0
        gas = sum(prefix[t + 1] - prefix[t] for t in chosen)
        return max(len(chosen) / left, gas / (prefix[self.n] - prefix[done]))


def parallel_pays(remaining: int, work: float, workers: int,
                  cores: int | None = None, slowness: float | None = None,
                  kept: int = 0, kept_work: float = 0.0) -> bool:
    """Whether running the rest of a block on ``workers`` executing processes (the
    coordinator and ``workers - 1`` forked workers) should finish it sooner than
    the coordinator alone (the engine decides when parallelism pays).

    ``remaining`` transactions are left, ``work`` seconds of them in-process
    (:meth:`WorkEstimate.remaining`): the work ``R``. The forked workers run about
    a share ``f = (workers - 1) / workers`` of them, and each of those costs ``w``
    (:data:`WORKER_TX_S`) more in the worker and ``c`` (:data:`COORDINATOR_TX_S`)
    in the coordinator, which also commits them one after the other; plus the
    fixed cost ``S`` (:data:`PARALLEL_FIXED_S`). On ``p = min(workers, cores)``
    cores the estimate is ``max((R + n f (w + c)) / p, n f c) + S``, and the
    workers start when it is below ``R``. The overheads are the reference
    machine's, times ``slowness`` (default: :func:`~pevm.host.machine_slowness`).

    ``kept`` of the transactions, ``kept_work`` seconds of the work, stay with the
    coordinator whatever the workers do: those of the hot targets predicted at
    the fork (:meth:`~pevm.engines.hot_targets.HotTargets.predict`). The workers
    then run at most the others, and the coordinator takes at least ``kept_work``
    plus committing what they ship: a block whose rest is mostly one sender's
    chain gains only what its other transactions weigh (mainnet 4370000: 32
    calls of ~3.6 ms on one contract and ~15 ms of others, 0.93-0.98x with
    workers). Beyond those, it ignores conflicts (the scheduler's throttle limits
    what they cost), so it errs towards parallel on a block that conflicts.
    """
    return workers_that_pay(remaining, work, workers, cores, slowness, kept,
                            kept_work) > 1


def workers_that_pay(remaining: int, work: float, workers: int,
                     cores: int | None = None, slowness: float | None = None,
                     kept: int = 0, kept_work: float = 0.0) -> int:
    """How many executing processes, of at most ``workers``, should run the rest
    of the block: 1 (the coordinator alone) unless some count pays
    (:func:`parallel_pays`, whose arguments these are), else the count whose
    estimate is lowest (:func:`speculation_estimate`)."""
    return speculation_estimate(remaining, work, workers, cores, slowness, kept,
                                kept_work)[0]


def speculation_estimate(remaining: int, work: float, workers: int,
                         cores: int | None = None, slowness: float | None = None,
                         kept: int = 0, kept_work: float = 0.0) -> tuple[int, float]:
    """The best way to run the rest of the block speculating, as (executing
    processes, estimated seconds): ``(1, work)`` where no count of workers pays
    (:func:`parallel_pays`, whose arguments these are and whose estimate this is).

    Each forked worker beyond the first adds :data:`EXTRA_WORKER_S` to the
    estimate, and workers beyond the cores only add overheads, so the estimate
    has a minimum: where the coordinator's commits (``n f c``) or its forks catch
    up with what one more worker takes off the rest. A block of cheap
    transactions stops short of a many-core machine's cores; a block of
    costly ones uses them all (on a 16-core device, 16 workers ran a compute-heavy
    block 1.34x faster than 8 and mainnet blocks 1.1-1.4x slower: session 27).
    """
    cores = cores or usable_cores()
    scale = machine_slowness() if slowness is None else slowness
    best, best_estimate = 1, work
    if min(workers, cores) < 2 or remaining < 2:
        return best, best_estimate
    per_tx, coordinator = (WORKER_TX_S + COORDINATOR_TX_S) * scale, COORDINATOR_TX_S * scale
    for count in range(2, workers + 1):
        shipped = min(remaining - kept, remaining * (count - 1) / count)
        estimate = max((work + shipped * per_tx) / min(count, cores),
                       shipped * coordinator + kept_work)
        estimate += (PARALLEL_FIXED_S + (count - 2) * EXTRA_WORKER_S) * scale
        if estimate < best_estimate:
            best, best_estimate = count, estimate
    return best, best_estimate


#: The sender pipeline (:func:`pipeline_pays`) is chosen over speculation for a
#: rest whose sender recovery is at least this share of its in-process time, as
#: the warm-up estimates both (its first transactions run cold, so it reads the
#: share 15-25% below what the whole block at 1 worker shows). Below it the saving
#: is small next to the error of the pipeline's estimate against speculation's.
#: Measured in session 40: the pipeline won where the look read 0.26-0.33 and lost
#: where it read 0.10-0.13 (ERC-20 and mixed transfers, mainnet 12520364). Of the
#: 31 mainnet corpus blocks only 5891667 and 11814555 read above 0.21 (the hot
#: spot and 4330482 0.19-0.25). Where workers would not pay at all the share does
#: not matter: the estimate alone decides (mainnet 4330482, 4370000, 6196166).
PIPELINE_SHARE = 0.25
#: What running the rest as a sender pipeline costs the coordinator on top of its
#: transactions' own execution, per transaction, in seconds on the reference
#: machine (:func:`~pevm.host.machine_slowness`): the polls, the recovered senders
#: it takes in, its executions beside a busy core. Measured in session 52
#: (slowness 1.24; the helper kept between blocks, sent encodings, dispatched to
#: only after its answers) as the pipeline's time from the 8th transaction less one
#: process's without the recoveries the helper took over, 6 alternating rounds:
#: 4.8 ms on 1,000 withdrawals, 5.7 on 1,000 transfers, 5.4 on the 1,000-transaction
#: hot spot, 4.1 on mainnet 11814555 (571 transactions after the warm-up), 3.2 on
#: 5891667 (372), 1.8 on 4330482 (229) and 2.7 on 12520364 (652) -- about 4.5 us a
#: transaction at that speed and under 1 ms once -- and 9.0 ms on 1,000 ERC-20
#: transfers, whose costlier transactions lose more beside a busy core. Session
#: 40's pipeline (a worker forked per block, sent transaction objects, dispatched
#: to before every transaction) cost 24-29 ms a 1,000 transactions, and this was
#: 25 us.
PIPELINE_TX_S = 6e-6
#: ... and once: the first batch's round trip, or, in a process's first pipelined
#: block, the helper's fork (3-4 ms).
PIPELINE_FIXED_S = 0.002
#: The pipeline's estimate must be at least this share below the rest's time in one
#: process: a smaller gain is within the noise that a busy machine adds to a
#: two-process run and not to one process. Mainnet 4370000's looks estimate its
#: pipeline 0.5-1.4% faster: +0.7% over 10 quiet alternating rounds, 0.91x of one
#: process in a corpus bench whose probes read the machine 1.2-2.6x slow, where the
#: blocks that ran in one process at both counts read 0.96-1.03x (session 52).
PIPELINE_MARGIN = 0.02


def pipeline_pays(remaining: int, work: float, recovery: float, workers: int,
                  cores: int | None = None, slowness: float | None = None,
                  speculation_pays: bool = True) -> bool:
    """Whether the rest of a block should run as a *sender pipeline*: the
    coordinator executes every transaction in order, exactly as one process does,
    while one worker recovers the senders ahead of it -- a block of cheap
    transactions whose cost is largely sender recovery (exchange withdrawals,
    plain transfers), where speculation's per-transaction overheads can eat what a
    second process saves.

    ``remaining`` transactions are left, ``work`` seconds of them in-process
    (:meth:`WorkEstimate.remaining`), of which ``recovery`` seconds recover their
    senders (at the warm-up's mean per sender). The pipeline's estimate is
    ``work - recovery`` plus :data:`PIPELINE_TX_S` per transaction and
    :data:`PIPELINE_FIXED_S` (times ``slowness``); it pays where that is below
    ``work``, the rest in one process, by :data:`PIPELINE_MARGIN` or more, and,
    where speculation could run the rest
    instead, the recovery is at least :data:`PIPELINE_SHARE` of the work. Where
    the warm-up found that ``speculation_pays`` nothing (a rest too short for it,
    or one dependency chain) any share will do (the 1,000-transaction
    hot spot, one chain: 1.13x forked at its 8th transaction as a pipeline,
    against 1.00x in one process; session 40).

    Against speculation the bar is the same ``work``, not speculation's own
    estimate (:func:`speculation_estimate`): that comparison picked the slower
    mode on three days of four. Session 45 added it, on a day when speculation ran
    1,000 transfers and 1,000 single-sender withdrawals 4-8% faster than the
    pipeline (2 workers, alternating in one process, transaction phase). Sessions
    46, 47 and 48 measured the same comparison the other way, the pipeline up to
    19% faster: 18 of the 22 paired runs over the four days favour it, geometric
    mean 0.95 (docs/results.md, session 48). The estimates err against the
    pipeline on exactly these blocks. The warm-up's first transactions run cold,
    so ``work`` reads high (on those two blocks 3-25% above the whole block's
    transaction phase at 1 worker, merge included; session 48), and the
    pipeline's estimate carries all of that excess while speculation's carries
    half: the pipeline's estimate of the rest read 17-40% above the whole phase
    it then took (sessions 46 and 48). So against speculation the share decides,
    and the estimate only has to beat one process. No mainnet block of the corpus
    changed mode with the rule (11814555 and 5891667 ran as pipelines under both).

    It needs two processes that can execute; against speculation, exactly two
    (``min(workers, cores) == 2``): with more, speculation's processes all
    execute, while the pipeline's bound stays one process's execution (unmeasured
    there: the engine then speculates, as before).
    """
    cores = cores or usable_cores()
    executors = min(workers, cores)
    if executors < 2 or remaining < 2 or work <= 0:
        return False
    if speculation_pays and (executors != 2 or recovery < PIPELINE_SHARE * work):
        return False
    scale = machine_slowness() if slowness is None else slowness
    estimate = work - recovery + (remaining * PIPELINE_TX_S + PIPELINE_FIXED_S) * scale
    return estimate < work * (1 - PIPELINE_MARGIN)


def workers_to_start(workers: int, cores: int | None = None) -> int:
    """Executing processes to start where the warm-up ran no transaction to judge
    the block by (its first transaction is costly, so a worker should run it, or
    a short ``fork_after`` ran out first): as many as asked, up to the usable
    ``cores``. More processes than cores only
    add overheads -- :func:`workers_that_pay` never picks them -- and mainnet
    12520364, whose first transaction is costly, ran 1.02x over one process at 4
    workers on 2 cores against 1.31x at 2 (session 33)."""
    return max(1, min(workers, cores or usable_cores()))


def with_a_worker_for_costly(executors: int, done: int, costly_next: bool, workers: int,
                             cores: int | None = None) -> int:
    """``executors`` -- what :func:`workers_that_pay` chose for the rest of the
    block after a warm-up of ``done`` transactions -- but at least two (up to the
    usable ``cores``, :func:`workers_to_start`) where the warm-up stopped at a
    costly transaction (``costly_next``) before its first look, with fewer than
    :data:`SETTLED_AFTER_TXS` run.

    It stopped so that a worker runs that transaction; and a handful of
    transactions, the first paying the block's cold start, price the rest -- the
    costly one by its gas limit alone -- too roughly to say that no worker pays.
    Mainnet 9069000 stops after its first transaction (its second, at a 2.4M gas
    limit, runs ~180 ms): weighed by that one, the rest read 59 ms in one process
    in some imports, and the block ran there, ~465 ms against ~350 ms with a
    worker. Where the warm-up ran none, :func:`workers_to_start` decides alone."""
    if executors > 1 or not costly_next or done >= SETTLED_AFTER_TXS:
        return executors
    return min(2, workers_to_start(workers, cores))


def warm_up_settled(done: int, work: float, slowness: float | None = None) -> bool:
    """Whether the in-process warm-up has seen enough to start workers now.

    The warm-up runs until ``fork_after`` so that a short block never pays for
    workers; a block whose rest is clearly long -- ``work`` seconds by
    :meth:`WorkEstimate.remaining` after ``done`` transactions -- has nothing to
    gain from waiting, and every millisecond more of it runs in one process.
    Whether workers pay is still :func:`parallel_pays`'s to say. (``slowness`` as
    there.)
    """
    if done < SETTLED_AFTER_TXS:
        return False
    return work >= SETTLED_WORK_S * (machine_slowness() if slowness is None else slowness)


def clearly_short(done: int, remaining: int, work: float, workers: int,
                  cores: int | None = None, slowness: float | None = None) -> bool:
    """Whether the warm-up can stop now because workers would not pay for the rest.

    Asked after :data:`SETTLED_AFTER_TXS` transactions and at each power of two
    after (a look costs ~2 us), while :func:`warm_up_settled` does not yet call
    the rest long: when :func:`parallel_pays` says no for ``remaining``
    transactions of ``work`` seconds, the block's rest runs in-process as 1 worker
    runs it -- its senders recovered back to back, no per-transaction checks --
    instead of going on as a warm-up to ``fork_after``. Mainnet 5891667 (380
    transactions, ~42 ms) ran 256 of them as a warm-up before its verdict, 2
    workers 1.05x the time of 1; stopping after 8 (the same verdict), 1.01x.
    ``cores`` and ``slowness`` as for :func:`parallel_pays`.
    """
    return done >= SETTLED_AFTER_TXS and done & (done - 1) == 0 and \
        not parallel_pays(remaining, work, workers, cores, slowness)


class WarmUp(Enum):
    """What the in-process warm-up does after a look (:func:`warm_up_verdict`)."""

    #: nothing decided yet: run the next transaction in-process
    GO_ON = "go on"
    #: time is up, or the rest is clearly long: workers are weighed now
    #: (:func:`parallel_pays`), unless the latest transactions form one chain
    #: (:func:`serial_run`)
    SETTLED = "settled"
    #: the rest is too short for workers (:func:`clearly_short`): it runs in-process
    SHORT = "short"
    #: the rest runs faster as a sender pipeline (:func:`pipeline_pays`): start it
    PIPELINE = "pipeline"


def warm_up_verdict(done: int, remaining: int, work: float, workers: int,
                    out_of_time: bool, cores: int | None = None,
                    recovery: float = 0.0, slowness: float | None = None) -> WarmUp:
    """The warm-up's rule, one look after ``done`` transactions with ``remaining``
    left of ``work`` seconds (:class:`WorkEstimate`), ``recovery`` of them
    recovering senders, ``out_of_time`` once it ran its ``fork_after``: the
    engine's and the simulation's warm-ups both ask it. A rest that would run
    faster as a sender pipeline (:func:`pipeline_pays`) starts it at once, from
    :data:`SETTLED_AFTER_TXS` on: the pipeline saves a share of every transaction
    left, so it pays the more the sooner it starts. (A rest that settles but runs
    as one chain is weighed for the pipeline by the caller, which knows the chain:
    :func:`serial_run`.) A rest too short for workers (:func:`clearly_short`) is
    weighed for the pipeline from the second look that finds it so: the first
    look's estimate can be far short, and a pipeline, once started, is never
    weighed again (mainnet 15752489's first look reads its rest at 53 ms, the rest
    takes 260; weighed there with :data:`PIPELINE_TX_S` at 6 us, it ran as a
    pipeline, 1.01x over one worker against 1.55x speculating; session 52).
    ``slowness`` scales every bar, as in :func:`parallel_pays` (the engine passes
    :func:`~pevm.host.block_slowness`)."""
    if done >= SETTLED_AFTER_TXS and pipeline_pays(remaining, work, recovery, workers,
                                                   cores, slowness):
        return WarmUp.PIPELINE
    if out_of_time or warm_up_settled(done, work, slowness):
        return WarmUp.SETTLED
    if clearly_short(done, remaining, work, workers, cores, slowness):
        second = done > SETTLED_AFTER_TXS  # see the docstring: 15752489
        return WarmUp.PIPELINE if second and pipeline_pays(
            remaining, work, recovery, workers, cores, slowness,
            speculation_pays=False) else WarmUp.SHORT
    return WarmUp.GO_ON


#: The warm-up goes on while its latest this-many transactions form one chain
#: (:func:`serial_run`) ...
SERIAL_WINDOW = 8
#: ... and looks again after this many more (a look costs ~60 us here: every 8
#: transactions it was 3% of a fully conflicting block's time).
SERIAL_STEP = 32


def serial_run(deps: Sequence[Sequence[int]], start: int, end: int) -> bool:
    """Whether transactions ``start..end-1`` form one dependency chain: the longest
    path through them, by ``deps`` (each transaction's earlier ones it depends on),
    passes every one of them, so that no number of processes runs them faster than
    one does.

    While the warm-up's latest transactions do, starting workers only adds their
    costs -- a fully conflicting block (one counter, one pool every transaction
    writes) loses 5-10% at 2 workers here -- so the warm-up goes on and looks
    again (:data:`SERIAL_STEP`). A window with one transaction off the chain is
    not serial: whether workers pay is then :func:`parallel_pays`'s to say, as
    before.
    """
    if start < 0 or end - start < 2:
        return False
    longest: dict[int, int] = {}
    for txn in range(start, end):
        longest[txn] = 1 + max((longest[d] for d in deps[txn] if start <= d < txn),
                               default=0)
    return max(longest.values()) == end - start


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
           "PLAIN_TRANSFER_GAS", "SERIAL_STEP", "SERIAL_WINDOW", "SETTLED_AFTER_TXS",
           "WarmUp", "clearly_short", "warm_up_verdict",
           "SETTLED_WORK_S", "WORKER_TX_S", "WorkEstimate", "costly_transactions",
           "default_chunk_size", "parallel_pays", "serial_run", "transaction_targets",
           "warm_up_settled", "work_weights", "workers_that_pay", "workers_to_start",
           "EXTRA_WORKER_S", "PIPELINE_FIXED_S", "PIPELINE_MARGIN", "PIPELINE_SHARE",
           "PIPELINE_TX_S",
           "pipeline_pays", "speculation_estimate"]
