"""Render ``pevm bench --json`` or ``pevm analyze --json`` output as Markdown.

    python benchmarks/report.py bench.json > table.md        # a bench document
    python benchmarks/report.py analyze.jsonl > table.md     # analyze JSON lines

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


def render_analysis(rows: list[dict]) -> str:
    lines = ["| block | txs | conflict rate | critical path (txs) | ideal 2 | ideal 4 | "
             "ideal 8 | ideal 16 | ideal ∞ |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        ideal = row["ideal_speedup"]
        name = row["case"] if row["case"].startswith("mainnet") else row["source"].split("/")[-1]
        lines.append(f"| {name} | {row['txs']} | {row['conflict_rate']:.0%} | "
                     f"{row['critical_path']['count']} | " +
                     " | ".join(f"{ideal[k]:.2f}" for k in ("2", "4", "8", "16", "inf")) +
                     " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        text = handle.read()
    if text.lstrip().startswith("{\"source\""):
        sys.stdout.write(render_analysis([json.loads(l) for l in text.splitlines() if l]))
    else:
        sys.stdout.write(render(json.loads(text)))
