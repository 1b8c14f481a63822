"""The per-transaction state view: read/write sets, journal, lazy credits, wipes."""
from __future__ import annotations

from eth.constants import EMPTY_SHA3
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth_hash.auto import keccak

from pevm.engines.locations import (BALANCE, CODE, DORMANT, EXISTS, NONCE, ORIGINAL,
                                    STORAGE)
from pevm.engines.mv_memory import MVMemory
from pevm.engines.pre_state import PreState
from pevm.engines.state_view import StateView, code_hash

A = b"\xaa" * 20
B = b"\xbb" * 20
C = b"\xcc" * 20

PRE = {(BALANCE, A): 100, (NONCE, A): 3, (CODE, A): b"\x60\x00", (EXISTS, A): True,
       (STORAGE, A, 1): 9, (BALANCE, B): 0, (NONCE, B): 0, (CODE, B): b"",
       (EXISTS, B): True, (EXISTS, C): False, (BALANCE, C): 0, (NONCE, C): 0,
       (CODE, C): b""}


def make_view():
    seen = []

    def read(key):
        seen.append(key)
        return PRE.get(key, 0)

    return StateView(read), seen


def test_reads_are_recorded_once_with_their_values():
    view, seen = make_view()
    assert view.get_balance(A) == 100
    assert view.get_balance(A) == 100
    assert view.get_nonce(A) == 3
    assert view.get_storage(A, 1) == 9
    assert view.get_storage(A, 1) == 9
    # DORMANT, a pre-block fact no transaction writes, is asked once per account
    # whose storage is touched and stays out of the read set (nothing to validate)
    assert seen == [(BALANCE, A), (NONCE, A), (DORMANT, A), (STORAGE, A, 1)]
    assert view.reads == {(BALANCE, A): 100, (NONCE, A): 3, (STORAGE, A, 1): 9}


def test_writes_are_local_and_journaled():
    view, _ = make_view()
    outer = view.record()
    view.set_storage(A, 1, 5)
    inner = view.record()
    view.set_nonce(A, 4)
    view.mark_address_warm(B)
    view.discard(inner)
    assert view.get_nonce(A) == 3
    assert not view.is_address_warm(B)
    assert view.get_storage(A, 1) == 5
    inner = view.record()
    view.set_storage(A, 1, 6)
    view.commit(inner)                         # committed into the outer frame...
    view.discard(outer)                        # ...which the outer discard undoes
    assert view.get_storage(A, 1) == 9
    assert view.writes().values == {}


def test_a_credit_to_an_unread_balance_stays_lazy():
    view, seen = make_view()
    view.add_balance(B, 7)
    view.add_balance(B, 3)
    assert seen == []                          # no read: no dependency
    assert view.account_exists(B)              # the credit made it exist
    assert not view.account_is_empty(B)        # positive credit: not empty...
    assert (BALANCE, B) not in view.reads      # ...without reading the balance
    w = view.writes()
    assert w.deltas == {B: 10}
    assert (BALANCE, B) not in w.values
    assert view.get_balance(B) == 10           # reading resolves base + credit
    assert view.reads[(BALANCE, B)] == 0


def test_a_positive_credit_settles_emptiness_without_reading_nonce_or_code():
    # The block beneficiary after a fee (EIP-161's emptiness check): a mining pool
    # that also sends transactions in its block changes its own nonce, and every
    # other transaction's check must not depend on that.
    view, seen = make_view()
    view.add_balance(A, 5)
    assert not view.account_is_empty(A)
    assert seen == [] and view.reads == {}


def test_a_zero_credit_needs_the_real_balance_for_emptiness():
    view, _ = make_view()
    view.add_balance(B, 0)
    assert view.account_is_empty(B)
    assert view.reads[(BALANCE, B)] == 0
    assert view.writes().deltas == {}


def test_debits_and_credits_to_a_read_balance_are_absolute():
    view, _ = make_view()
    view.add_balance(A, -30)                   # a debit reads first
    assert view.reads[(BALANCE, A)] == 100
    view.add_balance(A, 5)
    assert view.writes().values[(BALANCE, A)] == 75


def test_lazy_credits_revert_with_their_frame():
    view, _ = make_view()
    checkpoint = view.record()
    view.add_balance(B, 9)
    view.discard(checkpoint)
    w = view.writes()
    assert w.deltas == {} and (EXISTS, B) not in w.values


