"""pevm's parallel engine: optimistic execution in worker processes, in-order commit.

``ParallelEngine(workers=N).apply_transactions(vm, transactions, base_header)`` has
the contract of py-evm's ``VM.apply_all_transactions`` (see
:class:`pevm.pipeline.Engine`): it starts from ``vm.state``, leaves the
post-transaction state there, and returns the header (gas used, bloom, blob gas, and
before Byzantium the state root), py-evm's own receipt objects and
:class:`~pevm.result.EngineStats`.

How a block runs (the parts are modules of their own; the coordinator's loop that
drives them is :class:`~pevm.engines.block_run.BlockRun`):

1. **Senders** are recovered once, by the process that first executes the
   transaction (so in parallel, by the workers), and pinned on the transaction
   object so py-evm never recovers them again; results carry them back to the
   coordinator (:mod:`pevm.engines.executor`). A worker recovers its chunk's
   senders back to back before executing it, and so does an in-process run for
   the rest of the block after the warm-up: cheaper than one by one
   (:meth:`~pevm.engines.executor.BlockContext.recover_senders`). A coordinator
   that would wait for a worker recovers the next untaken transactions' senders
   instead (:func:`~pevm.engines.sender_batches.waiting_batch`), and a chunk's run
   message hands the senders the coordinator knows to the worker.
2. **Execution**: the block starts in-process (see "Small blocks" below); then
   ``workers - 1`` forked workers (:mod:`pevm.engines.workers`) execute chunks of
   transactions optimistically on flat, versioned state views
   (:mod:`pevm.engines.state_view`) over their replica of the multi-version memory
   (:mod:`pevm.engines.mv_memory`); the coordinator -- this process, the
   ``workers``-th executor -- validates results in block order against the
   committed state, re-executes what fails in-process, and where it would wait
   for a worker executes the next untaken transaction ahead of the commit point
   itself (:mod:`pevm.engines.scheduler` explains the policy). With ``workers=1``,
   or a block smaller than ``min_parallel_txs``, the same loop runs with no
   workers: every transaction executes in-process, in order, on the flat view, and
   is committed without validation (its reads *are* the committed state).

   The coordinator executes because a process that only validates and commits
   costs the workers a core's share for ~0.2 ms a transaction of its own work: on
   the 2-core machine, two workers and a validating coordinator ran three processes
   on two cores. One worker and an executing coordinator keep two busy; measured
   interleaved at 2 workers against 1 (5 rounds, medians, the variant that only
   validates -> this one): ERC-20 1,000 transactions 1.13x -> 1.47x, mixed 1.06x
   -> 1.23x, withdrawals 1.13x -> 1.25x, mainnet 8889776 0.74x -> 0.96x,
   14029313 1.26x -> 1.40x, 17666333 1.05x -> 1.15x; compute 1.74x -> 1.70x and
   13217637 1.06x both.
3. **Commit**, per transaction in order: py-evm's block-level check
   (``vm.validate_transaction_against_header``: cumulative gas), then the outcome --
   a transaction invalid at its position (with validated reads) rejects the block
   with :class:`~pevm.errors.BlockRejected` at that index, exactly where py-evm
   would; then its writes fold into the committed state.
4. **Merge** (:mod:`pevm.engines.merge`): the committed state is written into
   ``vm.state`` (py-evm's ``AccountDB``) -- once per location from Byzantium on;
   before Byzantium transaction by transaction, because each receipt carries the
   state root after its transaction -- and receipts are made by the fork's own
   ``vm.make_receipt``, ``vm.add_receipt_to_header`` and
   ``vm.increment_blob_gas_used``.

Lazy credits: fee payments to the block beneficiary and plain value credits are
written as deltas that commute (:mod:`pevm.engines.mv_memory`), so they serialise
nothing; a transaction that reads such a balance (BALANCE, a sender's balance
check, SELFDESTRUCT, an emptiness check of an account with no positive credit)
reads the sum and depends on every credit below it, as it must.

Small blocks: every block starts in-process, committing transaction after
transaction; workers are forked only once it has run for ``fork_after`` seconds
(default :data:`FORK_AFTER_S`) with at least ``min_parallel_txs`` transactions
(default :data:`MIN_PARALLEL_TXS`) left -- or sooner, once the first transactions
say the rest is long (:func:`~pevm.engines.cost_model.warm_up_settled`). Starting
workers (the fork, a first message round trip, each worker warming its own
pre-state cache) costs roughly
10-30 ms here; a block that is done sooner never pays it, and a longer one loses
at most ``fork_after`` of parallel time. Forked after the warm-up, the workers
inherit the committed prefix (and the pre-state cache) with the rest of memory.
The warm-up is also the evidence for whether workers pay at all: from its time
per unit of gas limit and the gas limits left
(:class:`~pevm.engines.cost_model.WorkEstimate`), :func:`parallel_pays` weighs the parallel
estimate (the work plus a per-transaction overhead, over the processes that can
run at once, plus a fixed cost) against finishing in-process, and a block of
cheap transactions stays in-process (``ParallelDetail.in_process_reason`` says so).
The same estimate says how many of the ``workers`` to start
(:func:`~pevm.engines.cost_model.workers_that_pay`): each one forked costs the
coordinator a fork and a stop, so a block of cheap transactions stops short of a
many-core machine's cores (``EngineStats.workers`` reports how many ran).
While the warm-up's latest transactions form one dependency chain
(:func:`~pevm.engines.cost_model.serial_run`) it goes on in-process, whatever its
time: workers cannot run a chain faster.

Sender pipeline: where recovering the senders is a large share of the rest's
time -- cheap transactions, exchange withdrawals -- and two processes can
execute, the rest runs as one process runs it, in order, with no speculation, no
validation and no results shipped, while one worker recovers the senders
ahead of the coordinator (:func:`~pevm.engines.cost_model.pipeline_pays`;
``ParallelDetail.sender_pipeline``): speculation's per-transaction overheads can
cost such a block more than its second process saves. That worker is a process
kept between blocks and sent each batch's transactions
(:mod:`~pevm.engines.recovery_helper`), not a fork per block.

Fault hooks (``hooks=``:class:`~pevm.engines.hooks.FaultHooks`): random delays in
workers, forced aborts, workers that kill themselves, a fork at an exact
transaction -- adversarial schedules for the tests; none changes a result.
"""
from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth_utils import ValidationError

