"""A balance of which only comparisons are asked: the lazy debits' stand-in.

While py-evm checks that a payer can pay (a transaction's sender before its first
frame, a contract in its call or create opcode before the new frame; see
:mod:`pevm.engines.state_view`), it only *compares* the payer's balance with what
it must cover. A speculative execution answers those comparisons without reading
the balance -- "it can pay" -- and records what each answer requires, so that the
transaction does not depend on every debit below it; validation then checks the
recorded floor against the committed balance. Any other use of the value (an
arithmetic operation, formatting, equality) reads the real balance.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class BalanceFloor(int):
    """The payer's balance inside its window (see module doc).

    ``require(amount)`` records that the balance must be at least ``amount``;
    ``resolve()`` reads the real balance, for any use other than a comparison.
    """

    _require: Callable[[int], None]
    _resolve: Callable[[], int]

    def __new__(cls, require: Callable[[int], None],
                resolve: Callable[[], int]) -> BalanceFloor:
        obj = super().__new__(cls, 0)
        obj._require = require
        obj._resolve = resolve
        return obj

    def __lt__(self, other: Any) -> bool:
        self._require(other)
        return False

    def __ge__(self, other: Any) -> bool:
        self._require(other)
        return True

    def __gt__(self, other: Any) -> bool:
        self._require(other + 1)
        return True

    def __le__(self, other: Any) -> bool:
        self._require(other + 1)
        return False


def _resolving(name: str) -> Callable[..., Any]:
    def method(self: BalanceFloor, *args: Any) -> Any:
        return getattr(self._resolve(), name)(*args)
    method.__name__ = name
    return method


for _name in ("__eq__", "__ne__", "__hash__", "__bool__", "__int__", "__index__",
              "__float__", "__str__", "__repr__", "__format__", "__add__", "__radd__",
              "__sub__", "__rsub__", "__mul__", "__rmul__", "__floordiv__",
              "__rfloordiv__", "__truediv__", "__mod__", "__divmod__", "__pow__",
              "__neg__", "__abs__", "__and__", "__or__", "__xor__", "__lshift__",
              "__rshift__", "to_bytes", "bit_length"):
    setattr(BalanceFloor, _name, _resolving(_name))

__all__ = ["BalanceFloor"]
