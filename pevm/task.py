"""A block to execute, whatever format it came in.

Loaders (:mod:`pevm.inputs`) turn BlockchainTests fixtures, mainnet snapshots and
py-evm objects into :class:`BlockTask` records: the fork rules (the py-evm VM class),
the decoded block (header, transactions, senders), the expectations the input
carries, and a :class:`Target` -- the pre-state the block runs on and the way to
import it there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockAPI

from pevm.abc import Engine, Target
from pevm.pipeline import BlockOutcome


@dataclass
class Expectations:
    """What the input says the block must give (None: the input does not say)."""

    gas_used: int | None = None
    bloom: int | None = None
    receipts_root: bytes | None = None
    transactions_root: bytes | None = None
    state_root: bytes | None = None
    block_hash: bytes | None = None
    #: The block must be rejected; the text is the input's expected exception.
    rejected: str | None = None


@dataclass
class BlockTask:
    """One block of one case, ready to execute on its target."""

    source: str
    case: str
    index: int
    network: str
    vm_class: type
    block: BlockAPI | None
    target: Target
    expect: Expectations = field(default_factory=Expectations)
    #: Why the block's bytes could not be decoded (then ``block`` is None).
    decode_error: str | None = None

    @property
    def number(self) -> int | None:
        return self.block.number if self.block is not None else None

    @property
    def transactions(self) -> tuple[Any, ...]:
        return tuple(self.block.transactions) if self.block is not None else ()

    def execute(self, engine: Engine) -> BlockOutcome:
        assert self.block is not None, "undecodable blocks are never executed"
        return self.target.execute(self.block, engine)
