"""pevm's precompiles against py-evm's, input by input: KZG point evaluation, and
the BN254 curve's addition, multiplication and pairing check through revm; and
py-evm's own BLAKE2 F, against hashlib and with blake2b-py's Rust compression."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import struct
from types import SimpleNamespace
from typing import Any

import ckzg  # type: ignore[import-not-found]  # a C extension without type information
import pytest
from eth.exceptions import OutOfGas, VMError
from eth.precompiles.point_evaluation import kzg_to_versioned_hash, point_evaluation_precompile
from eth.vm.forks import ByzantiumVM, CancunVM, IstanbulVM, PragueVM
from eth_typing import Address
from py_ecc import optimized_bn128 as bn

from pevm.precompiles import (blake2f_native, ecadd, ecmul, ecpairing, fast_version,
                              point_evaluation, revm_available, revm_output, trusted_setup)
from pevm.state.backend import StateBackend, vm_class_on


class _Computation:
    """What a precompile uses of a computation: its input, gas and output."""

    def __init__(self, data: bytes, gas: int = 10**9) -> None:
        self.msg = SimpleNamespace(data_as_bytes=data, data=data)
        self.remaining = gas
        self.gas: list[int] = []
        self.output = b""

    def get_gas_remaining(self) -> int:
        return self.remaining

    def consume_gas(self, amount: int, reason: str) -> None:
        if amount > self.remaining:
            raise OutOfGas(f"Out of gas: Needed {amount} - Remaining {self.remaining} "
                           f"- Reason: {reason}")
        self.remaining -= amount
        self.gas.append(amount)


def _outcome(precompile: Any, data: bytes, gas: int = 10**9) -> tuple[Any, ...]:
    computation = _Computation(data, gas)
    try:
        precompile(computation)
    except VMError as exc:
        return ("error", type(exc).__name__, str(exc), computation.gas)
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


# -- BN254 (0x06-0x08) ------------------------------------------------------------
needs_revm = pytest.mark.skipif(not revm_available(),
                                reason="pyrevm has no wheel for this platform or Python: "
                                       "pevm keeps py-evm's BN254 precompiles here")


def _words(*values: int) -> bytes:
    return b"".join(v.to_bytes(32, "big") for v in values)


def _g1(point: Any) -> bytes:
    x, y = bn.normalize(point)
    return _words(int(x), int(y))


def _g2(point: Any) -> bytes:
    x, y = bn.normalize(point)  # EIP-197 orders each coordinate imaginary part first
    return _words(x.coeffs[1], x.coeffs[0], y.coeffs[1], y.coeffs[0])


def _fq2_sqrt(a: Any) -> Any:
    """A square root in Fp2 (p = 3 mod 4), or None (Adj and Rodriguez-Henriquez)."""
    p, minus_one = bn.field_modulus, bn.FQ2([bn.field_modulus - 1, 0])
    a1 = a ** ((p - 3) // 4)
    alpha = a1 * a1 * a
    if alpha ** p * alpha == minus_one:
        return None
    x0 = a1 * a
    root = bn.FQ2([0, 1]) * x0 if alpha == minus_one \
        else (alpha + bn.FQ2.one()) ** ((p - 1) // 2) * x0
    return root if root * root == a else None


def _twist_point_outside_g2() -> Any:
    """A point of the twist curve that is not in G2 (the cofactor is ~p: almost any)."""
    for k in itertools.count(1):
        x = bn.FQ2([k, 1])
        y = _fq2_sqrt(x ** 3 + bn.b2)
        if y is None:
            continue
        point = (x, y, bn.FQ2.one())
        assert bn.is_on_curve(point, bn.b2)
        if bn.multiply(point, bn.curve_order)[2] != bn.FQ2.zero():
            return point
    raise AssertionError("unreachable")


@functools.cache
def _bn254_inputs() -> dict[str, tuple[int, bytes, bool]]:
    """(precompile address, input, whether it is valid) by case."""
    p_, q_ = bn.multiply(bn.G1, 3), bn.multiply(bn.G1, 5)
    g2 = bn.multiply(bn.G2, 678)
    a, b = _g1(p_), _g1(q_)
    off_curve_g2 = _g2(g2)[:96] + _words((int.from_bytes(_g2(g2)[96:], "big") + 1)
                                         % bn.field_modulus)
    return {
        "add": (6, a + b, True),
        "add a point and its negation": (6, a + _g1(bn.neg(p_)), True),
        "add to infinity": (6, bytes(64) + b, True),
        "add, short input": (6, a, True),
        "add, long input": (6, a + b + b"\x07" * 50, True),
        "add, empty input": (6, b"", True),
        "add, x not below p": (6, _words(bn.field_modulus, 2) + b, False),
        "add, not on the curve": (6, _words(1, 3) + b, False),
        "multiply": (7, a + _words(123456789), True),
        "multiply by zero": (7, a + _words(0), True),
        "multiply by the group's order": (7, a + _words(bn.curve_order), True),
        "multiply by 2**256 - 1": (7, a + _words(2**256 - 1), True),
        "multiply infinity": (7, bytes(64) + _words(7), True),
        "multiply, short input": (7, a + b"\x01", True),
        "multiply, long input": (7, a + _words(9) + b"\xff" * 33, True),
        "multiply, not on the curve": (7, _words(1, 3, 2), False),
        "pairing, empty input": (8, b"", True),
        "pairing that holds": (8, a + _g2(g2) + _g1(bn.neg(p_)) + _g2(g2), True),
        "pairing that does not hold": (8, a + _g2(g2) + a + _g2(g2), True),
        "pairing with G1 at infinity": (8, bytes(64) + _g2(g2), True),
        "pairing with G2 at infinity": (8, a + bytes(128), True),
        "pairing, G2 not on the twist": (8, a + off_curve_g2, False),
        "pairing, G2 outside the subgroup": (8, a + _g2(_twist_point_outside_g2()), False),
        "pairing, G2 coordinate not below p":
            (8, a + _words(bn.field_modulus) + _g2(g2)[32:], False),
        "pairing, G1 not on the curve": (8, _words(1, 3) + _g2(g2), False),
        "pairing, a partial pair": (8, (a + _g2(g2))[:191], False),
    }


def _precompiles(vm_class: Any) -> dict[int, Any]:
    table = vm_class.get_state_class().computation_class._precompiles
    return {address: table[Address(b"\0" * 19 + bytes((address,)))] for address in (6, 7, 8)}


@needs_revm
@pytest.mark.parametrize("vm_class", [ByzantiumVM, IstanbulVM], ids=["byzantium", "istanbul"])
@pytest.mark.parametrize("name", list(_bn254_inputs()))
def test_bn254_precompiles_equal_pyevm_s(name: str, vm_class: Any) -> None:
    """Same output, gas and error as py-evm's at the fork's prices (Istanbul cut them);
    revm computed the valid ones and refused the others (py-evm then raised)."""
    address, data, valid = _bn254_inputs()[name]
    theirs_function = _precompiles(vm_class)[address]
    ours_function = fast_version(theirs_function)
    assert ours_function is not None
    ours, theirs = _outcome(ours_function, data), _outcome(theirs_function, data)
    assert ours == theirs
    assert ours[0] == ("ok" if valid else "error"), ours
    assert (revm_output(address, data) is not None) == valid


@needs_revm
@pytest.mark.parametrize("name", ["add", "multiply", "pairing that holds", "pairing, empty input"])
def test_bn254_precompiles_without_the_gas_fail_as_pyevm_s(name: str) -> None:
    address, data, _ = _bn254_inputs()[name]
    assert_out_of_gas_as_pyevm(_precompiles(IstanbulVM)[address], data)


def assert_out_of_gas_as_pyevm(theirs_function: Any, data: bytes) -> None:
    """pevm's version of ``theirs_function`` with one unit of gas too few for
    ``data``: py-evm's OutOfGas, message and gas alike."""
    ours_function = fast_version(theirs_function)
    assert ours_function is not None
    needed = _outcome(theirs_function, data)[-1][0]
    ours, theirs = (_outcome(f, data, gas=needed - 1) for f in (ours_function, theirs_function))
    assert ours == theirs
    assert ours[:2] == ("error", "OutOfGas")


