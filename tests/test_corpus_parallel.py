"""The corpus sample through the parallel engine, checked against py-evm's reference.

Every block is imported twice on identical fresh pre-states -- once by py-evm's own
loop, once by the parallel engine -- and the two results must be identical field by
field (receipts, logs, gas, bloom, roots, state diff), with the same rejections.
Multi-transaction cases and mainnet blocks run at 1, 2 and 4 workers; the stratified
single-transaction sample (EVM edge cases of every fork) and the daily rotation of
one case per category (every GeneralStateTests, ValidBlocks, InvalidBlocks,
TransitionTests and execution-spec-tests topic) at 1 and 2.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pevm.compare import compare_results
from pevm.engines import make_engine
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.blockchain_tests import load_cases
from pevm.abc import Case
from pevm.inputs.discover import SnapshotCase

from .conftest import corpus_dir
from .corpus_sample import category_rotation, mainnet_blocks, sample_ethtests

pytestmark = pytest.mark.corpus

_CORPUS = corpus_dir()
_SAMPLE = sample_ethtests(_CORPUS) if _CORPUS else []
_MULTI: dict[Path, list[str]] = {}
_SINGLE: dict[Path, list[str]] = {}
for _case in _SAMPLE + (category_rotation(_CORPUS) if _CORPUS else []):
    names = (_MULTI if _case.max_txs >= 2 else _SINGLE).setdefault(_case.file, [])
    if _case.case not in names:
        names.append(_case.case)
_MAINNET = mainnet_blocks(_CORPUS) if _CORPUS else []
_NO_CORPUS = "external corpus not found (set PEVM_CORPUS or place it at ../shared/corpus)"

#: Known engine bugs (issue #4 stays open until this is empty). strict: a fix that
#: makes one pass fails the run until its entry is removed here.
KNOWN_ENGINE_BUGS: dict[str, str] = {}


def _params(paths: list[Path]) -> list[Any]:
    out = []
    for path in paths:
        assert _CORPUS is not None  # paths come from the corpus
        rel = str(path.relative_to(_CORPUS))
        marks = ([pytest.mark.xfail(strict=True, reason=KNOWN_ENGINE_BUGS[rel])]
                 if rel in KNOWN_ENGINE_BUGS else [])
        out.append(pytest.param(path, marks=marks, id=rel))
    return out


def _check_case(case: Case, workers: tuple[int, ...]) -> list[str]:
    """Problems found running ``case`` with the engine at each worker count."""
    reference = [task.execute(ReferenceEngine()) if task.block is not None else None
                 for task in case.start().tasks()]
    problems = []
    for count in workers:
        engine = make_engine("parallel", workers=count)
        try:
            # Lazily, like the reference above: a block without a header is decoded
            # with the class of the chain's head *at that point* (py-evm's rule).
            tasks = case.start().tasks()
            for task, ref in zip(tasks, reference):
                if task.block is None:
                    continue
                assert ref is not None  # the reference ran every decodable block
                got = task.execute(engine)
                where = f"{case.name} block {task.index} workers={count}"
                if (ref.rejection is None) != (got.rejection is None):
                    problems.append(f"{where}: reference rejected={ref.rejection}, "
                                    f"engine rejected={got.rejection}")
                elif ref.result is not None and got.result is not None:
                    problems.extend(f"{where}: {m}"
                                    for m in compare_results(ref.result, got.result))
                elif (ref.result is None) != (got.result is None):
                    problems.append(f"{where}: result present only on one side")
        finally:
            close = getattr(engine, "close", None)
            if close:
                close()
    return problems


def _run_file(path: Path, names: list[str], workers: tuple[int, ...]) -> None:
    wanted = set(names)
    problems = []
    for case in load_cases(str(path)):
        if case.name in wanted:
            problems.extend(_check_case(case, workers))
    assert not problems, "\n".join(problems[:20])


@pytest.mark.skipif(_CORPUS is None, reason=_NO_CORPUS)
@pytest.mark.parametrize("path", _params(sorted(_MULTI)))
def test_multi_tx_cases_equal_reference(path: Path) -> None:
    _run_file(path, _MULTI[path], (1, 2, 4))


@pytest.mark.skipif(_CORPUS is None, reason=_NO_CORPUS)
@pytest.mark.parametrize("path", _params(sorted(_SINGLE)))
def test_single_tx_cases_equal_reference(path: Path) -> None:
    _run_file(path, _SINGLE[path], (1, 2))


@pytest.mark.skipif(_CORPUS is None, reason=_NO_CORPUS)
@pytest.mark.parametrize("path", _MAINNET, ids=lambda p: p.name)
def test_mainnet_block_equals_reference(path: Path) -> None:
    problems = _check_case(SnapshotCase(str(path)), (1, 2, 4))
    assert not problems, "\n".join(problems[:20])
