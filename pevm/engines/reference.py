"""The sequential reference: py-evm's own ``apply_all_transactions``, untouched."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI

from pevm.errors import REJECTION_ERRORS, BlockRejected, describe
from pevm.frame_stack import call_with_roomy_stack
from pevm.pyevm_compat import patch_methods
from pevm.result import EngineStats


class ReferenceEngine:
    """Runs the transactions one after another exactly as py-evm does."""

    name = "reference"

    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        applied = 0

        def counting(original: Callable[..., None]) -> Callable[..., None]:
            def count_applied(*args: Any, **kwargs: Any) -> None:
                nonlocal applied
                applied += 1
                original(*args, **kwargs)
            return count_applied

        undo = patch_methods(vm, {"transaction_applied_hook": counting})
        start = time.perf_counter()
        try:
            header, receipts, _ = call_with_roomy_stack(
                type(vm).apply_all_transactions, vm, transactions, base_header)
        except Exception as exc:
            if isinstance(exc, REJECTION_ERRORS):
                raise BlockRejected(describe(exc), applied) from exc
            raise
        finally:
            undo()
        stats = EngineStats(engine=self.name, workers=1, executions=len(transactions),
                            seconds={"execute": time.perf_counter() - start})
        return header, receipts, stats
