"""Mutated real blocks: pevm judges every one, never crashes, and agrees with py-evm.

Hypothesis draws (source block, mutation seed) pairs -- the bundled fixtures cut to
their first transactions and, when the corpus is present, a few small corpus cases
-- and :mod:`pevm.mutations` breaks the block in one way per seed: RLP bytes
flipped or cut, header fields, transactions reordered, dropped, duplicated,
re-signed with odd fields or with altered signatures, pre-state accounts with odd
values. Each mutant runs through the runner with py-evm's reference engine and the
parallel engine at 1 and 2 workers (workers forked from the first transaction on);
there must be no crash or unexpected exception, a verdict on every block, and the
same verdict, rejection and result from both engines. Derandomized: the same
examples every run (``PEVM_HYPOTHESIS_EXAMPLES`` scales them up);
``scripts/mutate.py`` runs the same check at scale.
"""
from __future__ import annotations

import copy
import json
import random
from functools import lru_cache, cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import pevm.mutations.check as check_module
from pevm.engines.reference import ReferenceEngine
from pevm.errors import BlockRejected
from pevm.mutations import (CRASH, DIFFERS, INTERNAL, KINDS, CheckRecord, Source,
                            check_mutant, load_sources, mutate)
from pevm.mutations.check import REFERENCE
from pevm.mutations.mutators import forget_final_state
from pevm.mutations.sources import Mutant, rebase_genesis
from pevm.runner import PASSED, REJECTED
from pevm.workloads.fixture import hex_int
from tests.conftest import FIXTURES, corpus_dir
from tests.parallel_support import hypothesis_profile_examples

MAX_TXS = 6
WORKERS = (1, 2)
ENGINES = {REFERENCE, "parallel-w1", "parallel-w2"}
FIXTURE_FILES = sorted(str(path) for path in FIXTURES.glob("*.json"))
#: Seeds are whole mutations, not sizes: shrinking one only finds another mutant.
MUTATION_SETTINGS = settings(derandomize=True, deadline=None,
                             phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=[HealthCheck.too_slow])


@cache
def fixture_source(path: str) -> Source:
    (source,) = load_sources([path], max_txs=MAX_TXS)
    return source


