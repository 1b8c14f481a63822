"""Multi-version memory: every transaction's writes, by location and version.

The Block-STM data structure. For each state *location* it keeps the values written
by the transactions of the block that have executed but are not yet committed,
indexed by transaction; a transaction at index ``j`` reads, for each location, the
value written by the highest transaction below ``j`` -- or, when there is none, the
value after the committed prefix of the block, or the pre-block state.

Locations (:mod:`pevm.engines.locations`; plain tuples, cheap to hash and pickle):

=========================  ===============================================
``(BALANCE, address)``     the balance (reads fold lazy credits, see below)
``(NONCE, address)``       the nonce
``(CODE, address)``        the code (the code hash is derived from it)
``(EXISTS, address)``      whether the account is in the state trie at all
``(STORAGE, addr, slot)``  one storage slot; a read also sees storage *wipes*
``(ORIGINAL, addr, slot)`` read-only: the slot's value as py-evm's journal shows
                           it as "original" after the reader wiped the account
                           itself (see :meth:`MVMemory.read`)
``(DORMANT, address)``     read-only, pre-block: storage but no code and nonce 0,
                           storage not opened by the pre-block steps
``(OPENED, address)``      a transaction of the block touched the storage of a
                           DORMANT account (py-evm opened its storage store)
``(FLOOR, address)``       in read sets only: "the balance was at least this"
                           (lazy debits, see below)
=========================  ===============================================

DORMANT and OPENED exist for one py-evm behaviour (see
:meth:`pevm.engines.state_view.StateView.delete_storage`): CREATE2 onto a dormant
account whose storage py-evm has not opened yet in the block wipes that storage for
good, even when the creation is reverted.

Storage wipes (self-destruct, account deletion, CREATE2 onto an address with
storage) are recorded as a write of the per-account location ``(WIPE, address)``:
a storage read resolves to the slot's latest write unless a later wipe came after
it, in which case the slot reads 0. Writes of the wiping transaction itself never
include the slots it wrote before the wipe, so "slot write and wipe by the same
transaction" always means "write after the wipe".

Lazy credits: a transaction that only *adds* to a balance it never read (the block
beneficiary's fee, the recipient of plain value) writes a :class:`Delta` instead of a
value. Deltas commute: a reader folds every delta below it onto the latest
absolute value, so they create no dependency between the crediting transactions
and only a transaction that really reads the balance depends on them.

Lazy debits: a transaction's sender pays value and gas from a balance it does not
otherwise look at (and so does a contract sending value from its call or create
opcode). Its debits are negative deltas, and what py-evm's checks needed of that
balance -- enough to pay, at the transaction's position -- is a read of
``(FLOOR, address)``: validation requires the balance to be at least that value
rather than equal to it. Together with the nonce the transaction's own nonce implies
(a read of ``(NONCE, sender)`` that validation compares as usual), a chain of
transfers from one sender executes in parallel and commits without re-execution
whenever the sequential run would have given the same receipts
(:meth:`pevm.engines.state_view.StateView.open_sender_window`).

ESTIMATE markers stand for writes that a transaction is *expected* to make but
whose values are not known yet (an aborted incarnation's writes, or the sender
locations of a transaction still executing elsewhere). A read that meets one raises
:class:`Blocked` with the index of the transaction to wait for.

Committed prefix: transactions are committed strictly in block order; committing
folds a transaction's writes into one flat dictionary (the state after the prefix)
and drops its versions, so reads by later transactions stay flat lookups however
many transactions wrote a location before (e.g. the fee credits of the whole
block).

Validation is value-based: a transaction's execution is valid when every value it
read equals what :meth:`MVMemory.read` returns for it now (see
:mod:`pevm.engines.scheduler` for why values rather than versions).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterable, Mapping

from eth.constants import UINT_256_MAX

from pevm.engines.locations import BALANCE, FLOOR, ORIGINAL, STORAGE, WIPE

#: a location (see :mod:`pevm.engines.locations`)
Key = tuple


class _Estimate:
    """The ESTIMATE marker (a singleton; pickles to itself)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ESTIMATE"

    def __reduce__(self) -> str:
        return "ESTIMATE"


