"""Dependency analysis of a block: who must wait for whom, and the ideal speedup.

Input: per transaction, the locations (:mod:`pevm.engines.locations`, the parallel
engine's vocabulary) it read and wrote, as an execution recorded them (see
:mod:`pevm.engines.recording`), and its gas. A transaction depends on an
earlier one when it reads a location that one writes -- its *latest* earlier writer,
the one whose value it sees. Lazy credits (fee and value credits folded in at merge
time) create no dependency among the crediting transactions; a transaction that
reads a credited balance depends on every credit since that balance's last write.

From the graph: the critical path (by gas and by count), the ideal speedup at W
workers -- total gas over the makespan of greedy list scheduling in block order on W
workers, with each transaction starting when its dependencies have finished -- the
conflict rate and the hottest locations. Gas is what the block says of its costs;
``pevm analyze --simulate`` also weighs the same schedule by each transaction's
measured time (:meth:`DependencyGraph.ideal_speedups` with weights), which differs
where py-evm's time per gas does -- one contract's transaction can be most of a
block's time for a fraction of its gas. Neither is a bound on every schedule: an
engine that starts a long transaction before its turn can beat the in-order one.
"""
from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from collections.abc import Sequence

from pevm.engines.locations import BALANCE, NONCE, WIPE, Location

if TYPE_CHECKING:
    from eth.abc import BlockAPI

    from pevm.engines.executor import TxResult
    from pevm.inputs.discover import CaseRef
    from pevm.abc import Target

WORKER_COUNTS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class TxAccess:
    """What one transaction touched."""

    reads: frozenset[Location]
    writes: frozenset[Location]
    gas: int
    #: Commutative additions (fee and value credits): no read, and readers of the
    #: location wait for every credit since its last write.
    credits: frozenset[Location] = frozenset()

    @classmethod
    def of_result(cls, result: TxResult) -> TxAccess:
        """What one of the parallel engine's executions touched: its read set
        without the transaction's own sender's balance and nonce (an execution at
        the commit point reads them exactly; a speculative one leaves them to the
        lazy debits, as the recording reference does), its writes and wipes, and its
        balance deltas as credits. Gas is not known there: 1."""
        sender = result.sender
        own = ((BALANCE, sender), (NONCE, sender)) if sender is not None else ()
        writes = result.writes
        return cls(frozenset(key for key in result.reads if key not in own),
                   frozenset([*writes.values, *((WIPE, a) for a in writes.wiped)]), 1,
                   frozenset((BALANCE, a) for a in writes.deltas))


@dataclass
class DependencyGraph:
    """Edges ``deps[i]``: the earlier transactions transaction ``i`` depends on."""

    accesses: list[TxAccess]
    deps: list[tuple[int, ...]]

    @classmethod
    def build(cls, accesses: Sequence[TxAccess]) -> DependencyGraph:
        last_writer: dict[Location, int] = {}
        credits_since: dict[Location, list[int]] = {}
        deps: list[tuple[int, ...]] = []
        for index, access in enumerate(accesses):
            found = {last_writer[loc] for loc in access.reads if loc in last_writer}
            for loc in access.reads:
                found.update(credits_since.get(loc, ()))
            found.discard(index)
            deps.append(tuple(sorted(found)))
            for loc in access.writes:
                last_writer[loc] = index
                credits_since.pop(loc, None)
            for loc in access.credits - access.writes:
                credits_since.setdefault(loc, []).append(index)
        return cls(list(accesses), deps)

    @property
    def size(self) -> int:
        return len(self.accesses)

    def _weights(self, weights: Sequence[float] | None = None) -> Sequence[float]:
        if weights is None:
            # A transaction costs at least 1 so that empty ones still take a slot.
            return [max(1, a.gas) for a in self.accesses]
        if len(weights) != self.size:
            raise ValueError(f"{len(weights)} weights for {self.size} transactions")
        return weights

    def critical_path(self, by: str = "gas") -> tuple[int, list[int]]:
        """Length and transactions of the longest dependency chain."""
        length, chain = self._longest(self._weights() if by == "gas" else [1] * self.size)
        return int(length), chain

    def _longest(self, weights: Sequence[float]) -> tuple[float, list[int]]:
        best: list[float] = []
        parent: list[int] = []
        for i, d in enumerate(self.deps):
            prev = max(d, key=lambda j: best[j], default=-1)
            best.append(weights[i] + (best[prev] if prev >= 0 else 0))
            parent.append(prev)
        if not best:
            return 0, []
        end = max(range(self.size), key=lambda i: best[i])
        chain = []
        while end >= 0:
            chain.append(end)
            end = parent[end]
        return max(best), chain[::-1]

    def makespan(self, workers: int | None,
                 weights: Sequence[float] | None = None) -> float:
        """Greedy list schedule in block order; ``None`` means unlimited workers.

        ``weights``: each transaction's cost (default: its gas, at least 1).
        """
        costs = self._weights(weights)
        if workers is None:
            return self._longest(costs)[0]
        finish = [0.0] * self.size
        free = [0.0] * workers  # a heap of times at which each worker is free
        for i in range(self.size):
            ready = max((finish[j] for j in self.deps[i]), default=0)
            worker_free = heapq.heappop(free)
            start = max(ready, worker_free)
            finish[i] = start + costs[i]
            heapq.heappush(free, finish[i])
        return max(finish, default=0)

    def ideal_speedup(self, workers: int | None,
                      weights: Sequence[float] | None = None) -> float:
        """Total cost over the makespan at ``workers`` (see :meth:`makespan`)."""
        costs = self._weights(weights)
        span = self.makespan(workers, costs)
        return sum(costs) / span if span else 1.0

    def ideal_speedups(self, weights: Sequence[float] | None = None,
                       counts: Sequence[int] = ()) -> dict[str, float]:
        """:meth:`ideal_speedup` at each of :data:`WORKER_COUNTS` (and ``counts``)
        and at unlimited workers, ``"inf"``."""
        ideal = {str(w): round(self.ideal_speedup(w, weights), 4)
                 for w in sorted(set(WORKER_COUNTS) | set(counts))}
        ideal["inf"] = round(self.ideal_speedup(None, weights), 4)
        return ideal

    def conflict_rate(self) -> float:
        """Share of transactions that depend on at least one earlier transaction."""
        return sum(1 for d in self.deps if d) / self.size if self.size else 0.0

    def hottest(self, count: int = 10) -> list[tuple[Location, int]]:
        """Locations touched (read or written) by the most transactions."""
        touched: Counter[Location] = Counter()
        for access in self.accesses:
            for loc in access.reads | access.writes | access.credits:
                touched[loc] += 1
        # ties by address, then kind, then slot: an account's hot locations together
        return sorted(touched.items(),
                      key=lambda kv: (-kv[1], kv[0][1], kv[0][0], kv[0][2:]))[:count]


