"""EIP-2537's BLS12-381 precompiles (Prague, ``0x0b``-``0x11``) in Rust, with
py-evm's semantics.

py-evm 0.12 computes them with py_ecc in pure Python: a pairing check of two pairs
takes seconds here, a 128-point multi-scalar multiplication longer still.
py-arkworks-bls12381 (the Ethereum Foundation's Python bindings of arkworks, built
for the consensus specs' test vectors) has each operation EIP-2537 names: points
from affine coordinates with the on-curve check, the subgroup check, multi-scalar
multiplication, the pairing check and the two maps to the curve (simplified SWU
with the isogeny, then cofactor clearing).

Each function here is py-evm's own with the arithmetic swapped, and only on the
path where py-evm would succeed: an input of the right length, every field element
below the modulus (so the 16 padding bytes are zero), every point on its curve and,
for the multiplications and the pairing, in the subgroup, and gas enough for
py-evm's price. Any other input goes to py-evm's function unchanged, so every
error, and the gas it burns, is py-evm's. Gas is priced with py-evm's own
constants and discount tables. ``tests/test_bls_precompiles.py`` runs each against
py-evm's on valid and invalid inputs, and the corpus' EIP-2537 tests check both
against the fixtures.

Where py-arkworks-bls12381 is not installed (it has wheels for CPython 3.11 and
up), py-evm's functions stay (:func:`fast_bls`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from eth.abc import ComputationAPI
from eth.precompiles import bls12_381 as pyevm_bls
from eth.precompiles.bls12_381 import constants as prices
from py_ecc.optimized_bls12_381 import field_modulus

from pevm.pyevm_compat import output_or_original, run_original

arkworks: Any
try:
    import py_arkworks_bls12381 as arkworks
except ImportError:  # no wheel for this platform or Python: py-evm's code stays
    arkworks = None

#: the base field's modulus (py-evm's, through py_ecc)
P: int = field_modulus
_PAD = bytes(16)  # an EIP-2537 field element is 64 bytes, 48 of them significant

G1_SIZE, G2_SIZE, SCALAR_SIZE = 128, 256, 32


def _fp(data: bytes) -> bytes | None:
    """A 64-byte field element's 48 significant bytes, or None where py-evm
    refuses it (at or above the modulus)."""
    if data[:16] != _PAD or int.from_bytes(data[16:], "big") >= P:
        return None
    return data[16:]


def _fields(data: bytes, count: int) -> bytes | None:
    """``count`` 64-byte field elements' significant bytes, joined, or None where
    py-evm refuses one."""
    parts = [_fp(data[64 * i:64 * i + 64]) for i in range(count)]
    return None if any(part is None for part in parts) \
        else b"".join(parts)  # type: ignore[arg-type]


def _point(data: bytes, group: Any, coordinates: int) -> Any:
    """The point ``data`` encodes (``coordinates`` field elements; all zero: the
    point at infinity), or None where py-evm refuses it (a coordinate at or above
    the modulus, or not on the curve)."""
    raw = _fields(data, coordinates)
    if raw is None:
        return None
    if not any(data):
        return group.identity()
    try:  # checks that the point is on the curve (not the subgroup)
        return group.from_xy_bytes_unchecked_be(raw)
    except Exception:  # noqa: BLE001 - not on the curve: py-evm says so
        return None


def _encode(point: Any, group: Any, coordinates: int) -> bytes:
    """``point`` as EIP-2537 encodes it (infinity: all zeros)."""
    if point == group.identity():
        return bytes(64 * coordinates)
    raw = point.to_xy_bytes_be()
    return b"".join(_PAD + raw[48 * i:48 * i + 48] for i in range(coordinates))


def _g1(data: bytes) -> Any:
    return _point(data, arkworks.G1Point, 2)


def _g2(data: bytes) -> Any:
    return _point(data, arkworks.G2Point, 4)


def _add(computation: ComputationAPI, size: int, group: Any, cost: int, reason: str,
         original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    if len(data) != 2 * size:
        return run_original(computation, original)  # a length py-evm refuses

    def output() -> bytes | None:
        first, second = _point(data[:size], group, size // 64), \
            _point(data[size:], group, size // 64)
        if first is None or second is None:
            return None
        return _encode(first + second, group, size // 64)
    return output_or_original(computation, cost, reason, output, original)


def _msm(computation: ComputationAPI, size: int, group: Any, unit_gas: int,
         discounts: list[int], max_discount: int, reason: str,
         original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    pair = size + SCALAR_SIZE
    if not data or len(data) % pair:
        return run_original(computation, original)  # a length py-evm refuses
    k = len(data) // pair
    discount = discounts[k - 1] if k <= len(discounts) else max_discount
    cost = k * unit_gas * discount // prices.MSM_MULTIPLIER

    def output() -> bytes | None:
        points, scalars = [], []
        for start in range(0, len(data), pair):
            point = _point(data[start:start + size], group, size // 64)
            if point is None or not point.is_in_subgroup():
                return None
            points.append(point)
            # a subgroup point's multiple depends on the scalar modulo the order
            scalars.append(arkworks.Scalar.from_be_bytes_mod_order(
                data[start + size:start + pair]))
        return _encode(group.multiexp_unchecked(points, scalars), group, size // 64)
    return output_or_original(computation, cost, reason, output, original)


def g1_add(computation: ComputationAPI, *,
           original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """BLS12_G1ADD (``0x0b``), as py-evm's ``bls12_g1_add``."""
    return _add(computation, G1_SIZE, arkworks.G1Point, prices.BLS12_G1_ADD_GAS,
                "BLS12_G1ADD gas", original)


