"""A corpus' record of what sequential py-evm gives: ``PYEVM_BASELINE.jsonl``.

One JSON object per line: ``file`` (relative to the corpus), ``case``, ``result``
(``pass``, ``fail`` -- py-evm's own known failures -- or ``timeout``) and the
``seconds`` py-evm took. pevm must pass every case py-evm passes and agree with it
where it fails; the corpus tests and ``scripts/corpus_equivalence.py`` read it here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "PYEVM_BASELINE.jsonl"


@dataclass(frozen=True)
class BaselineEntry:
    """What py-evm gave for one case."""

    result: str
    seconds: float


def read_baseline(corpus: Path) -> dict[tuple[str, str], BaselineEntry]:
    """(file relative to ``corpus``, case) -> :class:`BaselineEntry`; empty when the
    corpus has no baseline."""
    path = corpus / FILE_NAME
    out: dict[tuple[str, str], BaselineEntry] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                out[(row["file"], row["case"])] = BaselineEntry(
                    row["result"], float(row.get("seconds", 0.0)))
    return out
