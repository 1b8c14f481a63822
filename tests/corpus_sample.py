"""The corpus sample the test suite runs (deterministic, about 20 minutes in all).

- every case with a block of two or more transactions (where conflicts can occur);
- every mainnet block;
- a stratified sample of single-transaction cases: every network, spread evenly
  over the files of each network (``PEVM_CORPUS_SAMPLE`` = cases per network,
  default 24; ``all`` runs everything).

It also reads ``PYEVM_BASELINE.jsonl``: what sequential py-evm gives per case.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PER_NETWORK = 24


@dataclass(frozen=True)
class SampledCase:
    file: Path
    case: str
    network: str
    max_txs: int


def baseline(corpus: Path) -> dict[tuple[str, str], str]:
    """(file relative to the corpus, case) -> "pass" | "fail" | "timeout"."""
    out = {}
    path = corpus / "PYEVM_BASELINE.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                out[(row["file"], row["case"])] = row["result"]
    return out


def sample_ethtests(corpus: Path, per_network: int | None = None) -> list[SampledCase]:
    setting = os.environ.get("PEVM_CORPUS_SAMPLE", str(per_network or DEFAULT_PER_NETWORK))
    everything = setting == "all"
    per_network = 0 if everything else int(setting)
    known = baseline(corpus)
    multi: list[SampledCase] = []
    singles: dict[str, list[SampledCase]] = defaultdict(list)
    for path in sorted((corpus / "ethtests").rglob("*.json")):
        data = json.loads(path.read_text())
        for name, fixture in sorted(data.items()):
            rel = str(path.relative_to(corpus))
            if known.get((rel, name)) == "timeout":
                continue  # over 120 s in py-evm itself
            txs = max((len(b.get("transactions", ())) for b in fixture["blocks"]),
                      default=0)
            case = SampledCase(path, name, fixture["network"], txs)
            (multi if txs >= 2 else singles[case.network]).append(case)
    chosen = list(multi)
    for network, cases in sorted(singles.items()):
        if everything or len(cases) <= per_network:
            chosen.extend(cases)
        else:
            step = len(cases) / per_network
            chosen.extend(cases[int(i * step)] for i in range(per_network))
    return chosen


def mainnet_blocks(corpus: Path) -> list[Path]:
    root = corpus / "mainnet"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / "block.json").exists()),
                  key=lambda p: int(p.name) if p.name.isdigit() else 0)