@dataclass
class Analysis:
    """The summary ``pevm analyze`` prints and ``pevm bench`` uses."""

    txs: int
    edges: int
    conflict_rate: float
    critical_path_gas: int
    critical_path_count: int
    total_gas: int
    ideal_speedup: dict[str, float] = field(default_factory=dict)
    hottest: list[tuple[Location, int]] = field(default_factory=list)


def analyze(graph: DependencyGraph) -> Analysis:
    return Analysis(
        txs=graph.size, edges=sum(len(d) for d in graph.deps),
        conflict_rate=round(graph.conflict_rate(), 4),
        critical_path_gas=graph.critical_path("gas")[0],
        critical_path_count=graph.critical_path("count")[0],
        total_gas=sum(a.gas for a in graph.accesses),
        ideal_speedup=graph.ideal_speedups(), hottest=graph.hottest(),
    )


@dataclass
class BlockAnalysis:
    """One block's graph and summary, with where it came from."""

    source: str
    case: str
    block: int
    graph: DependencyGraph
    summary: Analysis


def block_graph(target: Target, block: BlockAPI) -> DependencyGraph | None:
    """Import ``block`` on ``target`` with the recording reference; its graph.

    None when the block is rejected (an invalid block has no dependency graph).
    """
    from pevm.engines.recording import RecordingEngine

    engine = RecordingEngine()
    outcome = target.execute(block, engine)
    if outcome.result is None or outcome.rejection is not None:
        return None
    return DependencyGraph.build([
        TxAccess(frozenset(a.reads), frozenset(a.writes), r.gas_used, frozenset(a.credits))
        for a, r in zip(engine.accesses, outcome.result.receipts)])


def analyze_case(ref: CaseRef) -> list[BlockAnalysis]:
    """Analyse every valid block of a case, each on the state the previous left."""
    out = []
    for task in ref.load().start().tasks():
        if task.block is None:
            continue
        graph = block_graph(task.target, task.block)
        if graph is not None:
            out.append(BlockAnalysis(task.source, task.case, task.index, graph,
                                     analyze(graph)))
    return out


def to_dot(analysis: BlockAnalysis) -> str:
    """The dependency graph in Graphviz format (critical path in red)."""
    _length, path = analysis.graph.critical_path("gas")
    on_path = set(path)
    lines = [f'digraph "{analysis.case} block {analysis.block}" {{', "  rankdir=LR;"]
    for index, access in enumerate(analysis.graph.accesses):
        color = ' color="red"' if index in on_path else ""
        lines.append(f'  t{index} [label="tx {index}\\n{access.gas} gas"{color}];')
    for index, deps in enumerate(analysis.graph.deps):
        for dep in deps:
            color = ' color="red"' if dep in on_path and index in on_path else ""
            lines.append(f"  t{dep} -> t{index}{color};")
    lines.append("}")
    return "\n".join(lines) + "\n"
