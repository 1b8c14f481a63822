"""pevm's point-evaluation precompile against py-evm's, input by input."""
from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import ckzg  # type: ignore[import-not-found]  # a C extension without type information
import pytest
from eth.exceptions import VMError
from eth.precompiles.point_evaluation import kzg_to_versioned_hash, point_evaluation_precompile
from eth.vm.forks import CancunVM, PragueVM
from eth_typing import Address

from pevm.precompiles import point_evaluation, trusted_setup
from pevm.state.backend import StateBackend, vm_class_on


class _Computation:
    """What a precompile uses of a computation: its input, gas and output."""

    def __init__(self, data: bytes) -> None:
        self.msg = SimpleNamespace(data_as_bytes=data)
        self.gas: list[int] = []
        self.output = b""

    def consume_gas(self, amount: int, reason: str) -> None:
        self.gas.append(amount)


def _outcome(precompile: Any, data: bytes) -> tuple[Any, ...]:
    computation = _Computation(data)
    try:
        precompile(computation)
    except VMError as exc:
        return ("error", str(exc), computation.gas)
    return ("ok", computation.output, computation.gas)


def _valid_input() -> bytes:
    blob = b"".join((i * 7919 % 2**250).to_bytes(32, "big") for i in range(4096))
    commitment = ckzg.blob_to_kzg_commitment(blob, trusted_setup())
    z = (12345).to_bytes(32, "big")
    proof, y = ckzg.compute_kzg_proof(blob, z, trusted_setup())
    return kzg_to_versioned_hash(commitment) + z + y + commitment + proof


@functools.cache
def _inputs() -> dict[str, bytes]:
    valid = _valid_input()
    wrong_y = valid[:64] + (int.from_bytes(valid[64:96], "big") ^ 1).to_bytes(32, "big") \
        + valid[96:]
    return {
        "valid": valid,
        "short": valid[:191],
        "long": valid + b"\0",
        "versioned hash of another commitment": valid[:31] + bytes([valid[31] ^ 1]) + valid[32:],
        "wrong evaluation": wrong_y,
        "not a curve point": valid[:96] + b"\xff" * 48 + valid[144:],
    }


@pytest.mark.parametrize("name", list(_inputs()))
def test_point_evaluation_equals_pyevm(name: str) -> None:
    data = _inputs()[name]
    ours, theirs = _outcome(point_evaluation, data), _outcome(point_evaluation_precompile, data)
    assert ours == theirs
    assert ours[0] == ("ok" if name == "valid" else "error")


@pytest.mark.parametrize("vm_class", [CancunVM, PragueVM])
def test_pevm_vms_use_it_and_py_evm_s_keep_their_own(vm_class: Any) -> None:
    address = Address(b"\0" * 19 + b"\x0a")
    pevm_vm = vm_class_on(StateBackend.FLAT, vm_class)
    assert pevm_vm.get_state_class().computation_class._precompiles[address] \
        is point_evaluation
    assert vm_class.get_state_class().computation_class._precompiles[address] \
        is point_evaluation_precompile
