"""Precompiles pevm's VMs run without py-evm's per-call set-up cost.

py-evm 0.12's KZG point-evaluation precompile (EIP-4844, address ``0x0a``) loads
the trusted setup from its text file on every call: about a second of a
mainnet block's import for each blob-verifying call (block 19932703: 1.2 s of 4.3 s).
:func:`point_evaluation` is the same precompile -- the same gas, checks, error
messages and output, through the same ``ckzg.verify_kzg_proof`` -- with the setup
loaded once per process (it is immutable data). pevm's VMs on the flat backend
use it (:func:`pevm.state.backend.vm_class_on`); py-evm's reference keeps its own.
``tests/test_precompiles.py`` runs both on valid and invalid inputs.
"""
from __future__ import annotations

import functools
from typing import Any

import ckzg  # type: ignore[import-not-found]  # a C extension without type information
from eth.abc import ComputationAPI
from eth.exceptions import VMError
from eth.precompiles.point_evaluation import (TRUSTED_SETUP_PATH, kzg_to_versioned_hash,
                                              point_evaluation_precompile)
from eth.vm.forks.cancun.constants import (BLS_MODULUS, FIELD_ELEMENTS_PER_BLOB,
                                           POINT_EVALUATION_PRECOMPILE_GAS)

from pevm.pyevm_compat import replace_precompile

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


def with_fast_precompiles(computation_class: type) -> type:
    """``computation_class`` with :func:`point_evaluation` where it has py-evm's."""
    return replace_precompile(computation_class, point_evaluation_precompile,
                              point_evaluation)
