"""asv suite: the incremental state root against py-evm's AccountDB.

The case ``pevm hashbench --update`` measures (:mod:`pevm.state.bench`): K accounts
updated in an N-account state, pevm's :class:`~pevm.state.StateCommitment` against
py-evm's ``AccountDB`` on the same state root doing the same writes. ``track_*``
returns their ratio measured side by side in one call.
"""
from __future__ import annotations

import time
from typing import Any

from pevm.state.bench import bench_incremental_root


class IncrementalRootSuite:
    params = ([10_000, 100_000], [1_000])
    param_names = ["accounts", "updated"]
    timer = time.perf_counter
    timeout = 600
    number = 1
    repeat = 1

    def track_speedup_vs_pyevm(self, accounts: int, updated: int) -> float:
        record: dict[str, Any] = bench_incremental_root([accounts], [updated], rounds=3)[0]
        if not record["roots_match"]:
            raise RuntimeError("incremental root differs from py-evm's")
        return float(record["speedup_vs_pyevm"])

    track_speedup_vs_pyevm.unit = "ratio"  # type: ignore[attr-defined]
