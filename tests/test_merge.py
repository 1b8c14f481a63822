"""The merge folds py-evm's per-transaction header steps only where they are stock.

Before Byzantium each receipt carries the state root after its transaction, and
Frontier's header step computes it once more; the merge folds that step into one
header copy (with the last root) where the fork uses Frontier's steps unchanged,
as it does Byzantium's from Byzantium on. Results stay py-evm's field by field.
"""
from __future__ import annotations

import pytest
from eth.vm.forks import (ByzantiumVM, CancunVM, FrontierVM, HomesteadVM, PragueVM,
                          SpuriousDragonVM, TangerineWhistleVM)

from pevm.engines.merge import (_fold_header, _foldable_header_steps,
                                _receipts_valid_by_construction, _stock_steps)
from pevm.engines.parallel import ParallelEngine
from tests.parallel_support import Intent, assert_same, build_block, import_block, reference


@pytest.mark.parametrize("vm_class", [FrontierVM, HomesteadVM, TangerineWhistleVM,
                                      SpuriousDragonVM])
def test_forks_before_byzantium_fold_frontiers_steps(vm_class):
    assert _stock_steps(vm_class) is FrontierVM
    assert _foldable_header_steps(vm_class)
    assert _receipts_valid_by_construction(vm_class)


@pytest.mark.parametrize("vm_class", [ByzantiumVM, CancunVM, PragueVM])
def test_forks_from_byzantium_fold_byzantiums_steps(vm_class):
    assert _stock_steps(vm_class) is ByzantiumVM
    assert _foldable_header_steps(vm_class)


def test_a_fork_that_overrides_a_header_step_keeps_py_evms_steps():
    class Custom(SpuriousDragonVM):
        def add_receipt_to_header(self, old_header, receipt):
            return super().add_receipt_to_header(old_header, receipt)

    assert _stock_steps(Custom) is None
    assert not _foldable_header_steps(Custom)
    assert not _receipts_valid_by_construction(Custom)


@pytest.mark.parametrize("vm_class", [HomesteadVM, SpuriousDragonVM])
def test_per_transaction_roots_and_the_folded_header_equal_py_evms(vm_class):
    # reverts and counter increments: receipts with and without state changes
    intents = [Intent("transfer", 1 + i % 3, 2 + i % 4, 5) if i % 3 else
               Intent("incr", 4 + i % 2, i, 1) for i in range(12)]
    intents.append(Intent("revert", 6, 1))
    block = build_block(vm_class, intents)
    want = reference(vm_class, block)
    assert want.rejection is None
    for workers in (1, 2):
        engine = ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=0)
        assert_same(want, import_block(vm_class, block, engine), f"{workers} workers")


def test_the_folded_header_carries_the_last_state_root_before_byzantium():
    # what py-evm's importer later overwrites, but Frontier's step sets: the merge's
    # header is the one py-evm's steps would have made
    block = build_block(SpuriousDragonVM, [Intent("transfer", 1, 2, 5)])

    class State:
        def make_state_root(self):
            return b"\x11" * 32

    header = block.header
    receipts = [_Receipt(bloom=0, gas_used=21_000)]
    folded = _fold_header(header, receipts, block.transactions, SpuriousDragonVM, State())
    assert folded.state_root == b"\x11" * 32
    assert folded.gas_used == 21_000
    byzantium = _fold_header(header, receipts, block.transactions, ByzantiumVM, State())
    assert byzantium.state_root == header.state_root


class _Receipt:
    def __init__(self, bloom: int, gas_used: int) -> None:
        self.bloom, self.gas_used = bloom, gas_used
