"""The sequential reference: py-evm's own ``apply_all_transactions``, untouched."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI

from pevm.errors import REJECTION_ERRORS, BlockRejected
from pevm.result import EngineStats


class ReferenceEngine:
    """Runs the transactions one after another exactly as py-evm does."""

    name = "reference"

    def apply_transactions(
        self, vm: VirtualMachineAPI, transactions: Sequence[SignedTransactionAPI],
        base_header: BlockHeaderAPI,
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], EngineStats]:
        applied = 0
        original_hook = vm.transaction_applied_hook

        def count_applied(*args: Any, **kwargs: Any) -> None:
            nonlocal applied
            applied += 1
            original_hook(*args, **kwargs)

        vm.transaction_applied_hook = count_applied  # type: ignore[method-assign]
        start = time.perf_counter()
        try:
            header, receipts, _ = type(vm).apply_all_transactions(
                vm, transactions, base_header)
        except Exception as exc:
            if isinstance(exc, REJECTION_ERRORS):
                raise BlockRejected(f"{type(exc).__name__}: {exc}", applied) from exc
            raise
        finally:
            vm.transaction_applied_hook = original_hook  # type: ignore[method-assign]
        stats = EngineStats(engine=self.name, workers=1, executions=len(transactions),
                            seconds={"execute": time.perf_counter() - start})
        return header, receipts, stats