@lru_cache(maxsize=1)
def corpus_sources() -> tuple[Source, ...]:
    """A few small corpus cases: the mainnet snapshots with the fewest
    transactions, and ethtests cases of small files with several transactions in
    a block (all valid blocks: the mutation is what makes them invalid)."""
    corpus = corpus_dir()
    if corpus is None:
        return ()
    snapshots = sorted((len(json.loads((d / "block.json").read_text())["transactions"]),
                        str(d)) for d in sorted((corpus / "mainnet").glob("*"))
                       if (d / "block.json").is_file())
    files = []
    for path in sorted((corpus / "ethtests").rglob("*.json")):
        if path.stat().st_size > 40_000:
            continue
        cases = json.loads(path.read_text()).values()
        if any(2 <= max((len(b.get("transactions", ())) for b in c["blocks"]), default=0)
               and not any("expectException" in b for b in c["blocks"]) for c in cases):
            files.append(str(path))
    chosen = [path for _, path in snapshots[:4]] + files[::max(1, len(files) // 8)]
    return tuple(load_sources(chosen, max_txs=MAX_TXS))


def assert_judged_alike(record: CheckRecord) -> None:
    mutant = record.mutant
    # The first problem in full (a traceback, for an exception), then one line each.
    assert record.problems == [], (
        f"{mutant.kind} on {mutant.source.label}: {mutant.description}\n"
        f"{record.problems[0]}\n"
        + "\n".join(str(p).splitlines()[0] for p in record.problems[1:]))
    assert set(record.verdicts) == ENGINES
    assert all(record.verdicts[e] for e in ENGINES)


@settings(max_examples=hypothesis_profile_examples(600), parent=MUTATION_SETTINGS)
@given(path=st.sampled_from(FIXTURE_FILES), seed=st.integers(0, 2**32 - 1))
def test_mutated_fixture_blocks_are_judged_like_py_evm(path: str, seed: int) -> None:
    mutant = mutate(fixture_source(path), random.Random(seed))
    assert_judged_alike(check_mutant(mutant, WORKERS))


@settings(max_examples=hypothesis_profile_examples(150), parent=MUTATION_SETTINGS)
@given(index=st.integers(0, 10**6), seed=st.integers(0, 2**32 - 1))
def test_mutated_corpus_blocks_are_judged_like_py_evm(index: int, seed: int) -> None:
    sources = corpus_sources()
    if not sources:
        pytest.skip("external corpus not found: set PEVM_CORPUS or place it at "
                    "../shared/corpus beside the repository")
    mutant = mutate(sources[index % len(sources)], random.Random(seed))
    assert_judged_alike(check_mutant(mutant, WORKERS))


# ------------------------------------------------- the harness itself is sound
SMALL = str(FIXTURES / "transfers_accounts8.json")


def test_trimmed_source_is_a_valid_block_that_both_engines_pass() -> None:
    source = fixture_source(SMALL)
    assert source.transactions == MAX_TXS
    unchanged = Mutant(source, "none", "unchanged", source.data)
    record = check_mutant(unchanged, WORKERS)
    assert record.problems == []
    assert {e: [v.status for v in vs] for e, vs in record.verdicts.items()} == \
        {e: [PASSED] for e in ENGINES}


@pytest.mark.parametrize("kind", sorted(k for k, pair in KINDS.items() if pair[0]))
def test_every_fixture_mutation_changes_the_block_deterministically(kind: str) -> None:
    source = fixture_source(str(FIXTURES / "erc20_small.json"))
    first = mutate(source, random.Random(7), only=[kind])
    again = mutate(source, random.Random(7), only=[kind])
    assert first.kind == kind and first.description
    assert first.data != source.data
    assert (again.description, again.data) == (first.description, first.data)


def test_a_rebased_pre_state_change_is_executed() -> None:
    # A funded sender left with nothing: the genesis follows the new pre-state, so
    # the block runs and is rejected at that sender's transaction, not at load.
    source = fixture_source(SMALL)
    for seed in range(200):
        mutant = mutate(source, random.Random(seed), only=["pre-account"])
        if "balance" in mutant.description and "-> '0x00'" in mutant.description \
                and "genesis rebased" in mutant.description:
            break
    else:
        pytest.fail("no balance-to-zero mutation in 200 seeds")
    record = check_mutant(mutant, WORKERS)
    assert_judged_alike(record)
    assert record.verdicts[REFERENCE][0].rejection is not None


def test_a_credit_past_uint256_rejects_like_py_evm() -> None:
    # Found by scripts/mutate.py (seed 200473 over the corpus): a value transfer to
    # an account already holding 2**256 - 1 wei. py-evm's AccountDB refuses the
    # overflowing balance and rejects the block at that transaction.
    source = fixture_source(SMALL)
    data = copy.deepcopy(source.data)
    index, tx = next((i, tx) for i, tx in enumerate(data["blocks"][0]["transactions"])
                     if int(tx["value"], 16) > 0 and tx["to"] in data["pre"])
    data["pre"][tx["to"]]["balance"] = hex_int(2**256 - 1)
    forget_final_state(data)
    assert rebase_genesis(data)
    record = check_mutant(Mutant(source, "pre-account", "recipient at 2**256 - 1", data),
                          WORKERS)
    assert (record.verdicts[REFERENCE][0].rejection or "").startswith(
        f"transaction {index}: ValidationError: Account Balance exceeds maximum uint256")
    assert_judged_alike(record)


class _Rejecting(ReferenceEngine):
    def apply_transactions(self, vm, transactions, base_header):
        raise BlockRejected("ValidationError: made up", 0)


class _Broken(ReferenceEngine):
    def apply_transactions(self, vm, transactions, base_header):
        raise RuntimeError("engine bug")


@pytest.mark.parametrize("engine, problems", [(_Rejecting, {DIFFERS}),
                                              (_Broken, {INTERNAL, DIFFERS})])
def test_check_reports_an_engine_that_parts_from_py_evm(
        monkeypatch: pytest.MonkeyPatch, engine: type, problems: set[str]) -> None:
    monkeypatch.setattr(check_module, "parallel_engine", lambda workers: engine())
    source = fixture_source(SMALL)
    record = check_mutant(Mutant(source, "none", "unchanged", source.data), (1,))
    assert {p.kind for p in record.problems} == problems
    assert {p.engine for p in record.problems} == {"parallel-w1"}
    assert record.verdicts[REFERENCE][0].status == PASSED


def test_check_reports_an_escaping_exception_with_its_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def escaping(case, engine):
        raise KeyError("escaped")
        yield  # a generator, like the runner's

    monkeypatch.setattr(check_module, "run_case", escaping)
    source = fixture_source(SMALL)
    record = check_mutant(Mutant(source, "none", "unchanged", source.data), (1,))
    assert [p.kind for p in record.problems] == [CRASH, CRASH]
    assert all("KeyError: 'escaped'" in p.detail and "Traceback" in p.detail
               for p in record.problems)


def test_an_undecodable_block_is_rejected_alike(tmp_path: Path) -> None:
    source = fixture_source(SMALL)
    mutant = mutate(source, random.Random(3), only=["block-rlp-truncate"])
    record = check_mutant(mutant, WORKERS, directory=str(tmp_path))
    assert_judged_alike(record)
    assert [v.status for v in record.verdicts["parallel-w2"]] == [REJECTED]
