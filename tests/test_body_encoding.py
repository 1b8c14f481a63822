"""pevm.state.body_encoding: the same bytes as py-evm's encode(), objects left alike."""
from __future__ import annotations

import pytest
import rlp
from eth.db.chain import BlockDataKey
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.prague.receipts import PragueTypedReceipt
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_keys.datatypes import PrivateKey
from eth_typing import Address
from eth_utils import to_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from pevm.state.body_encoding import encode_lookup, encode_receipt, encode_transaction

UINT256 = st.integers(0, 2**256 - 1)
logs = st.lists(st.builds(
    lambda address, topics, data: (address, tuple(topics), data),
    st.binary(min_size=20, max_size=20), st.lists(UINT256, max_size=4),
    st.binary(max_size=120)), max_size=4)
receipts = st.tuples(
    st.one_of(st.sampled_from([b"", b"\x01"]), st.binary(min_size=32, max_size=32)),
    st.integers(0, 2**64), logs, st.integers(0, 2**2048 - 1),
    st.sampled_from([None, 1, 2, 3, 4]))


def build(spec: tuple) -> Receipt | PragueTypedReceipt:
    """A fresh receipt object of ``spec`` (each call a new, uncached one)."""
    state_root, gas_used, log_specs, bloom, type_id = spec
    inner = Receipt(state_root, gas_used, [Log(*log) for log in log_specs], bloom)
    return inner if type_id is None else PragueTypedReceipt(type_id, inner)


@settings(max_examples=150, deadline=None)
@given(receipts)
def test_a_receipt_encodes_as_py_evm_encodes_it(spec: tuple) -> None:
    ours = build(spec)
    expected = build(spec).encode()  # rlp's serializer, on an untouched object
    assert encode_receipt(ours) == expected
    # and the object is left as py-evm's encode() leaves it: later calls agree
    assert ours.encode() == expected
    assert encode_receipt(ours) == expected
    if spec[-1] is not None:
        assert ours._type_byte == to_bytes(spec[-1])
        assert rlp.encode(ours._inner) == expected[1:]


def test_a_value_out_of_range_raises_what_py_evm_raises() -> None:
    for bad in (Receipt(b"", 1, [], 2**2048), Receipt(b"", -1, [], 0),
                Receipt(b"", 1, [Log(b"\x00" * 20, (2**256,), b"")], 0)):
        with pytest.raises(rlp.SerializationError):
            bad.encode()
        with pytest.raises(rlp.SerializationError):
            encode_receipt(bad)


def test_a_typed_transaction_gets_its_type_byte_and_encodes_as_before() -> None:
    builder = PragueTransactionBuilder
    unsigned = builder.new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=3, max_priority_fee_per_gas=1, max_fee_per_gas=10,
        gas=21000, to=Address(b"\x11" * 20), value=5, data=b"", access_list=[])
    signed = unsigned.as_signed_transaction(PrivateKey(b"\x01" * 32))
    encoded = signed.encode()
    fresh = builder.decode(encoded)
    assert "_type_byte" not in fresh.__dict__
    assert encode_transaction(fresh) == encoded
    assert fresh.__dict__["_type_byte"] == to_bytes(2)
    legacy = builder.new_transaction(nonce=0, gas_price=1, gas=21000, to=Address(b"\x22" * 20),
                                     value=1, data=b"", v=27, r=1, s=1)
    assert encode_transaction(legacy) == legacy.encode() == rlp.encode(legacy)


@given(st.integers(0, 2**64), st.integers(0, 2**20))
def test_a_transaction_lookup_encodes_as_rlp_does(number: int, index: int) -> None:
    assert encode_lookup(number, index) == rlp.encode(BlockDataKey(number, index))
