"""A flat, versioned state view behind py-evm's interpreter, for one transaction.

:class:`StateView` implements py-evm's ``AccountDatabaseAPI``. One view serves one
execution (incarnation) of one transaction: it reads the state the transaction sees
at its position in the block through a *reader* (multi-version memory over a flat
pre-state cache, :mod:`pevm.engines.mv_memory`), buffers the transaction's writes
with py-evm's snapshot/revert semantics (an undo journal), keeps the transaction's
warm/cold access sets, and records:

* the **read set** -- every location the transaction observed from outside, with
  the value it saw (``view.reads``), including existence (``EXISTS``), code
  (``CODE``; EXTCODEHASH/EXTCODESIZE and emptiness checks read it), storage slots
  as resolved through wipes, and the EIP-2200 "original" value of a slot;
* the **write set** -- :meth:`StateView.writes`: final values per location, lazy
  balance credits, and wiped accounts.

Lazy credits: :func:`state_class_for` gives the fork's State class a
``delta_balance`` that calls :meth:`StateView.add_balance`. A positive credit to a
balance the transaction has not read is buffered as a delta and written as one;
reading the balance later resolves ``base + delta`` (recording the base as a read).
``account_is_empty`` on an account with a pending positive credit is answered
without reading the balance (a positive credit on a non-negative balance is never
zero) -- this is what keeps EIP-161's touched-account check of the block beneficiary
after every fee payment from reading (and so serialising on) its balance.

Lazy debits (speculative executions only): while py-evm validates a transaction and
moves its value (:meth:`StateView.open_sender_window` until the first frame starts),
the sender's balance is only *compared* -- "can it pay?" -- and debited. The view
answers those comparisons with "yes" and records what they required as a ``(FLOOR,
sender)`` read (:class:`~pevm.engines.balance_floor.BalanceFloor`); the debits stay
deltas; the sender's nonce reads as the transaction's own nonce (a read validation
checks). The same window opens for a contract in its call or create opcode until the
new frame starts (:meth:`StateView.value_check`): the opcode and ``apply_message``
only compare the contract's balance with the value and debit it. A transaction that
goes on to look at a payer's balance (BALANCE, SELFBALANCE, an emptiness check)
reads it for real, folding its own debits in, and depends on it as usual.

Existence: every account write of py-evm's ``AccountDB`` (balance, nonce, code,
touch, storage-root reset) makes the account exist; the view writes
``(EXISTS, address) = True`` for them and ``False`` on ``delete_account``, which
also writes zero balance and nonce, empty code and a storage wipe, so later
transactions see the deletion through the ordinary locations.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Callable

from eth.abc import AccountDatabaseAPI, MetaWitnessAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.db.journal import get_next_checkpoint
from eth.typing import JournalDBCheckpoint
from eth.validation import validate_uint256
from eth_hash.auto import keccak
from eth_typing import Hash32

from pevm.engines.balance_floor import BalanceFloor
from pevm.engines.locations import (BALANCE, CODE, DORMANT, EXISTS, FLOOR, NONCE,
                                    OPENED, ORIGINAL, STORAGE)
from pevm.engines.mv_memory import Key, TxWrites
from pevm.pyevm_compat import (account_db, state_class_on_account_db,
                               with_value_check_windows)

_MISSING = object()
_MEMBER = object()  # journal marker: "this member was added to a set"

_CODE_HASHES: dict[bytes, bytes] = {}


def code_hash(code: bytes) -> bytes:
    """keccak(code), cached by value (contracts are read many times)."""
    if not code:
        return EMPTY_SHA3
    digest = _CODE_HASHES.get(code)
    if digest is None:
        if len(_CODE_HASHES) > 4096:
            _CODE_HASHES.clear()
        digest = _CODE_HASHES[code] = keccak(code)
    return digest


class StateView(AccountDatabaseAPI):
    """py-evm's account database for one transaction execution (see module doc).

    ``read(key)`` resolves a location as seen by this transaction (it may raise
    :class:`~pevm.engines.mv_memory.Blocked`).
    """

    def __init__(self, read: Callable[[Key], Any],
                 state_root: bytes = BLANK_ROOT_HASH, lazy_debits: bool = False
                 ) -> None:
        self._read = read
        self._root = state_root
        #: speculative execution: the sender's debits may be lazy (module doc)
        self.lazy_debits = lazy_debits
        #: the read set: location -> value first observed from outside
        self.reads: dict[Key, Any] = {}
        self._w: dict[Key, Any] = {}          # local absolute writes
        self._lazy: dict[bytes, int] = {}     # pending credits to unread balances
        self._wiped: set[bytes] = set()       # storage wiped by this transaction
        # py-evm's storage stores, which no revert closes (see delete_storage):
        self._storage_seen: set[bytes] = set()  # storage this execution touched
        self._opened: set[bytes] = set()      # ... of DORMANT accounts: (OPENED, a)
        self._sticky: set[bytes] = set()      # wipes that survive reverts
        self._warm_accounts: set[bytes] = set()
        self._warm_slots: set[tuple[bytes, int]] = set()
        self._journal: list[tuple[Any, Any, Any]] = []
        self._checkpoints: dict[int, int] = {}
        # lazy debits (see open_sender_window, value_check)
        self._sender: bytes | None = None
        self._nonce = 0
        #: the payer whose balance is only compared until the next frame starts
        self._window: bytes | None = None

    # ------------------------------------------------------------ internals
    def _external(self, key: Key) -> Any:
        reads = self.reads
        value = reads.get(key, _MISSING)
        if value is _MISSING:
            value = reads[key] = self._read(key)
        return value

    def _get(self, key: Key) -> Any:
        value = self._w.get(key, _MISSING)
        if value is not _MISSING:
            return value
        return self._external(key)

    def _put(self, key: Key, value: Any) -> None:
        w = self._w
        self._journal.append((w, key, w.get(key, _MISSING)))
        w[key] = value

    def _set_lazy(self, address: bytes, amount: int | None) -> None:
        lazy = self._lazy
        self._journal.append((lazy, address, lazy.get(address, _MISSING)))
        if amount is None:
            del lazy[address]
        else:
            lazy[address] = amount

    def _add_member(self, container: set, member: Any) -> None:
        if member not in container:
            container.add(member)
            self._journal.append((container, member, _MEMBER))

    def _exists_now(self, address: bytes) -> None:
        key = (EXISTS, address)
        if self._w.get(key) is not True:
            self._put(key, True)

    # ---------------------------------------------------------------- root
    @property
    def state_root(self) -> Hash32:
        return Hash32(self._root)

    @state_root.setter
    def state_root(self, value: bytes) -> None:
        # py-evm's State.revert resets the root before discarding the journal; a
        # transaction's view has no trie, so there is nothing to reset.
        pass

    def has_root(self, state_root: bytes) -> bool:
        return state_root == self._root

    # ------------------------------------------------------------- storage
    def _touch_storage(self, address: bytes) -> None:
        """py-evm opens an account's storage store at its first storage access in
        the block and keeps it, whatever is reverted; for a DORMANT account that
        is a write of ``(OPENED, address)`` (see :meth:`delete_storage`). An account
        whose code this execution read as non-empty had code at the block's start
        or was created in the block by a transaction that recorded the opening."""
        if address in self._storage_seen:
            return
        self._storage_seen.add(address)
        if self._dormant(address):
            self._opened.add(address)

    def _dormant(self, address: bytes) -> bool:
        """Whether ``address`` is DORMANT (a pre-block fact no transaction
        writes: it needs no validation, so it stays out of the read set)."""
        return not self.reads.get((CODE, address)) and self._read((DORMANT, address))

    def get_storage(self, address: bytes, slot: int, from_journal: bool = True) -> int:
        self._touch_storage(address)
        wiped = address in self._wiped or address in self._sticky
        if not from_journal:
            # EIP-2200 "original" value: the value at the start of the transaction.
            if wiped:
                return self._external((ORIGINAL, address, slot))
            return self._external((STORAGE, address, slot))
        key = (STORAGE, address, slot)
        value = self._w.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if wiped:
            return 0
        return self._external(key)

    def set_storage(self, address: bytes, slot: int, value: int) -> None:
        self._touch_storage(address)
        self._put((STORAGE, address, slot), value)

    def delete_storage(self, address: bytes) -> None:
        """CREATE2's wipe of the new contract's storage.

        py-evm 0.12's ``AccountDB.delete_storage`` resets the account's storage
        root *before* it opens the account's storage store, so a store opened here
        starts from the empty root; a revert past this point rolls the store back
        to that start -- empty -- and the account keeps empty storage although the
        account record itself is restored. Only a DORMANT account (storage, but no
        code and nonce 0: what CREATE2 may target) whose store nobody opened
        earlier in the block is affected; for it the wipe is *sticky*. Ethereum
        keeps the storage (and, from EIP-7610, refuses the creation): py-evm, the
        reference, differs from Ethereum here, and the engine follows py-evm.
        """
        sticky = (address not in self._storage_seen and self._dormant(address)
                  and not self._external((OPENED, address)))
        self._wipe(address)
        if sticky:
            self._sticky.add(address)
        self._exists_now(address)  # AccountDB resets the storage root: account exists

    def _wipe(self, address: bytes) -> None:
        self._touch_storage(address)
        for key in [k for k in self._w if k[0] == STORAGE and k[1] == address]:
            w = self._w
            self._journal.append((w, key, w[key]))
            del w[key]
        self._add_member(self._wiped, address)

    def is_storage_warm(self, address: bytes, slot: int) -> bool:
        return (address, slot) in self._warm_slots

    def mark_storage_warm(self, address: bytes, slot: int) -> None:
        self._add_member(self._warm_slots, (address, slot))

    # ------------------------------------------------------- lazy debits
    def open_sender_window(self, sender: bytes, nonce: int) -> None:
        """The transaction from ``sender`` with nonce ``nonce`` starts: until its
        first frame begins (the first ``touch_account``), its sender's balance is
        only compared and debited -- lazily (see module doc)."""
        self._sender = sender
        self._window = sender
        self._nonce = nonce

    def value_check(self, address: bytes | None) -> None:
        """A call or create opcode of the contract at ``address`` starts (None: it
        ended): until the new frame begins, that contract's balance is only
        compared with the value it sends and debited -- lazily, in speculative
        executions (see module doc and
        :func:`pevm.pyevm_compat.with_value_check_windows`)."""
        if self.lazy_debits:
            self._window = address

    def _lazy_debit(self, address: bytes) -> bool:
        """Whether a debit of ``address`` may stay a delta: it is the sender or the
        payer in the window, and its balance is still unread and unwritten."""
        return (address == self._window or address == self._sender) \
            and (BALANCE, address) not in self._w and (BALANCE, address) not in self.reads

    def _require_balance(self, address: bytes, amount: int) -> None:
        key = (FLOOR, address)
        if amount > self.reads.get(key, 0):
            self.reads[key] = amount

    # ------------------------------------------------------------- balance
    def get_balance(self, address: bytes) -> int:
        key = (BALANCE, address)
        value = self._w.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if address == self._window and key not in self.reads:
            delta = self._lazy.get(address, 0)
            return BalanceFloor(
                lambda amount: self._require_balance(address, amount - delta),
                lambda: self._external(key) + delta)
        return self._external(key) + self._lazy.get(address, 0)

    def set_balance(self, address: bytes, balance: int) -> None:
        validate_uint256(balance, title="Account Balance")  # as py-evm's AccountDB
        if address in self._lazy:
            self._set_lazy(address, None)
        self._put((BALANCE, address), balance)
        self._exists_now(address)

    def add_balance(self, address: bytes, delta: int) -> None:
        """``balance += delta``; a credit to an unread balance stays lazy."""
        key = (BALANCE, address)
        current = self._w.get(key, _MISSING)
        if current is not _MISSING:
            self._put(key, current + delta)
        elif delta >= 0 or self._lazy_debit(address):
            self._set_lazy(address, self._lazy.get(address, 0) + delta)
        else:
            self.set_balance(address, self.get_balance(address) + delta)
            return
        self._exists_now(address)

    # --------------------------------------------------------------- nonce
    def get_nonce(self, address: bytes) -> int:
        key = (NONCE, address)
        if address == self._sender and key not in self._w and key not in self.reads:
            # the nonce the sequence implies: validation checks it is the real one
            self.reads[key] = self._nonce
        return self._get(key)

    def set_nonce(self, address: bytes, nonce: int) -> None:
        self._put((NONCE, address), nonce)
        self._exists_now(address)

    def increment_nonce(self, address: bytes) -> None:
        self.set_nonce(address, self.get_nonce(address) + 1)

    # ---------------------------------------------------------------- code
    def get_code(self, address: bytes) -> bytes:
        return self._get((CODE, address))

    def set_code(self, address: bytes, code: bytes) -> None:
        self._put((CODE, address), code)
        self._exists_now(address)

    def get_code_hash(self, address: bytes) -> Hash32:
        return Hash32(code_hash(self._get((CODE, address))))

    def delete_code(self, address: bytes) -> None:
        self.set_code(address, b"")

    # ------------------------------------------------------------ accounts
    def account_has_code_or_nonce(self, address: bytes) -> bool:
        return self.get_nonce(address) != 0 or self.get_code_hash(address) != EMPTY_SHA3

    def delete_account(self, address: bytes) -> None:
        self._wipe(address)
        if address in self._lazy:
            self._set_lazy(address, None)
        self._put((BALANCE, address), 0)
        self._put((NONCE, address), 0)
        self._put((CODE, address), b"")
        self._put((EXISTS, address), False)

    def account_exists(self, address: bytes) -> bool:
        return self._get((EXISTS, address))

    def touch_account(self, address: bytes) -> None:
        self._window = None  # a frame starts: the payer's balance is real again
        self._exists_now(address)

    def account_is_empty(self, address: bytes) -> bool:
        # A positive credit on a balance >= 0 settles it with no read at all --
        # first, before the nonce and code: the block beneficiary's emptiness
        # check after every fee (EIP-161) must not read a nonce the beneficiary's
        # own transactions keep changing.
        if (BALANCE, address) not in self._w and self._lazy.get(address, 0) > 0:
            return False
        if self.account_has_code_or_nonce(address):
            return False
        return int(self.get_balance(address)) == 0

    # ---------------------------------------------------------- warm/cold
    def is_address_warm(self, address: bytes) -> bool:
        return address in self._warm_accounts

    def mark_address_warm(self, address: bytes) -> None:
        self._add_member(self._warm_accounts, address)

    # ----------------------------------------------------------- journal
    def record(self) -> JournalDBCheckpoint:
        # py-evm's own counter, never one of ours: from Cancun, State.snapshot
        # records the same id in the transient-storage journal, whose internal
        # checkpoints (its root, each clear) come from this counter too. A private
        # count collides with them after enough nested frames ("Tried to record
        # with an existing checkpoint") -- at a depth that depends on what the
        # process ran before.
        checkpoint = get_next_checkpoint()
        self._checkpoints[checkpoint] = len(self._journal)
        return checkpoint

    def discard(self, checkpoint: int) -> None:
        length = self._checkpoints.pop(checkpoint)
        journal = self._journal
        while len(journal) > length:
            container, key, old = journal.pop()
            if old is _MEMBER:
                container.discard(key)
            elif old is _MISSING:
                del container[key]
            else:
                container[key] = old

    def commit(self, checkpoint: int) -> None:
        # Keep the journal entries: an enclosing checkpoint may still be discarded.
        self._checkpoints.pop(checkpoint)

    def lock_changes(self) -> None:
        """Start of a transaction: nothing is revertable past here, all is cold."""
        self._journal.clear()
        self._checkpoints.clear()
        self._warm_accounts.clear()
        self._warm_slots.clear()

    # ------------------------------------------------------ not in a tx
    def make_state_root(self) -> Hash32:
        raise NotImplementedError("a transaction view has no state root; the "
                                  "engine computes roots on py-evm's state at merge")

    def persist(self) -> MetaWitnessAPI:
        raise NotImplementedError("a transaction view is never persisted")

    # ------------------------------------------------------------ result
    def writes(self) -> TxWrites:
        """The transaction's write set (call after it finished).

        Writes equal to the value the transaction itself read are dropped (they
        change nothing it did not already depend on) -- except, for accounts it
        wiped, storage (the write is what keeps the slot from reading as 0) and
        existence (the merge wipes storage with py-evm's ``delete_storage``, which
        makes the account exist, so whether it exists afterwards must be said).
        """
        reads = self.reads
        wiped = self._wiped | self._sticky
        values = {}
        for key, value in self._w.items():
            seen = reads.get(key, _MISSING)
            if seen is not _MISSING and seen == value and type(seen) is type(value) \
                    and not ((key[0] == STORAGE or key[0] == EXISTS)
                             and key[1] in wiped):
                continue
            values[key] = value
        for address in self._opened:
            if reads.get((OPENED, address)) is not True:
                values[(OPENED, address)] = True
        deltas = {address: amount for address, amount in self._lazy.items()
                  if amount}
        return TxWrites(values=values, deltas=deltas, wiped=tuple(wiped))


def state_class_for(state_class: Any) -> type:
    """The fork's State class, running on a :class:`StateView` with lazy credits.

    Everything -- transaction validation, the executor, the interpreter, gas rules --
    stays the fork's own; only ``delta_balance`` is routed to the view's
    :meth:`StateView.add_balance`, the call and create opcodes say whose balance
    they check (:meth:`StateView.value_check`) and the constructor takes a ready
    view.
    """
    cached = _STATE_CLASSES.get(state_class)
    if cached is not None:
        return cached

    def delta_balance(self: Any, address: bytes, delta: int) -> None:
        account_db(self).add_balance(address, delta)

    def validate_transaction(self: Any, transaction: Any) -> None:
        view = account_db(self)
        if view.lazy_debits and getattr(transaction, "type_id", None) in LAZY_DEBIT_TYPES:
            view.open_sender_window(transaction.sender, transaction.nonce)
        state_class.validate_transaction(self, transaction)

    def value_check(self: Any, address: bytes | None) -> None:
        account_db(self).value_check(address)

    cls = state_class_on_account_db(
        state_class, f"PevmView{state_class.__name__}",
        {"delta_balance": delta_balance, "validate_transaction": validate_transaction,
         "value_check": value_check,
         "computation_class": with_value_check_windows(state_class.computation_class),
         "__module__": __name__})
    _STATE_CLASSES[state_class] = cls
    return cls


_STATE_CLASSES: dict[type, type] = {}
#: transaction types whose sender debits may be lazy (legacy, EIP-2930, EIP-1559,
#: blob); EIP-7702's authorizations can rewrite the sender's own account
LAZY_DEBIT_TYPES = (None, 0, 1, 2, 3)
