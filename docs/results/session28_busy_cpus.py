"""One process's transaction phase on a block, run alone or beside busy loops.

Usage: ``python session28_busy_cpus.py BLOCK LOOPS ROUNDS`` (the busy loops are
started by the caller: ``LOOPS`` only labels the lines). Prints one JSON line per
round: block, loops beside it, transaction-phase seconds.
"""
import json
import sys

from pevm.bench import import_run
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases
from pevm.state.backend import StateBackend

ref = list_cases([sys.argv[1]]).cases[0]
for _ in range(int(sys.argv[3])):
    run = ref.load().start(StateBackend.FLAT)
    engine = ParallelEngine(workers=1, state_backend=StateBackend.FLAT)
    _, phase, _, _ = import_run(ref, run, engine, [])
    print(json.dumps({"block": ref.name, "spinners": int(sys.argv[2]),
                      "phase": round(phase, 4)}), flush=True)
