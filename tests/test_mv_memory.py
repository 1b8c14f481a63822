"""Multi-version memory: versions, lazy credits, wipes, ESTIMATEs, commit, validation."""
from __future__ import annotations

import dataclasses
import pickle
import random

import pytest

from pevm.engines.locations import (BALANCE, CODE, EXISTS, FLOOR, NONCE, ORIGINAL,
                                    STORAGE, WIPE, location_text)
from pevm.engines.mv_memory import ESTIMATE, Blocked, Delta, MVMemory, TxWrites

A = b"\xaa" * 20
B = b"\xbb" * 20

PRE = {(BALANCE, A): 100, (NONCE, A): 3, (CODE, A): b"\x60\x00", (EXISTS, A): True,
       (STORAGE, A, 1): 9, (STORAGE, A, 2): 8, (BALANCE, B): 0, (EXISTS, B): False}


def base(key):
    return PRE.get(key, 0 if key[0] != CODE else b"")


def writes(values=None, deltas=None, wiped=()):
    return TxWrites(values=dict(values or {}), deltas=dict(deltas or {}),
                    wiped=tuple(wiped))


def test_reads_fall_back_to_the_pre_state():
    mv = MVMemory(base)
    assert mv.read((BALANCE, A), 0) == 100
    assert mv.read((STORAGE, A, 1), 5) == 9
    assert mv.read((EXISTS, B), 3) is False


def test_a_read_sees_the_highest_write_below_it():
    mv = MVMemory(base)
    mv.record(2, 0, writes({(NONCE, A): 4}))
    mv.record(5, 0, writes({(NONCE, A): 5}))
    assert mv.read((NONCE, A), 0) == 3
    assert mv.read((NONCE, A), 2) == 3       # not its own write
    assert mv.read((NONCE, A), 3) == 4
    assert mv.read((NONCE, A), 5) == 4
    assert mv.read((NONCE, A), 6) == 5


def test_a_new_incarnation_replaces_the_old_writes():
    mv = MVMemory(base)
    assert mv.record(1, 0, writes({(NONCE, A): 4, (STORAGE, A, 1): 1}))
    assert not mv.record(1, 1, writes({(NONCE, A): 7}))   # no new location
    assert mv.read((NONCE, A), 2) == 7
    assert mv.read((STORAGE, A, 1), 2) == 9               # old write gone
    assert mv.record(1, 2, writes({(NONCE, A): 7, (NONCE, B): 1}))  # new location


def test_lazy_credits_fold_onto_the_latest_absolute_value():
    mv = MVMemory(base)
    mv.record(1, 0, writes(deltas={A: 5}))
    mv.record(2, 0, writes(deltas={A: 7}))
    assert mv.read((BALANCE, A), 1) == 100
    assert mv.read((BALANCE, A), 2) == 105
    assert mv.read((BALANCE, A), 3) == 112
    mv.record(2, 1, writes({(BALANCE, A): 50}))
    mv.record(3, 0, writes(deltas={A: 1}))
    assert mv.read((BALANCE, A), 4) == 51   # absolute at 2 cuts the credit at 1


def test_estimates_block_readers_until_replaced():
    mv = MVMemory(base)
    mv.add_estimates(1, [(NONCE, A), (BALANCE, B)])
    with pytest.raises(Blocked) as blocked:
        mv.read((NONCE, A), 2)
    assert blocked.value.txn == 1
    with pytest.raises(Blocked):
        mv.read((BALANCE, B), 5)
    assert mv.read((NONCE, A), 1) == 3      # readers below are unaffected
    mv.record(1, 0, writes({(NONCE, A): 4}))
    assert mv.read((NONCE, A), 2) == 4
    assert mv.read((BALANCE, B), 5) == 0    # a marker it did not write goes too


def test_predicted_estimates_for_a_transaction_not_executed_here():
    mv = MVMemory(base)
    mv.add_estimates(3, [(NONCE, A), (BALANCE, A)])
    with pytest.raises(Blocked):
        mv.read((NONCE, A), 4)
    assert mv.read((NONCE, A), 3) == 3
    mv.commit(0, writes())
    mv.commit(1, writes())
    mv.commit(2, writes())
    mv.commit(3, writes({(NONCE, A): 4}))   # its real writes replace the markers
    assert mv.read((NONCE, A), 4) == 4
    assert mv.read((BALANCE, A), 4) == 100


def test_storage_wipes_hide_older_slot_values():
    mv = MVMemory(base)
    mv.record(1, 0, writes({(STORAGE, A, 2): 20}))
    mv.record(2, 0, writes(wiped=[A]))
    mv.record(3, 0, writes({(STORAGE, A, 1): 30}, wiped=[A]))  # wipe, then write
    assert mv.read((STORAGE, A, 1), 2) == 9
    assert mv.read((STORAGE, A, 2), 2) == 20
    assert mv.read((STORAGE, A, 2), 3) == 0
    assert mv.read((STORAGE, A, 1), 3) == 0
    assert mv.read((STORAGE, A, 1), 4) == 30
    assert mv.read((STORAGE, A, 2), 4) == 0


def test_original_value_after_an_own_wipe_ignores_the_pre_state():
    # py-evm's journal shows a wiped slot's "original" as the last value written
    # in the block since the previous wipe, else 0 -- never the pre-block value.
    mv = MVMemory(base)
    assert mv.read((ORIGINAL, A, 1), 1) == 0
    mv.record(1, 0, writes({(STORAGE, A, 1): 44}))
    assert mv.read((ORIGINAL, A, 1), 2) == 44
    mv.commit(0, writes())
    mv.commit(1)
    assert mv.read((ORIGINAL, A, 1), 2) == 44
    assert mv.read((ORIGINAL, A, 2), 2) == 0
    mv.commit(2, writes(wiped=[A]))
    assert mv.read((ORIGINAL, A, 1), 3) == 0


