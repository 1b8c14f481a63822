"""Blocks imported onto a py-evm chain: the target of fixtures and of the Python API."""
from __future__ import annotations

from typing import Any, Callable

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI, VirtualMachineAPI
from eth.chains.mainnet import MainnetChain

from pevm.pipeline import BlockOutcome, Engine, import_with_engine


class HookedChainMixin:
    """Lets pevm see (and route) the VM that ``Chain.import_block`` creates.

    ``import_block`` itself stays py-evm's: validation, import and persistence are
    untouched. The one-shot hook is applied to the first VM built afterwards, which
    is the importing VM.
    """

    _pevm_hook: Callable[[VirtualMachineAPI], None] | None = None

    def get_vm(self, at_header: BlockHeaderAPI | None = None) -> VirtualMachineAPI:
        vm = super().get_vm(at_header)  # type: ignore[misc]
        hook, self._pevm_hook = self._pevm_hook, None
        if hook is not None:
            hook(vm)
        return vm


class HookedMainnetChain(HookedChainMixin, MainnetChain):
    """py-evm's MainnetChain (chain id 1) with pevm's import hook."""


def hooked(chain: ChainAPI) -> ChainAPI:
    """Give an existing chain object pevm's import hook (for API users' chains)."""
    if isinstance(chain, HookedChainMixin):
        return chain
    cls = type(chain)
    chain.__class__ = type(f"Hooked{cls.__name__}", (HookedChainMixin, cls), {})
    return chain


class ChainTarget:
    """Imports blocks onto a py-evm chain, whose head is the pre-state."""

    full_state = True

    def __init__(self, chain: ChainAPI) -> None:
        self.chain = hooked(chain)

    def execute(self, block: BlockAPI, engine: Engine) -> BlockOutcome:
        chain: Any = self.chain

        def run_import(hook: Callable[[VirtualMachineAPI], None]) -> BlockAPI:
            chain._pevm_hook = hook
            try:
                return chain.import_block(block).imported_block
            finally:
                chain._pevm_hook = None

        return import_with_engine(run_import, engine, chain.chaindb.db, full_state=True)
