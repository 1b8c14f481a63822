"""The parallel engine's tuning options as text: ``chunk_size=96,worker_nice=0``.

``pevm bench --variant`` measures the engine with some of its constructor's
keywords changed beside the engine as it ships, so that a design choice (the
workers' priority, the chunk length, whether the coordinator executes) can be
measured again on any block by anyone, instead of being taken on trust from the
notes that chose it. The names and types come from
:class:`~pevm.engines.parallel.ParallelEngine`'s own signature, so a new keyword
is an option without a change here; what is not a tuning of the same engine (the
worker count, the state layer, the fault hooks) is left out.
"""
from __future__ import annotations

import ast
import types
import typing
from collections.abc import Mapping
from typing import Any

from pevm.engines.parallel import ParallelEngine

#: Constructor keywords that are not options: the worker count is the benchmark's
#: axis, the state layer its ``--state``, and the hooks are fault injection.
NOT_OPTIONS = frozenset({"self", "workers", "state_backend", "hooks", "return"})


def tunable_options() -> dict[str, tuple[type, ...]]:
    """Each option's name and the types its value may have (``NoneType`` where
    None means the engine's default policy), in the constructor's order."""
    hints = typing.get_type_hints(ParallelEngine.__init__)
    out: dict[str, tuple[type, ...]] = {}
    for name, hint in hints.items():
        if name in NOT_OPTIONS:
            continue
        kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        out[name] = tuple(kinds)
    return out


#: Words that read as Python's constants in any case (``sender_pipeline=false``).
_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None}


def parse_options(text: str) -> dict[str, Any]:
    """``"k=v,k=v"`` -> ``{k: v}``, each value a Python literal (``96``, ``0.01``,
    ``False``, ``None``; ``true``, ``false`` and ``none`` in any case too) or a
    bare word (``spawn``), of a type the keyword takes.

    Raises ValueError saying what is wrong: an unknown name (listing the known
    ones), a value that is not a literal or not of the keyword's type, a name
    given twice, nothing at all, or a value the engine refuses.
    """
    known = tunable_options()
    options: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, raw = (s.strip() for s in part.partition("="))
        if not sep or not name:
            raise ValueError(f"expected NAME=VALUE, got {part!r}")
        if name not in known:
            raise ValueError(f"unknown engine option {name!r} "
                             f"(options: {', '.join(known)})")
        if name in options:
            raise ValueError(f"engine option {name!r} given twice")
        word = raw.lower()
        if word in _WORDS:
            value = _WORDS[word]  # as a shell user writes them: false, none
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw  # a bare word: text, for the options that take text
        if not _fits(value, known[name]):
            wanted = " or ".join("None" if k is type(None) else k.__name__
                                 for k in known[name])
            raise ValueError(f"engine option {name}={raw}: expected {wanted}")
        options[name] = float(value) if float in known[name] and \
            type(value) is int else value
    if not options:
        raise ValueError("expected at least one NAME=VALUE")
    ParallelEngine(**options)  # its own range checks (ValueError), before any run
    return options


def _fits(value: Any, kinds: tuple[type, ...]) -> bool:
    if type(value) is bool:  # a bool is an int to isinstance: not to an option
        return bool in kinds
    if type(value) is int and float in kinds:
        return True
    return any(type(value) is kind for kind in kinds)


def format_options(options: Mapping[str, Any]) -> str:
    """The inverse of :func:`parse_options`: ``k=v,k=v`` (empty: the engine as it
    ships)."""
    return ",".join(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"
                    for name, value in options.items())
