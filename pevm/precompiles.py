"""Precompiles pevm's VMs run faster than py-evm does, with py-evm's semantics.

Two kinds of py-evm 0.12's precompiles dominate the mainnet blocks that call them:

- EIP-4844's KZG point evaluation (address ``0x0a``) loads the trusted setup from
  its text file on every call: about a second of a mainnet block's import for each
  blob-verifying call (block 19932703: 1.2 s of 4.3 s). :func:`point_evaluation` is
  the same precompile -- the same gas, checks, error messages and output, through
  the same ``ckzg.verify_kzg_proof`` -- with the setup loaded once per process (it
  is immutable data).
- The BN254 (alt_bn128) curve's addition, scalar multiplication and pairing check
  (``0x06``-``0x08``, EIP-196 and 197), which py-evm computes with py_ecc in pure
  Python: one pairing check of two pairs -- a zk proof's verification -- takes
  about half a second here, one scalar multiplication ~10 ms (mainnet 18426253's
  transaction 138 ran 0.84 s of its block's 1.07 s, 19932703's transaction 142
  0.56 s of 1.05 s, one process). :func:`ecadd`, :func:`ecmul` and
  :func:`ecpairing` get the output from revm's Rust implementation of the same
  precompiles through pyrevm, its Python bindings (:func:`revm_output`; ~5 ms a
  two-pair pairing check, ~0.2 ms a multiplication). Everything else stays
  py-evm's: gas is charged by py-evm's formulas at the prices the fork binds
  (its ``curry`` arguments), and a call revm rejects, or one without the gas to
  pay, goes to py-evm's own function unchanged -- so every error, and its gas, is
  py-evm's. Where pyrevm is not installed (it has no wheel for the platform or
  Python, see pyproject.toml) py-evm's functions stay.

EIP-2537's BLS12-381 precompiles (``0x0b``-``0x11``, Prague) run through arkworks
the same way: :mod:`pevm.bls_precompiles`.

BLAKE2 F (``0x09``, EIP-152) py-evm computes in Rust by itself when
blake2b-py is installed (a dependency of pevm where it has wheels), and in pure
Python otherwise, at ~9 us a round, the call's gas: :func:`blake2f_native` says
which.

:func:`with_fast_precompiles` puts them in pevm's VMs on the flat backend
(:func:`pevm.state.backend.vm_class_on`); py-evm's reference keeps its own, so
every comparison of a result with the reference's checks these too.
``tests/test_precompiles.py`` runs each against py-evm's on valid and invalid
inputs.
"""
from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

import ckzg  # type: ignore[import-not-found]  # a C extension without type information
from eth.abc import ComputationAPI
from eth.exceptions import VMError
from eth.precompiles import ecadd as pyevm_ecadd
from eth.precompiles import ecmul as pyevm_ecmul
from eth.precompiles import ecpairing as pyevm_ecpairing
from eth.precompiles.point_evaluation import (TRUSTED_SETUP_PATH, kzg_to_versioned_hash,
                                              point_evaluation_precompile)
from eth.vm.forks.cancun.constants import (BLS_MODULUS, FIELD_ELEMENTS_PER_BLOB,
                                           POINT_EVALUATION_PRECOMPILE_GAS)

from pevm.bls_precompiles import fast_bls
from pevm.pyevm_compat import output_or_original, replace_precompiles

pyrevm: Any
try:
    import pyrevm
except ImportError:  # no wheel for this platform or Python: py-evm's code stays
    pyrevm = None

_OUTPUT = FIELD_ELEMENTS_PER_BLOB.to_bytes(32, "big") + BLS_MODULUS.to_bytes(32, "big")


@functools.cache
def trusted_setup() -> Any:
    """The KZG trusted setup py-evm ships, loaded once per process."""
    return ckzg.load_trusted_setup(TRUSTED_SETUP_PATH, 0)


def point_evaluation(computation: ComputationAPI) -> ComputationAPI:
    """EIP-4844's point evaluation, as py-evm's ``point_evaluation_precompile``."""
    computation.consume_gas(POINT_EVALUATION_PRECOMPILE_GAS,
                            reason="Point Evaluation Precompile")
    data = computation.msg.data_as_bytes
    if len(data) != 192:
        raise VMError("Point evaluation invalid input length.")
    versioned_hash, z, y = data[:32], data[32:64], data[64:96]
    commitment, proof = data[96:144], data[144:192]
    if kzg_to_versioned_hash(commitment) != versioned_hash:
        raise VMError("Point evaluation commitment does not match versioned hash.")
    try:
        valid = ckzg.verify_kzg_proof(commitment, z, y, proof, trusted_setup())
    except RuntimeError:  # the C code rejects malformed points this way
        valid = False
    if not valid:
        raise VMError("Point evaluation KZG proof verification failed.")
    computation.output = _OUTPUT
    return computation


