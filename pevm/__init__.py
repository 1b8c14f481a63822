"""pevm: a parallel EVM block executor on top of py-evm.

pevm runs an Ethereum block's transactions optimistically in parallel (Block-STM
style), re-executes what conflicted, and produces exactly the receipts, logs, gas,
state diff and state root that py-evm's sequential execution produces.

Public API (see :mod:`pevm.api`)::

    from pevm import execute_block, apply_all_transactions, run_path
"""
from pevm.api import apply_all_transactions, execute_block, run_path
from pevm.errors import BlockRejected, InputError, PevmError
from pevm.result import AccountDiff, BlockResult, EngineStats, Log, Receipt

__version__ = "0.1.0"

__all__ = [
    "AccountDiff", "BlockRejected", "BlockResult", "EngineStats", "InputError", "Log",
    "PevmError", "Receipt", "apply_all_transactions", "execute_block", "run_path",
]