def test_commit_folds_in_order_and_drops_versions():
    mv = MVMemory(base)
    mv.record(0, 0, writes({(STORAGE, A, 1): 1}, deltas={B: 10}))
    with pytest.raises(ValueError):
        mv.commit(1, writes())
    mv.commit(0)
    assert mv.committed_upto == 1
    assert mv.committed[(BALANCE, B)] == 10
    assert mv.committed[(STORAGE, A, 1)] == 1
    mv.commit(1, writes(wiped=[A], deltas={B: 5}))
    assert (STORAGE, A, 1) not in mv.committed
    assert mv.read((STORAGE, A, 2), 2) == 0          # wiped: not the pre-state 8
    assert mv.read((BALANCE, B), 2) == 15
    with pytest.raises(ValueError):
        mv.record(1, 1, writes())                    # committed: immutable


def test_value_based_validation():
    mv = MVMemory(base)
    mv.record(1, 0, writes({(NONCE, A): 4}))
    assert mv.validate(2, {(NONCE, A): 4, (BALANCE, A): 100})
    assert not mv.validate(2, {(NONCE, A): 3})
    mv.record(1, 1, writes({(NONCE, A): 4, (STORAGE, A, 1): 9}))
    assert mv.validate(2, {(NONCE, A): 4, (STORAGE, A, 1): 9})  # same values: valid
    mv.add_estimates(3, [(STORAGE, A, 1)])
    assert not mv.validate(4, {(STORAGE, A, 1): 9})  # an ESTIMATE below: invalid


def test_validation_at_the_commit_point_agrees_with_reading_each_location():
    # the short path for the transaction at the commit point against read() on
    # random histories: committed writes, wipes and credits below it, recorded
    # versions and ESTIMATE markers above it
    keys = [(BALANCE, A), (BALANCE, B), (NONCE, A), (CODE, A), (EXISTS, B),
            (STORAGE, A, 1), (STORAGE, A, 2), (STORAGE, B, 1)]
    for seed in range(200):
        rng = random.Random(seed)
        mv = MVMemory(base)

        def random_writes(rng: random.Random = rng) -> TxWrites:
            values = {k: rng.choice([0, 1, 9, 100]) for k in rng.sample(keys, 2)
                      if k[0] not in (BALANCE, CODE, EXISTS)}
            return writes(values, deltas={rng.choice([A, B]): rng.choice([0, 5])},
                          wiped=[A] if rng.random() < 0.2 else [])

        at = rng.randrange(0, 6)
        for txn in range(at):
            mv.commit(txn, random_writes())
        for txn in range(at + 1, at + 4):
            if rng.random() < 0.5:
                mv.record(txn, 0, random_writes())
            else:
                mv.add_estimates(txn, rng.sample(keys, 2))
        for _ in range(10):
            reads = {}
            for key in rng.sample(keys, 3):
                now = mv.read(key, at)
                reads[key] = now if rng.random() < 0.7 else rng.choice([0, 1, 9, 100])
            slot = rng.choice([1, 2])
            reads[(ORIGINAL, A, slot)] = rng.choice([0, 9, mv.read((ORIGINAL, A, slot), at)])
            reads[(FLOOR, rng.choice([A, B]))] = rng.choice([0, 50, 101])
            expected = all(mv.holds(key, value, at) for key, value in reads.items())
            assert mv.validate(at, reads) is expected, (seed, reads)


def test_markers_and_writes_pickle():
    assert pickle.loads(pickle.dumps(ESTIMATE)) is ESTIMATE
    assert pickle.loads(pickle.dumps(Delta(5))) == Delta(5)
    w = writes({(STORAGE, A, 1): 2}, deltas={B: 3}, wiped=[A])
    assert pickle.loads(pickle.dumps(w)) == w
    assert set(w.keys()) == {(STORAGE, A, 1), (BALANCE, B), (WIPE, A)}


def test_locations_read_as_text():
    assert location_text((STORAGE, A, 16)) == "0x" + A.hex() + ":storage[0x10]"
    assert location_text((BALANCE, B)) == "0x" + B.hex() + ":balance"


def test_engine_records_survive_a_worker_message_field_for_field():
    # TxWrites, TxOutcome and TxResult pickle through their own __reduce__ (cheaper
    # than a slots dataclass's default): every field, a later one included, must
    # come back.
    from pevm.engines.executor import TxOutcome, TxResult

    writes = TxWrites(values={(0, b"a" * 20): 5}, deltas={b"b" * 20: 7},
                      wiped=(b"c" * 20,))
    outcome = TxOutcome(valid=False, reason="why", is_error=True, gas_remaining=3,
                        gas_refund=4, data_floor_gas=5, logs=((b"d" * 20, (1,), b"x"),))
    result = TxResult(txn=9, incarnation=2, reads={(1, b"a" * 20): 3}, writes=writes,
                      outcome=outcome, blocked_on=4, crash="trace", worker=1,
                      sender=b"e" * 20)
    for record in (writes, outcome, result):
        copy = pickle.loads(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        assert type(copy) is type(record)
        for f in dataclasses.fields(record):
            assert getattr(copy, f.name) == getattr(record, f.name), f.name
        # a field added to the class but not to __reduce__ would come back default
        assert len(record.__reduce__()[1]) == len(dataclasses.fields(record))
