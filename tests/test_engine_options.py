"""The parallel engine's tuning options as text (``pevm bench --variant``)."""
from __future__ import annotations

import inspect
import re

import pytest

from pevm.engines.options import format_options, parse_options, tunable_options
from pevm.engines.parallel import ParallelEngine


def test_the_options_are_the_engines_own_keywords_less_the_benchmarks_axes() -> None:
    keywords = set(inspect.signature(ParallelEngine.__init__).parameters)
    options = tunable_options()
    assert set(options) == keywords - {"self", "workers", "state_backend", "hooks"}
    assert options["chunk_size"] == (int, type(None))
    assert options["coordinator_executes"] == (bool,)


@pytest.mark.parametrize("text, expected", [
    ("chunk_size=96", {"chunk_size": 96}),
    (" worker_nice = 0 , fork_after=0.01 ", {"worker_nice": 0, "fork_after": 0.01}),
    ("fork_after=0", {"fork_after": 0.0}),             # an int where a float goes
    ("chunk_size=None", {"chunk_size": None}),         # the engine's own policy
    ("coordinator_executes=False", {"coordinator_executes": False}),
    ("sender_pipeline=false", {"sender_pipeline": False}),  # any case
    ("sender_pipeline=TRUE,chunk_size=none", {"sender_pipeline": True,
                                              "chunk_size": None}),
    ("start_method=spawn", {"start_method": "spawn"}),  # a bare word is text
])
def test_values_are_literals_of_the_keywords_type(text: str, expected: dict) -> None:
    options = parse_options(text)
    assert options == expected
    assert [type(v) for v in options.values()] == [type(v) for v in expected.values()]
    assert parse_options(format_options(options)) == options


@pytest.mark.parametrize("text, message", [
    ("bogus=1", "unknown engine option 'bogus' (options: min_parallel_txs"),
    ("chunk_size=x", "chunk_size=x: expected int or None"),
    ("freeze_gc=1", "freeze_gc=1: expected bool"),    # 1 is no bool
    ("sender_pipeline=never", "sender_pipeline=never: expected bool or None"),
    ("worker_nice=True", "worker_nice=True: expected int"),  # nor True an int
    ("chunk_size=1,chunk_size=2", "'chunk_size' given twice"),
    ("chunk_size", "expected NAME=VALUE, got 'chunk_size'"),
    ("workers=4", "unknown engine option 'workers'"),  # the benchmark's axis
    ("", "at least one NAME=VALUE"),
    ("chunk_size=0", "chunk_size must be at least 1, got 0"),  # the engine refuses
    ("max_outstanding=0", "max_outstanding must be at least 1, got 0"),
])
def test_bad_options_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_options(text)
