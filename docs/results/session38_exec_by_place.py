"""An experiment's reader, not part of pevm: how long each process's executions
took, by what came right before them, in a ``pevm bench --trace`` file.

    pevm bench BLOCK.json --workers 1,2 --repeat 2 --trace trace.json
    python docs/results/session38_exec_by_place.py trace.json

Per track (process) of the trace: the median ``execute`` slice (wall time, us) by
the slice that ended just before it on the same track, and, for a worker, by the
execution's place in an unbroken run of executions (0: the first after the
chunk's sender recoveries or a message).
"""
import collections
import json
import statistics
import sys


def main(path: str) -> None:
    events = json.load(open(path))["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    for pid, name in sorted(names.items()):
        slices = sorted((e for e in events if e.get("ph") == "X" and e["pid"] == pid),
                        key=lambda e: e["ts"])
        by_previous: dict[str, list[float]] = collections.defaultdict(list)
        by_place: dict[int, list[float]] = collections.defaultdict(list)
        previous, place = "(none)", 0
        for event in slices:
            if event["name"] == "execute":
                by_previous[previous].append(event["dur"])
                by_place[min(place, 10)].append(event["dur"])
                place += 1
            else:
                place = 0
            previous = event["name"]
        if not by_previous:
            continue
        print(name)
        for what, durations in sorted(by_previous.items(), key=lambda kv: -len(kv[1])):
            print(f"  after {what:<16} {len(durations):>5} executions, "
                  f"median {statistics.median(durations):7.1f} us")
        if "worker" in name:
            cells = ", ".join(f"{k if k < 10 else '10+'}: {statistics.median(v):.0f}"
                              for k, v in sorted(by_place.items()))
            print(f"  by place in a run of executions (us): {cells}")


if __name__ == "__main__":
    main(sys.argv[1])
