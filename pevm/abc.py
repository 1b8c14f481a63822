"""pevm's interfaces: what an engine, a target and a case promise, in one place.

The data flow (see docs/architecture.md) crosses three seams, each a Protocol here
so that a new input format, a new place to run blocks or a new engine plugs in
without touching the rest:

- :class:`Case` / :class:`CaseRun` -- an input (a fixture case, a mainnet
  snapshot) as a chain of :class:`~pevm.task.BlockTask` records to run in order;
- :class:`Target` -- where a block runs: its pre-state and how py-evm imports a
  block onto it;
- :class:`Engine` -- what runs the block's transactions inside py-evm's import
  (py-evm's own loop, the recording loop, or the parallel engine).

Implementations live with their concept (:mod:`pevm.inputs`, :mod:`pevm.engines`);
only these contracts live here, as py-evm keeps its interfaces in ``eth.abc``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from eth.abc import (BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI,
                     VirtualMachineAPI)

if TYPE_CHECKING:
    from pevm.state.backend import StateBackend
    from pevm.compare import Mismatch
    from pevm.pipeline import BlockOutcome
    from pevm.result import EngineStats
    from pevm.task import BlockTask


class Engine(Protocol):
    """Runs a block's transactions; what pevm swaps into py-evm's block import.

    ``apply_transactions`` has the contract of py-evm's
    ``VM.apply_all_transactions``: it starts from ``vm.state`` (the pre-transaction
    state, system steps applied), leaves the post-transaction state in ``vm.state``
    and returns the header with gas used (and blob gas) filled in and the receipts.
    An invalid transaction raises :class:`~pevm.errors.BlockRejected`.

    An engine may name the state layer its blocks run on with a ``state_backend``
    attribute (:func:`pevm.state.backend.backend_of`; py-evm's when absent).
    """

    name: str

    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]: ...


class Target(Protocol):
    """Where a block runs: its pre-state and how py-evm imports a block onto it."""

    #: whether the target holds the whole state, so that its state root means
    #: something (False for a partial mainnet snapshot)
    full_state: bool

    def execute(self, block: BlockAPI, engine: Engine) -> BlockOutcome: ...


class CaseRun(Protocol):
    """One pass over a case's blocks, each on the state the previous one left."""

    def tasks(self) -> Iterator[BlockTask]: ...

    def final_mismatches(self) -> list[Mismatch]: ...


class Case(Protocol):
    """A unit of work: a chain of blocks (fixture case) or one snapshot block."""

    source: str
    name: str

    @property
    def network(self) -> str: ...

    def start(self, backend: StateBackend = ...) -> CaseRun:
        """A fresh pass over the case, its pre-state on ``backend``."""
        ...
