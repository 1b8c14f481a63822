"""pevm's sender recovery (``senders.recover_sender``) against eth-keys' own checks.

The engine pins the sender it recovers, so py-evm never checks that signature
again: a sender it returns must be exactly the one py-evm would recover, and a
signature py-evm refuses must give None (py-evm then reports it in block order).
"""
from __future__ import annotations

import random

import pytest
from eth.vm.forks import (
    BerlinVM, CancunVM, FrontierVM, HomesteadVM, LondonVM, PragueVM, SpuriousDragonVM,
)
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.constants import SECPK1_N

from pevm.engines.senders import (LEGACY, LEGACY_EIP155, recover_encoded, recover_sender,
                                  sender_encoding, signing_message)

KEY = keys.PrivateKey(bytes([7]) * 32)
TO = bytes([0x11]) * 20


def eth_keys_sender(tx) -> bytes | None:
    """What py-evm's ``validate_transaction_signature`` accepts, through eth-keys."""
    try:
        message_hash = keccak(tx.get_message_for_signing())
        signature = keys.Signature(vrs=(tx.y_parity, tx.r, tx.s))
        public_key = signature.recover_public_key_from_msg_hash(message_hash)
        if not signature.verify_msg_hash(message_hash, public_key):
            return None
        return public_key.to_canonical_address()
    except Exception:  # noqa: BLE001 - the oracle: any failure is a refusal
        return None


def signed(vm_class, nonce: int):
    builder = vm_class.get_transaction_builder()
    if vm_class in (LondonVM, PragueVM) and nonce % 2:
        unsigned = builder.new_unsigned_dynamic_fee_transaction(
            chain_id=1, nonce=nonce, max_priority_fee_per_gas=1, max_fee_per_gas=10,
            gas=21_000, to=TO, value=nonce, data=b"", access_list=[])
        return unsigned.as_signed_transaction(KEY)
    unsigned = builder.create_unsigned_transaction(
        nonce=nonce, gas_price=10, gas=21_000, to=TO, value=nonce, data=b"")
    if vm_class is FrontierVM:
        return unsigned.as_signed_transaction(KEY)
    return unsigned.as_signed_transaction(KEY, chain_id=1)


@pytest.mark.parametrize("vm_class", [FrontierVM, SpuriousDragonVM, LondonVM, PragueVM])
def test_a_valid_signature_recovers_the_signer(vm_class):
    for nonce in range(4):
        tx = signed(vm_class, nonce)
        assert recover_sender(tx) == KEY.public_key.to_canonical_address() == tx.sender


@pytest.mark.parametrize("vm_class", [FrontierVM, SpuriousDragonVM, LondonVM])
def test_altered_signatures_give_what_eth_keys_gives(vm_class):
    rng = random.Random(3)
    base = [signed(vm_class, nonce) for nonce in range(2)]
    edge = [0, 1, SECPK1_N - 1, SECPK1_N, SECPK1_N + 1, 2**256 - 1]
    refused = accepted = 0
    for tx in base:
        variants = [tx.copy(r=r) for r in edge] + [tx.copy(s=s) for s in edge]
        variants += [tx.copy(r=rng.randrange(1, SECPK1_N)) for _ in range(6)]
        variants += [tx.copy(s=rng.randrange(1, SECPK1_N)) for _ in range(6)]
        for v in (0, 1, 2, 26, 27, 28, 35, 36, 37, 38):
            try:  # legacy transactions sign with v, typed ones with y_parity
                variants.append(tx.copy(v=v) if hasattr(tx, "v") else tx.copy(y_parity=v))
            except Exception:  # noqa: BLE001 - a value the transaction refuses
                continue
        if not hasattr(tx, "v"):
            # recovery ids 2 and 3 (x = r + n, possible for r < p - n): libsecp256k1
            # recovers a key from some of these, eth-keys refuses them all
            variants += [tx.copy(r=r, y_parity=v) for r in range(1, 40) for v in (2, 3)]
        for variant in variants:
            want = eth_keys_sender(variant)
            assert recover_sender(variant) == want, (variant.r, variant.s)
            # the recovery helper's way, from the encoding alone: the same answer
            assert recover_encoded(*sender_encoding(variant)) == want, (variant.r, variant.s)
            refused += want is None
            accepted += want is not None
    assert refused and accepted  # both kinds were exercised


