"""Paired in-process A/B: one process's import of a block (1 worker) with another
program busy on the machine's other core, against the same import alone.

``spin`` is a pure-Python loop (no memory traffic), ``alloc`` builds and drops
dicts of lists, ``copy`` copies a 64 MB NumPy array over and over. Each round
imports the block once each way (the neighbour started 0.3 s before, killed
after), in an order reversed every other round, after one untimed round; every
import starts from ``pevm.bench.fresh_round`` (as ``pevm bench`` times them).
Prints the median of the per-round ratios of the transaction phase, busy/alone
(above 1: the neighbour slows the import), and each round's.

Usage: session46_neighbour_ab.py ROUNDS {spin|alloc|copy} BLOCK..."""
import statistics
import subprocess
import sys
import time

from pevm.bench import _run_once
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases

NEIGHBOURS = {
    "spin": "while 1: pass",
    "alloc": "import random\nwhile 1:\n d={random.random(): [i] * 8 for i in range(50000)}",
    "copy": "import numpy as np\na = np.ones(64 * 2**20 // 8)\nwhile 1: b = a.copy()",
}

rounds, kind = int(sys.argv[1]), sys.argv[2]
program = NEIGHBOURS[kind]
for path in sys.argv[3:]:
    ref = list_cases([path]).cases[0]
    engine = ParallelEngine(workers=1)
    ratios = []
    for round_index in range(rounds + 1):
        phase: dict[bool, float] = {}
        for busy in ((True, False) if round_index % 2 == 0 else (False, True)):
            neighbour = subprocess.Popen([sys.executable, "-c", program]) if busy else None
            if neighbour is not None:
                time.sleep(0.3)
            try:
                _, phase[busy], *_ = _run_once(ref, engine)
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
        if round_index:
            ratios.append(phase[True] / phase[False])
    print(f"{path.split('/')[-1]} {kind}: busy/alone {statistics.median(ratios):.3f}",
          [round(ratio, 3) for ratio in ratios])