def blake2f_native() -> bool:
    """Whether py-evm's BLAKE2 F precompile compresses with blake2b-py's Rust code
    (py-evm imports it when it can) rather than its own pure-Python fallback."""
    from eth._utils.blake2 import compression
    from eth.precompiles import blake2
    return blake2.blake2b_compress is not compression.blake2b_compress


# -- BN254 through revm ------------------------------------------------------------
#: revm's transaction carrying a precompile call: its sender (no balance needed at
#: a zero gas price) and gas enough for any input a block could hold. Cancun's
#: rules, not Osaka's, whose per-transaction gas cap would refuse a large pairing.
_CALLER = "0x" + "00" * 19 + "01"
_REVM_GAS = 2**60
_REVM_SPEC = "CANCUN"
_REVM: tuple[int, Any] | None = None


def revm_available() -> bool:
    """Whether pyrevm is installed here (then :func:`revm_output` computes)."""
    return pyrevm is not None


def revm_output(address: int, data: bytes) -> bytes | None:
    """revm's output of the precompile at ``address`` on input ``data``; None where
    revm rejects the input, or pyrevm is not installed."""
    global _REVM
    if pyrevm is None:
        return None
    if _REVM is None or _REVM[0] != os.getpid():  # one per process, never a parent's
        _REVM = (os.getpid(), pyrevm.EVM(spec_id=_REVM_SPEC))
    try:
        output = _REVM[1].message_call(_CALLER, f"0x{address:040x}", calldata=bytes(data),
                                       gas=_REVM_GAS)
    except Exception:  # noqa: BLE001 - revm halts on an invalid input: py-evm decides
        return None
    return bytes(output)


def _through_revm(computation: ComputationAPI, address: int, cost: int, reason: str,
                  original: Callable[[ComputationAPI], ComputationAPI]) -> ComputationAPI:
    """revm's output for the cost py-evm charges; anything else to ``original``."""
    return output_or_original(
        computation, cost, reason,
        lambda: revm_output(address, computation.msg.data_as_bytes), original)


def ecadd(computation: ComputationAPI, *, original: Callable[..., Any],
          gas_cost: int) -> ComputationAPI:
    """BN254 point addition (``0x06``), as py-evm's ``ecadd`` at ``gas_cost``."""
    return _through_revm(computation, 0x06, gas_cost, "ECADD Precompile", original)


def ecmul(computation: ComputationAPI, *, original: Callable[..., Any],
          gas_cost: int) -> ComputationAPI:
    """BN254 scalar multiplication (``0x07``), as py-evm's ``ecmul`` at ``gas_cost``."""
    return _through_revm(computation, 0x07, gas_cost, "ECMUL Precompile", original)


def ecpairing(computation: ComputationAPI, *, original: Callable[..., Any],
              gas_cost_base: int, gas_cost_per_point: int) -> ComputationAPI:
    """BN254 pairing check (``0x08``), as py-evm's ``ecpairing`` at its prices."""
    size = len(computation.msg.data)
    if size % 192:
        return original(computation)  # py-evm's error for a partial pair
    return _through_revm(computation, 0x08,
                         gas_cost_base + size // 192 * gas_cost_per_point,
                         "ECPAIRING Precompile", original)


#: py-evm's BN254 functions (under each fork's ``curry``) -> pevm's
_BN254: dict[Callable[..., Any], Callable[..., Any]] = {
    pyevm_ecadd.func: ecadd, pyevm_ecmul.func: ecmul, pyevm_ecpairing.func: ecpairing}


def _gas_prices(function: Any) -> dict[str, Any]:
    """The keyword arguments a fork's curried precompile binds, with the
    function's own defaults for those it leaves (Byzantium binds none)."""
    prices = {name: parameter.default
              for name, parameter in inspect.signature(function.func).parameters.items()
              if parameter.default is not inspect.Parameter.empty}
    prices.update(function.keywords)
    return prices


def fast_version(function: Callable[..., Any]) -> Callable[..., Any] | None:
    """pevm's version of py-evm's precompile ``function``, or None to keep it."""
    if function is point_evaluation_precompile:
        return point_evaluation
    bls = fast_bls(function)
    if bls is not None:
        return bls
    fast = _BN254.get(getattr(function, "func", None))  # type: ignore[arg-type]
    if fast is None or pyrevm is None:
        return None
    return functools.partial(fast, original=function, **_gas_prices(function))


def with_fast_precompiles(computation_class: type) -> type:
    """``computation_class`` with pevm's precompiles where it has py-evm's
    (:func:`fast_version`)."""
    return replace_precompiles(computation_class, fast_version)
