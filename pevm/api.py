"""The Python API for client developers.

Three entry points, from the most to the least integrated:

- :func:`execute_block` imports a block onto a py-evm chain with the chosen engine,
  exactly as ``chain.import_block`` would, and returns a :class:`BlockResult`;
- :func:`apply_all_transactions` is a drop-in for py-evm's
  ``VM.apply_all_transactions``;
- :func:`run_path` runs fixture files or snapshot directories, as ``pevm run`` does.

``engine`` is "reference", "parallel" or an :class:`~pevm.pipeline.Engine` object;
None picks the default (the parallel engine when the build has it).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI, SignedTransactionAPI, VirtualMachineAPI

from pevm.engines import default_engine_name, make_engine
from pevm.errors import InputError
from pevm.inputs.chain import ChainTarget
from pevm.inputs.discover import list_cases
from pevm.abc import Engine
from pevm.result import BlockResult
from pevm.runner import BlockReport, run_case_ref


def _engine(engine: str | Engine | None, workers: int) -> Any:
    if engine is None:
        engine = default_engine_name()
    return make_engine(engine, workers=workers) if isinstance(engine, str) else engine


def execute_block(chain: ChainAPI, block: BlockAPI, *, engine: str | Engine | None = None,
                  workers: int = 1) -> BlockResult:
    """Import ``block`` onto ``chain`` with ``engine`` and return what it produced.

    The chain advances exactly as with ``chain.import_block(block)``. An invalid
    block raises :class:`pevm.errors.BlockRejected` and leaves the chain unchanged.
    """
    outcome = ChainTarget(chain).execute(block, _engine(engine, workers))
    if outcome.rejection is not None:
        raise outcome.rejection
    assert outcome.result is not None
    return outcome.result


def apply_all_transactions(
    vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
    base_header: BlockHeaderAPI, *, engine: str | Engine | None = None, workers: int = 1,
) -> tuple[BlockHeaderAPI, tuple[Any, ...], tuple[()]]:
    """Drop-in for ``vm.apply_all_transactions(transactions, base_header)``.

    Returns py-evm's (header, receipts, computations) triple; computations are not
    kept by the parallel engine (they live in worker processes), so the third item
    is empty.
    """
    header, receipts, _stats = _engine(engine, workers).apply_transactions(
        vm, transactions, base_header)
    return header, tuple(receipts), ()


def run_path(*paths: str, engine: str | Engine | None = None, workers: int = 1,
             check: bool = False) -> Iterator[BlockReport]:
    """Run fixture files / snapshot directories; one report per block."""
    chosen = _engine(engine, workers)
    reference = _engine("reference", 1) if check else None
    listing = list_cases(list(paths))
    if listing.problems:
        path, message, _explicit = listing.problems[0]
        raise InputError(path, message)
    for ref in listing.cases:
        yield from run_case_ref(ref, chosen, reference)