def every_kind_of_transaction():
    """One signed transaction of each encoding py-evm signs: legacy before and
    with EIP-155 (and without it after Spurious Dragon), EIP-2930, 1559, 4844 and
    7702; long data (a long-form RLP list header), contract creation, access lists."""
    access = [(TO, [1, 2**255]), (bytes(20), [])]
    long_data = bytes(range(256)) * 3
    auth = {"chain_id": 1, "address": TO, "nonce": 3, "y_parity": 1, "r": 5, "s": 6}
    txs = []
    for to, data in ((TO, b""), (b"", long_data)):
        for vm_class in (FrontierVM, HomesteadVM, SpuriousDragonVM, PragueVM):
            unsigned = vm_class.get_transaction_builder().create_unsigned_transaction(
                nonce=9, gas_price=10, gas=90_000, to=to, value=1, data=data)
            txs.append(unsigned.as_signed_transaction(KEY))
            if vm_class not in (FrontierVM, HomesteadVM):
                txs.append(unsigned.as_signed_transaction(KEY, chain_id=1))
                txs.append(unsigned.as_signed_transaction(KEY, chain_id=2**40))
        builder = PragueVM.get_transaction_builder()
        fees = dict(chain_id=1, nonce=2**64 - 2, gas=90_000, to=to, value=10**30,
                    data=data, access_list=access)
        txs.append(BerlinVM.get_transaction_builder().new_unsigned_access_list_transaction(
            gas_price=7, **fees).as_signed_transaction(KEY))
        txs.append(builder.new_unsigned_dynamic_fee_transaction(
            max_priority_fee_per_gas=1, max_fee_per_gas=10, **fees
        ).as_signed_transaction(KEY))
        if to:  # blob and set-code transactions cannot create contracts
            txs.append(CancunVM.get_transaction_builder().new_unsigned_blob_transaction(
                max_priority_fee_per_gas=1, max_fee_per_gas=10, max_fee_per_blob_gas=3,
                blob_versioned_hashes=[b"\x01" + bytes(31)], **fees
            ).as_signed_transaction(KEY))
            txs.append(builder.new_unsigned_set_code_transaction(
                max_priority_fee_per_gas=1, max_fee_per_gas=10,
                authorization_list=[auth], **fees).as_signed_transaction(KEY))
    return txs


def test_the_signing_message_is_py_evms():
    txs = every_kind_of_transaction()
    assert {getattr(tx, "type_id", None) for tx in txs} == {None, 1, 2, 3, 4}
    for tx in txs:
        assert signing_message(tx) == tx.get_message_for_signing(), type(tx)
        assert recover_sender(tx) == KEY.public_key.to_canonical_address()


def test_the_encoding_alone_recovers_what_the_transaction_does():
    # the sender pipeline's helper gets the encoding, not the object
    # (recovery_helper.HelperPool.send): same sender, every kind of transaction
    kinds = set()
    for tx in every_kind_of_transaction():
        kind, encoding = sender_encoding(tx)
        kinds.add(kind)
        assert recover_encoded(kind, encoding) == recover_sender(tx) \
            == KEY.public_key.to_canonical_address(), type(tx)
    assert kinds == {LEGACY, LEGACY_EIP155, 1, 2, 3, 4}


def test_an_encoding_of_another_shape_is_refused_not_misread():
    tx = signed(LondonVM, 1)
    kind, encoding = sender_encoding(tx)
    with pytest.raises(ValueError):
        recover_encoded(LEGACY, encoding)  # a typed payload read as a legacy one
    with pytest.raises(ValueError):
        recover_encoded(kind, b"\xc3\x01\x02\x03")  # too few fields for a signature


def test_a_transaction_class_pevm_does_not_know_signs_through_py_evm():
    class Unknown(type(signed(LondonVM, 0))):
        def get_message_for_signing(self) -> bytes:
            return b"overridden"

    tx = signed(LondonVM, 0)
    unknown = Unknown(*[getattr(tx, name) for name, _ in tx._meta.fields])
    assert signing_message(unknown) == b"overridden"
    assert sender_encoding(unknown) is None  # so it travels to the helper as itself


def test_a_batch_pins_each_sender_and_leaves_a_refused_signature_to_py_evm():
    # the engine recovers an in-process run's senders, and a worker's chunk's, in
    # one batch (BlockContext.recover_senders): each pinned, in order, once
    from pevm.engines.executor import BlockContext
    from pevm.pyevm_compat import pinned_sender

    from .chain_builder import new_chain
    good = [signed(CancunVM, nonce) for nonce in range(3)]
    refused = good[1].copy(s=0)                   # eth-keys refuses s == 0
    txs = (good[0], refused, good[2])
    ctx = BlockContext(new_chain(CancunVM).get_vm(), txs)
    signer = KEY.public_key.to_canonical_address()
    assert ctx.recover_senders(range(3)) == [(0, signer), (1, None), (2, signer)]
    assert [pinned_sender(tx) for tx in txs] == [signer, None, signer]
    assert ctx.recover_senders([1]) == [(1, None)]  # asked again: still refused
    assert eth_keys_sender(refused) is None
