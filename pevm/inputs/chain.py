"""Blocks imported onto a py-evm chain: the target of fixtures and of the Python API."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI, VirtualMachineAPI

from pevm.abc import Engine
from pevm.pipeline import BlockOutcome, import_with_engine
from pevm.pyevm_compat import patch_methods


class ChainTarget:
    """Imports blocks onto a py-evm chain, whose head is the pre-state.

    ``chain.import_block`` itself stays py-evm's -- validation, import and
    persistence untouched. For the duration of one import the chain's ``get_vm`` is
    wrapped so that the first VM it builds, which is the importing VM, gets pevm's
    hook (engine routing and observation). The result's state root is the one the
    chain's state layer computed: py-evm's trie, or pevm's batched commitment on a
    chain built on the flat backend (:mod:`pevm.state.backend`); either is compared
    with the header's and with the reference's.
    """

    full_state = True

    def __init__(self, chain: ChainAPI) -> None:
        self.chain = chain

    def execute(self, block: BlockAPI, engine: Engine) -> BlockOutcome:
        chain: Any = self.chain

        def run_import(hook: Callable[[VirtualMachineAPI], None]) -> BlockAPI:
            # the next VM the chain builds is the one that imports the block
            def hooked(original: Callable[..., VirtualMachineAPI]) -> Callable[..., Any]:
                def get_vm_once(at_header: BlockHeaderAPI | None = None
                                ) -> VirtualMachineAPI:
                    undo()
                    vm = original(at_header)
                    hook(vm)
                    return vm
                return get_vm_once

            undo = patch_methods(chain, {"get_vm": hooked})
            try:
                return chain.import_block(block).imported_block
            finally:
                undo()

        return import_with_engine(run_import, engine, chain.chaindb.db, full_state=True)
