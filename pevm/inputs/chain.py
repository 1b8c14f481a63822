"""Blocks imported onto a py-evm chain: the target of fixtures and of the Python API."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI, VirtualMachineAPI

from pevm.gpu import AccountState, state_root
from pevm.gpu.trie import apply_diff
from pevm.abc import Engine
from pevm.pipeline import BlockOutcome, import_with_engine
from pevm.pyevm_compat import patch_methods


class ChainTarget:
    """Imports blocks onto a py-evm chain, whose head is the pre-state.

    ``chain.import_block`` itself stays py-evm's -- validation, import and
    persistence untouched. For the duration of one import the chain's ``get_vm`` is
    wrapped so that the first VM it builds, which is the importing VM, gets pevm's
    hook (engine routing and observation).

    Given the head's whole state as a flat mapping (``accounts``: address ->
    :class:`pevm.gpu.AccountState`, as a fixture's ``pre`` gives it), the target
    keeps the state of every imported block (fixtures import side chains too, so a
    block's pre-state is its parent's, not always the head's), applies each block's
    state diff to its parent's and reports the state root computed by pevm's batched
    trie (:mod:`pevm.gpu`) -- which the caller compares with the header's. Without
    it the root is py-evm's.
    """

    full_state = True

    def __init__(self, chain: ChainAPI,
                 accounts: dict[bytes, AccountState] | None = None) -> None:
        self.chain = chain
        self._states: dict[bytes, dict[bytes, AccountState]] | None = None
        if accounts is not None:
            self._states = {chain.get_canonical_head().hash: accounts}

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

        outcome = import_with_engine(run_import, engine, chain.chaindb.db,
                                     full_state=True)
        parent = block.header.parent_hash
        if self._states is not None and parent in self._states and outcome.result:
            post, _changed = apply_diff(self._states[parent], outcome.result.state_diff)
            outcome.result.state_root = state_root(post)
            if outcome.rejection is None:
                self._states[block.hash] = post
        return outcome
