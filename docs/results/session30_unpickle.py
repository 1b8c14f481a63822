"""What unpickling the workers' results costs the coordinator inside a block at 2
workers, against the same bytes unpickled again after it: the time and the minor
page faults of each message received, over three imports of one block (the
last import's messages are unpickled again at the end).

    python docs/results/session30_unpickle.py BLOCK.json
"""
import pickle
import resource
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from pevm.bench import import_run
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases
from pevm.state.backend import StateBackend

received: list[tuple[bytes, int, float, int]] = []


def recv(self: Connection) -> Any:
    """Connection.recv, timed and with the faults it took."""
    data = self.recv_bytes()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    message = pickle.loads(data)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    received.append((data, len(getattr(message, "results", ()) or ()), seconds, faults))
    return message


Connection.recv = recv  # type: ignore[assignment]
case = list_cases([sys.argv[1]]).cases[0]
for _import in range(3):
    received.clear()
    engine = ParallelEngine(workers=2, state_backend=StateBackend.FLAT)
    import_run(case, case.load().start(StateBackend.FLAT), engine, [])
    print(f"in the block: {len(received)} messages, "
          f"{sum(r[1] for r in received)} results, "
          f"{sum(r[2] for r in received) * 1e3:.2f} ms, "
          f"{sum(r[3] for r in received)} faults", flush=True)
start = time.perf_counter()
for data, *_ in received:
    pickle.loads(data)
print(f"the last import's messages again after it: "
      f"{(time.perf_counter() - start) * 1e3:.2f} ms")
