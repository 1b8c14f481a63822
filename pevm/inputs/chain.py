"""Blocks imported onto a py-evm chain: the target of fixtures and of the Python API."""
from __future__ import annotations

from typing import Any, Callable

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI, VirtualMachineAPI

from pevm.pipeline import BlockOutcome, Engine, import_with_engine


class ChainTarget:
    """Imports blocks onto a py-evm chain, whose head is the pre-state.

    ``chain.import_block`` itself stays py-evm's -- validation, import and
    persistence untouched. For the duration of one import the chain's ``get_vm`` is
    wrapped so that the first VM it builds, which is the importing VM, gets pevm's
    hook (engine routing and observation).
    """

    full_state = True

    def __init__(self, chain: ChainAPI) -> None:
        self.chain = chain

    def execute(self, block: BlockAPI, engine: Engine) -> BlockOutcome:
        chain: Any = self.chain

        def run_import(hook: Callable[[VirtualMachineAPI], None]) -> BlockAPI:
            had_own = "get_vm" in vars(chain)
            original = chain.get_vm

            def get_vm_once(at_header: BlockHeaderAPI | None = None) -> VirtualMachineAPI:
                _restore()
                vm = original(at_header)
                hook(vm)
                return vm

            def _restore() -> None:
                if had_own:
                    chain.get_vm = original
                else:
                    vars(chain).pop("get_vm", None)

            chain.get_vm = get_vm_once
            try:
                return chain.import_block(block).imported_block
            finally:
                _restore()

        return import_with_engine(run_import, engine, chain.chaindb.db, full_state=True)
