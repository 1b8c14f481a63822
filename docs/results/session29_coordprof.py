"""Where the coordinator's time goes at many workers: cProfile of the coordinator
process only (workers are forked children and not profiled), one warm import
first, then one profiled import per block and worker count."""
import cProfile
import io
import pstats
import sys

from pevm.bench import import_run
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases
from pevm.state.backend import StateBackend

out = open(sys.argv[1], "w")
for spec in sys.argv[2:]:
    path, workers = spec.rsplit(":", 1)
    ref = list_cases([path]).cases[0]
    for profiled in (False, True):
        eng = ParallelEngine(workers=int(workers), state_backend=StateBackend.FLAT,
                             fit_workers=False)
        run = ref.load().start(StateBackend.FLAT)
        pr = cProfile.Profile() if profiled else None
        if pr:
            pr.enable()
        _, phase, _, _ = import_run(ref, run, eng, [])
        if pr:
            pr.disable()
        d = eng.last_detail
        coord = d.breakdown.get("coordinator", {}) if d is not None else {}
        print(f"== {ref.name} workers={workers} profiled={profiled} phase={phase:.4f} "
              f"used={eng.last_detail and len(eng.last_detail.worker_cpu_s)} "
              f"coordinator_ms={ {k: round(v * 1e3, 1) for k, v in coord.items()} }",
              file=out, flush=True)
    for key, pattern, limit in (("tottime", "", 35), ("cumtime", "pevm/", 45)):
        s = io.StringIO()
        st = pstats.Stats(pr, stream=s)
        st.sort_stats(key).print_stats(pattern, limit) if pattern else \
            st.sort_stats(key).print_stats(limit)
        out.write(s.getvalue())
    out.flush()
