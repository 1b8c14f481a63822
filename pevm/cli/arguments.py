"""Argument types the subcommands share (argparse ``type=`` callables).

A bad value is an argparse error: the usage line, the option and what was
expected, exit status 2.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def positive_int(text: str) -> int:
    """One integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_ints(what: str = "integers") -> Callable[[str], list[int]]:
    """A type for comma-separated integers of at least 1, in the order given
    (``1,2,4``; ``100_000`` reads as 100000); ``what`` names them in errors."""
    def parse(text: str) -> list[int]:
        try:
            values = [int(part.replace("_", "")) for part in text.split(",")
                      if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what} like 1,2,4, got {text!r}") from None
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError(
                f"expected positive {what} like 1,2,4, got {text!r}")
        return values
    return parse


def engine_options(text: str) -> dict[str, Any]:
    """The parallel engine's tuning options, ``name=value[,name=value...]``
    (:func:`pevm.engines.options.parse_options`)."""
    from pevm.engines.options import parse_options
    try:
        return parse_options(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
