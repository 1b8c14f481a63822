"""State locations: the vocabulary the engine and the dependency analysis share.

A *location* is one piece of state a transaction can read or write, at the
granularity conflicts are detected: an account's balance, nonce, code, existence,
or one storage slot. The parallel engine versions values by location
(:mod:`pevm.engines.mv_memory`); the recording engine logs each transaction's
reads and writes by location (:mod:`pevm.engines.recording`) and the dependency
analysis (:mod:`pevm.analysis`) builds its graph from them.

A location is a plain tuple -- ``(kind, address)`` or ``(STORAGE, address, slot)``
-- whose kind is the *integer value* of a :class:`LocationKind`. Plain tuples of
ints and bytes, not enum members or objects, because locations are the engine's
hottest data: millions are hashed per block, and every worker message pickles
thousands of them (an enum member pickles as a class reference and unpickles
through the enum's constructor). :func:`location_text` is the readable form.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Final


class LocationKind(IntEnum):
    """What part of an account a location names (see the table below)."""

    #: the balance (engine reads fold lazy credits and debits)
    BALANCE = 0
    #: the nonce
    NONCE = 1
    #: the code (the code hash is derived from it)
    CODE = 2
    #: whether the account is in the state trie at all
    EXISTS = 3
    #: one storage slot ``(STORAGE, address, slot)``
    STORAGE = 4
    #: engine, read-only: a slot as py-evm's journal shows it as "original" after
    #: the reader wiped the account itself
    ORIGINAL = 5
    #: engine: the account's storage was wiped (self-destruct, deletion, CREATE2)
    WIPE = 6
    #: engine, read-only: storage but no code and nonce 0, storage not yet opened
    DORMANT = 7
    #: engine: a transaction touched the storage of a DORMANT account
    OPENED = 8
    #: engine, read sets only: "the balance was at least this" (lazy debits)
    FLOOR = 9
    #: analysis: whether the account is empty (EIP-161), as the recording engine
    #: logs emptiness checks separately from existence
    EMPTY = 10


BALANCE: Final = LocationKind.BALANCE.value
NONCE: Final = LocationKind.NONCE.value
CODE: Final = LocationKind.CODE.value
EXISTS: Final = LocationKind.EXISTS.value
STORAGE: Final = LocationKind.STORAGE.value
ORIGINAL: Final = LocationKind.ORIGINAL.value
WIPE: Final = LocationKind.WIPE.value
DORMANT: Final = LocationKind.DORMANT.value
OPENED: Final = LocationKind.OPENED.value
FLOOR: Final = LocationKind.FLOOR.value
EMPTY: Final = LocationKind.EMPTY.value

#: ``(kind, address)`` or ``(kind, address, slot)``; kind a :class:`LocationKind` value
Location = tuple[int, bytes] | tuple[int, bytes, int]


def location_text(location: tuple) -> str:
    """``0xabc…:balance`` / ``0xabc…:storage[0x1]``."""
    kind, address = location[0], location[1]
    name = LocationKind(kind).name.lower()
    if len(location) == 3:
        return f"0x{bytes(address).hex()}:{name}[{hex(location[2])}]"
    return f"0x{bytes(address).hex()}:{name}"
