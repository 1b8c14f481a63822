"""The parallel engine's per-block counters (``ParallelEngine.last_detail``)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ParallelDetail:
    """The last block's counters beyond :class:`~pevm.result.EngineStats`
    (``ParallelEngine.last_detail``): where the work went, for tests and research."""

    #: chunks sent to workers, and the longest chunk the scheduler allowed
    chunks: int = 0
    chunk_size: int = 0
    #: transaction incarnations sent to workers
    dispatched: int = 0
    #: transactions the coordinator executed itself
    inline: int = 0
    #: transactions the coordinator executed ahead of the commit point instead of
    #: waiting for a worker (validated like a worker's result)
    ahead: int = 0
    #: times a costly transaction was left to the workers
    costly: int = 0
    #: worker results that failed validation at the commit point
    validation_failures: int = 0
    #: validated results declared invalid by the ``force_abort`` fault hook
    forced_aborts: int = 0
    #: worker results that met an ESTIMATE marker (a dependency) or crashed
    blocked: int = 0
    crashed: int = 0
    #: in-flight transactions of workers that died
    lost: int = 0
    #: results that arrived after their transaction was committed
    stale: int = 0
    #: times the conflict throttle paused speculation
    pauses: int = 0
    #: targets that turned hot (:mod:`pevm.engines.hot_targets`), and their
    #: transactions that chunks passed over, for the coordinator to run
    hot_targets: int = 0
    kept: int = 0
    #: pre-state entries read by the block
    pre_state_entries: int = 0
    #: transactions committed in-process before the workers were forked
    warm_up_txs: int = 0
    #: the rest after the warm-up ran as a sender pipeline: the coordinator
    #: executed it in order while a worker recovered senders
    #: (:func:`~pevm.engines.cost_model.pipeline_pays`)
    sender_pipeline: bool = False
    #: why the block ran without workers although more were asked for ("" if not)
    in_process_reason: str = ""
    #: the machine's slowness that the warm-up's latest decision scaled its costs
    #: by (:func:`~pevm.host.block_slowness`; 0.0: the block made none)
    slowness: float = 0.0
    #: seconds of sender recovery in the coordinator and in the workers
    recover_coordinator_s: float = 0.0
    recover_workers_s: float = 0.0
    #: CPU seconds of the coordinator for the block, and of each worker (its runs
    #: and its sender recoveries)
    coordinator_cpu_s: float = 0.0
    worker_cpu_s: list[float] = field(default_factory=list)
    #: times the coordinator waited for a worker's message, and for how long
    waits: int = 0
    wait_s: float = 0.0
    #: workers that died during the block
    dead_workers: list[int] = field(default_factory=list)
    #: per process ("coordinator", "worker 0", ...): seconds by activity
    #: (:class:`~pevm.engines.timeline.Activity`) and the rest of its time in the
    #: block (a worker's, from its start to the last commit: ``idle``; the
    #: coordinator's: ``other``, see :func:`~pevm.engines.timeline.breakdown`)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per process, as ``breakdown``: minor page faults in the block (a worker's
    #: since its fork, to its last results), mostly copy-on-write after the fork
    #: (:func:`~pevm.engines.timeline.minor_page_faults`)
    page_faults: dict[str, int] = field(default_factory=dict)
