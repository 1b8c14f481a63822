"""Which state layer a block import runs on: py-evm's trie, or pevm's flat one.

Every import runs py-evm's own VM code; what differs is the account database its
``State`` names. :attr:`StateBackend.PYEVM` is py-evm's ``AccountDB`` over
``HexaryTrie`` -- the sequential reference always runs there, untouched.
:attr:`StateBackend.FLAT` is :class:`~pevm.state.flat_db.FlatAccountDB`: flat maps
in versioned layers and the incremental, batched state commitment; VMs on it also
build the block's body tries in one batched pass (:mod:`pevm.state.blocks`),
keep the KZG setup loaded (:mod:`pevm.precompiles`) and share each contract's
jump-destination analysis between its runs (:mod:`pevm.jumpdests`). The parallel
engine runs on it by default, so ``--check`` compares the two state layers as well
as the two engines on every block.

An engine says which backend it wants with a ``state_backend`` attribute (absent:
py-evm's); inputs build their chain or snapshot on that backend
(:func:`vm_class_on`, :func:`new_database`).
"""
from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from eth.abc import ChainAPI, VirtualMachineAPI
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth_typing import Address

from pevm.jumpdests import with_shared_jumpdests
from pevm.precompiles import with_fast_precompiles
from pevm.pyevm_compat import ChainDBOwnCaches
from pevm.state.blocks import BatchedBlockTriesVM, FlatChainDB, shallow_copy_block_class
from pevm.state.flat_db import FlatAccountDB
from pevm.state.layers import FlatStore


class StateBackend(StrEnum):
    """The account database under py-evm's ``State`` (values as the CLI spells them)."""

    PYEVM = "pyevm"   #: py-evm's AccountDB over its Merkle-Patricia trie
    FLAT = "flat"     #: pevm's flat, versioned layers and incremental commitment


def backend_of(engine: Any) -> StateBackend:
    """The backend ``engine`` runs on (py-evm's unless it says otherwise)."""
    return StateBackend(getattr(engine, "state_backend", StateBackend.PYEVM))


_FLAT_VM_CLASSES: dict[type[VirtualMachineAPI], type[VirtualMachineAPI]] = {}


def vm_class_on(backend: StateBackend, vm_class: type[VirtualMachineAPI]
                ) -> type[VirtualMachineAPI]:
    """``vm_class`` with its ``State`` on ``backend``'s account database (the
    same class for py-evm's; for the flat one a cached subclass that also builds
    the block's body tries in pevm's batched trie, :mod:`pevm.state.blocks`, does
    not reload the KZG setup on every call, :mod:`pevm.precompiles`, and shares
    jump-destination answers between runs of the same code,
    :mod:`pevm.jumpdests`)."""
    if backend is StateBackend.PYEVM:
        return vm_class
    flat = _FLAT_VM_CLASSES.get(vm_class)
    if flat is None:
        state_class = vm_class.get_state_class()
        flat_state = state_class.configure(
            __name__=f"Flat{state_class.__name__}", account_db_class=FlatAccountDB,
            computation_class=with_shared_jumpdests(
                with_fast_precompiles(state_class.computation_class)))
        flat = _FLAT_VM_CLASSES[vm_class] = type(
            f"Flat{vm_class.__name__}", (BatchedBlockTriesVM, vm_class),
            {"_state_class": flat_state,
             "block_class": shallow_copy_block_class(vm_class.get_block_class())})
    return flat


def chain_db_class(backend: StateBackend) -> type[ChainDB]:
    """The chain database class for chains on ``backend``."""
    return FlatChainDB if backend is StateBackend.FLAT else ChainDBOwnCaches


def new_database(backend: StateBackend) -> AtomicDB:
    """A fresh database for a chain or snapshot on ``backend`` (the flat backend's
    version store attached to it, where ``FlatAccountDB(db, root)`` finds it)."""
    db = AtomicDB()
    if backend is StateBackend.FLAT:
        FlatStore.attach(db)
    return db


def load_state(backend: StateBackend, db: AtomicDB,
               accounts: Mapping[bytes, tuple[int, int, bytes, Mapping[int, int]]]) -> bytes:
    """Write a whole state -- address -> ``(nonce, balance, code, storage)``, every
    account given exists -- into ``db`` (a :func:`new_database` of ``backend``);
    returns its state root."""
    if backend is StateBackend.FLAT:
        return FlatStore.of(db).genesis(accounts)
    account_db = AccountDB(db)
    for raw, (nonce, balance, code, storage) in accounts.items():
        write_account(account_db, raw, nonce, balance, code, storage)
    account_db.persist()
    return account_db.state_root


def write_account(account_db: AccountDB, raw: bytes, nonce: int, balance: int,
                  code: bytes, storage: Mapping[int, int]) -> None:
    """Write one account through py-evm's ``AccountDB`` API (also what
    ``pevm.gpu.bench`` times as py-evm's baseline)."""
    address = Address(raw)
    account_db.set_balance(address, balance)
    account_db.set_nonce(address, nonce)
    if code:
        account_db.set_code(address, code)
    for slot, value in storage.items():
        account_db.set_storage(address, slot, value)


def chain_class_on(backend: StateBackend, chain_class: type[ChainAPI]) -> type[ChainAPI]:
    """``chain_class`` (a configured py-evm ``Chain``) with every VM of its
    configuration, and its chain database, on ``backend``. Build it on a
    :func:`new_database`::

        chain_class = chain_class_on(StateBackend.FLAT, MainnetChain)
        chain = chain_class.from_genesis(new_database(StateBackend.FLAT), params, state)
    """
    if backend is StateBackend.PYEVM:  # py-evm's VMs; the chain database's caches
        return chain_class.configure(chain_class.__name__,
                                     chaindb_class=chain_db_class(backend))
    return chain_class.configure(
        f"Flat{chain_class.__name__}", chaindb_class=chain_db_class(backend),
        vm_configuration=tuple((start, vm_class_on(backend, vm_class))
                               for start, vm_class in chain_class.vm_configuration))
