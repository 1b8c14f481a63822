"""One process's transaction phase on a block, twice: run alone, and beside busy loops."""
import json, sys
from pevm.inputs.discover import list_cases
from pevm.engines.parallel import ParallelEngine
from pevm.state.backend import StateBackend
from pevm.bench import import_run
ref = list_cases([sys.argv[1]]).cases[0]
for i in range(int(sys.argv[3])):
    run = ref.load().start(StateBackend.FLAT)
    _, phase, _, _ = import_run(ref, run, ParallelEngine(workers=1, state_backend=StateBackend.FLAT), [])
    print(json.dumps({"block": ref.name, "spinners": int(sys.argv[2]), "phase": round(phase, 4)}), flush=True)
