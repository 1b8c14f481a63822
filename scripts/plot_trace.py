"""Draw a pevm trace file (``pevm run/bench --trace``) as a timeline picture.

One lane per process, one coloured bar per slice (execute, re-execute, validate,
commit, message, wait, sender recovery, ...): what Perfetto shows interactively,
as a PNG for docs/results.md. ``--window A:B`` (milliseconds from the trace's start)
zooms in.

    python scripts/plot_trace.py trace.json -o docs/results/trace.png
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

#: fixed colours per activity, so that pictures of different runs compare
COLOURS = {
    "execute": "#4e79a7", "re-execute": "#e15759", "recover sender": "#b07aa1",
    "validate": "#f28e2b", "commit": "#59a14f", "message": "#edc948",
    "wait": "#d3d3d3", "start workers": "#9c755f", "merge": "#76b7b2",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", help="trace file written by pevm --trace")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.png")
    parser.add_argument("--window", metavar="A:B",
                        help="only milliseconds A to B from the trace's start")
    parser.add_argument("--title", default="", help="picture title")
    args = parser.parse_args(argv)
    try:
        with open(args.trace) as handle:
            events = json.load(handle)["traceEvents"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"plot_trace: {args.trace}: not a trace file ({exc})", file=sys.stderr)
        return 2
    low, high = 0.0, float("inf")
    if args.window:
        first, _, last = args.window.partition(":")
        low, high = float(first or 0), float(last or "inf")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    bars: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    for event in events:
        if event.get("ph") != "X":
            continue
        start, width = event["ts"] / 1000, event["dur"] / 1000
        if start + width < low or start > high:
            continue
        bars[(event["pid"], event["name"])].append((start, max(width, 0.002)))
    lanes = sorted(names)
    fig, ax = plt.subplots(figsize=(12, 0.6 * len(lanes) + 1.6))
    for (pid, name), spans in bars.items():
        ax.broken_barh(spans, (lanes.index(pid) - 0.4, 0.8),
                       facecolors=COLOURS.get(name, "#bab0ac"), linewidth=0)
    ax.set_yticks(range(len(lanes)), [names[pid] for pid in lanes])
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds")
    if args.window:
        ax.set_xlim(low, None if high == float("inf") else high)
    present = {name for _, name in bars}
    used = [n for n in COLOURS if n in present] + sorted(present - set(COLOURS))
    ax.legend(handles=[Patch(color=COLOURS.get(n, "#bab0ac"), label=n) for n in used],
              loc="upper center", bbox_to_anchor=(0.5, -0.18 - 0.02 * len(lanes)),
              ncol=len(used), fontsize=8, frameon=False)
    if args.title:
        ax.set_title(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    plt.close(fig)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
