"""The conflict throttle: stop speculating while speculation keeps failing.

A worker's result that fails validation at the commit point was wasted work, and
on a block where most transactions depend on the one before (one AMM pool, a
fully conflicting hot spot) most results fail: the workers' speculation only burns
the cores that the coordinator needs to re-execute in order. So the outcome of the
last ``window`` results is tracked -- validated at the commit point, or failed
already on arrival (an ESTIMATE met, or a transaction that looked invalid because
it ran too early). When more than half failed, speculation **pauses**: the
scheduler hands out no chunks and the coordinator executes in order (idle workers
recover the senders ahead of it meanwhile).

After ``probe`` transactions run in-process during a pause, the throttle
**probes**: one chunk, a little ahead of the commit point, whose first verdict
resumes speculation or pauses it again -- doubling the probe interval each time
speculation keeps failing, and resetting it once a full window succeeds. This is
what keeps a fully conflicting block near the single-process speed.

Failures with a known cause do not count (:meth:`Throttle.explained`): when a
contract's transactions keep failing and it turns *hot*
(:mod:`pevm.engines.hot_targets`), the scheduler keeps its transactions from the
chunks, so the failures that made it hot -- and those of its transactions still
out on workers, sent before -- say nothing about the rest. The window is cleared
and a pause they caused ends in a probe at once, not after the probe interval.

A block that runs as a *sender pipeline*
(:func:`~pevm.engines.cost_model.pipeline_pays`) is **held** paused from the fork
on: the same in-order run with senders recovered ahead, chosen up front because
speculation would not pay, so it never probes.

Besides pausing, the throttle tells the scheduler when speculation is
**conflicted** -- paused, or more than a quarter of recent results failed -- so
that the commit point stops waiting on chunks that started ahead of it. None of
this affects results, only what is executed where
(:mod:`pevm.engines.scheduler`).
"""
from __future__ import annotations

from collections import deque

#: the longest probe interval, in transactions run in-process
MAX_PROBE = 1 << 14


class Throttle:
    """Recent speculation verdicts, and whether speculation is paused or probing."""

    def __init__(self, window: int = 16, probe: int = 32) -> None:
        self._window: deque[bool] = deque(maxlen=window)
        self._window_size = window
        #: no chunks are handed out; the coordinator executes in order
        self.paused = False
        #: one chunk is out to test whether speculation works again
        self.probing = False
        #: how many times speculation paused
        self.pauses = 0
        self._probe = probe
        self._probe_base = probe
        self._inline_since_pause = 0
        #: paused for good: the block runs as a sender pipeline (:meth:`hold`)
        self.held = False

    def hold(self) -> None:
        """Pause for the rest of the block, without probes (a sender pipeline)."""
        self.paused = self.held = True
        self.probing = False

    @property
    def conflicted(self) -> bool:
        """Speculation is paused, or more than a quarter of recent results failed."""
        if self.paused:
            return True
        window = self._window
        return len(window) >= 4 and window.count(False) * 4 > len(window)

    def verdict(self, ok: bool) -> None:
        """One more speculative result succeeded (``ok``) or failed."""
        window = self._window
        window.append(ok)
        if self.probing:
            # the first verdict on a probe decides: resume, or pause again
            self.probing = False
            if not ok:
                self._pause()
                return
        if ok and self._probe > self._probe_base and len(window) == window.maxlen \
                and all(window):
            self._probe = self._probe_base
        if len(window) >= max(4, self._window_size // 2) and \
                window.count(False) * 2 > len(window) and not self.paused:
            self._pause()

    def executed_inline(self) -> bool:
        """The coordinator ran a transaction in-process; True when that ends a
        pause and a probe starts."""
        if not self.paused or self.held:
            return False
        self._inline_since_pause += 1
        if self._inline_since_pause < self._probe:
            return False
        return self._probe_now()

    def explained(self) -> bool:
        """The recent failures have a cause that no longer applies (a hot target,
        whose transactions the scheduler now keeps from the chunks): forget them,
        and where they paused speculation, probe at once; True when a probe starts."""
        self._window.clear()
        return self._probe_now()

    def _probe_now(self) -> bool:
        """End a pause (not a held one) with a probe, from a clear window; True
        when a probe starts."""
        if not self.paused or self.held:
            return False
        self.paused = False
        self.probing = True
        self._window.clear()
        return True

    def _pause(self) -> None:
        self.paused = True
        self.pauses += 1
        self._inline_since_pause = 0
        if self.pauses > 1:
            self._probe = min(self._probe * 2, MAX_PROBE)
        self._window.clear()


__all__ = ["Throttle", "MAX_PROBE"]
