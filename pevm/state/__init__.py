"""pevm's state layer: a flat state backend for py-evm.

* :mod:`~pevm.state.commitment` -- the state commitment kept between blocks
  (account and storage tries, rehashed incrementally); :mod:`~pevm.state.bench`
  measures it against py-evm.
* :mod:`~pevm.state.layers` -- versions of the state as immutable flat layers, one
  per persisted root (:class:`FlatStore`, :class:`FlatVersion`).
* :mod:`~pevm.state.flat_db` -- :class:`FlatAccountDB`, py-evm's
  ``AccountDatabaseAPI`` over them, behaving as py-evm's ``AccountDB`` does
  (tests/test_flat_db.py checks it against py-evm operation by operation and on a
  real chain).

* :mod:`~pevm.state.blocks` -- the block's transactions, receipts and withdrawals
  tries from pevm's batched trie, and block copies that share immutable fields.
* :mod:`~pevm.state.backend` -- :class:`StateBackend` (py-evm's trie or the flat
  layers) and the classes a chain needs to run on the flat one.

Running a py-evm chain on it (tests/test_flat_db.py runs this)::

    from eth.chains.mainnet import MainnetChain
    from pevm.state import StateBackend, chain_class_on, new_database

    chain_class = chain_class_on(StateBackend.FLAT, MainnetChain)
    chain = chain_class.from_genesis(new_database(StateBackend.FLAT),
                                     genesis_params, genesis_state)
    chain.import_block(block)   # py-evm's import, on flat state

``new_database`` attaches a :class:`FlatStore` to the database, where
``FlatAccountDB(db, state_root)`` -- which is all py-evm gives an account
database -- finds the states. Each block py-evm persists becomes a version under
its state root; a block on any known root (a side chain) imports as usual.
:meth:`FlatStore.genesis` builds a base state directly.
"""
from pevm.state.backend import (StateBackend, chain_class_on, load_state, new_database,
                                vm_class_on)
from pevm.state.commitment import AccountUpdate, StateCommitment
from pevm.state.flat_db import FlatAccountDB
from pevm.state.layers import (MAX_DEPTH, FlatStore, FlatVersion, Record, StoreNotAttached,
                               UnknownStateRoot)

__all__ = ["MAX_DEPTH", "AccountUpdate", "FlatAccountDB", "FlatStore", "FlatVersion",
           "Record", "StateBackend", "StateCommitment", "StoreNotAttached",
           "UnknownStateRoot", "chain_class_on", "load_state", "new_database", "vm_class_on"]