from pevm.engines.block_run import BlockRun
from pevm.engines.cost_model import default_chunk_size
from pevm.engines.detail import ParallelDetail
from pevm.engines.hooks import FaultHooks
from pevm.engines.timeline import Trace
from pevm.frame_stack import call_with_roomy_stack
from pevm.pyevm_compat import quick_debug_messages
from pevm.result import EngineStats
from pevm.state.backend import StateBackend

#: Blocks with fewer transactions run in-process (see module docstring).
MIN_PARALLEL_TXS = 24
#: Seconds a block runs in-process before workers are started (module docstring).
FORK_AFTER_S = 0.03
#: How far below the coordinator's CPU priority workers run (``nice`` steps; see
#: :class:`~pevm.engines.workers.WorkerPool`). Measured on the 2-core machine,
#: transaction phase at 2 workers over 1, six large mainnet blocks interleaved:
#: 1.04x at 0, 1.13x at 5, 1.15x at 10 -- while the coordinator only validated.
#: Since it executes too, 0 reads within the noise of 10 (``pevm bench --variant
#: worker_nice=0``, docs/results.md); no block read better at 0.
WORKER_NICE = 10
#: The engine runs a full garbage collection before a block once the interpreter
#: holds this many times the memory blocks it held after its last one
#: (:func:`collect_if_grown`).
GC_GROWTH = 1.5
#: Objects in the collector's permanent generation when pevm was imported: the
#: interpreter's own. CPython 3.12 keeps its static types' base and MRO tuples
#: there from startup (375 on 3.12.1; 0 on 3.11 and 3.13), so "nothing frozen"
#: cannot be read as a count of 0 (:func:`heap_freezable`).
INTERPRETER_FROZEN = gc.get_freeze_count()


