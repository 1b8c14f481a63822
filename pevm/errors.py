"""Errors pevm reports to its users.

Every error a user can cause (bad input, an unknown fork, an invalid block) is a
:class:`PevmError`; the CLI prints it as one line and exits non-zero. Anything else
is a bug in pevm and keeps its traceback.
"""
from __future__ import annotations

import ast
import os
import re

import rlp
from eth.exceptions import HeaderNotFound, UnrecognizedTransactionType, VMError
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError

#: Exceptions by which py-evm rejects a block: the ones its own fixture tests catch.
#: A ``VMError`` inside a computation is caught by the computation itself (it ends
#: the frame with an error); one that escapes was raised while py-evm validated or
#: built the transaction's message (e.g. ``OutOfGas`` for initcode over EIP-3860's
#: limit), so the transaction is invalid. ``HeaderNotFound``: the block's parent
#: (or an ancestor its header names) is unknown to the chain. ``BadSignature``:
#: py-evm recovers a sender while it validates the transaction, and a signature
#: out of range or that recovers no key raises this.
REJECTION_ERRORS: tuple[type[BaseException], ...] = (
    ValidationError, rlp.DecodingError, rlp.DeserializationError, TypeError,
    VMError, UnrecognizedTransactionType, HeaderNotFound, BadSignature,
)

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def raised_by_pevm(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``TypeError`` raised by pevm's own code -- its innermost
    frame is in the ``pevm`` package -- rather than by py-evm or a library under it.

    Why: py-evm rejects some malformed blocks with a plain ``TypeError``, so it is
    one of :data:`REJECTION_ERRORS`; the same type raised by pevm is a bug, which must
    surface as one (with its traceback) instead of reading as a rejected block.
    """
    if not isinstance(exc, TypeError):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE)


#: A Python bytes literal inside a message (``b'\\x12...'`` or ``b"..."``)
_BYTES_LITERAL = re.compile(r"(?<!\w)(?:b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*")')


def describe(exc: BaseException) -> str:
    """``exc`` as one line, ``Type: message``, with its bytes as 0x-hex.

    py-evm writes raw bytes into its messages (a sender, a state root) with Python's
    repr, ``b'\\xba\\xa9...'``, which no one can compare with a block explorer or a
    fixture; every place pevm reports a rejection or failure says it this one way.
    """
    def hexed(match: re.Match[str]) -> str:
        try:
            value = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError):
            return match.group(0)
        return "0x" + value.hex() if isinstance(value, bytes) else match.group(0)
    return f"{type(exc).__name__}: {_BYTES_LITERAL.sub(hexed, str(exc))}"


class PevmError(Exception):
    """Base class of the errors pevm reports as a one-line message."""

    #: the CLI's exit status for it (2: bad input or a run that could not finish)
    exit_code = 2


class ResultMismatch(PevmError):
    """An engine's result differs from py-evm's where equality is required."""

    exit_code = 1


class InputError(PevmError):
    """An input file or directory is unreadable, malformed or inconsistent."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class BlockRejected(PevmError):
    """The block is invalid under its fork's rules (py-evm rejected it)."""

    def __init__(self, reason: str, tx_index: int | None = None) -> None:
        where = f"transaction {tx_index}: " if tx_index is not None else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.tx_index = tx_index


class EngineFailure(PevmError):
    """The execution engine could not complete a block (e.g. every worker died)."""
