"""An experiment, not part of pevm: do two processes importing a block at once
slow each other down on this machine?

    python docs/results/session38_two_imports.py BLOCK.json ROUNDS

Each round times, at 1 worker (the engine in one process): one import alone; two
at once in two forked processes, their pre-states loaded before the fork (so that
they share it copy-on-write, as a worker shares the coordinator's) and after it
(as ``pevm bench --ceiling``'s copies do); then, in later rounds, one import with
a second process busy beside it -- a loop over a few kB (``tiny``) or over ~13 MB
of Python objects (``memory``). It prints the median transaction phase and the
engine's execution and sender-recovery seconds per import, and every phase.
"""
import multiprocessing
import statistics
import subprocess
import sys
import time

from pevm.bench import ProcessTotals, import_run
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases
from pevm.state.backend import StateBackend

BACKEND = StateBackend.FLAT
NEIGHBOURS = {
    "tiny": "d = {}\nwhile True:\n    for i in range(100000):\n"
            "        d[i % 1000] = d.get(i % 1000, 0) + i\n",
    "memory": "import random\ndata = [random.random() for _ in range(400000)]\n"
              "idx = [random.randrange(400000) for _ in range(200000)]\n"
              "while True:\n    s = 0.0\n    for i in idx:\n        s += data[i]\n",
}


def once(ref, run):
    """(phase, execute, recover sender) seconds of one in-process import."""
    totals = ProcessTotals()
    phase = import_run(ref, run, ParallelEngine(workers=1, state_backend=BACKEND),
                       totals=totals)[1]
    activities = totals.breakdown.get("coordinator", {})
    return phase, activities.get("execute", 0.0), activities.get("recover sender", 0.0)


def _child(ref, run, barrier, conn):
    if run is None:
        run = ref.load().start(BACKEND)
    barrier.wait()
    conn.send(once(ref, run))
    conn.close()


def two_at_once(ref, inherit):
    mp = multiprocessing.get_context("fork")
    barrier = mp.Barrier(2)
    runs = [ref.load().start(BACKEND) if inherit else None for _ in range(2)]
    ends = []
    for run in runs:
        parent, child = mp.Pipe(duplex=False)
        process = mp.Process(target=_child, args=(ref, run, barrier, child))
        process.start()
        child.close()
        ends.append((parent, process))
    out = [parent.recv() for parent, _ in ends]
    for _, process in ends:
        process.join()
    return out


def beside(ref, kind):
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOURS[kind]])
    try:
        time.sleep(0.5)
        return [once(ref, ref.load().start(BACKEND)) for _ in range(3)]
    finally:
        neighbour.kill()
        neighbour.wait()


def main(path, rounds):
    ref = list_cases([path]).cases[0]
    once(ref, ref.load().start(BACKEND))  # warm-up
    runs = {"alone": [], "two at once, state inherited": [],
            "two at once, state loaded after the fork": [],
            "alone, a tiny loop beside it": [], "alone, a memory loop beside it": []}
    for _ in range(rounds):
        runs["alone"].append(once(ref, ref.load().start(BACKEND)))
        runs["two at once, state inherited"].extend(two_at_once(ref, True))
        runs["two at once, state loaded after the fork"].extend(two_at_once(ref, False))
    for _ in range(max(1, rounds // 2)):
        runs["alone, a tiny loop beside it"].extend(beside(ref, "tiny"))
        runs["alone, a memory loop beside it"].extend(beside(ref, "memory"))
    for name, samples in runs.items():
        phase, execute, recover = (statistics.median(s[i] for s in samples) * 1e3
                                   for i in range(3))
        print(f"{name}: phase {phase:.1f} ms, execute {execute:.1f} ms, "
              f"recover {recover:.1f} ms; phases {[round(s[0] * 1e3) for s in samples]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
