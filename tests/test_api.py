"""The Python API: a py-evm chain and a block in, a BlockResult out."""
from __future__ import annotations

import pytest

from pevm import BlockRejected, execute_block, run_path

from .chain_builder import ADDRESSES, COINBASE, mine, new_chain, transfer


def test_execute_block_matches_pyevm_import() -> None:
    source = new_chain()
    txs = [transfer(source, 0, ADDRESSES[1], 1000, 0),
           transfer(source, 0, ADDRESSES[2], 2000, 1),
           transfer(source, 3, ADDRESSES[0], 5, 0)]
    block = mine(source, txs)

    chain = new_chain()
    result = execute_block(chain, block, engine="reference")
    assert chain.get_canonical_head().hash == block.hash
    assert result.state_root == block.header.state_root
    assert result.gas_used == 3 * 21_000
    assert [r.cumulative_gas_used for r in result.receipts] == [21_000, 42_000, 63_000]
    assert all(r.status == 1 for r in result.receipts)
    # value moved, nonce advanced, fees paid: the diff says so with before/after.
    assert result.state_diff[ADDRESSES[1]].balance == (10**19, 10**19 + 1000)
    assert result.state_diff[ADDRESSES[0]].nonce == (0, 2)
    coinbase_balance = result.state_diff[COINBASE].balance
    assert coinbase_balance is not None and coinbase_balance[1] == 3 * 21_000 * 2


def test_invalid_block_is_rejected_and_chain_unchanged() -> None:
    source = new_chain()
    block = mine(source, [transfer(source, 0, ADDRESSES[1], 1, 0)])
    # Re-sign the same block body with a nonce gap: py-evm rejects it.
    other = new_chain()
    bad_tx = transfer(other, 0, ADDRESSES[1], 1, 5)
    bad_block = block.copy(transactions=[bad_tx])
    chain = new_chain()
    head = chain.get_canonical_head()
    with pytest.raises(BlockRejected):
        execute_block(chain, bad_block, engine="reference")
    assert chain.get_canonical_head() == head


def test_run_path_reports(tmp_path) -> None:
    missing = tmp_path / "nothing"
    missing.mkdir()
    assert list(run_path(str(missing), engine="reference")) == []


def test_run_path_on_bundled_fixture() -> None:
    from .conftest import FIXTURES

    reports = list(run_path(str(FIXTURES / "erc20_small.json"), engine="reference",
                            check=True))
    assert len(reports) == 1
    assert reports[0].ok and reports[0].mismatches == []
    assert reports[0].txs == 40
