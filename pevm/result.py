"""The result of executing one block: receipts, gas, bloom, roots and state diff.

Every engine (py-evm's sequential reference, pevm's parallel engine) produces a
:class:`BlockResult`; :mod:`pevm.compare` compares two of them field by field, or one
with the expectations its input carries. Values are plain Python (ints and bytes),
so results pickle cheaply between processes and serialise to JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def hex0x(value: bytes) -> str:
    return "0x" + value.hex()


@dataclass(frozen=True)
class Log:
    address: bytes
    topics: tuple[int, ...]
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {"address": hex0x(self.address),
                "topics": [hex(t) for t in self.topics], "data": hex0x(self.data)}


@dataclass(frozen=True)
class Receipt:
    """One transaction's receipt, as consensus encodes it.

    ``status`` is 1/0 from Byzantium on; before it receipts carry the intermediate
    ``state_root`` instead and ``status`` is None.
    """

    tx_type: int
    status: int | None
    state_root: bytes | None
    cumulative_gas_used: int
    gas_used: int
    logs: tuple[Log, ...]
    bloom: int

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.tx_type, "status": self.status,
            "state_root": hex0x(self.state_root) if self.state_root else None,
            "cumulative_gas_used": self.cumulative_gas_used, "gas_used": self.gas_used,
            "logs": [log.to_json() for log in self.logs],
        }


@dataclass
class AccountDiff:
    """How one account changed over the block: ``(before, after)`` per changed field."""

    balance: tuple[int, int] | None = None
    nonce: tuple[int, int] | None = None
    code: tuple[bytes, bytes] | None = None
    storage: dict[int, tuple[int, int]] = field(default_factory=dict)
    created: bool = False
    destroyed: bool = False
    #: The account's storage was wiped (self-destruct or re-creation), beyond the
    #: slots listed in ``storage``.
    storage_cleared: bool = False

    def is_empty(self) -> bool:
        return not (self.balance or self.nonce or self.code or self.storage
                    or self.created or self.destroyed or self.storage_cleared)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.balance:
            out["balance"] = [hex(v) for v in self.balance]
        if self.nonce:
            out["nonce"] = list(self.nonce)
        if self.code:
            out["code"] = [hex0x(v) for v in self.code]
        if self.storage:
            out["storage"] = {hex(k): [hex(a), hex(b)]
                              for k, (a, b) in sorted(self.storage.items())}
        for flag in ("created", "destroyed", "storage_cleared"):
            if getattr(self, flag):
                out[flag] = True
        return out


@dataclass
class EngineStats:
    """What an engine did to produce a result (for ``--json`` and benchmarks)."""

    engine: str
    workers: int = 1
    executions: int = 0
    aborts: int = 0
    validations: int = 0
    #: Wall-clock seconds per phase, e.g. {"execute": .., "merge": ..}.
    seconds: dict[str, float] = field(default_factory=dict)
    #: Wall-clock seconds of the whole transaction phase (the engine's
    #: ``apply_transactions``), timed by the pipeline alike for every engine.
    transaction_seconds: float = 0.0
    backend: str | None = None
    #: why a parallel engine ran the block in one process although asked for more
    #: workers (a small or cheap block, no fork here; "" otherwise)
    in_process_reason: str = ""
    #: the parallel engine ran the block's rest as a sender pipeline: in order in
    #: one process while a worker recovered the senders ahead (no speculation)
    sender_pipeline: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "workers": self.workers,
                "executions": self.executions, "aborts": self.aborts,
                "validations": self.validations, "backend": self.backend,
                "in_process_reason": self.in_process_reason,
                "sender_pipeline": self.sender_pipeline}


@dataclass
class BlockResult:
    """Everything a block's execution produced that consensus or a user can see."""

    number: int
    receipts: tuple[Receipt, ...]
    gas_used: int
    bloom: int
    receipts_root: bytes
    transactions_root: bytes
    state_diff: dict[bytes, AccountDiff]
    #: None when the pre-state is partial (mainnet snapshots): no root can be known.
    state_root: bytes | None
    block_hash: bytes | None
    stats: EngineStats

    @property
    def tx_count(self) -> int:
        return len(self.receipts)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number, "gas_used": self.gas_used,
            "bloom": hex(self.bloom), "receipts_root": hex0x(self.receipts_root),
            "transactions_root": hex0x(self.transactions_root),
            "state_root": hex0x(self.state_root) if self.state_root else None,
            "block_hash": hex0x(self.block_hash) if self.block_hash else None,
            "receipts": [r.to_json() for r in self.receipts],
            "state_diff": {hex0x(a): d.to_json()
                           for a, d in sorted(self.state_diff.items())},
        }
