"""How a block's time depends on where CPython's frame stack stands when it starts.

Session 31 (docs/results.md, "The frame stack's edge"). For each block, the
engine at 1 worker (in-process: no fork, so the frame stack is the only thing that
changes) imports the block from POSITIONS stack positions -- each a padding of
recursive frames of known size below the engine's call, covering one 16 KiB chunk
(2,048 slots) of CPython 3.11's frame stack -- with ``roomy_stack`` on (the
engine as shipped, :mod:`pevm.frame_stack`) and off, alternating; with
``--reference``, py-evm's own import too (it runs on the roomy stack in pevm's
reference engine, so its "off" calls py-evm's ``apply_all_transactions``
directly). Prints one JSON line per block and setting: the transaction-phase
seconds at each position, their min, median and max.

Usage: session31_stack_depth.py [--reference] [--positions N] BLOCK...
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

from pevm.bench import _run_once
from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.discover import list_cases

#: slots of CPython 3.11's frame stack per padding frame (its value stack, plus its
#: three locals and seven slots of frame header)
STEP = 128


def _pad(n: int, fn: Callable[[], Any]) -> Any:
    if n:
        return _pad(n - 1, fn)
    return fn()


_pad.__code__ = _pad.__code__.replace(co_stacksize=STEP - 10)


class _PlainReference(ReferenceEngine):
    """py-evm's import where the caller's stack stands (no roomy frame)."""

    def apply_transactions(self, vm: Any, transactions: Any, base_header: Any) -> Any:
        import pevm.engines.reference as reference
        saved = reference.call_with_roomy_stack
        reference.call_with_roomy_stack = lambda fn, *a: fn(*a)
        try:
            return super().apply_transactions(vm, transactions, base_header)
        finally:
            reference.call_with_roomy_stack = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("blocks", nargs="+")
    parser.add_argument("--positions", type=int, default=16)
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()
    engines: dict[str, Any] = {
        "roomy": ParallelEngine(workers=1),
        "off": ParallelEngine(workers=1, roomy_stack=False)}
    if args.reference:
        engines = {"py-evm roomy": ReferenceEngine(), "py-evm off": _PlainReference()}
    for block in args.blocks:
        ref = list_cases([block]).cases[0]
        _run_once(ref, engines[next(iter(engines))])  # warm: imports, caches
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        for position in range(args.positions):
            pad = position * (2048 // args.positions) // STEP
            for name, engine in engines.items():
                phase = _pad(pad, lambda e=engine, r=ref: _run_once(r, e))[1]
                seconds[name].append(round(phase, 4))
        for name, values in seconds.items():
            print(json.dumps({"block": ref.name, "setting": name, "seconds": values,
                              "min": min(values), "median": statistics.median(values),
                              "max": max(values)}), flush=True)
        print(f"{ref.name}: " + ", ".join(
            f"{name} {1000 * min(v):.1f}-{1000 * max(v):.1f} ms"
            for name, v in seconds.items()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