def test_delete_account_writes_every_field_and_wipes_storage():
    view, seen = make_view()
    view.set_storage(A, 2, 4)
    view.delete_account(A)
    assert view.get_storage(A, 1) == 0         # wiped: no outside read
    assert (STORAGE, A, 1) not in seen
    assert not view.account_exists(A)
    assert view.get_code_hash(A) == EMPTY_SHA3
    w = view.writes()
    assert w.wiped == (A,)
    assert w.values[(EXISTS, A)] is False
    assert w.values[(BALANCE, A)] == 0 and w.values[(NONCE, A)] == 0
    assert w.values[(CODE, A)] == b""
    assert (STORAGE, A, 2) not in w.values


def test_original_storage_value():
    view, _ = make_view()
    view.set_storage(A, 1, 5)
    assert view.get_storage(A, 1, from_journal=False) == 9
    view.delete_storage(A)                     # e.g. CREATE2 over old storage
    assert view.get_storage(A, 1, from_journal=False) == 0
    assert (ORIGINAL, A, 1) in view.reads


def test_no_op_writes_are_dropped_but_not_after_a_wipe():
    view, _ = make_view()
    view.get_storage(A, 1)
    view.set_storage(A, 1, 9)                  # same as read
    view.set_nonce(A, view.get_nonce(A))
    assert view.writes().values == {(EXISTS, A): True}
    view.delete_storage(A)
    view.set_storage(A, 1, 9)                  # same value, but after the wipe
    assert view.writes().values[(STORAGE, A, 1)] == 9


def test_existence_and_touch():
    view, _ = make_view()
    assert not view.account_exists(C)
    view.touch_account(C)
    assert view.account_exists(C)
    assert view.account_is_empty(C)
    assert view.writes().values == {(EXISTS, C): True}


def test_warm_sets_are_per_transaction():
    view, _ = make_view()
    view.mark_storage_warm(A, 1)
    view.mark_address_warm(A)
    assert view.is_storage_warm(A, 1) and view.is_address_warm(A)
    view.lock_changes()
    assert not view.is_storage_warm(A, 1) and not view.is_address_warm(A)


def test_code_hash_is_keccak_of_code():
    view, _ = make_view()
    assert view.get_code_hash(A) == keccak(b"\x60\x00") == code_hash(b"\x60\x00")
    assert view.get_code_hash(B) == EMPTY_SHA3
    assert view.account_has_code_or_nonce(A)
    assert not view.account_has_code_or_nonce(B)


def test_view_over_multi_version_memory():
    mv = MVMemory(lambda key: PRE.get(key, 0))
    first = StateView(lambda key: mv.read(key, 0))
    first.set_balance(A, first.get_balance(A) - 10)
    first.add_balance(B, 10)
    mv.commit(0, first.writes())
    second = StateView(lambda key: mv.read(key, 1))
    assert second.get_balance(A) == 90
    assert second.get_balance(B) == 10


def test_pre_state_reads_accounts_once_and_moves_between_processes():
    db = AccountDB(AtomicDB())
    db.set_balance(A, 5)
    db.set_nonce(A, 2)
    db.set_code(A, b"\x00\x01")
    db.set_storage(A, 3, 4)
    db.make_state_root()
    pre = PreState(db)
    assert pre((BALANCE, A)) == 5 and pre((NONCE, A)) == 2
    assert pre((EXISTS, A)) is True and pre((EXISTS, B)) is False
    assert pre((CODE, A)) == b"\x00\x01" and pre((CODE, B)) == b""
    assert pre((STORAGE, A, 3)) == 4 and pre((STORAGE, A, 4)) == 0
    exported = pre.export()
    other = PreState(None)                     # no database: everything absorbed
    other.absorb(exported)
    assert other((BALANCE, A)) == 5 and other((CODE, A)) == b"\x00\x01"
    assert other((STORAGE, A, 3)) == 4 and other((EXISTS, B)) is False
    assert pre.export() == []


def test_pre_state_lists_the_slots_read_of_each_account_in_one_pass():
    db = AccountDB(AtomicDB())
    for slot in (7, 3, 5):
        db.set_storage(A, slot, slot)
    db.set_storage(B, 1, 1)
    db.make_state_root()
    pre = PreState(db)
    for slot in (7, 3, 9):                     # 9: read, empty; 5: never read
        pre((STORAGE, A, slot))
    pre((STORAGE, B, 1))
    assert pre.slots_of([A, C]) == {A: [3, 7, 9]}   # C: nothing read
    assert pre.slots_of({A, B}) == {A: [3, 7, 9], B: [1]}
    assert pre.slots_of([]) == {}
    other = PreState(None)                     # slots another process read count too
    other.absorb(pre.export())
    assert other.slots_of([B]) == {B: [1]}