def g2_add(computation: ComputationAPI, *,
           original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """BLS12_G2ADD (``0x0d``), as py-evm's ``bls12_g2_add``."""
    return _add(computation, G2_SIZE, arkworks.G2Point, prices.BLS12_G2_ADD_GAS,
                "BLS12_G2ADD gas", original)


def g1_msm(computation: ComputationAPI, *,
           original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """BLS12_G1MSM (``0x0c``), as py-evm's ``bls12_g1_msm``."""
    return _msm(computation, G1_SIZE, arkworks.G1Point, prices.BLS12_G1_MSM_GAS,
                prices.G1_MSM_DISCOUNTS, prices.G1_MSM_MAX_DISCOUNT, "BLS12_G1MSM gas",
                original)


def g2_msm(computation: ComputationAPI, *,
           original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """BLS12_G2MSM (``0x0e``), as py-evm's ``bls12_g2_msm``."""
    return _msm(computation, G2_SIZE, arkworks.G2Point, prices.BLS12_G2_MSM_GAS,
                prices.G2_MSM_DISCOUNTS, prices.G2_MSM_MAX_DISCOUNT, "BLS12_G2MSM gas",
                original)


#: py-evm's pairing price, written in its function rather than its constants
PAIRING_PER_PAIR_GAS, PAIRING_BASE_GAS = 32600, 37700
PAIR_SIZE = G1_SIZE + G2_SIZE


def pairing_check(computation: ComputationAPI, *,
                  original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """BLS12_PAIRING_CHECK (``0x0f``), as py-evm's ``bls12_pairing_check``."""
    data = computation.msg.data_as_bytes
    reason = "BLS12_PAIRING_CHECK gas"
    if not data or len(data) % PAIR_SIZE:
        return run_original(computation, original)  # a length py-evm refuses
    k = len(data) // PAIR_SIZE

    def output() -> bytes | None:
        g1s, g2s = [], []
        for start in range(0, len(data), PAIR_SIZE):
            g1 = _g1(data[start:start + G1_SIZE])
            g2 = _g2(data[start + G1_SIZE:start + PAIR_SIZE])
            if g1 is None or g2 is None or not g1.is_in_subgroup() \
                    or not g2.is_in_subgroup():
                return None
            g1s.append(g1)
            g2s.append(g2)
        return bytes(31) + (b"\x01" if arkworks.GT.pairing_check(g1s, g2s) else b"\x00")
    return output_or_original(computation, PAIRING_PER_PAIR_GAS * k + PAIRING_BASE_GAS,
                              reason, output, original)


def _map(computation: ComputationAPI, fields: int, group: Any, method: str, cost: int,
         reason: str, original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """A field element (``fields`` 1: Fp, 2: Fp2) mapped to ``group`` by arkworks'
    ``method`` (simplified SWU, the isogeny, cofactor clearing)."""
    data = computation.msg.data_as_bytes
    if len(data) != 64 * fields:
        return run_original(computation, original)  # a length py-evm refuses

    def output() -> bytes | None:
        raw = _fields(data, fields)
        return None if raw is None \
            else _encode(getattr(group, method)(raw), group, 2 * fields)
    return output_or_original(computation, cost, reason, output, original)


def map_fp_to_g1(computation: ComputationAPI, *,
                 original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """BLS12_MAP_FP_TO_G1 (``0x10``), as py-evm's ``bls12_map_fp_to_g1``."""
    return _map(computation, 1, arkworks.G1Point, "map_from_fp_be",
                prices.BLS12_MAP_FP_G1_GAS, "BLS12_MAP_FP_TO_G1 gas", original)


def map_fp2_to_g2(computation: ComputationAPI, *,
                  original: Callable[[ComputationAPI], Any]) -> ComputationAPI:
    """BLS12_MAP_FP2_TO_G2 (``0x11``), as py-evm's ``bls12_map_fp2_to_g2``."""
    return _map(computation, 2, arkworks.G2Point, "map_from_fp2_be",
                prices.BLS12_MAP_FP2_G2_GAS, "BLS12_MAP_FP2_TO_G2 gas", original)


#: py-evm's BLS12-381 functions -> pevm's
_BLS: dict[Callable[..., Any], Callable[..., Any]] = {
    pyevm_bls.bls12_g1_add: g1_add, pyevm_bls.bls12_g2_add: g2_add,
    pyevm_bls.bls12_g1_msm: g1_msm, pyevm_bls.bls12_g2_msm: g2_msm,
    pyevm_bls.bls12_pairing_check: pairing_check,
    pyevm_bls.bls12_map_fp_to_g1: map_fp_to_g1,
    pyevm_bls.bls12_map_fp2_to_g2: map_fp2_to_g2}


def bls_native() -> bool:
    """Whether pevm's VMs compute BLS12-381 with arkworks (else py-evm's py_ecc)."""
    return arkworks is not None


def fast_bls(function: Callable[..., Any]) -> Callable[..., Any] | None:
    """pevm's version of py-evm's BLS12-381 precompile ``function``, or None."""
    fast = _BLS.get(function)
    if fast is None or arkworks is None:
        return None
    return functools.partial(fast, original=function)
