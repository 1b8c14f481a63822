"""Transaction engines: what runs a block's transactions inside py-evm's import.

``reference`` is py-evm's own sequential loop; ``parallel`` is pevm's optimistic
parallel executor. Both satisfy :class:`pevm.abc.Engine`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pevm.engines.hooks import FaultHooks
from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.state.backend import StateBackend

if TYPE_CHECKING:  # annotations only
    from pevm.abc import Engine

ENGINE_NAMES = ("reference", "parallel")


def default_engine_name() -> str:
    """The engine ``pevm run`` and the API use unless told otherwise: the parallel
    engine (with ``workers=1`` it runs in-process, and it runs in-process wherever
    worker processes cannot start).
    """
    return "parallel"


def make_engine(name: str, workers: int = 1, hooks: FaultHooks | None = None,
                state_backend: StateBackend = StateBackend.FLAT,
                options: Mapping[str, Any] | None = None) -> Engine:
    """Build an engine by its CLI name (``hooks``: the parallel engine's fault
    hooks, for tests through the CLI; ``state_backend``: the state layer its
    blocks run on; ``options``: the parallel engine's tuning keywords, see
    :mod:`pevm.engines.options`. The reference has none of them: it is py-evm, on
    py-evm's trie)."""
    if name == "reference":
        return ReferenceEngine()
    if name == "parallel":
        return ParallelEngine(workers=workers, hooks=hooks, state_backend=state_backend,
                              **(options or {}))
    raise ValueError(f"unknown engine {name!r} (choose from {', '.join(ENGINE_NAMES)})")