def heap_freezable() -> bool:
    """Whether the engine may freeze the heap for a block and unfreeze it after:
    nobody else holds objects frozen (a server that froze its heap before
    forking, say), whose freeze the engine's ``gc.unfreeze()`` would undo.

    Anything at or below :data:`INTERPRETER_FROZEN` is the interpreter's; the
    engine's own unfreeze moves those objects to the oldest generation like any
    others (3.12's tuples are immortal: a full collection walks them and never
    frees them). A freeze made before pevm was imported counts as the
    interpreter's."""
    return gc.get_freeze_count() <= INTERPRETER_FROZEN


class _Heap:
    """The interpreter's allocated memory blocks after the engine's last full
    collection, process-wide (None: no block has run yet)."""

    collected_at: int | None = None


def collect_if_grown(growth: float = GC_GROWTH) -> bool:
    """Run a full collection if the heap grew ``growth`` times since the last one;
    True if it did.

    Why: the engine freezes the collector's view of the heap for each block
    (:meth:`ParallelEngine.apply_transactions`), and what it freezes includes the
    previous imports' uncollected garbage -- py-evm's chains, VMs and states are
    cyclic, so only a full collection frees them, and a frozen heap never gets
    one. Blocks run back to back (a chain's import, ``pevm bench`` or ``pevm run``
    over a corpus) then kept every earlier block's garbage: over the 31 mainnet
    blocks in one process the heap grew from 86 to 640 MB, and the later blocks'
    2-worker imports ran up to 15% slower than with it collected (forked workers
    share, and copy on write, a heap mostly garbage). CPython's own rule collects
    once its old generation grows by a quarter; this one once the interpreter's
    memory blocks (``sys.getallocatedblocks()``, ~40 us) grow by half. The first
    block only takes the measure: a process that runs one block pays nothing.
    """
    held = sys.getallocatedblocks()
    if _Heap.collected_at is None:
        _Heap.collected_at = held
        return False
    if held <= growth * _Heap.collected_at:
        return False
    gc.collect()
    _Heap.collected_at = sys.getallocatedblocks()
    return True