@needs_revm
@pytest.mark.parametrize("vm_class", [ByzantiumVM, PragueVM])
def test_pevm_vms_use_revm_s_bn254_and_py_evm_s_keep_their_own(vm_class: Any) -> None:
    ours = _precompiles(vm_class_on(StateBackend.FLAT, vm_class))
    theirs = _precompiles(vm_class)
    for address, function in ((6, ecadd), (7, ecmul), (8, ecpairing)):
        assert isinstance(ours[address], functools.partial)
        assert ours[address].func is function
        assert ours[address].keywords["original"] is theirs[address]
        assert getattr(theirs[address], "func", None) is not function


# -- BLAKE2 F (0x09): py-evm's own, in Rust where blake2b-py is installed ------------
_BLAKE2B_IV = (0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b,
               0xa54ff53a5f1d36f1, 0x510e527fade682d1, 0x9b05688c2b3e6c1f,
               0x1f83d9abfb41bd6b, 0x5be0cd19137e2179)


def _blake2f_input(rounds: int, message: bytes, final: bool = True,
                   state: tuple[int, ...] | None = None) -> bytes:
    """EIP-152's 213 bytes: rounds, state, one 128-byte block, offset counters, flag
    (the default state: BLAKE2b-512's, unkeyed)."""
    if state is None:
        state = (_BLAKE2B_IV[0] ^ 0x01010040,) + _BLAKE2B_IV[1:]
    return (rounds.to_bytes(4, "big") + struct.pack("<8Q", *state)
            + message.ljust(128, b"\0") + struct.pack("<2Q", len(message), 0)
            + bytes((final,)))


def test_blake2f_is_one_blake2b_compression() -> None:
    """12 rounds of one final block from BLAKE2b-512's state: hashlib's digest of that
    block, an oracle outside py-evm, with one unit of gas a round."""
    from eth.precompiles.blake2 import blake2b_fcompress
    for message in (b"", b"abc", bytes(range(128))):
        assert _outcome(blake2b_fcompress, _blake2f_input(12, message)) == \
            ("ok", hashlib.blake2b(message).digest(), [12])


@pytest.mark.skipif(importlib.util.find_spec("blake2b") is None,
                    reason="blake2b-py has no wheel for this platform: py-evm keeps "
                           "its pure-Python compression, checked against hashlib above")
def test_py_evm_compresses_with_blake2b_py_as_its_own_fallback_does() -> None:
    from eth._utils.blake2.coders import extract_blake2b_parameters
    from eth._utils.blake2.compression import blake2b_compress as fallback
    from blake2b import compress as rust
    assert blake2f_native()
    state = tuple((i * 0x9e3779b97f4a7c15) % 2**64 for i in range(1, 9))
    for rounds, final, start in itertools.product((0, 1, 12, 300), (True, False),
                                                  (None, state)):
        parameters: Any = extract_blake2b_parameters(
            _blake2f_input(rounds, bytes(range(7, 135)), final, start))
        assert rust(*parameters) == fallback(*parameters)