ESTIMATE = _Estimate()
_MISSING = object()


class Delta:
    """A commutative balance credit (internal representation of a lazy write)."""

    __slots__ = ("amount",)

    def __init__(self, amount: int) -> None:
        self.amount = amount

    def __repr__(self) -> str:
        return f"Delta({self.amount})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Delta) and other.amount == self.amount

    def __reduce__(self) -> tuple:
        return (Delta, (self.amount,))


class CreditOverflow(Exception):
    """Committing would take ``address``'s balance past 2**256 - 1.

    py-evm's ``set_balance`` refuses such a balance (a ``ValidationError``: the
    block is rejected); a lazy credit never read the balance it adds to, so the
    commit, where the sum is first known, is where it shows.
    """

    def __init__(self, address: bytes) -> None:
        super().__init__(address)
        self.address = address


class Blocked(Exception):
    """A read met an ESTIMATE: the reader depends on transaction ``txn``."""

    def __init__(self, txn: int) -> None:
        super().__init__(txn)
        self.txn = txn


@dataclass(slots=True)
class TxWrites:
    """Everything one transaction incarnation wrote.

    ``values``: absolute values by location (BALANCE, NONCE, CODE, EXISTS, STORAGE).
    ``deltas``: lazy balance credits by address (never also in ``values``).
    ``wiped``: accounts whose storage the transaction wiped; applied *before* the
    transaction's storage values.
    """

    values: dict = field(default_factory=dict)
    deltas: dict = field(default_factory=dict)
    wiped: tuple = ()

    def __reduce__(self) -> tuple:
        # a slots dataclass pickles through copyreg and a per-object state dict;
        # the constructor and its fields are a third of that (worker messages)
        return (TxWrites, (self.values, self.deltas, self.wiped))

    def keys(self) -> list[Key]:
        """Every location written (wipes as ``(WIPE, address)``)."""
        out = list(self.values)
        out.extend((BALANCE, a) for a in self.deltas)
        out.extend((WIPE, a) for a in self.wiped)
        return out

    def is_empty(self) -> bool:
        return not (self.values or self.deltas or self.wiped)


