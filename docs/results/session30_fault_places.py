"""Where in memory the coordinator's page faults fall while the worker lives.

Run the import under perf, then classify the faults of the fourth import's
worker lifetime (fork to stop) by the mapping each address falls in, as the
process's memory map read at that fork names it (1 MiB anonymous mappings and
their runs are pymalloc's arenas; ``[heap]`` is glibc's, for objects over 512
bytes; a library's own pages hold its static objects):

    perf record -e page-faults -c 1 -d -k CLOCK_MONOTONIC --no-inherit -o pf.data \\
        python docs/results/session30_fault_places.py BLOCK.json
    python docs/results/session30_fault_places.py --classify pf.data
"""
import bisect
import collections
import shutil
import subprocess
import sys
import time
from typing import Any

MAPS, TIMES, IMPORT = "/tmp/pevm_fault_maps.txt", "/tmp/pevm_fault_times.txt", 4


def run(path: str) -> None:
    import pevm.engines.feed as feed_module
    import pevm.engines.workers as workers_module
    from pevm.bench import import_run
    from pevm.engines.parallel import ParallelEngine
    from pevm.inputs.discover import list_cases
    from pevm.state.backend import StateBackend

    imports = {"n": 0}
    start_one = workers_module.WorkerPool._start_one
    stop = feed_module.WorkerFeed.stop

    def note() -> None:
        with open(TIMES, "a") as out:
            out.write(f"{time.clock_gettime(time.CLOCK_MONOTONIC)}\n")

    def start_noted(self: Any, worker: int) -> None:
        imports["n"] += 1
        if imports["n"] == IMPORT:
            shutil.copy("/proc/self/maps", MAPS)
            open(TIMES, "w").close()
            note()
        start_one(self, worker)

    def stop_noted(self: Any) -> None:
        if imports["n"] == IMPORT:
            note()
        stop(self)

    workers_module.WorkerPool._start_one = start_noted  # type: ignore[method-assign]
    feed_module.WorkerFeed.stop = stop_noted  # type: ignore[method-assign]
    case = list_cases([path]).cases[0]
    for _ in range(IMPORT):
        engine = ParallelEngine(workers=2, state_backend=StateBackend.FLAT)
        import_run(case, case.load().start(StateBackend.FLAT), engine, [])


def classify(data: str) -> None:
    start, end = (float(x) for x in open(TIMES).read().split()[:2])
    mappings = []
    for line in open(MAPS):
        fields = line.split()
        low, high = (int(x, 16) for x in fields[0].split("-"))
        name = fields[5].rsplit("/", 1)[-1] if len(fields) > 5 else "anonymous"
        mappings.append((low, high, name))
    mappings.sort()
    lows = [m[0] for m in mappings]
    script = subprocess.run(["perf", "script", "-i", data, "-F", "time,addr"],
                            capture_output=True, text=True, check=True).stdout
    counts: collections.Counter[str] = collections.Counter()
    for line in script.splitlines():
        stamp, address = line.split(":")
        if not start <= float(stamp) <= end:
            continue
        where = int(address.strip(), 16)
        index = bisect.bisect_right(lows, where) - 1
        inside = index >= 0 and mappings[index][0] <= where < mappings[index][1]
        counts[mappings[index][2] if inside else "unmapped at the fork"] += 1
    total = sum(counts.values())
    print(f"{total} faults while the worker lived")
    for name, count in counts.most_common(8):
        print(f"  {name}: {count} ({100 * count / total:.0f}%)")


if __name__ == "__main__":
    if sys.argv[1] == "--classify":
        classify(sys.argv[2])
    else:
        run(sys.argv[1])
