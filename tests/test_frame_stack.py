"""The roomy frame stack (pevm.frame_stack): what it calls, and that calls
at a chunk's edge stop mapping a chunk each time.

The edge is found by page faults, not by time: each call that opens a new chunk of
CPython 3.11/3.12's frame stack maps it and faults its first page in, so a loop of
such calls shows as many minor faults as calls.
"""
from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from typing import Any

import pytest

from pevm.frame_stack import FRAME_SLOTS, call_with_roomy_stack

CALLS = 400
STEP = 64  # slots per padding frame: a 16 KiB chunk (2,048 slots) in 32 positions


def _pad(n: int, fn: Callable[[], Any]) -> Any:
    if n:
        return _pad(n - 1, fn)
    return fn()


_pad.__code__ = _pad.__code__.replace(co_stacksize=STEP - 10)


def _leaf(n: int) -> int:
    return _leaf(n - 1) if n else 0


def _faults_of_calls() -> int:
    """Minor page faults of CALLS shallow calls from where the stack stands."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(CALLS):
        _leaf(3)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _most_faults(wrap: Callable[[Callable[[], int]], int]) -> int:
    """The most faults of a loop of calls over every position in two chunks."""
    def probe_at(n: int) -> Callable[[], int]:
        return lambda: _pad(n, _faults_of_calls)
    return max(wrap(probe_at(n)) for n in range(64))


def test_it_calls_the_function_with_its_arguments() -> None:
    assert call_with_roomy_stack(divmod, 17, 5) == (3, 2)
    assert call_with_roomy_stack(dict, a=1) == {"a": 1}
    with pytest.raises(ZeroDivisionError):
        call_with_roomy_stack(divmod, 1, 0)


def test_its_frame_declares_more_than_half_a_megabyte_chunk_holds() -> None:
    # a 512 KiB chunk holds 65,536 slots, 1,000 of them kept free by CPython
    assert call_with_roomy_stack.__code__.co_stacksize == FRAME_SLOTS > 65_536 - 1_000


def test_calls_at_a_chunk_edge_stop_faulting_on_the_roomy_stack() -> None:
    plain = _most_faults(lambda probe: probe())
    if plain < CALLS // 2:
        pytest.skip(f"this interpreter ({sys.version.split()[0]}) does not map a "
                    f"frame-stack chunk per call at an edge ({plain} faults for "
                    f"{CALLS} calls): nothing to avoid")
    roomy = _most_faults(lambda probe: call_with_roomy_stack(probe))
    assert roomy < CALLS // 10, (plain, roomy)
