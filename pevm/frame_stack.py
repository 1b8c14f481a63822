"""Room on CPython's frame stack, so that a transaction's nested calls never run at a
chunk's edge.

CPython 3.11 and 3.12 keep a thread's Python frames on a stack of chunks (16 KiB,
about 2,000 slots each): a call that does not fit in the current chunk maps a new
chunk (``mmap``), and the return that empties it unmaps it again. Code that calls
in a loop right at a chunk's edge therefore maps a chunk, faults its page in and
unmaps it on every call -- some 50 times the cost of the call (CPython issue
gh-142183; 3.13.x and 3.14 keep one spare chunk). py-evm runs each transaction and
each EVM call several Python frames deep, so where the stack stands when a block
starts decides whether its transactions pay that on every call, and it stands
differently in ``pevm run`` and ``pevm bench``, in the coordinator and in a worker
forked from it. Session 31 moved the start of one import over one chunk's worth of
positions (``docs/results/session31_stack_depth.py``): mainnet 14029313 took
0.58-4.38 s at 1 worker, 12520364 0.21-0.60 s, 1,000 plain transfers 0.14-0.42 s,
py-evm's own import of 12520364 0.67-1.30 s.

:func:`call_with_roomy_stack` calls a function under a frame whose code declares a
value stack of :data:`FRAME_SLOTS` slots. No ordinary chunk holds that frame, so
CPython maps a chunk of 1 MiB for it (a chunk is sized for the frame that opens
it, in powers of two), and the frames of the function's callees land in that
chunk's other half: about 65,000 slots before an edge, where the deepest of four
mainnet blocks measured (17666333) reached 5,700. The frame's own value stack is never
written, so its pages are never touched; the chunk is unmapped when the call
returns. Both engines run their blocks' transactions this way -- the reference
too, so that a comparison with py-evm does not hinge on where either engine's stack
happens to stand -- and a worker, forked while the coordinator runs the block, goes
on in the same chunk; :func:`pevm.pipeline.import_with_engine` runs the whole
import so as well (py-evm's steps outside the transactions, its trie's recursive
updates above all, sat at an edge as easily). A call inside another maps a chunk
of its own. On an interpreter whose frame stack is not chunked this way the call
is just a call.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: The declared value stack of :func:`call_with_roomy_stack`'s frame: above the
#: 64,536 slots that fit in a 512 KiB chunk (CPython reserves 1,000 slots more
#: than a frame asks for), so its chunk is 1 MiB (131,072 slots) and about half of
#: it is left for the frames above.
FRAME_SLOTS = 66_000


def call_with_roomy_stack(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)``, its frames pushed into a fresh, roomy chunk of the
    frame stack (see the module docstring)."""
    return fn(*args, **kwargs)


call_with_roomy_stack.__code__ = call_with_roomy_stack.__code__.replace(
    co_stacksize=FRAME_SLOTS)
