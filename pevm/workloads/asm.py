"""A small EVM assembler: the workload contracts are written in it.

Source syntax (one or more instructions per line; tokens are separated by
whitespace, so expressions must not contain spaces)::

    ; a comment (``//`` works too), up to the end of the line
    .const NAME EXPR        define a constant usable in later expressions
    .macro NAME             start a macro; its body runs up to ``.endm``;
    .endm                   writing NAME as an instruction expands the body.
                            Labels written ``%name`` inside a macro are local to
                            each expansion.
    name:                   a jump target: emits JUMPDEST, ``@name`` is its offset
    .label NAME             a position only (no byte emitted), e.g. embedded data
    .code NAME              embed the assembled bytecode of the contract NAME
    .include NAME           read source NAME here (shared macros and constants)
    .bytes 0xHEX            raw bytes
    PUSH EXPR               the smallest PUSHn that holds EXPR (PUSH2 when EXPR
                            uses a label; 0 becomes PUSH1 0, never PUSH0, so the
                            code runs on forks before Shanghai)
    PUSHn EXPR              an explicit width
    ADD, SSTORE, ...        any other opcode by its mnemonic (KECCAK256 = SHA3)

Expressions are terms joined by ``+`` and ``-``. A term is a decimal or ``0x``
number, ``@label``, a constant, ``selector(SIG)`` (the 4-byte ABI selector of
SIG), ``topic(SIG)`` (keccak-256 of SIG, for event topics) or ``size(NAME)``
(the length of contract NAME's assembled code).

:func:`assemble` turns one source into bytes; :func:`assemble_all` assembles a set
of named sources that may embed each other with ``.code``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping

from eth_hash.auto import keccak

#: Mnemonic -> opcode byte (Prague). PUSHn, DUPn, SWAPn and LOGn are added below.
OPCODES: dict[str, int] = {
    "STOP": 0x00, "ADD": 0x01, "MUL": 0x02, "SUB": 0x03, "DIV": 0x04, "SDIV": 0x05,
    "MOD": 0x06, "SMOD": 0x07, "ADDMOD": 0x08, "MULMOD": 0x09, "EXP": 0x0A,
    "SIGNEXTEND": 0x0B,
    "LT": 0x10, "GT": 0x11, "SLT": 0x12, "SGT": 0x13, "EQ": 0x14, "ISZERO": 0x15,
    "AND": 0x16, "OR": 0x17, "XOR": 0x18, "NOT": 0x19, "BYTE": 0x1A, "SHL": 0x1B,
    "SHR": 0x1C, "SAR": 0x1D,
    "SHA3": 0x20, "KECCAK256": 0x20,
    "ADDRESS": 0x30, "BALANCE": 0x31, "ORIGIN": 0x32, "CALLER": 0x33,
    "CALLVALUE": 0x34, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36,
    "CALLDATACOPY": 0x37, "CODESIZE": 0x38, "CODECOPY": 0x39, "GASPRICE": 0x3A,
    "EXTCODESIZE": 0x3B, "EXTCODECOPY": 0x3C, "RETURNDATASIZE": 0x3D,
    "RETURNDATACOPY": 0x3E, "EXTCODEHASH": 0x3F,
    "BLOCKHASH": 0x40, "COINBASE": 0x41, "TIMESTAMP": 0x42, "NUMBER": 0x43,
    "PREVRANDAO": 0x44, "DIFFICULTY": 0x44, "GASLIMIT": 0x45, "CHAINID": 0x46,
    "SELFBALANCE": 0x47, "BASEFEE": 0x48, "BLOBHASH": 0x49, "BLOBBASEFEE": 0x4A,
    "POP": 0x50, "MLOAD": 0x51, "MSTORE": 0x52, "MSTORE8": 0x53, "SLOAD": 0x54,
    "SSTORE": 0x55, "JUMP": 0x56, "JUMPI": 0x57, "PC": 0x58, "MSIZE": 0x59,
    "GAS": 0x5A, "JUMPDEST": 0x5B, "TLOAD": 0x5C, "TSTORE": 0x5D, "MCOPY": 0x5E,
    "PUSH0": 0x5F,
    "CREATE": 0xF0, "CALL": 0xF1, "CALLCODE": 0xF2, "RETURN": 0xF3,
    "DELEGATECALL": 0xF4, "CREATE2": 0xF5, "STATICCALL": 0xFA, "REVERT": 0xFD,
    "INVALID": 0xFE, "SELFDESTRUCT": 0xFF,
}
for _n in range(1, 33):
    OPCODES[f"PUSH{_n}"] = 0x5F + _n
for _n in range(1, 17):
    OPCODES[f"DUP{_n}"] = 0x7F + _n
    OPCODES[f"SWAP{_n}"] = 0x8F + _n
for _n in range(5):
    OPCODES[f"LOG{_n}"] = 0xA0 + _n

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_DEF = re.compile(r"^(%?[A-Za-z_][A-Za-z0-9_]*):$")
_PUSH_N = re.compile(r"^PUSH([1-9]|[12][0-9]|3[0-2])$")
_FUNC = re.compile(r"^(selector|topic|size)\((.*)\)$")
_TERM_SPLIT = re.compile(r"([+-])")


class AsmError(ValueError):
    """A source error, with ``source:line`` in its message."""


def selector(signature: str) -> int:
    """The 4-byte ABI function selector of ``signature`` as an int."""
    return int.from_bytes(keccak(signature.encode())[:4], "big")


def topic(signature: str) -> int:
    """keccak-256 of an event signature as an int (the event's topic 0)."""
    return int.from_bytes(keccak(signature.encode()), "big")


@dataclass
class _Item:
    kind: str  # "op" | "push" | "label" | "bytes"
    where: str
    byte: int = 0
    width: int | None = None
    expr: str = ""
    name: str = ""
    jumpdest: bool = False
    data: bytes = b""


@dataclass
class _Source:
    name: str
    text: str
    consts: dict[str, int] = field(default_factory=dict)
    macros: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def _strip_comment(line: str) -> str:
    for marker in (";", "//"):
        index = line.find(marker)
        if index >= 0:
            line = line[:index]
    return line.strip()


class _Assembler:
    def __init__(self, source: _Source, code_of: Callable[[str], bytes],
                 text_of: Callable[[str], str]) -> None:
        self.source = source
        self.code_of = code_of
        self.text_of = text_of
        self.items: list[_Item] = []
        self.expansions = 0
        self.included: list[str] = []

    # -- parsing -------------------------------------------------------------
    def parse(self, text: str, name: str) -> None:
        lines = text.splitlines()
        index = 0
        while index < len(lines):
            lineno = index + 1
            line = _strip_comment(lines[index])
            index += 1
            if not line:
                continue
            where = f"{name}:{lineno}"
            tokens = line.split()
            if tokens[0] == ".macro":
                if len(tokens) != 2 or not _NAME.match(tokens[1]):
                    raise AsmError(f"{where}: expected '.macro NAME'")
                macro = tokens[1]
                if macro in self.source.macros or macro.upper() in OPCODES:
                    raise AsmError(f"{where}: macro {macro!r} already defined or an opcode")
                body: list[tuple[str, int]] = []
                while True:
                    if index >= len(lines):
                        raise AsmError(f"{where}: macro {macro!r} lacks '.endm'")
                    body_line = _strip_comment(lines[index])
                    index += 1
                    if body_line == ".endm":
                        break
                    if body_line.startswith(".macro"):
                        raise AsmError(f"{name}:{index}: nested .macro")
                    if body_line:
                        body.append((body_line, index))
                self.source.macros[tokens[1]] = body
                continue
            if tokens[0] == ".include":
                if len(tokens) != 2 or not _NAME.match(tokens[1]):
                    raise AsmError(f"{where}: expected '.include NAME'")
                if tokens[1] in self.included or tokens[1] == self.source.name:
                    raise AsmError(f"{where}: {tokens[1]!r} included twice")
                self.included.append(tokens[1])
                try:
                    included = self.text_of(tokens[1])
                except KeyError:
                    raise AsmError(f"{where}: unknown source {tokens[1]!r}") from None
                self.parse(included, tokens[1])
                continue
            self._parse_tokens(tokens, where, local_suffix=None, depth=0)

    def _parse_tokens(self, tokens: list[str], where: str, local_suffix: str | None,
                      depth: int) -> None:
        if tokens[0].startswith("."):
            self._directive(tokens, where, local_suffix)
            return
        position = 0
        while position < len(tokens):
            token = tokens[position]
            position += 1
            label = _LABEL_DEF.match(token)
            if label:
                self._define_label(label.group(1), where, local_suffix, jumpdest=True)
                continue
            upper = token.upper()
            if upper == "PUSH" or _PUSH_N.match(upper):
                if position >= len(tokens):
                    raise AsmError(f"{where}: {token} needs an operand")
                expr = self._localise(tokens[position], where, local_suffix)
                position += 1
                width = None if upper == "PUSH" else int(upper[4:])
                self.items.append(_Item("push", where, width=width, expr=expr))
                continue
            if token in self.source.macros:
                if depth > 32:
                    raise AsmError(f"{where}: macros nested too deeply")
                self.expansions += 1
                suffix = f"__{token}{self.expansions}"
                for text, lineno in self.source.macros[token]:
                    inner = f"{where} (macro {token}, line {lineno})"
                    self._parse_tokens(text.split(), inner, suffix, depth + 1)
                continue
            if upper in OPCODES and not upper.startswith("PUSH"):
                self.items.append(_Item("op", where, byte=OPCODES[upper]))
                continue
            raise AsmError(f"{where}: unknown instruction {token!r}")

    def _directive(self, tokens: list[str], where: str, local_suffix: str | None) -> None:
        name = tokens[0]
        if name == ".const":
            if len(tokens) != 3 or not _NAME.match(tokens[1]):
                raise AsmError(f"{where}: expected '.const NAME EXPR'")
            if tokens[1] in self.source.consts:
                raise AsmError(f"{where}: constant {tokens[1]!r} already defined")
            self.source.consts[tokens[1]] = self._eval(tokens[2], where, labels=None)
        elif name == ".label":
            if len(tokens) != 2:
                raise AsmError(f"{where}: expected '.label NAME'")
            self._define_label(tokens[1], where, local_suffix, jumpdest=False)
        elif name == ".code":
            if len(tokens) != 2 or not _NAME.match(tokens[1]):
                raise AsmError(f"{where}: expected '.code NAME'")
            self.items.append(_Item("bytes", where, data=self._code(tokens[1], where)))
        elif name == ".bytes":
            if len(tokens) != 2 or not tokens[1].startswith("0x"):
                raise AsmError(f"{where}: expected '.bytes 0xHEX'")
            try:
                data = bytes.fromhex(tokens[1][2:])
            except ValueError:
                raise AsmError(f"{where}: bad hex {tokens[1]!r}") from None
            self.items.append(_Item("bytes", where, data=data))
        elif name in (".macro", ".endm", ".include"):
            raise AsmError(f"{where}: {name} only at the start of a line, outside macros")
        else:
            raise AsmError(f"{where}: unknown directive {name!r}")

    def _localise(self, text: str, where: str, local_suffix: str | None) -> str:
        if "%" not in text:
            return text
        if local_suffix is None:
            raise AsmError(f"{where}: '%' labels are only allowed inside macros")
        return re.sub(r"%([A-Za-z_][A-Za-z0-9_]*)", rf"\1{local_suffix}", text)

    def _define_label(self, name: str, where: str, local_suffix: str | None,
                      jumpdest: bool) -> None:
        name = self._localise(name, where, local_suffix)
        if not _NAME.match(name):
            raise AsmError(f"{where}: bad label name {name!r}")
        self.items.append(_Item("label", where, name=name, jumpdest=jumpdest))

    def _code(self, name: str, where: str) -> bytes:
        try:
            return self.code_of(name)
        except KeyError:
            raise AsmError(f"{where}: unknown contract {name!r}") from None

    # -- expressions ---------------------------------------------------------
    def _eval(self, expr: str, where: str, labels: Mapping[str, int] | None) -> int:
        parts = [part for part in _TERM_SPLIT.split(expr) if part != ""]
        if not parts:
            raise AsmError(f"{where}: empty expression")
        total, sign, expect_term = 0, 1, True
        for part in parts:
            if expect_term:
                if part in "+-":
                    if part == "-":
                        sign = -sign
                    continue
                total += sign * self._term(part, where, labels)
                sign, expect_term = 1, False
            else:
                if part not in "+-":
                    raise AsmError(f"{where}: bad expression {expr!r}")
                sign, expect_term = (1 if part == "+" else -1), True
        if expect_term:
            raise AsmError(f"{where}: expression {expr!r} ends with an operator")
        return total

    def _term(self, term: str, where: str, labels: Mapping[str, int] | None) -> int:
        if term.startswith("@"):
            if labels is None:
                raise AsmError(f"{where}: labels cannot be used here ({term})")
            if term[1:] not in labels:
                raise AsmError(f"{where}: undefined label {term[1:]!r}")
            return labels[term[1:]]
        func = _FUNC.match(term)
        if func:
            kind, argument = func.groups()
            argument = argument.strip('"')
            if kind == "selector":
                return selector(argument)
            if kind == "topic":
                return topic(argument)
            return len(self._code(argument, where))
        if term in self.source.consts:
            return self.source.consts[term]
        try:
            return int(term, 0)
        except ValueError:
            raise AsmError(f"{where}: bad term {term!r}") from None

    @staticmethod
    def _uses_label(expr: str) -> bool:
        return "@" in expr

    # -- layout and emission -------------------------------------------------
    def assemble(self) -> bytes:
        self.parse(self.source.text, self.source.name)
        labels: dict[str, int] = {}
        widths: list[int] = []
        offset = 0
        for item in self.items:
            if item.kind == "label":
                if item.name in labels:
                    raise AsmError(f"{item.where}: label {item.name!r} defined twice")
                labels[item.name] = offset
                size = 1 if item.jumpdest else 0
            elif item.kind == "push":
                if item.width is None:
                    if self._uses_label(item.expr):
                        item.width = 2
                    else:
                        value = self._eval(item.expr, item.where, labels=None)
                        item.width = max(1, (value.bit_length() + 7) // 8)
                size = 1 + item.width
            elif item.kind == "op":
                size = 1
            else:
                size = len(item.data)
            widths.append(size)
            offset += size
        out = bytearray()
        for item in self.items:
            if item.kind == "label":
                if item.jumpdest:
                    out.append(OPCODES["JUMPDEST"])
            elif item.kind == "op":
                out.append(item.byte)
            elif item.kind == "push":
                assert item.width is not None
                value = self._eval(item.expr, item.where, labels)
                if value < 0 or value >= 1 << (8 * item.width):
                    raise AsmError(f"{item.where}: {item.expr} = {value} does not fit "
                                   f"in PUSH{item.width}")
                out.append(0x5F + item.width)
                out += value.to_bytes(item.width, "big")
            else:
                out += item.data
        return bytes(out)


def assemble(text: str, name: str = "<source>",
             code_of: Callable[[str], bytes] | None = None,
             text_of: Callable[[str], str] | None = None) -> bytes:
    """Assemble one source.

    ``code_of(name)`` supplies code for ``.code``/``size()``; ``text_of(name)`` the
    text of an ``.include``; both raise KeyError for an unknown name.
    """

    def unknown(other: str) -> bytes:
        raise KeyError(other)

    def unknown_text(other: str) -> str:
        raise KeyError(other)

    return _Assembler(_Source(name, text), code_of or unknown,
                      text_of or unknown_text).assemble()


def assemble_all(sources: Mapping[str, str],
                 libraries: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Assemble named sources that may embed each other (``.code NAME``).

    ``libraries`` are sources that are only ever included (``.include NAME``),
    never assembled on their own.
    """
    libraries = dict(libraries or {})

    def text_of(name: str) -> str:
        return libraries[name]

    done: dict[str, bytes] = {}
    active: list[str] = []

    def code_of(name: str) -> bytes:
        if name in done:
            return done[name]
        if name not in sources:
            raise KeyError(name)
        if name in active:
            raise AsmError(f"{name}: contracts embed each other in a cycle: "
                           f"{' -> '.join(active + [name])}")
        active.append(name)
        try:
            done[name] = assemble(sources[name], name, code_of, text_of)
        finally:
            active.pop()
        return done[name]

    for source_name in sorted(sources):
        code_of(source_name)
    return done


def disassemble(code: bytes) -> list[str]:
    """A plain listing (``offset: MNEMONIC [0xoperand]``), for debugging and tests."""
    names: dict[int, str] = {}
    for mnemonic, byte in OPCODES.items():
        if mnemonic in ("KECCAK256", "DIFFICULTY"):
            continue
        names.setdefault(byte, mnemonic)
    out, pc = [], 0
    while pc < len(code):
        byte = code[pc]
        mnemonic = names.get(byte, f"UNKNOWN_0x{byte:02x}")
        if 0x60 <= byte <= 0x7F:
            width = byte - 0x5F
            operand = code[pc + 1:pc + 1 + width]
            out.append(f"{pc}: {mnemonic} 0x{operand.hex()}")
            pc += 1 + width
        else:
            out.append(f"{pc}: {mnemonic}")
            pc += 1
    return out
