"""Receipts made with the block-wide bloom cache are py-evm's receipts, byte for byte.

The merge hands py-evm's stock ``make_receipt`` a stand-in transaction whose receipt
takes its bloom from :class:`~pevm.engines.blooms.BloomCache` (each log item hashed
once per block, the whole block's items in one batch) instead of eth-bloom's
per-receipt computation; the receipt must be the one the transaction's own step
makes, for every transaction type, and a transaction class with a receipt step of
its own keeps it.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from eth_bloom import BloomFilter
from eth_keys import keys
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks import CancunVM, PragueVM
from hypothesis import given, settings, strategies as st

from pevm.engines import blooms
from pevm.engines.blooms import BloomCache, with_cached_bloom

KEY = keys.PrivateKey(b"\x11" * 32)
TO = b"\x22" * 20

addresses = st.sampled_from([b"\x01" * 20, b"\x02" * 20, b"\xaa" * 20, bytes(20)])
topics = st.sampled_from([0, 1, 2**256 - 1, 0xDDF252AD, 12345]) | st.integers(0, 2**256 - 1)
log_entries = st.lists(
    st.tuples(addresses, st.lists(topics, max_size=4).map(tuple), st.binary(max_size=8)),
    max_size=6).map(tuple)


def _eth_bloom(entries) -> int:
    bloom = BloomFilter()
    for address, log_topics, _data in entries:
        bloom.add(address)
        for topic in log_topics:
            bloom.add(topic.to_bytes(32, "big"))
    return int(bloom)


@settings(max_examples=200, deadline=None)
@given(st.lists(log_entries, min_size=1, max_size=4))
def test_the_cache_gives_eth_blooms_value_receipt_after_receipt(receipts):
    cache = BloomCache()  # one cache across the block's receipts, as in the merge
    for entries in receipts:
        assert cache.bloom(entries) == _eth_bloom(entries)


@settings(max_examples=200, deadline=None)
@given(st.lists(log_entries, min_size=1, max_size=4), st.integers(0, 4))
def test_items_hashed_in_one_batch_give_the_same_blooms(receipts, prepared):
    # the merge hashes the block's items in one batch first; receipts after the
    # prepared ones still hash their new items one by one
    cache = BloomCache()
    cache.prepare(receipts[:prepared])
    for entries in receipts:
        assert cache.bloom(entries) == _eth_bloom(entries)


def _transactions():
    """One signed transaction of each type py-evm knows (Prague's builder)."""
    builder = PragueVM.get_transaction_builder()
    common = dict(chain_id=1, nonce=3, gas=90_000, to=TO, value=5, data=b"\x01")
    fees = dict(max_priority_fee_per_gas=2, max_fee_per_gas=10**9)
    legacy = PragueVM.create_unsigned_transaction(
        nonce=3, gas_price=7, gas=90_000, to=TO, value=5, data=b"\x01")
    return {
        "legacy": legacy.as_signed_transaction(KEY),
        "access list": builder.new_unsigned_access_list_transaction(
            gas_price=7, access_list=((TO, (1, 2)),), **common).as_signed_transaction(KEY),
        "dynamic fee": builder.new_unsigned_dynamic_fee_transaction(
            access_list=(), **fees, **common).as_signed_transaction(KEY),
        "blob": builder.new_unsigned_blob_transaction(
            access_list=(), max_fee_per_blob_gas=1,
            blob_versioned_hashes=(b"\x01" + b"\x00" * 31,), **fees, **common,
        ).as_signed_transaction(KEY),
        "set code": builder.new_unsigned_set_code_transaction(
            access_list=(), authorization_list=(), **fees, **common,
        ).as_signed_transaction(KEY),
    }


ENTRIES = ((b"\x01" * 20, (0xDDF252AD, 5), b"data"), (b"\x02" * 20, (), b""),
           (b"\x01" * 20, (0xDDF252AD,), b"\x00"))


@pytest.mark.parametrize("kind", list(_transactions()))
@pytest.mark.parametrize("status", [b"", b"\x01"])
def test_every_transaction_type_gets_its_own_steps_receipt(kind, status):
    tx = _transactions()[kind]
    stand_in = with_cached_bloom(tx, BloomCache())
    assert stand_in is not tx  # a stock step: replaced
    want = tx.make_receipt(status, 21_000, ENTRIES)
    got = stand_in.make_receipt(status, 21_000, ENTRIES)
    assert type(got) is type(want)
    assert got.encode() == want.encode()
    assert got.bloom == want.bloom != 0


def test_the_vms_own_make_receipt_runs_on_the_stand_in():
    """ByzantiumVM.make_receipt (cumulative gas, status) sees the transaction's
    fields through the stand-in."""
    from pevm.engines.executor import FinishedComputation  # what the merge passes
    tx = _transactions()["dynamic fee"]
    header = SimpleNamespace(gas_used=1_000)  # all make_receipt reads of it

    class Outcome:  # the fields FinishedComputation reads
        is_error = False
        gas_remaining = 40_000
        gas_refund = 0
        data_floor_gas = 0
        logs = ENTRIES
    computation = FinishedComputation(Outcome())
    want = CancunVM.make_receipt(header, tx, computation, None)
    got = CancunVM.make_receipt(header, with_cached_bloom(tx, BloomCache()), computation,
                                None)
    assert got.encode() == want.encode()


def test_a_transaction_class_with_its_own_receipt_step_keeps_it():
    tx = _transactions()["legacy"]

    class Custom(type(tx)):
        def make_receipt(self, status, gas_used, log_entries):
            return super().make_receipt(status, gas_used, log_entries)

    custom = Custom(*tx)
    assert with_cached_bloom(custom, BloomCache()) is custom


def test_a_receipt_made_without_rlp_s_keyword_checks_is_py_evm_s(monkeypatch):
    logs = [Log(b"\x01" * 20, (0xDDF252AD, 5), b"data")]
    want = Receipt(state_root=b"\x01", gas_used=21_000, logs=logs, bloom=7)
    got = blooms._new_receipt(b"\x01", 21_000, 7, logs)
    assert blooms._PLAIN_RECEIPT       # this py-evm's Receipt: the short path ran
    assert type(got) is Receipt and got.__dict__ == want.__dict__
    assert got.encode() == want.encode() and got == want
    monkeypatch.setattr(blooms, "_PLAIN_RECEIPT", False)  # another py-evm's
    other = blooms._new_receipt(b"\x01", 21_000, 7, logs)
    assert other.encode() == want.encode() and other == want
