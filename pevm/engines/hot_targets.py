"""Hot targets: contracts whose transactions keep failing validation.

Where one contract's transactions depend on each other -- an AMM pool, a counter,
one token balance that many transactions pay into -- a worker's speculative run of
the next one reads state that the coordinator is about to change, fails validation
at the commit point and is executed again there: the worker's run was wasted, and
each failure also shrinks the chunks and the coordinator's reach (see
:mod:`pevm.engines.scheduler`). Which transactions touch what is known only once
they have run; what is known before is each transaction's *target*, the account it
calls (:func:`~pevm.engines.cost_model.transaction_targets`), and the dependent
ones share it.

So the verdicts on validated results are counted per target. A target with
:data:`HOT_FAILURES` failures that fails at least one result in :data:`HOT_RATIO`
becomes hot for the rest of the block, and the scheduler keeps its transactions
from the chunks: the coordinator runs them, in order, ahead of the commit point or
at it, and the workers run the rest. A token that many transactions call and only
a few of them conflict on stays with the workers (the ratio); a fully conflicting
block ends up on the coordinator, as the conflict throttle would put it, without
the throttle's probes. Which process runs what never changes a result: every
result is validated at the commit point as before. The conflict throttle
(:mod:`pevm.engines.throttle`) forgets the failures that made a target hot, and
counts none of the failures of a worker's runs of its transactions (those sent
before it turned hot): speculation on the rest goes on, or resumes at once where
those failures paused it.

Failures are late evidence: by the time a target has failed twice, the workers'
chunks already hold more of its transactions, and each of those fails too (mainnet
4370000: one sender's 32 token transfers through one contract, 10 failed results).
One pattern is known before anything runs: a sender calling the same contract
again and again -- an exchange paying out a token, a bot trading through one
router. Those calls read and write the sender's own entry in the contract (its
token balance, its position), so each depends on the one before. Before the
workers start, :meth:`HotTargets.predict` makes a target hot at once where, among
the transactions whose senders are known by then, one sender makes
:data:`CHAIN_CALLS` or more of its calls and at least half of them; whether the
workers then pay is weighed with those transactions on the coordinator
(:func:`~pevm.engines.cost_model.parallel_pays`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

#: a target becomes hot after this many failed validations of its transactions ...
HOT_FAILURES = 2
#: ... when at least one in this many of its validated results failed
HOT_RATIO = 4
#: a target is hot from the start when one sender makes this many of its calls
#: (and at least half of those whose senders are known)
CHAIN_CALLS = 3


class HotTargets:
    """Verdicts per target, and the targets that turned hot, for one block."""

    def __init__(self, targets: Sequence[Hashable | None] = ()) -> None:
        #: per transaction, the account it calls (None: a creation, or unknown)
        self.targets = targets
        #: per target: [validated results, failed ones]
        self._verdicts: dict[Hashable, list[int]] = {}
        self.hot: set[Hashable] = set()

    def __bool__(self) -> bool:
        """Whether any target is hot."""
        return bool(self.hot)

    def verdict(self, txn: int, ok: bool) -> bool:
        """Count a validated result of ``txn`` against its target; True when that
        makes the target hot."""
        target = self.targets[txn] if txn < len(self.targets) else None
        if target is None or target in self.hot:
            return False
        verdicts = self._verdicts.setdefault(target, [0, 0])
        verdicts[0] += 1
        if not ok:
            verdicts[1] += 1
            if verdicts[1] >= HOT_FAILURES and verdicts[1] * HOT_RATIO >= verdicts[0]:
                self.hot.add(target)
                return True
        return False

    def predict(self, senders: Iterable[tuple[int, bytes]]) -> None:
        """Make hot each target that one sender calls again and again, from
        ``(txn, sender)`` for the transactions whose senders are known (see the
        module's docstring)."""
        calls: dict[Hashable, Counter[bytes]] = {}
        for txn, sender in senders:
            target = self.targets[txn] if txn < len(self.targets) else None
            if target is not None:
                calls.setdefault(target, Counter())[sender] += 1
        for target, by_sender in calls.items():
            most = by_sender.most_common(1)[0][1]
            if most >= CHAIN_CALLS and 2 * most >= by_sender.total():
                self.hot.add(target)

    def holds(self, txn: int) -> bool:
        """Whether ``txn`` calls a hot target."""
        return bool(self.hot) and txn < len(self.targets) \
            and self.targets[txn] in self.hot

    def held(self, txns: Iterable[int]) -> list[int]:
        """Those of ``txns`` that call a hot target (:meth:`holds`): the ones the
        coordinator keeps, as :func:`~pevm.engines.cost_model.parallel_pays`
        weighs them."""
        return [txn for txn in txns if self.holds(txn)] if self.hot else []


__all__ = ["CHAIN_CALLS", "HOT_FAILURES", "HOT_RATIO", "HotTargets"]
