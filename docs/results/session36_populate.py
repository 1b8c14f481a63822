"""An experiment, not part of pevm: how much of a 2-worker execution's slowdown is
the fork's copy-on-write? Right after each fork, both the coordinator and the
worker break copy-on-write for every private writable page they have
(``madvise(MADV_POPULATE_WRITE)``, Linux 5.14+), so that no write in the block
faults; then ``pevm bench`` runs as usual. Compare the trace's ``execute``
slices with and without it:

    POPULATE=0 python docs/results/session36_populate.py bench BLOCK.json \
        --workers 2 --repeat 1 --trace off.json
    POPULATE=1 python docs/results/session36_populate.py bench BLOCK.json \
        --workers 2 --repeat 1 --trace on.json

The populating itself (~65 ms a process for ~39,000 pages on the 2-core VM) is
inside the coordinator's ``start workers`` slice and before the worker's first
message; only the slices after it are comparable.
"""
import ctypes
import functools
import os
import sys
import time

import pevm.engines.workers as workers
from pevm.cli.main import main as pevm_main

MADV_POPULATE_WRITE = 23
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def populate() -> tuple[float, int]:
    """Break copy-on-write for this process's private writable anonymous memory:
    (seconds, pages)."""
    start, pages = time.perf_counter(), 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            perms, path = fields[1], fields[5] if len(fields) > 5 else ""
            if perms[:2] != "rw" or perms[3] != "p":
                continue
            if (path and not path.startswith("[")) or path in ("[vvar]", "[vdso]"):
                continue
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if _libc.madvise(low, high - low, MADV_POPULATE_WRITE) == 0:
                pages += (high - low) // 4096
    return time.perf_counter() - start, pages


def _populated_worker(conn, worker, **kwargs):
    populate()
    return _worker_main(conn, worker, **kwargs)


def _init(self, ctx, hooks, mv, nice=0):
    _pool_init(self, ctx, hooks, mv, nice)
    self._worker_main = functools.partial(_populated_worker, ctx=ctx, mv=mv,
                                          hooks=hooks, nice=nice)


def _start_one(self, worker):
    _start(self, worker)
    seconds, pages = populate()
    print(f"coordinator: {pages} pages populated in {seconds * 1e3:.0f} ms",
          file=sys.stderr)


_worker_main = workers._worker_main
_pool_init = workers.WorkerPool.__init__
_start = workers.WorkerPool._start_one
if os.environ.get("POPULATE", "1") == "1":
    workers.WorkerPool.__init__ = _init
    workers.WorkerPool._start_one = _start_one

if __name__ == "__main__":
    sys.exit(pevm_main(sys.argv[1:]))
