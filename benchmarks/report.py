"""Render ``pevm bench --json`` output as the Markdown table the README shows.

    python benchmarks/report.py results.json > table.md

The README's numbers come from this script, never typed by hand.
"""
from __future__ import annotations

import json
import sys


def render(document: dict) -> str:
    machine = document["machine"]
    lines = [f"Machine: {machine['cpu_count']} CPUs, Python {machine['python']}, "
             f"{machine['platform']}; {document['date'][:10]}; "
             f"repeat {document['repeat']} (median shown).", "",
             "| block | txs | reference s | workers | engine s | vs reference | "
             "vs 1 process | ideal | efficiency |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for block in document["blocks"]:
        ref = block["reference"]["seconds"]["median"]
        for row in block["engine"]:
            def fmt(value: float | None, pct: bool = False) -> str:
                if value is None:
                    return "-"
                return f"{value:.0%}" if pct else f"{value:.2f}"
            lines.append(
                f"| {block['name']} | {block['txs']} | {ref:.3f} | {row['workers']} | "
                f"{row['seconds']['median']:.3f} | {fmt(row['speedup_vs_reference'])} | "
                f"{fmt(row['speedup_vs_one_process'])} | {fmt(row['ideal_speedup'])} | "
                f"{fmt(row['efficiency'], True)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        sys.stdout.write(render(json.load(handle)))
