"""pevm.pyevm_compat: its one mechanism for observing a py-evm state's reads and writes,
the chain database whose caches go with it,
and the Keccak backend pevm makes eth-hash use."""
from __future__ import annotations

import gc
import os
from typing import Any

import pytest

from eth.abc import StateAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.vm.forks import CancunVM
from eth_typing import Address

from pevm.engines import make_engine
from pevm.inputs.discover import list_cases
from pevm.pyevm_compat import (BODY_CACHE_SIZE, ChainDBOwnCaches, Field, StateObserver,
                               WriteLog, account_db, account_updater, observe_state,
                               observed_vm_class, patch_methods, quick_debug_messages,
                               state_class_on_account_db)
from pevm.runner import PASSED, run_case_ref
from pevm.state import StateBackend

from .chain_builder import ADDRESSES, GENESIS_PARAMS, mine, new_chain, transfer
from .conftest import FIXTURES

A, B = ADDRESSES[0], ADDRESSES[1]


class Log(StateObserver):
    """Every report, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def read(self, address: bytes, what: Field, slot: int | None) -> None:
        self.seen.append(("read", bytes(address), what, slot))

    def write(self, address: bytes, what: Field, slot: int | None) -> None:
        self.seen.append(("write", bytes(address), what, slot))


def fresh_state() -> StateAPI:
    return new_chain().get_vm().state


def test_only_the_outermost_call_is_reported_with_what_it_touches() -> None:
    state = fresh_state()
    log = Log()
    observe_state(state, log)
    state.set_balance(A, 5)                  # writes through _set_account: one report
    state.increment_nonce(A)                 # reads, then writes the nonce
    state.delta_balance(B, 7)                # default: a read and a write of the balance
    state.account_is_empty(A)                # reads nonce, code and balance inside
    state.set_storage(A, 3, 9)
    state.get_storage(A, 3)
    state.delete_storage(A)
    state.delete_account(B)
    state.touch_account(B)
    a, b = bytes(A), bytes(B)
    assert log.seen == [
        ("write", a, Field.BALANCE, None),
        ("read", a, Field.NONCE, None), ("write", a, Field.NONCE, None),
        ("read", b, Field.BALANCE, None), ("write", b, Field.BALANCE, None),
        ("read", a, Field.EMPTY, None),
        ("write", a, Field.SLOT, 3),
        ("read", a, Field.SLOT, 3),
        ("write", a, Field.WIPE, None),
        ("write", b, Field.DELETE, None),
        ("write", b, Field.TOUCH, None),
    ]


def test_direct_account_record_writes_are_seen() -> None:
    # pevm's merge and py-evm internals write whole records through _set_account
    state = fresh_state()
    log = WriteLog()
    observe_state(state, log)
    update = account_updater(state)
    assert update is not None
    update(bytes(A), 1, None, 0)
    state.set_storage(B, 1, 2)
    state.delete_account(ADDRESSES[2])
    assert log.accounts == {bytes(A), bytes(B), bytes(ADDRESSES[2])}
    assert log.slots == {bytes(B): {1}}
    assert log.wiped == {bytes(ADDRESSES[2])}


def test_callbacks_and_quiet_blocks_are_not_reported() -> None:
    state = fresh_state()

    class Looking(Log):
        def write(self, address: bytes, what: Field, slot: int | None) -> None:
            super().write(address, what, slot)
            state.get_balance(Address(address))  # the observer's own look

    log = Looking()
    observation = observe_state(state, log)
    state.set_nonce(A, 1)
    with observation.quiet():
        state.set_nonce(B, 1)
    assert log.seen == [("write", bytes(A), Field.NONCE, None)]


def test_close_restores_and_observations_stack() -> None:
    state = fresh_state()
    db = account_db(state)
    before = dict(vars(db))
    outer, inner = WriteLog(), Log()
    observe_state(state, outer)
    assert "get_balance" not in vars(db)  # a write-only observer leaves reads alone
    observation = observe_state(state, inner)
    state.set_balance(A, 1)
    observation.close()
    state.set_balance(B, 1)
    assert inner.seen == [("write", bytes(A), Field.BALANCE, None)]
    assert outer.accounts == {bytes(A), bytes(B)}
    assert "delta_balance" in vars(state)  # the outer observation is still there
    assert set(vars(db)) - set(before) == {
        "set_balance", "set_nonce", "increment_nonce", "set_code", "delete_code",
        "set_storage", "delete_storage", "delete_account", "touch_account",
        "_set_account"}


def test_patch_methods_undo_puts_back_what_was_there() -> None:
    vm = new_chain().get_vm()
    calls: list[str] = []

    def counting(name: str) -> Any:
        def patch(original: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                calls.append(name)
                return original(*args, **kwargs)
            return call
        return patch

    undo_first = patch_methods(vm, {"get_header": counting("first")})
    undo_second = patch_methods(vm, {"get_header": counting("second")})
    vm.get_header()
    undo_second()
    vm.get_header()
    undo_first()
    vm.get_header()
    assert calls == ["second", "first", "first"]
    assert "get_header" not in vars(vm)


def test_observed_vm_class_observes_every_state_it_builds() -> None:
    log = WriteLog()
    vm_class = observed_vm_class(CancunVM, log)
    chain_class = MiningChain.configure("ObservedChain", vm_configuration=((0, vm_class),),
                                        chain_id=1)
    chain = chain_class.from_genesis(AtomicDB(), GENESIS_PARAMS, {
        A: {"balance": 1, "nonce": 0, "code": b"", "storage": {4: 5}}})
    assert log.accounts == {bytes(A)} and log.slots == {bytes(A): {4}}  # the genesis
    chain.get_vm().state.set_balance(B, 3)
    assert bytes(B) in log.accounts


def test_a_state_class_on_an_account_db_logs_through_py_evms_own_logger() -> None:
    state = fresh_state()
    cls = state_class_on_account_db(type(state), "ViewState", {})
    view_state = cls(account_db(state), state.execution_context)
    assert account_db(view_state) is account_db(state)
    # the very object py-evm's property returns, so logging's configuration applies
    by_property = type(state).logger.fget(view_state)  # type: ignore[attr-defined]
    assert by_property.name == "eth.vm.state.ViewState"
    assert view_state.logger is by_property


def test_quick_debug_messages_format_hex_as_eth_utils_does_while_they_last() -> None:
    import eth_utils
    from eth.vm.forks.frontier import state as frontier_state
    values: list[Any] = [b"", b"\x00\xff" * 10, bytearray(b"\x12\xab"), "ab",
                         Address(b"\x01" * 20)]
    with quick_debug_messages():
        quick = frontier_state.encode_hex
        assert quick is not eth_utils.encode_hex
        assert [quick(v) for v in values] == [eth_utils.encode_hex(v) for v in values]
        with pytest.raises(TypeError):
            quick(5)  # type: ignore[type-var]
    assert frontier_state.encode_hex is eth_utils.encode_hex


# -- Keccak backend ----------------------------------------------------------------
def test_pevm_hashes_with_pysha3_and_every_digest_equals_pycryptodomes() -> None:
    import random

    from Crypto.Hash import keccak as pycryptodome_keccak
    from eth_hash.auto import keccak
    from eth_hash.backends.pysha3 import PySha3Backend

    import pevm  # noqa: F401 - importing pevm selects the backend

    assert isinstance(keccak._backend, PySha3Backend)
    rng = random.Random(7)
    for size in [0, 1, 31, 32, 55, 56, 135, 136, 137, 1000]:
        data = rng.randbytes(size)
        expected = pycryptodome_keccak.new(data=data, digest_bits=256).digest()
        assert keccak(data) == expected
        assert keccak.new(data).digest() == expected


def test_an_eth_hash_backend_the_user_chose_is_kept() -> None:
    import subprocess
    import sys

    code = ("import pevm; from eth_hash.auto import keccak; keccak(b'');"
            "print(type(keccak._backend).__name__)")
    env = {**os.environ, "ETH_HASH_BACKEND": "pycryptodome"}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "AutoBackend"  # eth-hash's own choice, from the variable


def _live_chain_databases() -> int:
    gc.collect()
    return sum(isinstance(obj, ChainDB) for obj in gc.get_objects())


@pytest.mark.parametrize("backend", [StateBackend.FLAT, StateBackend.PYEVM])
def test_a_chain_database_goes_with_its_chain(backend: StateBackend) -> None:
    # py-evm's body caches are lru_caches on the methods, keyed by the database:
    # the class kept the last 32 alive, each with its whole state
    ref = list_cases([str(FIXTURES / "erc20_small.json")]).cases[0]
    engine = make_engine("parallel", workers=1, state_backend=backend)
    before = _live_chain_databases()
    for _ in range(3):
        reports = run_case_ref(ref, engine, make_engine("reference"))
        assert [r.status for r in reports] == [PASSED]
    assert _live_chain_databases() == before


def test_a_chain_database_caches_its_bodies_as_py_evm_decodes_them() -> None:
    chain = new_chain(CancunVM)
    block = mine(chain, [transfer(chain, 0, ADDRESSES[1], 5, nonce) for nonce in range(3)])
    db = ChainDBOwnCaches(chain.chaindb.db)
    calls = []
    real = ChainDB._get_block_transactions.__wrapped__

    def counted(self: Any, *key: Any) -> Any:
        calls.append(key)
        return real(self, *key)

    ChainDB._get_block_transactions.__wrapped__ = counted
    try:
        first = db.get_block_transactions(block.header, CancunVM.get_transaction_builder())
        again = db.get_block_transactions(block.header, CancunVM.get_transaction_builder())
    finally:
        ChainDB._get_block_transactions.__wrapped__ = real
    assert first == again == block.transactions and first is again
    assert len(calls) == 1                      # decoded once, then from the cache
    # bounded as py-evm's, the least recently used going first
    def decode() -> None:  # stands for py-evm's cached method: its function decodes
        pass
    decode.__wrapped__ = lambda _db, *key: key  # type: ignore[attr-defined]
    for root in range(BODY_CACHE_SIZE + 5):
        db._body(decode, root)
        db._body(decode, 0)                     # used again each time: it stays
    assert len(db._bodies) == BODY_CACHE_SIZE
    assert (decode, 0) in db._bodies and (decode, 1) not in db._bodies
