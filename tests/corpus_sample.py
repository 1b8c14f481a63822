"""The corpus sample the test suite runs (deterministic, about 20 minutes in all).

- every case with a block of two or more transactions (where conflicts can occur);
- every mainnet block;
- a stratified sample of single-transaction cases: every network, spread evenly
  over the files of each network (``PEVM_CORPUS_SAMPLE`` = cases per network,
  default 24; ``all`` runs everything);
- a daily rotation of one case from every category (:func:`category_rotation`),
  so that each run compares the engine with py-evm on every topic of the corpus.

It also reads ``PYEVM_BASELINE.jsonl``: what sequential py-evm gives per case.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pevm.inputs.baseline import read_baseline

DEFAULT_PER_NETWORK = 24


@dataclass(frozen=True)
class SampledCase:
    file: Path
    case: str
    network: str
    max_txs: int


def baseline(corpus: Path) -> dict[tuple[str, str], str]:
    """(file relative to the corpus, case) -> "pass" | "fail" | "timeout"."""
    return {key: entry.result for key, entry in read_baseline(corpus).items()}


#: A rotation case must have taken py-evm at most this long (where any did).
ROTATION_MAX_SECONDS = 3.0


def category_of(relative: Path) -> str:
    """The test category of a corpus file: the folder that groups one topic
    (``.../GeneralStateTests/stCreate2``, ``.../ValidBlocks/bcEIP1559``,
    ``eest-v4.5.0/blockchain_tests/cancun/eip4844_blobs``)."""
    parts = relative.parts
    for anchor in ("BlockchainTests", "blockchain_tests"):
        if anchor in parts:
            at = parts.index(anchor)
            return "/".join(parts[:at + 3])
    return str(relative.parent)


def category_rotation(corpus: Path, day: int | None = None) -> list[SampledCase]:
    """One case of every category of the corpus, rotating by day.

    Deterministic for a given ``day`` (default: ``$PEVM_CORPUS_ROTATION`` or the
    UTC day number), so a CI run is reproducible, and over successive days every
    case of every category comes round. Cases py-evm itself needs more than
    :data:`ROTATION_MAX_SECONDS` for are left to the whole-corpus routine
    (``scripts/corpus_equivalence.py``) unless a category has nothing faster.
    """
    import datetime
    if day is None:
        setting = os.environ.get("PEVM_CORPUS_ROTATION")
        day = int(setting) if setting else \
            datetime.datetime.now(datetime.UTC).date().toordinal()
    entries = read_baseline(corpus)
    by_category: dict[str, list[tuple[float, SampledCase]]] = defaultdict(list)
    for path in sorted((corpus / "ethtests").rglob("*.json")):
        rel = path.relative_to(corpus)
        data = json.loads(path.read_text())
        for name, fixture in sorted(data.items()):
            entry = entries.get((str(rel), name))
            if entry is not None and entry.result == "timeout":
                continue
            txs = max((len(b.get("transactions", ())) for b in fixture["blocks"]),
                      default=0)
            by_category[category_of(rel.relative_to("ethtests"))].append(
                (entry.seconds if entry is not None else 0.0,
                 SampledCase(path, name, fixture["network"], txs)))
    chosen = []
    for _category, cases in sorted(by_category.items()):
        fast = [case for took, case in cases if took <= ROTATION_MAX_SECONDS]
        pool = fast or [min(cases, key=lambda item: item[0])[1]]
        chosen.append(pool[day % len(pool)])
    return chosen


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
    for _network, cases in sorted(singles.items()):
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