class MVMemory:
    """Versioned writes of a block's transactions over a pre-state reader.

    ``base(key)`` returns the pre-block value of a BALANCE, NONCE, CODE, EXISTS or
    STORAGE location. One instance lives in the coordinator (the authority) and one
    in each worker process (a replica it keeps in sync from the coordinator's
    commits plus its own speculative results).
    """

    def __init__(self, base: Callable[[Key], Any]) -> None:
        self._base = base
        #: key -> sorted list of (txn, value) for uncommitted transactions
        self._versions: dict[Key, list[tuple[int, Any]]] = {}
        #: txn -> the keys it has versions under (writes or estimates)
        self._tx_keys: dict[int, list[Key]] = {}
        #: txn -> (incarnation, writes) of its latest recorded execution
        self._tx_writes: dict[int, tuple[int, TxWrites]] = {}
        #: the state after the committed prefix: absolute values only
        self.committed: dict[Key, Any] = {}
        #: storage slots in ``committed`` by account (to drop them on a wipe)
        self._committed_slots: dict[bytes, set[int]] = {}
        #: accounts wiped by a committed transaction (their unlisted slots are 0)
        self.wiped: set[bytes] = set()
        #: transactions below this index are committed
        self.committed_upto = 0

    # ------------------------------------------------------------------ writes
    def record(self, txn: int, incarnation: int, writes: TxWrites) -> bool:
        """Store incarnation ``incarnation`` of ``txn``'s writes, replacing older ones.

        Returns True when the write set covers a location the previous
        incarnation did not write (Block-STM's "wrote a new location" signal).
        """
        if txn < self.committed_upto:
            raise ValueError(f"transaction {txn} is already committed")
        old_keys = set(self._tx_keys.get(txn, ()))
        self._remove_versions(txn)
        keys: list[Key] = []
        add = self._add_version
        for key, value in writes.values.items():
            add(key, txn, value)
            keys.append(key)
        for address, amount in writes.deltas.items():
            key = (BALANCE, address)
            add(key, txn, Delta(amount))
            keys.append(key)
        for address in writes.wiped:
            key = (WIPE, address)
            add(key, txn, True)
            keys.append(key)
        self._tx_keys[txn] = keys
        self._tx_writes[txn] = (incarnation, writes)
        return not old_keys.issuperset(keys)

    def _add_version(self, key: Key, txn: int, value: Any) -> None:
        entries = self._versions.get(key)
        if entries is None:
            self._versions[key] = [(txn, value)]
        elif entries[-1][0] < txn:
            entries.append((txn, value))  # the usual order: executions ascend
        else:
            insort(entries, (txn, value), key=_first)

    def add_estimates(self, txn: int, keys: Iterable[Key]) -> None:
        """Expect ``txn`` (not yet executed here) to write ``keys``: mark them ESTIMATE.

        Recording or committing ``txn`` later replaces the markers.
        """
        if txn < self.committed_upto or txn in self._tx_writes:
            return
        have = self._tx_keys.setdefault(txn, [])
        for key in keys:
            if key in have:
                continue
            insort(self._versions.setdefault(key, []), (txn, ESTIMATE), key=_first)
            have.append(key)

    def commit(self, txn: int, writes: TxWrites | None = None) -> None:
        """Fold ``txn``'s writes into the committed state (strictly in block order).

        ``writes`` defaults to the last recorded incarnation's writes. Raises
        :class:`CreditOverflow`, changing nothing, when a credit would overflow.
        """
        if txn != self.committed_upto:
            raise ValueError(f"commit out of order: {txn}, expected "
                             f"{self.committed_upto}")
        if writes is None:
            recorded = self._tx_writes.get(txn)
            if recorded is None:
                raise ValueError(f"transaction {txn} has no recorded writes")
            writes = recorded[1]
        # balances first (deltas never share a location with absolute values, and
        # wipes leave balances alone): an overflow then leaves everything as it was
        balances = []
        for address, amount in writes.deltas.items():
            key = (BALANCE, address)
            balance = self._committed_or_base(key) + amount
            if balance > UINT_256_MAX:
                raise CreditOverflow(address)
            balances.append((key, balance))
        self._remove_versions(txn)
        self._tx_writes.pop(txn, None)
        committed = self.committed
        slots_of = self._committed_slots
        for address in writes.wiped:
            for slot in slots_of.pop(address, ()):
                committed.pop((STORAGE, address, slot), None)
            self.wiped.add(address)
        for key, value in writes.values.items():
            committed[key] = value
            if key[0] == STORAGE:
                slots = slots_of.get(key[1])
                if slots is None:
                    slots_of[key[1]] = {key[2]}
                else:
                    slots.add(key[2])
        committed.update(balances)
        self.committed_upto = txn + 1

    def _remove_versions(self, txn: int) -> None:
        keys = self._tx_keys.pop(txn, None)
        if not keys:
            return
        versions = self._versions
        for key in keys:
            entries = versions.get(key)
            if entries is None:
                continue
            # by position, not by scanning: a hot location (the fee recipient's
            # balance, a hot wallet's) has a version for most of the block
            if entries[0][0] == txn and (len(entries) == 1 or entries[1][0] != txn):
                del entries[0]  # the usual case: a commit, the lowest version
            else:
                start, end = _span_of(entries, txn)
                del entries[start:end]
            if not entries:
                del versions[key]

    # ------------------------------------------------------------------- reads
    def _latest(self, key: Key, txn: int) -> tuple[int, Any] | None:
        entries = self._versions.get(key)
        if not entries:
            return None
        below = bisect_left(entries, txn, key=_first)
        return entries[below - 1] if below else None

    def _committed_or_base(self, key: Key) -> Any:
        value = self.committed.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if key[0] == STORAGE and key[1] in self.wiped:
            return 0
        return self._base(key)

    def read(self, key: Key, txn: int) -> Any:
        """The value of ``key`` that transaction ``txn`` sees.

        Raises :class:`Blocked` when the deciding write is an ESTIMATE.
        ``(ORIGINAL, addr, slot)`` resolves like a storage read except that, when no
        transaction of the block wrote the slot since the account's last wipe, it is
        0 rather than the pre-block value: that is what py-evm's journal reports as
        the "original" value (EIP-2200) of a slot after the reading transaction
        wiped the account itself (CREATE2 over an address with storage).
        """
        kind = key[0]
        if kind == STORAGE or kind == ORIGINAL:
            return self._read_storage(key, txn)
        if kind == BALANCE:
            return self._read_balance(key, txn)
        entry = self._latest(key, txn) if self._versions else None
        if entry is None:
            return self._committed_or_base(key)
        if entry[1] is ESTIMATE:
            raise Blocked(entry[0])
        return entry[1]

    def _read_balance(self, key: Key, txn: int) -> int:
        entries = self._versions.get(key)
        credit = 0
        if entries:
            for position in range(bisect_left(entries, txn, key=_first) - 1, -1, -1):
                t, value = entries[position]
                if value is ESTIMATE:
                    raise Blocked(t)
                if type(value) is Delta:
                    credit += value.amount
                    continue
                return value + credit
        return self._committed_or_base(key) + credit

    def _read_storage(self, key: Key, txn: int) -> int:
        address = key[1]
        storage_key = (STORAGE, address, key[2])
        write = self._latest(storage_key, txn) if self._versions else None
        wipe = self._latest((WIPE, address), txn) if self._versions else None
        if write is not None and (wipe is None or write[0] >= wipe[0]):
            if write[1] is ESTIMATE:
                raise Blocked(write[0])
            return write[1]
        if wipe is not None:
            if wipe[1] is ESTIMATE:
                raise Blocked(wipe[0])
            return 0
        if key[0] == ORIGINAL:
            return self.committed.get(storage_key, 0)
        return self._committed_or_base(storage_key)

    def holds(self, key: Key, value: Any, txn: int) -> bool:
        """Whether the read ``key -> value`` is still what ``txn`` would see (a
        FLOOR read: whether the balance is still at least ``value``)."""
        if key[0] == FLOOR:
            return self._read_balance((BALANCE, key[1]), txn) >= value
        return self.read(key, txn) == value

    def validate(self, txn: int, reads: Mapping[Key, Any]) -> bool:
        """Whether every value in ``reads`` is what ``txn`` would read now."""
        if txn == self.committed_upto:
            return self._validate_at_commit(reads)
        holds = self.holds
        try:
            for key, value in reads.items():
                if not holds(key, value, txn):
                    return False
        except Blocked:
            return False
        return True

    def _validate_at_commit(self, reads: Mapping[Key, Any]) -> bool:
        """:meth:`validate` for the transaction at the commit point (the engine's
        only caller): every transaction below it is committed, and a commit
        removes its versions, so no version below it exists and each read resolves
        against the committed state and the pre-state alone -- what :meth:`read`
        returns there, without its version lookups."""
        committed = self.committed
        committed_or_base = self._committed_or_base
        for key, value in reads.items():
            kind = key[0]
            if kind == FLOOR:
                if committed_or_base((BALANCE, key[1])) < value:
                    return False
            elif kind == ORIGINAL:  # as _read_storage: written since a wipe, or 0
                if committed.get((STORAGE, key[1], key[2]), 0) != value:
                    return False
            elif committed_or_base(key) != value:
                return False
        return True


def _span_of(entries: list[tuple[int, Any]], txn: int) -> tuple[int, int]:
    """Where ``txn``'s entries are in a version list (sorted by transaction)."""
    return (bisect_left(entries, txn, key=_first),
            bisect_right(entries, txn, key=_first))


def _first(entry: tuple[int, Any]) -> int:
    return entry[0]
