"""How ``pevm bench``'s measurements are shown, by ``pevm bench`` itself and by
``benchmarks/report.py`` alike: the table's cells (ratios, worker counts, paired
ratios), the notes on a run's noise, and the speed plot (``--plot``) with the two
steps every plot of the project shares -- checking the image format before a
benchmark runs, and writing the image whole.

:mod:`pevm.bench` measures; this module only reads its records
(:meth:`~pevm.bench.BlockBench.rows`).
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pevm.bench import BlockBench
from pevm.errors import PevmError
from pevm.output_files import check_writable, write_atomically


#: ``pevm bench`` probes the machine's speed (:func:`~pevm.host.probe_slowness`)
#: before the first block and after each; where the slowest probe reads more than
#: this much over the fastest, it says so (:func:`speed_note`). A shared VM's
#: speed can move: this 2-core VM read 1.20x one morning and 1.24-2.2x at the start
#: of runs that afternoon, when a block that runs the same code at 1 and 2 workers
#: read 0.84x (session 39).
SPEED_SPREAD = 1.15
#: A block that stays in one process at a worker count above 1 runs nearly the
#: code it runs at 1 worker (the warm-up's path costs 2-4% more: docs/results.md,
#: session 39), so its ratio is a gauge of the run's noise: :func:`same_path_note`
#: names those more than this far from 1x either way.
SAME_PATH_SPREAD = 1.08


def format_ratio(value: float | None, percent: bool = False) -> str:
    """A ratio as a table cell (``1.23``, or ``45%`` with ``percent``), ``-`` for
    none: ``pevm bench``'s table and ``benchmarks/report.py`` alike."""
    if value is None:
        return "-"
    return f"{value:.0%}" if percent else f"{value:.2f}"


def workers_cell(row: Mapping[str, Any]) -> str:
    """A JSON row's worker count as a table cell, with the processes that ran
    where they were fewer (``16 (9 ran)``), and ``pipeline`` where a block ran as
    a sender pipeline (``2 (pipeline)``): ``pevm bench``'s table and
    ``benchmarks/report.py`` alike."""
    ran = row.get("processes_ran")
    notes = [] if ran in (None, row["workers"]) else [f"{ran} ran"]
    if row.get("sender_pipelines"):
        notes.append("pipeline")
    return f"{row['workers']} ({', '.join(notes)})" if notes else str(row["workers"])


def paired_cell(paired: dict[str, float] | None) -> str:
    """:func:`paired_ratios` as a table cell, ``median (fastest-slowest)``, or ``-``."""
    if not paired:
        return "-"
    return f"{paired['median']:.2f} ({paired['min']:.2f}-{paired['max']:.2f})"


def speed_note(probes: Sequence[float]) -> str | None:
    """What to say about a run whose speed probes (:data:`SPEED_SPREAD`) moved:
    None where they held still."""
    if len(probes) < 2 or max(probes) <= SPEED_SPREAD * min(probes):
        return None
    low, high = min(probes), max(probes)
    return (f"note: this machine's speed moved during the run (slowness "
            f"{low:.2f}-{high:.2f}x over {len(probes)} probes): ratios may carry up "
            f"to {high / low - 1:.0%} of noise; run again on a quiet machine")


def same_path_note(benches: Sequence[BlockBench]) -> str | None:
    """What to say where blocks that stayed in one process at more than 1 worker
    (:data:`SAME_PATH_SPREAD`) read far from 1x against 1 worker: the other ratios
    of the run carry noise of that size. None where none did."""
    off = []
    for bench in benches:
        for row in bench.rows():
            ratio = row["transaction_phase"]["speedup_vs_one_process"]
            if row["workers"] > 1 and row["processes_ran"] == 1 and ratio \
                    and not 1 / SAME_PATH_SPREAD <= ratio <= SAME_PATH_SPREAD:
                off.append(f"{bench.name} {ratio:.2f}x at {row['workers']} workers")
    if not off:
        return None
    more = f" and {len(off) - 3} more" if len(off) > 3 else ""
    return (f"note: {', '.join(off[:3])}{more}, in one process at each count as at 1 "
            f"worker: this run's ratios carry noise of that size")


def plot_format(path: str) -> str:
    """The image format ``path``'s extension names (``png`` without one), checked
    before a benchmark runs: PevmError where matplotlib (the ``bench`` extra) is
    missing, does not write that format, or ``path`` cannot be written."""
    check_writable(path)
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PevmError("--plot needs matplotlib: pip install 'pevm[bench]'") from None
    kind = os.path.splitext(path)[1][1:].lower() or "png"
    supported = Figure().canvas.get_supported_filetypes()
    if kind not in supported:
        raise PevmError(f"--plot {path}: matplotlib does not write .{kind} files "
                        f"(it writes {', '.join(sorted(supported))})")
    return kind


def save_figure(fig: Any, path: str, kind: str, dpi: int) -> None:
    """Render the matplotlib figure ``fig`` as ``kind`` (:func:`plot_format`), close
    it, and write it to ``path`` whole (:func:`~pevm.output_files.write_atomically`)."""
    import matplotlib.pyplot as plt

    image = io.BytesIO()
    fig.savefig(image, dpi=dpi, format=kind)
    plt.close(fig)
    write_atomically(path, image.getvalue())


def plot(benches: list[BlockBench], path: str) -> None:
    """Speedup over one process against workers, per block, ideal dashed: the whole
    import on the left, the transaction phase (what the engine runs) on the right."""
    kind = plot_format(path)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    panels = ((axes[0], "whole block import",
               lambda row: row["speedup_vs_one_process"]),
              (axes[1], "transaction phase",
               lambda row: row["transaction_phase"]["speedup_vs_one_process"]))
    ticks: set[int] = set()
    for ax, title, speedup in panels:
        for index, bench in enumerate(benches):
            rows = bench.rows()
            if not rows:
                continue
            color = f"C{index % 10}"
            xs = [r["workers"] for r in rows]
            ticks.update(xs)
            ax.plot(xs, [speedup(r) for r in rows], "o-", color=color, label=bench.name)
            if bench.ideal_speedup:
                ideal = [bench.ideal_speedup.get(str(x)) for x in xs]
                if all(v is not None for v in ideal):
                    ax.plot(xs, ideal, "--", color=color, alpha=0.6,
                            label=f"{bench.name} (ideal)")
        ax.set_title(title)
        ax.set_xlabel("worker processes")
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("speedup over the engine in one process")
    for ax in axes:
        if ticks:
            ax.set_xticks(sorted(ticks))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no parallel-engine measurements", ha="center",
                     transform=axes[0].transAxes)
    fig.tight_layout()
    save_figure(fig, path, kind, dpi=120)
