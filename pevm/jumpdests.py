"""Jump-destination analysis shared by every run of the same contract code.

Every message py-evm runs gets a fresh ``CodeStream`` of its code, and each JUMP or
JUMPI asks it ``is_valid_opcode(destination)``: is that byte an instruction, not
the data of a PUSH before it? py-evm answers by looking back up to 32 bytes for a
PUSH, recursively, and remembers the answer in the stream's own
``valid_positions`` / ``invalid_positions`` sets -- which the next message of the
same contract, in the same transaction or the next one, starts again empty. On
mainnet blocks that lookback is ~7-8% of a block's execution (py-spy, 14029313
and 17666333 at one worker), and a block calls the same few tokens, routers and
pools hundreds of times (14029313: 798 of its 1,009 messages run a code already
seen in the block). Shared, the lookback there takes ~40% less time; what is
left is each code's first answer for each place (docs/results.md, session 44).

:func:`with_shared_jumpdests` gives pevm's VMs a computation class whose code
streams share those two sets among every stream of the same code bytes.

Why sharing is safe: whether a position is an instruction boundary depends on
the code bytes alone -- not on the state, the fork, the message or the
transaction -- and py-evm only ever adds a position once it has worked out the
answer from those bytes. A set filled by one stream therefore holds only answers
every stream of the same bytes would find, and the code is the key (compared
byte for byte, so two contracts sharing a key share identical code). py-evm's
sequential reference keeps its own streams, so every comparison with it checks
the shared answers too. In a forked worker the sets are the coordinator's,
copy-on-write: what the worker adds stays in the worker.

The cache holds at most :data:`MAX_CODES` codes; past that it starts again
empty, which only costs the analysis again.
"""
from __future__ import annotations

from typing import Any

from eth.vm.code_stream import CodeStream
from eth.vm.opcode_values import PUSH1, PUSH32

#: How many distinct codes the cache keeps before starting again (a contract's
#: code is at most 24 KiB, EIP-170, and its sets hold the positions jumped to).
MAX_CODES = 4096

#: code bytes -> (invalid positions, valid positions), the sets py-evm fills
_ANALYSES: dict[bytes, tuple[set[int], set[int]]] = {}

_SHARED: dict[type, type] = {}


class SharedCodeStream(CodeStream):
    """py-evm's ``CodeStream`` whose answers live in the sets every stream of the
    same code shares, and whose ``is_valid_opcode`` finds a new answer without
    py-evm's generator (the same lookback, the same answers)."""

    __slots__ = ()

    def __init__(self, code_bytes: bytes) -> None:
        super().__init__(code_bytes)
        known = _ANALYSES.get(code_bytes)
        if known is None:
            if len(_ANALYSES) >= MAX_CODES:
                _ANALYSES.clear()
            _ANALYSES[code_bytes] = (self.invalid_positions, self.valid_positions)
        else:
            self.invalid_positions, self.valid_positions = known

    def is_valid_opcode(self, position: int) -> bool:
        """Whether ``position`` starts an instruction (py-evm's answer: not past
        the end, and no instruction-starting PUSHn in the 32 bytes before it
        whose data covers it)."""
        if position >= self._length_cache or position in self.invalid_positions:
            return False
        if position in self.valid_positions:
            return True
        code = self._raw_code_bytes
        # earliest first, as py-evm looks (PUSH32 is the most common cover)
        for earlier in range(max(position - 32, 0), position):
            opcode = code[earlier]
            if (PUSH1 <= opcode <= PUSH32 and earlier + opcode - PUSH1 >= position - 1
                    and self.is_valid_opcode(earlier)):
                self.invalid_positions.add(position)
                return False
        self.valid_positions.add(position)
        return True


def with_shared_jumpdests(computation_class: type) -> type:
    """A subclass of py-evm's ``computation_class`` whose messages run on a
    :class:`SharedCodeStream` of their code (cached: one subclass per class)."""
    shared = _SHARED.get(computation_class)
    if shared is None:
        class SharingJumpdests(computation_class):
            def __init__(self, state: Any, message: Any,
                         transaction_context: Any) -> None:
                super().__init__(state, message, transaction_context)
                self.code = SharedCodeStream(message.code)

        SharingJumpdests.__name__ = computation_class.__name__
        SharingJumpdests.__qualname__ = computation_class.__qualname__
        shared = _SHARED[computation_class] = SharingJumpdests
    return shared


def clear() -> None:
    """Forget every shared analysis (a benchmark's rounds each start without)."""
    _ANALYSES.clear()
