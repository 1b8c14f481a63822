"""Rejections exactly where py-evm rejects, and failures that stay inside their case.

* An exception py-evm raises for a transaction outside its computation -- here
  ``OutOfGas`` from EIP-3860's initcode limit, raised while the creation message
  is built -- rejects the block at that transaction, in the reference and in the
  parallel engine at every worker count.
* Any other exception while a case runs is that case's ``error`` report; the run
  goes on with the next case (runner, ``pevm run``, ``pevm bench``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_keys import keys

from pevm.cli.main import main
from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.discover import list_cases
from pevm.runner import ERROR, PASSED, REJECTED, run_case_ref
from pevm.workloads.fixture import dumps, fixture_case, hex_bytes
from pevm.workloads.scenario import CHAIN_ID, Scenario

#: EIP-3860: initcode may be at most 49,152 bytes
TOO_LONG_INITCODE = b"\x00" * 49_153


def _oversized_create_fixture(tmp_path: Path) -> Path:
    """A Cancun block of three transfers and, at index 2, a creation whose
    initcode is one byte over the limit: the block must be rejected there."""
    s = Scenario(fork="Cancun", seed=81)
    creator = s.account()
    for _ in range(3):
        s.call(s.account(), s.fresh_address(), value=1, tx_type=0)
    s.call(creator, s.fresh_address(), value=1, tx_type=0)  # replaced below
    built = s.build()
    case = fixture_case(built)
    block = built.block
    last = block.transactions[-1]
    builder: Any = built.vm_class.get_transaction_builder()  # fork-specific methods
    oversized = builder.create_unsigned_transaction(
        nonce=last.nonce, gas_price=last.gas_price, gas=3_000_000, to=b"", value=0,
        data=TOO_LONG_INITCODE).as_signed_transaction(
            keys.PrivateKey(creator.private_key), chain_id=CHAIN_ID)
    transactions = list(block.transactions[:2]) + [oversized, last]
    bad = block.copy(transactions=transactions)
    case["blocks"] = [{"rlp": hex_bytes(rlp.encode(bad)),
                       "expectException": "TransactionException.INITCODE_SIZE_EXCEEDED"}]
    case.pop("postState")
    case["lastblockhash"] = hex_bytes(built.genesis_header.hash)
    path = tmp_path / "oversized_initcode.json"
    path.write_text(dumps({"oversized_initcode": case}))
    return path


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_initcode_over_the_limit_rejects_the_block(tmp_path: Path, workers: int) -> None:
    path = _oversized_create_fixture(tmp_path)
    (ref,) = list_cases([str(path)]).cases
    engine = ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=0)
    for runner_engine in (ReferenceEngine(), engine):
        (report,) = run_case_ref(ref, runner_engine)
        assert report.status == REJECTED, (report.error, report.mismatches)
    # both sides agree, and the rejection names the transaction and py-evm's reason
    outcome = ref.load().start()
    task = next(outcome.tasks())
    got = task.execute(engine)
    assert got.rejection is not None and got.rejection.tx_index == 2
    assert "OutOfGas" in str(got.rejection) and "EIP-3860" in str(got.rejection)
    want = next(ref.load().start().tasks()).execute(ReferenceEngine())
    assert want.rejection is not None and want.rejection.tx_index == 2


class _FailsOnBlock:
    """A transaction engine that raises an unexpected error on one block number
    (an engine, not a stand-in for pevm code: the runner takes any Engine)."""

    name = "fails-on-block"

    def __init__(self, number: int) -> None:
        self.number = number
        self.inner = ReferenceEngine()

    def apply_transactions(self, vm, transactions, base_header):
        if base_header.block_number == self.number:
            raise RuntimeError(f"boom at block {self.number}")
        return self.inner.apply_transactions(vm, transactions, base_header)


def test_an_unexpected_exception_is_the_cases_error_and_the_run_goes_on() -> None:
    from tests.conftest import FIXTURES
    refs = list_cases([str(FIXTURES / "erc20_small.json"),
                       str(FIXTURES / "transfers_c0.json")]).cases
    engine = _FailsOnBlock(number=1)
    first = run_case_ref(refs[0], engine)
    assert [r.status for r in first] == [ERROR]
    assert first[0].error == "RuntimeError: boom at block 1"
    assert first[0].block == 0 and "Traceback" in (first[0].traceback or "")
    assert first[0].to_json()["traceback"] == first[0].traceback
    # the same engine goes on with the next case (whose block 1 it runs normally
    # once told to fail elsewhere)
    engine.number = 99
    assert [r.status for r in run_case_ref(refs[1], engine)] == [PASSED]


def test_pevm_run_reports_a_rejection_and_goes_on(tmp_path: Path, capsys) -> None:
    from tests.conftest import FIXTURES
    path = _oversized_create_fixture(tmp_path)
    code = main(["run", str(path), str(FIXTURES / "transfers_c0.json"), "--check",
                 "--json", "--quiet", "--workers", "2"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [r["status"] for r in rows] == [REJECTED, PASSED]


def test_pevm_bench_measures_the_other_cases_when_one_fails(tmp_path: Path,
                                                             capsys) -> None:
    from tests.conftest import FIXTURES
    path = _oversized_create_fixture(tmp_path)
    out = tmp_path / "bench.json"
    code = main(["bench", str(path), str(FIXTURES / "transfers_c0.json"),
                 "--workers", "1", "--repeat", "1", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "oversized_initcode" in err and "rejected" in err
    document = json.loads(out.read_text())
    assert [b["name"] for b in document["blocks"]] == \
        [r.name for r in list_cases([str(FIXTURES / "transfers_c0.json")]).cases]


def test_pevm_analyze_goes_on_after_a_failing_case(tmp_path: Path, capsys) -> None:
    from tests.conftest import FIXTURES
    broken = tmp_path / "broken.json"
    case = json.loads((FIXTURES / "transfers_c0.json").read_text())
    name, fixture = next(iter(case.items()))
    fixture["genesisBlockHeader"]["stateRoot"] = "0x" + "11" * 32  # no such state
    broken.write_text(json.dumps({name: fixture}))
    code = main(["analyze", str(broken), str(FIXTURES / "transfers_c0.json"),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert "pevm: error:" in captured.err
    assert len(captured.out.splitlines()) == 1  # the good case was analysed


def test_pevm_analyze_says_which_cases_had_no_block_to_analyse(tmp_path: Path,
                                                               capsys) -> None:
    # a case whose only block py-evm rejects has no dependency graph: analysing it
    # beside a good one gives the good one's line, and says the other was left out
    from tests.conftest import FIXTURES
    rejected = _oversized_create_fixture(tmp_path)
    code = main(["analyze", str(rejected), str(FIXTURES / "transfers_c0.json"), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert len(captured.out.splitlines()) == 1
    assert "1 case(s) left out: no block py-evm accepts" in captured.err
    assert "oversized_initcode" in captured.err
    # alone, nothing is left to analyse
    assert main(["analyze", str(rejected)]) == 1
    assert "no valid block to analyse" in capsys.readouterr().out
