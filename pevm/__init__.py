"""pevm: a parallel EVM block executor on top of py-evm.

pevm runs an Ethereum block's transactions optimistically in parallel (Block-STM
style), re-executes what conflicted, and produces exactly the receipts, logs, gas,
state diff and state root that py-evm's sequential execution produces.

Public API (see :mod:`pevm.api`)::

    from pevm import execute_block, apply_all_transactions, run_path
"""
from pevm.pyevm_compat import use_fast_keccak

# Before anything hashes much: py-evm and pevm share eth-hash's Keccak object.
use_fast_keccak()

from pevm.api import apply_all_transactions, execute_block, run_path  # noqa: E402
from pevm.errors import BlockRejected, InputError, PevmError  # noqa: E402
from pevm.result import AccountDiff, BlockResult, EngineStats, Log, Receipt  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AccountDiff", "BlockRejected", "BlockResult", "EngineStats", "InputError", "Log",
    "PevmError", "Receipt", "apply_all_transactions", "execute_block", "run_path",
]
