"""pevm.errors: a ``TypeError`` rejects a block only where py-evm raised it; raised
by pevm's own code it is a bug and surfaces as one. Errors name bytes in hex."""
from __future__ import annotations

import pytest
from eth_utils import ValidationError, big_endian_to_int

from pevm import execute_block
from pevm.engines.cost_model import default_chunk_size
from pevm.engines.reference import ReferenceEngine
from pevm.errors import describe, raised_by_pevm

from .chain_builder import ADDRESSES, mine, new_chain, transfer


def test_a_type_error_raised_under_py_evm_reads_as_a_rejection() -> None:
    with pytest.raises(TypeError) as info:
        big_endian_to_int(5)  # type: ignore[arg-type]
    assert not raised_by_pevm(info.value)


def test_a_type_error_raised_by_pevm_reads_as_a_bug() -> None:
    with pytest.raises(TypeError) as info:
        default_chunk_size("many", 2)  # type: ignore[arg-type]
    assert raised_by_pevm(info.value)
    assert not raised_by_pevm(ValueError("not a TypeError"))
    assert not raised_by_pevm(TypeError("never raised: no traceback"))


class _Buggy(ReferenceEngine):
    def apply_transactions(self, vm, transactions, base_header):
        default_chunk_size("many", 2)


def test_an_engine_bug_is_not_reported_as_a_rejected_block() -> None:
    source = new_chain()
    block = mine(source, [transfer(source, 0, ADDRESSES[1], 1000, 0)])
    with pytest.raises(TypeError, match="unary"):
        execute_block(new_chain(), block, engine=_Buggy())


def test_an_error_names_bytes_in_hex_not_as_python_reprs() -> None:
    # py-evm's own words, e.g. Frontier's "Sender b'...' cannot afford txn gas"
    sender = bytes.fromhex("00ff27") + b"'\"\\"
    exc = ValidationError(f"Sender {sender!r} cannot afford, root {bytes(2)!r}.")
    assert describe(exc) == ("ValidationError: Sender 0x00ff2727225c cannot afford, "
                             "root 0x0000.")
    # only whole literals: a word ending in b before a quote stays as it is
    assert describe(KeyError("verb'x'")) == "KeyError: \"verb'x'\""