class ParallelEngine:
    """Block-STM-style optimistic parallel executor over py-evm (see module doc).

    ``workers``: processes that execute transactions: the coordinator and
    ``workers - 1`` forked workers (1: everything in-process, no workers);
    ``coordinator_executes=False`` forks ``workers`` and has the coordinator only
    validate, commit and re-execute (the design before; kept for comparisons);
    ``costly_to_workers=False`` lets the coordinator execute costly transactions
    too (:func:`~pevm.engines.cost_model.costly_transactions`);
    ``roomy_stack=False`` runs the block wherever the caller's frame stack stands
    (:mod:`~pevm.frame_stack`; kept for comparisons).
    ``sender_pipeline``: whether a block may run as a sender pipeline (one worker
    recovers senders, the coordinator executes in order;
    :func:`~pevm.engines.cost_model.pipeline_pays`): None (default) where the
    warm-up says it pays; False never (speculation as before); True whenever
    workers start, with one worker (for tests and comparisons).
    ``persistent_helper``: a sender pipeline's worker is one process kept between
    blocks (:mod:`~pevm.engines.recovery_helper`; default) or, False, a worker
    forked per block.
    Tuning: ``min_parallel_txs``, ``fork_after`` (small blocks, see module doc),
    ``chunk_size`` (longest chunk; default
    :func:`~pevm.engines.cost_model.default_chunk_size`),
    ``max_outstanding`` (chunks queued per worker), ``start_method`` (anything but
    ``"fork"`` runs in-process), ``freeze_gc``, ``worker_nice`` (default
    :data:`WORKER_NICE`; 0: workers at the coordinator's priority),
    ``state_backend`` (the state layer its inputs build their chains on: pevm's
    flat one by default, py-evm's trie with :attr:`StateBackend.PYEVM`).
    ``hooks``: adversarial schedules for tests (:class:`FaultHooks`).
    ``last_detail`` holds the last block's :class:`ParallelDetail`; set ``trace``
    to a :class:`~pevm.engines.timeline.Trace` to collect every block's slices.
    """

    name = "parallel"

    def __init__(self, workers: int = 1, *, min_parallel_txs: int | None = None,
                 fork_after: float | None = None, chunk_size: int | None = None,
                 max_outstanding: int = 2, start_method: str | None = None,
                 freeze_gc: bool = True, worker_nice: int = WORKER_NICE,
                 state_backend: StateBackend = StateBackend.FLAT,
                 coordinator_executes: bool = True, costly_to_workers: bool = True,
                 fit_workers: bool = True, roomy_stack: bool = True,
                 sender_pipeline: bool | None = None, persistent_helper: bool = True,
                 hooks: FaultHooks | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        for name, value, least in (("chunk_size", chunk_size, 1),
                                   ("max_outstanding", max_outstanding, 1),
                                   ("min_parallel_txs", min_parallel_txs, 0),
                                   ("fork_after", fork_after, 0),
                                   ("worker_nice", worker_nice, 0)):
            if value is not None and value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        self.workers = workers
        self.min_parallel_txs = MIN_PARALLEL_TXS if min_parallel_txs is None \
            else min_parallel_txs
        self.fork_after = FORK_AFTER_S if fork_after is None else fork_after
        self.chunk_size = chunk_size
        self.max_outstanding = max_outstanding
        self.start_method = start_method
        self.worker_nice = worker_nice
        #: the coordinator is one of the ``workers`` executing processes (it
        #: forks ``workers - 1``); False: it forks ``workers`` and only validates
        self.coordinator_executes = coordinator_executes
        #: transactions with a gas limit far above the block's typical one run on
        #: workers, not on the coordinator (:func:`costly_transactions`)
        self.costly_to_workers = costly_to_workers
        #: start only as many of ``workers`` as the warm-up says pay
        #: (:func:`~pevm.engines.cost_model.workers_that_pay`), or, where it ran no
        #: transaction, as the machine has cores (:func:`~pevm.engines.cost_model.
        #: workers_to_start`); False: all of them once any pay
        self.fit_workers = fit_workers
        #: run the block on a roomy frame stack, which the workers forked during it
        #: inherit (:mod:`pevm.frame_stack`); False: wherever the caller's
        #: stack stands, as before session 31
        self.roomy_stack = roomy_stack
        #: the rest of a block may run as a sender pipeline: None where the
        #: warm-up says it pays, True whenever workers start, False never
        self.sender_pipeline = sender_pipeline
        #: a sender pipeline's worker is the process's one
        #: :class:`~pevm.engines.recovery_helper.RecoveryHelper`, kept between
        #: blocks; False: a worker forked per block, as speculation's are
        self.persistent_helper = persistent_helper
        #: the state layer the blocks it runs are built on (pevm.state.backend)
        self.state_backend = StateBackend(state_backend)
        self.hooks = hooks or FaultHooks()
        #: move objects alive at the block's start out of the collector's sight
        #: while it runs (see apply_transactions)
        self.freeze_gc = freeze_gc
        self._blocks = 0
        #: in-process reasons already logged (each once per engine)
        self._warned: set[str] = set()
        self.last_detail = ParallelDetail()
        #: when set, every block's per-process slices are added to it
        self.trace: Trace | None = None

    def chunk_length(self, n: int, executors: int) -> int:
        """The longest chunk for a block of ``n`` transactions on ``executors``
        processes: ``chunk_size`` where the caller fixed it, else
        :func:`~pevm.engines.cost_model.default_chunk_size` (the engine and the
        simulation both size chunks here)."""
        return self.chunk_size or default_chunk_size(n, executors)

    # ------------------------------------------------------------------ API
    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        vm_header = vm.get_header()
        if base_header.block_number != vm_header.block_number:
            raise ValidationError(
                f"This VM instance must only work on block #{vm_header.block_number}, "
                f"but the target header has block #{base_header.block_number}")
        self._blocks += 1
        # Everything alive now (the chain, its databases, the decoded block) lives
        # through the block: the collector's permanent generation keeps full
        # collections -- which py-evm's allocation rate triggers often -- from
        # walking it again and again (and, in forked workers, from copying it).
        frozen = self.freeze_gc and heap_freezable()
        if frozen:
            collect_if_grown()  # what earlier blocks left, before it is frozen too
            gc.freeze()
        run = BlockRun(self, vm, tuple(transactions), base_header,
                       block_index=self._blocks, gc_frozen=frozen, warned=self._warned)
        try:
            with quick_debug_messages():
                return call_with_roomy_stack(run.run) if self.roomy_stack else run.run()
        finally:
            run.close()
            if frozen:
                gc.unfreeze()
