"""The corpus sample through pevm's block pipeline with py-evm's reference engine.

Every case py-evm passes must pass (header fields, rejections, post-state); where
py-evm itself fails (PYEVM_BASELINE.jsonl says "fail") pevm must fail too. Mainnet
blocks must match their headers' gasUsed, logsBloom, transactionsRoot and (from
Byzantium) receiptsRoot.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pevm.engines.reference import ReferenceEngine
from pevm.inputs.blockchain_tests import load_cases
from pevm.inputs.discover import SnapshotCase
from pevm.runner import run_case

from .conftest import corpus_dir
from .corpus_sample import baseline, mainnet_blocks, sample_ethtests

pytestmark = pytest.mark.corpus

_CORPUS = corpus_dir()
_SAMPLE = sample_ethtests(_CORPUS) if _CORPUS else []
_BY_FILE: dict[Path, list[str]] = {}
for _case in _SAMPLE:
    _BY_FILE.setdefault(_case.file, []).append(_case.case)
_MAINNET = mainnet_blocks(_CORPUS) if _CORPUS else []


def _describe(reports: list) -> str:
    lines = []
    for report in reports:
        if not report.ok:
            lines.append(f"{report.case} block {report.block}: {report.status} "
                         f"{report.error or ''}")
            lines.extend(f"    {m}" for m in report.mismatches[:5])
    return "\n".join(lines)


@pytest.mark.skipif(_CORPUS is None, reason="external corpus not found "
                    "(set PEVM_CORPUS or place it at ../shared/corpus)")
@pytest.mark.parametrize("path", sorted(_BY_FILE), ids=lambda p: str(p.relative_to(_CORPUS)))
def test_ethtests_case_agrees_with_pyevm_baseline(path: Path) -> None:
    assert _CORPUS is not None  # skipped above otherwise
    known = baseline(_CORPUS)
    wanted = set(_BY_FILE[path])
    rel = str(path.relative_to(_CORPUS))
    engine = ReferenceEngine()
    for case in load_cases(str(path)):
        if case.name not in wanted:
            continue
        reports = list(run_case(case, engine))
        assert reports, f"{case.name}: no block was run"
        ok = all(r.ok for r in reports)
        expected = known.get((rel, case.name), "pass")
        if expected == "fail":
            assert not ok, f"{case.name}: py-evm fails this case but pevm passed it"
        else:
            assert ok, f"{case.name}:\n{_describe(reports)}"


@pytest.mark.skipif(_CORPUS is None, reason="external corpus not found "
                    "(set PEVM_CORPUS or place it at ../shared/corpus)")
@pytest.mark.parametrize("path", _MAINNET, ids=lambda p: p.name)
def test_mainnet_block_matches_header(path: Path) -> None:
    reports = list(run_case(SnapshotCase(str(path)), ReferenceEngine()))
    assert len(reports) == 1
    report = reports[0]
    assert report.ok, _describe(reports)
    assert report.gas_used and report.gas_used > 0
