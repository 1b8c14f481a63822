"""Field-by-field comparison of block results, and of a result with its input.

A :class:`Mismatch` names where two results part: the transaction index (None for
block-level fields), the field or state location, and both values. Comparisons
return the first differences in a stable order (receipts in block order, then
block fields, then the state diff by address), capped at ``limit``.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pevm.result import AccountDiff, BlockResult, hex0x
from pevm.task import Expectations

DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Mismatch:
    """One difference: at ``tx`` (or the block), ``field`` was ``actual``, not ``expected``."""

    field: str
    expected: str
    actual: str
    tx: int | None = None

    def __str__(self) -> str:
        where = f"tx {self.tx} " if self.tx is not None else ""
        return f"{where}{self.field}: expected {self.expected}, got {self.actual}"

    def to_json(self) -> dict[str, Any]:
        return {"tx": self.tx, "field": self.field,
                "expected": self.expected, "actual": self.actual}


def show(value: Any) -> str:
    """A short, unambiguous text for a compared value."""
    if value is None:
        return "none"
    if isinstance(value, (bytes, bytearray)):
        text = hex0x(bytes(value))
        return text if len(text) <= 80 else f"{text[:40]}...({len(value)} bytes)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value) if value < 2**64 else hex(value)
    return str(value)


def _take(mismatches: Iterable[Mismatch], limit: int) -> list[Mismatch]:
    out = []
    for mismatch in mismatches:
        out.append(mismatch)
        if len(out) >= limit:
            break
    return out


def compare_results(expected: BlockResult, actual: BlockResult,
                    limit: int = DEFAULT_LIMIT) -> list[Mismatch]:
    """Where ``actual`` differs from ``expected`` (e.g. parallel vs reference)."""
    return _take(_result_differences(expected, actual), limit)


def _result_differences(exp: BlockResult, act: BlockResult) -> Iterator[Mismatch]:
    if len(exp.receipts) != len(act.receipts):
        yield Mismatch("receipts.count", show(len(exp.receipts)), show(len(act.receipts)))
    for index, (want, got) in enumerate(zip(exp.receipts, act.receipts)):
        for name in ("tx_type", "status", "state_root", "cumulative_gas_used",
                     "gas_used", "bloom"):
            a, b = getattr(want, name), getattr(got, name)
            if a != b:
                yield Mismatch(f"receipt.{name}", show(a), show(b), tx=index)
        if len(want.logs) != len(got.logs):
            yield Mismatch("receipt.logs.count", show(len(want.logs)),
                           show(len(got.logs)), tx=index)
        for log_index, (la, lb) in enumerate(zip(want.logs, got.logs)):
            for name in ("address", "topics", "data"):
                a, b = getattr(la, name), getattr(lb, name)
                if a != b:
                    yield Mismatch(f"receipt.logs[{log_index}].{name}", show(a), show(b),
                                   tx=index)
    for name in ("gas_used", "bloom", "receipts_root", "transactions_root",
                 "state_root", "block_hash"):
        a, b = getattr(exp, name), getattr(act, name)
        if a != b:
            yield Mismatch(name, show(a), show(b))
    yield from _diff_differences(exp.state_diff, act.state_diff)


def _diff_differences(exp: dict[bytes, AccountDiff],
                      act: dict[bytes, AccountDiff]) -> Iterator[Mismatch]:
    for address in sorted(set(exp) | set(act)):
        where = f"state[{hex0x(address)}]"
        a, b = exp.get(address, AccountDiff()), act.get(address, AccountDiff())
        for name in ("balance", "nonce", "code"):
            pa, pb = getattr(a, name), getattr(b, name)
            post_a = pa[1] if pa else None
            post_b = pb[1] if pb else None
            if post_a != post_b:
                yield Mismatch(f"{where}.{name}", show(post_a) if pa else "unchanged",
                               show(post_b) if pb else "unchanged")
        for slot in sorted(set(a.storage) | set(b.storage)):
            sa, sb = a.storage.get(slot), b.storage.get(slot)
            if (sa and sa[1]) != (sb and sb[1]):
                yield Mismatch(f"{where}.storage[{hex(slot)}]",
                               show(sa[1]) if sa else "unchanged",
                               show(sb[1]) if sb else "unchanged")
        for name in ("created", "destroyed", "storage_cleared"):
            if getattr(a, name) != getattr(b, name):
                yield Mismatch(f"{where}.{name}", show(getattr(a, name)),
                               show(getattr(b, name)))


def compare_expectations(expect: Expectations, actual: BlockResult,
                         limit: int = DEFAULT_LIMIT) -> list[Mismatch]:
    """Where ``actual`` differs from what the block's own input says."""
    pairs = (
        ("header.gasUsed", expect.gas_used, actual.gas_used),
        ("header.logsBloom", expect.bloom, actual.bloom),
        ("header.receiptsRoot", expect.receipts_root, actual.receipts_root),
        ("header.transactionsRoot", expect.transactions_root, actual.transactions_root),
        ("header.stateRoot", expect.state_root, actual.state_root),
        ("header.hash", expect.block_hash, actual.block_hash),
    )
    return _take((Mismatch(name, show(want), show(got))
                  for name, want, got in pairs
                  if want is not None and want != got), limit)
