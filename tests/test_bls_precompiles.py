"""EIP-2537's BLS12-381 precompiles through arkworks against py-evm's, input by
input: the same output, gas and error (type and message) on valid inputs, on each
way an input can be invalid, and without the gas."""
from __future__ import annotations

import functools
import random
from typing import Any

import pytest
from eth.precompiles import bls12_381 as pyevm_bls
from eth.vm.forks import CancunVM, PragueVM
from eth_typing import Address
from py_ecc.bls.hash_to_curve import map_to_curve_G2
from py_ecc.fields import optimized_bls12_381_FQ2 as FQ2
from py_ecc.optimized_bls12_381 import G1, G2, curve_order, multiply, neg, normalize

from pevm.bls_precompiles import (P, bls_native, g1_add, g1_msm, g2_add, g2_msm,
                                  map_fp2_to_g2, map_fp_to_g1, pairing_check)
from pevm.precompiles import fast_version
from pevm.state.backend import StateBackend, vm_class_on

from .test_precompiles import _outcome, assert_out_of_gas_as_pyevm

needs_arkworks = pytest.mark.skipif(
    not bls_native(), reason="py-arkworks-bls12381 has no wheel for this platform or "
                             "Python: pevm keeps py-evm's BLS12-381 precompiles here")


def _g1(point: Any) -> bytes:
    x, y = normalize(point)
    return b"".join(int(c).to_bytes(64, "big") for c in (x, y))


def _g2(point: Any) -> bytes:
    x, y = normalize(point)
    return b"".join(int(c).to_bytes(64, "big") for c in (*x.coeffs, *y.coeffs))


def _fp(value: int) -> bytes:
    return value.to_bytes(64, "big")


@functools.cache
def _inputs() -> dict[str, tuple[Any, bytes]]:
    """name -> (py-evm's function, input): valid ones first, then each refusal."""
    rng = random.Random(2537)
    a, b, c = (multiply(G1, rng.randrange(1, curve_order)) for _ in range(3))
    d, e = (multiply(G2, rng.randrange(1, curve_order)) for _ in range(2))
    scalar = [rng.randrange(2**256).to_bytes(32, "big") for _ in range(4)]
    # on the curves, outside the subgroups: py-evm adds them, refuses to multiply them
    g1_outside = _fp(0) + _fp(2)
    g2_outside = _g2(map_to_curve_G2(FQ2((rng.randrange(P), rng.randrange(P)))))
    inf1, inf2 = bytes(128), bytes(256)
    bad_padding = b"\x01" + _g1(a)[1:]
    at_modulus = _fp(P) + _g1(a)[64:]
    off_curve = _g1(a)[:127] + bytes([_g1(a)[127] ^ 1])
    pair = _g1(a) + _g2(G2) + _g1(neg(a)) + _g2(G2)
    return {
        "G1ADD": (pyevm_bls.bls12_g1_add, _g1(a) + _g1(b)),
        "G1ADD, P + -P": (pyevm_bls.bls12_g1_add, _g1(a) + _g1(neg(a))),
        "G1ADD, infinity": (pyevm_bls.bls12_g1_add, inf1 + _g1(b)),
        "G1ADD, outside the subgroup": (pyevm_bls.bls12_g1_add, g1_outside + _g1(b)),
        "G1ADD, padding": (pyevm_bls.bls12_g1_add, bad_padding + _g1(b)),
        "G1ADD, x = p": (pyevm_bls.bls12_g1_add, _g1(a) + at_modulus),
        "G1ADD, off the curve": (pyevm_bls.bls12_g1_add, off_curve + _g1(b)),
        "G1ADD, short": (pyevm_bls.bls12_g1_add, _g1(a) + _g1(b)[:-1]),
        "G2ADD": (pyevm_bls.bls12_g2_add, _g2(d) + _g2(e)),
        "G2ADD, infinity": (pyevm_bls.bls12_g2_add, _g2(d) + inf2),
        "G2ADD, outside the subgroup": (pyevm_bls.bls12_g2_add, g2_outside + _g2(e)),
        "G2ADD, off the curve": (pyevm_bls.bls12_g2_add, _g2(d)[:-1] + b"\x07" + _g2(e)),
        "G1MSM, one pair": (pyevm_bls.bls12_g1_msm, _g1(a) + scalar[0]),
        "G1MSM, three pairs": (pyevm_bls.bls12_g1_msm, b"".join(
            _g1(p) + s for p, s in zip((a, b, c), scalar))),
        "G1MSM, scalars 0 and the order": (pyevm_bls.bls12_g1_msm, _g1(a) + bytes(32)
                                           + _g1(b) + curve_order.to_bytes(32, "big")),
        "G1MSM, infinity": (pyevm_bls.bls12_g1_msm, inf1 + scalar[0]),
        "G1MSM, outside the subgroup": (pyevm_bls.bls12_g1_msm, g1_outside + scalar[0]),
        "G1MSM, empty": (pyevm_bls.bls12_g1_msm, b""),
        "G1MSM, a partial pair": (pyevm_bls.bls12_g1_msm, _g1(a) + scalar[0][:31]),
        "G2MSM, two pairs": (pyevm_bls.bls12_g2_msm, _g2(d) + scalar[1] + _g2(e) + scalar[2]),
        "G2MSM, outside the subgroup": (pyevm_bls.bls12_g2_msm, g2_outside + scalar[0]),
        "PAIRING, holds": (pyevm_bls.bls12_pairing_check, pair),
        "PAIRING, fails": (pyevm_bls.bls12_pairing_check, _g1(a) + _g2(d)),
        "PAIRING, infinities": (pyevm_bls.bls12_pairing_check, inf1 + _g2(d) + _g1(a) + inf2),
        "PAIRING, G1 outside the subgroup": (pyevm_bls.bls12_pairing_check,
                                             g1_outside + _g2(d)),
        "PAIRING, G2 outside the subgroup": (pyevm_bls.bls12_pairing_check,
                                             _g1(a) + g2_outside),
        "PAIRING, empty": (pyevm_bls.bls12_pairing_check, b""),
        "PAIRING, a partial pair": (pyevm_bls.bls12_pairing_check, pair[:-1]),
        "MAP_FP_TO_G1": (pyevm_bls.bls12_map_fp_to_g1, _fp(rng.randrange(P))),
        "MAP_FP_TO_G1, zero": (pyevm_bls.bls12_map_fp_to_g1, _fp(0)),
        "MAP_FP_TO_G1, p": (pyevm_bls.bls12_map_fp_to_g1, _fp(P)),
        "MAP_FP_TO_G1, padding": (pyevm_bls.bls12_map_fp_to_g1, b"\x01" + _fp(1)[1:]),
        "MAP_FP2_TO_G2": (pyevm_bls.bls12_map_fp2_to_g2,
                          _fp(rng.randrange(P)) + _fp(rng.randrange(P))),
        "MAP_FP2_TO_G2, c1 = p": (pyevm_bls.bls12_map_fp2_to_g2, _fp(1) + _fp(P)),
        "MAP_FP2_TO_G2, short": (pyevm_bls.bls12_map_fp2_to_g2, _fp(1)),
    }


