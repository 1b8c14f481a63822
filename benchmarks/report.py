"""Render ``pevm bench --json`` or ``pevm analyze --json`` output as Markdown.

    python benchmarks/report.py bench.json > table.md        # a bench document
    python benchmarks/report.py bench.json --totals          # only the sums
    python benchmarks/report.py bench.json --plot out.png    # pevm bench's plot again
    python benchmarks/report.py bench.json --memory          # peak memory (--memory runs)
    python benchmarks/report.py bench.json --state-layer     # whole import at 1 worker
    python benchmarks/report.py bench.json --breakdown       # per process, by activity
    python benchmarks/report.py bench.json --variants        # pevm bench --variant runs
    python benchmarks/report.py analyze.jsonl > table.md     # analyze JSON lines
    python benchmarks/report.py bench.json --model sim.jsonl # the model against it
    python benchmarks/report.py bench.json --model sim.jsonl --plot out.png

The numbers in docs/results.md come from this script, never typed by hand.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from pevm.bench_report import (format_ratio as _fmt, paired_cell, plot_format,
                               save_figure, workers_cell)
from pevm.cli.info import describe_machine
from pevm.engines.timeline import REST_OF_COORDINATOR, REST_OF_WORKER, Activity
from pevm.errors import PevmError


def render(document: dict, totals_only: bool = False) -> str:
    """One row per block and worker count (whole import, then the transaction
    phase); with several blocks a last row per worker count sums the medians."""
    machine = document["machine"]
    lines = [f"Machine: {describe_machine(machine)}, "
             f"{machine['platform']}; {document['date'][:10]}; "
             f"repeat {document['repeat']} (median shown).", "",
             "| block | txs | workers | import s (py-evm) | import s (pevm) | "
             "vs py-evm | vs 1 process | ideal | efficiency | tx phase s (py-evm) | "
             "tx phase s (pevm) | vs py-evm | vs 1 process | paired (range) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | ---: | ---: |"]
    blocks = document["blocks"]
    # the machine's ceiling (pevm bench --ceiling), where it was measured
    bounded = any(block.get("ceiling") for block in blocks)
    if bounded:
        lines[-2] += " ceiling | of ceiling |"
        lines[-1] += " ---: | ---: |"
    #: workers -> sums over blocks of the medians (and transactions)
    totals: dict[int, Counter] = {}
    for block in blocks:
        ref = block["reference"]["seconds"]["median"]
        ref_phase = block["reference"]["transaction_phase"]["seconds"]["median"]
        one = next((r for r in block["engine"] if r["workers"] == 1), None)
        for row in block["engine"]:
            phase = row["transaction_phase"]
            totals.setdefault(row["workers"], Counter()).update({
                "txs": block["txs"], "ref": ref, "ref_phase": ref_phase,
                "eng": row["seconds"]["median"], "phase": phase["seconds"]["median"],
                "one": one["seconds"]["median"] if one else 0.0,
                "one_phase": one["transaction_phase"]["seconds"]["median"] if one else 0.0})
            if totals_only:
                continue
            lines.append(
                f"| {block['name']} | {block['txs']} | {workers_cell(row)} | {ref:.3f} | "
                f"{row['seconds']['median']:.3f} | {_fmt(row['speedup_vs_reference'])} | "
                f"{_fmt(row['speedup_vs_one_process'])} | {_fmt(row['ideal_speedup'])} | "
                f"{_fmt(row['efficiency'], True)} | {ref_phase:.3f} | "
                f"{phase['seconds']['median']:.3f} | "
                f"{_fmt(phase['speedup_vs_reference'])} | "
                f"{_fmt(phase['speedup_vs_one_process'])} | "
                f"{paired_cell(phase.get('paired_vs_one_process'))} |" +
                (f" {_fmt(phase.get('ceiling'))} | {_fmt(phase.get('of_ceiling'), True)} |"
                 if bounded else ""))
    if len(blocks) > 1:
        for workers, t in sorted(totals.items()):
            lines.append(
                f"| **all {len(blocks)} blocks** | {t['txs']} | {workers} | {t['ref']:.2f} | "
                f"{t['eng']:.2f} | {t['ref'] / t['eng']:.2f} | "
                f"{_fmt(t['one'] / t['eng'] if t['one'] else None)} | - | - | "
                f"{t['ref_phase']:.2f} | {t['phase']:.2f} | "
                f"{t['ref_phase'] / t['phase']:.2f} | "
                f"{_fmt(t['one_phase'] / t['phase'] if t['one_phase'] else None)} | - |" +
                (" - | - |" if bounded else ""))
    return "\n".join(lines) + "\n"


def render_memory(document: dict) -> str:
    """Peak memory of each configuration (a ``pevm bench --memory`` document)."""
    lines = ["| block | engine | workers | processes | peak PSS MiB | peak RSS sum MiB | "
             "import s | tx phase s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for block in document["blocks"]:
        configs = [("py-evm", 1, block["reference"])] + \
            [("pevm", row["workers"], row) for row in block["engine"]]
        for engine, workers, entry in configs:
            peak = entry.get("peak_memory")
            if not peak:
                continue
            lines.append(
                f"| {block['name']} | {engine} | {workers} | {peak['processes']} | "
                f"{peak['pss_mib']:,.0f} | {peak['rss_sum_mib']:,.0f} | "
                f"{entry['seconds']['median']:.1f} | "
                f"{entry['transaction_phase']['seconds']['median']:.1f} |")
    return "\n".join(lines) + "\n"


def render_state_layer(document: dict) -> str:
    """Whole import at 1 worker against py-evm, and each one's share of its import
    outside the transaction phase (what the state layer spends: roots, tries,
    database), one row per block and their total."""
    lines = ["| block | txs | py-evm s | pevm s | speedup | "
             "outside tx phase: py-evm | pevm |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    total = [0.0, 0.0, 0.0, 0.0]  # import and phase seconds: py-evm, pevm
    for block in document["blocks"]:
        one = [row for row in block["engine"] if row["workers"] == 1]
        if not one:
            continue
        measured = [(entry["seconds"]["median"],
                     entry["transaction_phase"]["seconds"]["median"])
                    for entry in (block["reference"], one[0])]
        (ref, ref_phase), (pevm, pevm_phase) = measured
        for index, value in enumerate((ref, ref_phase, pevm, pevm_phase)):
            total[index] += value
        lines.append(f"| {block['name']} | {block['txs']} | {ref:.3f} | {pevm:.3f} | "
                     f"{ref / pevm:.2f}x | {1 - ref_phase / ref:.0%} | "
                     f"{1 - pevm_phase / pevm:.0%} |")
    ref, ref_phase, pevm, pevm_phase = total
    if pevm:
        lines.append(f"| **total** | | {ref:.2f} | {pevm:.2f} | **{ref / pevm:.2f}x** | "
                     f"{1 - ref_phase / ref:.1%} | {1 - pevm_phase / pevm:.1%} |")
    return "\n".join(lines) + "\n"


#: the breakdown's columns: the engine's activities, then the rest of each process's
#: wall time (:func:`pevm.engines.timeline.breakdown`)
_ACTIVITIES = [activity.value for activity in Activity] + [REST_OF_COORDINATOR,
                                                           REST_OF_WORKER]


def render_breakdown(document: dict) -> str:
    """Where each process's time went in the last timed round, in milliseconds (a
    ``pevm bench --json`` document: ``breakdown``), one row per block, worker count
    and process; a column per activity any row has, and the process's page faults
    in the same imports where the document has them (``page_faults``)."""
    rows = [(block["name"], entry["workers"], process, activities,
             (entry.get("page_faults") or {}).get(process))
            for block in document["blocks"] for entry in block["engine"]
            for process, activities in (entry.get("breakdown") or {}).items()]
    if not rows:
        return "No per-process breakdown in this document (pevm bench --json writes one).\n"
    used = [name for name in _ACTIVITIES if any(name in row[3] for row in rows)]
    faults = any(row[4] is not None for row in rows)
    lines = ["| block | workers | process | " + " | ".join(used) + " | total |"
             + (" page faults |" if faults else ""),
             "| --- | ---: | --- |" + " ---: |" * (len(used) + 1 + faults)]
    for name, workers, process, activities, count in rows:
        cells = [f"{activities[a] * 1e3:.1f}" if a in activities else "" for a in used]
        total = sum(activities.values()) * 1e3
        lines.append(f"| {name} | {workers} | {process} | " + " | ".join(cells)
                     + f" | {total:.1f} |"
                     + (f" {'' if count is None else f'{count:,}'} |" if faults else ""))
    return "\n".join(lines) + "\n"


def render_variants(document: dict) -> str:
    """The variants (``pevm bench --variant``) against the engine as it ships at the
    same worker count, transaction phase: one row per block, variant and count."""
    lines = ["| block | variant | workers | tx phase s | as shipped s | vs as shipped | "
             "paired (range) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for block in document["blocks"]:
        shipped = {row["workers"]: row["transaction_phase"]["seconds"]["median"]
                   for row in block["engine"]}
        for row in block.get("variants", []):
            phase = row["transaction_phase"]
            lines.append(
                f"| {block['name']} | {row['variant']} | {workers_cell(row)} | "
                f"{phase['seconds']['median']:.3f} | {shipped[row['workers']]:.3f} | "
                f"{_fmt(phase['speedup_vs_base'])} | {paired_cell(phase['paired_vs_base'])} |")
    if len(lines) == 2:
        return "No variants in this document (pevm bench --variant measures them).\n"
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


def _measured(document: dict) -> dict[str, dict[int, tuple[float, float]]]:
    """Block name -> workers -> transaction-phase speedup over one process, by the
    median and by the fastest run."""
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for block in document["blocks"]:
        rows = {row["workers"]: row["transaction_phase"]["seconds"]
                for row in block["engine"]}
        if 1 not in rows:
            continue
        out[block["name"]] = {w: (rows[1]["median"] / s["median"], rows[1]["min"] / s["min"])
                              for w, s in sorted(rows.items())}
    return out


def render_model(document: dict, simulated: list[dict]) -> str:
    """``pevm analyze --simulate`` rows against a bench document of the same
    blocks: predicted and measured speedup at 2 workers, the error, the
    predictions beyond, and the measured share of the ideal by gas and by time."""
    measured = _measured(document)
    lines = ["| block | ideal 2 by gas / time | simulated 2 | measured 2 (fastest) | "
             "error | of ideal by gas / time | simulated 4 / 8 / 16 / 64 | ideal 16 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    errors = []
    for row in simulated:
        sim, ideal = row["simulated_speedup"], row["ideal_speedup"]
        by_time = (row.get("ideal_speedup_by_time") or {}).get("2")
        got = measured.get(row["case"], {}).get(2)
        error = sim["2"] / got[0] - 1 if got else None
        if error is not None:
            errors.append(error)
        beyond = " / ".join(f"{sim[k]:.2f}" for k in ("4", "8", "16", "64") if k in sim)
        ideals = f"{ideal['2']:.2f} / " + (f"{by_time:.2f}" if by_time else "-")
        shares = (f"{got[0] / ideal['2']:.0%} / "
                  + (f"{got[0] / by_time:.0%}" if by_time else "-")) if got else "-"
        lines.append(f"| {row['case']} | {ideals} | {sim['2']:.2f} | "
                     + (f"{got[0]:.2f} ({got[1]:.2f}) | {error:+.0%}" if got else "- | -")
                     + f" | {shares} | {beyond} | {ideal['16']:.2f} |")
    if errors:
        lines += ["", _within(errors, "blocks")]
    cores = {row["calibration"]["cores"] for row in simulated
             if isinstance((row.get("calibration") or {}).get("cores"), int)}
    if len(cores) == 1 and (count := cores.pop()) < 64:
        # a 2-core calibration's predictions at 4-64 repeat its 2: say why
        lines += ["", f"Simulated on {count} cores, the calibration's: past {count} "
                      f"workers the predictions are what {count} cores allow "
                      "(`pevm analyze --simulate LIST --cores N` plans for more)."]
    return "\n".join(lines) + "\n" + _render_model_beyond_two(measured, simulated)


def _within(errors: list[float], what: str) -> str:
    within = sum(abs(e) <= 0.15 for e in errors)
    mean = sum(abs(e) for e in errors) / len(errors)
    return f"Within 15% on {within} of {len(errors)} {what}; mean absolute error {mean:.0%}."


def _render_model_beyond_two(measured: dict[str, dict[int, tuple[float, float]]],
                             simulated: list[dict]) -> str:
    """The model against the measurement at every worker count above 2 that both
    have (a many-core run's 4, 8, 16): one row per block and count; empty where
    the bench stopped at 2."""
    lines = ["| block | workers | ideal | simulated | measured (fastest) | error |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    errors = []
    for row in simulated:
        got = measured.get(row["case"], {})
        for workers in sorted(w for w in got if w > 2 and str(w) in row["simulated_speedup"]):
            sim, (median, fastest) = row["simulated_speedup"][str(workers)], got[workers]
            errors.append(sim / median - 1)
            ideal = row["ideal_speedup"].get(str(workers))
            lines.append(f"| {row['case']} | {workers} | "
                         + (f"{ideal:.2f}" if ideal else "-")
                         + f" | {sim:.2f} | {median:.2f} ({fastest:.2f}) | {errors[-1]:+.0%} |")
    if not errors:
        return ""
    return "\n" + "\n".join(lines) + "\n\n" + _within(errors, "block-and-count pairs") + "\n"


def plot_model(document: dict, simulated: list[dict], path: str) -> None:
    """Per block: the ideals (by gas, by time), the simulated and the measured
    speedup against workers."""
    kind = plot_format(path)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = _measured(document)
    cols = min(4, len(simulated)) or 1
    rows = -(-len(simulated) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows),
                             sharey=True, squeeze=False)
    for ax, row in zip(axes.flat, simulated):
        ideal = {int(k): v for k, v in row["ideal_speedup"].items() if k.isdigit()}
        sim = {int(k): v for k, v in row["simulated_speedup"].items()}
        ax.plot(sorted(ideal), [ideal[k] for k in sorted(ideal)], "--", color="C2",
                label="ideal (dependency graph, gas)")
        # at the gas ideal's worker counts, so that both lines span the same range
        timed = {int(k): v for k, v in (row.get("ideal_speedup_by_time") or {}).items()
                 if k.isdigit() and int(k) in ideal}
        if timed:
            ax.plot(sorted(timed), [timed[k] for k in sorted(timed)], ":", color="C1",
                    label="ideal (measured time)")
        ax.plot(sorted(sim), [sim[k] for k in sorted(sim)], "o-", color="C0",
                markersize=3, label="simulated")
        got = measured.get(row["case"], {})
        ax.plot(sorted(got), [got[k][0] for k in sorted(got)], "s", color="C3",
                label="measured (median)")
        ax.set_title(row["case"], fontsize=9)
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(simulated):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("executing processes")
    for ax in axes[:, 0]:
        ax.set_ylabel("speedup over 1")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, kind, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/report.py",
        description="Render pevm bench --json (a JSON document) or pevm analyze --json "
                    "(JSON lines) as the Markdown tables of docs/results.md.")
    parser.add_argument("file", help="pevm bench --json or pevm analyze --json output")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--totals", action="store_true", help="only the sums over blocks")
    view.add_argument("--memory", action="store_true",
                      help="peak memory (a pevm bench --memory run)")
    view.add_argument("--state-layer", action="store_true",
                      help="the whole import at 1 worker against py-evm")
    view.add_argument("--breakdown", action="store_true",
                      help="each process's time by activity, in ms (last timed round)")
    view.add_argument("--variants", action="store_true",
                      help="the variants (pevm bench --variant) against the engine "
                           "as it ships")
    view.add_argument("--model", metavar="SIM.jsonl",
                      help="the model (pevm analyze --simulate --json) against the bench")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot instead: the bench's speedups, or with --model the "
                             "model against the measurement")
    args = parser.parse_args(argv)
    reading = args.file
    try:
        if args.plot:
            plot_format(args.plot)  # before reading: matplotlib, the format, the path
    except PevmError as exc:
        print(f"report.py: {exc}", file=sys.stderr)
        return 2
    try:
        with open(args.file) as handle:
            text = handle.read()
        if text.lstrip().startswith("{\"source\""):
            sys.stdout.write(render_analysis(
                [json.loads(line) for line in text.splitlines() if line]))
            return 0
        document = json.loads(text)
        simulated = None
        if args.model:
            reading = args.model
            with open(args.model) as handle:
                simulated = [json.loads(line) for line in handle if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"report.py: cannot read {reading}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(document, dict) or not isinstance(document.get("blocks"), list):
        print(f"report.py: {args.file}: not a pevm bench --json document (no list of "
              f"'blocks'; pevm hashbench's JSON has no table here)", file=sys.stderr)
        return 2
    if args.plot:
        try:
            if simulated is not None:
                plot_model(document, simulated, args.plot)
            else:
                from pevm.bench import BlockBench
                from pevm.bench_report import plot
                plot([BlockBench.from_json(b) for b in document["blocks"]], args.plot)
        except PevmError as exc:  # e.g. the disk filled while writing
            print(f"report.py: {exc}", file=sys.stderr)
            return 2
    elif simulated is not None:
        sys.stdout.write(render_model(document, simulated))
    elif args.memory:
        sys.stdout.write(render_memory(document))
    elif args.state_layer:
        sys.stdout.write(render_state_layer(document))
    elif args.breakdown:
        sys.stdout.write(render_breakdown(document))
    elif args.variants:
        sys.stdout.write(render_variants(document))
    else:
        sys.stdout.write(render(document, totals_only=args.totals))
        sys.stdout.write(render_notes(document))
    return 0


def render_notes(document: dict) -> str:
    """What ``pevm bench`` said about the run's noise
    (:func:`pevm.bench_report.speed_note`, :func:`pevm.bench_report.same_path_note`),
    as paragraphs after the table."""
    from pevm.bench import BlockBench
    from pevm.bench_report import same_path_note, speed_note
    notes = (speed_note(document.get("machine", {}).get("slowness_probes") or []),
             same_path_note([BlockBench.from_json(b) for b in document["blocks"]]))
    return "".join(f"\n{note[0].upper()}{note[1:]}\n" for note in notes if note)


if __name__ == "__main__":
    sys.exit(main())
