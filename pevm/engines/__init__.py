"""Transaction engines: what runs a block's transactions inside py-evm's import.

``reference`` is py-evm's own sequential loop; ``parallel`` is pevm's optimistic
parallel executor. Both satisfy :class:`pevm.pipeline.Engine`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pevm.engines.reference import ReferenceEngine

if TYPE_CHECKING:  # pevm.pipeline imports the engines' records, not this module
    from pevm.pipeline import Engine

ENGINE_NAMES = ("reference", "parallel")


def parallel_available() -> bool:
    """Whether this build ships the parallel engine."""
    try:
        import pevm.engines.parallel  # noqa: F401
    except ImportError:
        return False
    return True


def default_engine_name() -> str:
    """The engine ``pevm run`` and the API use unless told otherwise: the parallel
    engine where the build has it (with ``workers=1`` it runs in-process, and it
    runs in-process wherever worker processes cannot start), else the reference.
    """
    return "parallel" if parallel_available() else "reference"


def make_engine(name: str, workers: int = 1) -> Engine:
    """Build an engine by its CLI name."""
    if name == "reference":
        return ReferenceEngine()
    if name == "parallel":
        try:
            from pevm.engines.parallel import ParallelEngine
        except ImportError as exc:  # pragma: no cover - until the engine lands
            raise ValueError("the parallel engine is not available in this build") from exc
        return ParallelEngine(workers=workers)
    raise ValueError(f"unknown engine {name!r} (choose from {', '.join(ENGINE_NAMES)})")