_VALID = {"G1ADD", "G1ADD, P + -P", "G1ADD, infinity", "G1ADD, outside the subgroup",
          "G2ADD", "G2ADD, infinity", "G2ADD, outside the subgroup", "G1MSM, one pair",
          "G1MSM, three pairs", "G1MSM, scalars 0 and the order", "G1MSM, infinity",
          "G2MSM, two pairs", "PAIRING, holds", "PAIRING, fails", "PAIRING, infinities",
          "MAP_FP_TO_G1", "MAP_FP_TO_G1, zero", "MAP_FP2_TO_G2"}


@needs_arkworks
@pytest.mark.parametrize("name", list(_inputs()))
def test_bls_precompiles_equal_pyevm_s(name: str) -> None:
    theirs_function, data = _inputs()[name]
    ours_function = fast_version(theirs_function)
    assert ours_function is not None
    ours, theirs = _outcome(ours_function, data), _outcome(theirs_function, data)
    assert ours == theirs
    assert ours[0] == ("ok" if name in _VALID else "error"), ours
    if name in _VALID:  # and arkworks computed it: py-evm's function was not called
        alone = functools.partial(ours_function.func, original=_not_called)  # type: ignore[attr-defined]
        assert _outcome(alone, data) == theirs


def _not_called(computation: Any) -> None:
    raise AssertionError("py-evm's function ran on an input arkworks should compute")


@needs_arkworks
@pytest.mark.parametrize("name", ["G1ADD", "G2MSM, two pairs", "PAIRING, holds",
                                  "MAP_FP2_TO_G2"])
def test_bls_precompiles_without_the_gas_fail_as_pyevm_s(name: str) -> None:
    assert_out_of_gas_as_pyevm(*_inputs()[name])


@needs_arkworks
@pytest.mark.parametrize("pairs", [1, 2, 64, 128, 129])
def test_msm_prices_equal_pyevm_s_through_the_discount_table(pairs: int) -> None:
    # the infinity as every point: py-evm's own price without its slow arithmetic
    for theirs_function, size in ((pyevm_bls.bls12_g1_msm, 128), (pyevm_bls.bls12_g2_msm, 256)):
        data = (bytes(size) + (7).to_bytes(32, "big")) * pairs
        ours_function = fast_version(theirs_function)
        assert _outcome(ours_function, data) == _outcome(theirs_function, data)


@needs_arkworks
@pytest.mark.parametrize("vm_class", [CancunVM, PragueVM])
def test_pevm_vms_use_arkworks_where_the_fork_has_the_precompiles(vm_class: Any) -> None:
    ours: dict[Any, Any] = vm_class_on(StateBackend.FLAT, vm_class).get_state_class() \
        .computation_class._precompiles
    theirs = vm_class.get_state_class().computation_class._precompiles
    fast = {0x0b: g1_add, 0x0c: g1_msm, 0x0d: g2_add, 0x0e: g2_msm, 0x0f: pairing_check,
            0x10: map_fp_to_g1, 0x11: map_fp2_to_g2}
    for address, function in fast.items():
        key = Address(b"\0" * 19 + bytes((address,)))
        if vm_class is CancunVM:
            assert key not in ours and key not in theirs
            continue
        assert isinstance(ours[key], functools.partial) and ours[key].func is function
        assert ours[key].keywords["original"] is theirs[key]   # py-evm's, kept for errors


def test_without_arkworks_pevm_keeps_pyevm_s_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    import pevm.bls_precompiles
    monkeypatch.setattr(pevm.bls_precompiles, "arkworks", None)
    assert not bls_native()
    assert all(fast_version(function) is None for function in (
        pyevm_bls.bls12_g1_add, pyevm_bls.bls12_g1_msm, pyevm_bls.bls12_g2_add,
        pyevm_bls.bls12_g2_msm, pyevm_bls.bls12_pairing_check,
        pyevm_bls.bls12_map_fp_to_g1, pyevm_bls.bls12_map_fp2_to_g2))
