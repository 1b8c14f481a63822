"""Regression tests for engine-vs-py-evm divergences found on the whole corpus.

Each builds its blocks with the project's own generator (py-evm executes them, so
the fixture's expectations are py-evm's) and checks the parallel engine against
py-evm's sequential reference field by field, with the same rejections:

* thousands of checkpoints in one transaction under Cancun and Prague rules: the
  engine's journal numbered its checkpoints itself and collided with the ids the
  transient-storage journal takes from py-evm's global counter ("Tried to record
  with an existing checkpoint"), at a depth depending on what the process had run
  before -- so these run in a fresh process, alone;
* CREATE2 onto an address that has storage but no code (py-evm 0.12 keeps such a
  wipe even when the creation is reverted, see ``StateView.delete_storage``);
* a chain crossing the DAO fork block (py-evm moves the DAO balances while it
  configures the header, outside any transaction).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rlp
from eth_hash.auto import keccak

from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.discover import list_cases
from pevm.runner import PASSED, run_case_ref
from pevm.workloads.fixture import dumps, fixture_case
from pevm.workloads.scenario import Scenario


def _write(tmp_path: Path, name: str, scenario: Scenario) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(dumps({name: fixture_case(scenario.build())}))
    return path


def _equal_to_reference(path: Path, workers: tuple[int, ...] = (1, 2, 4)) -> None:
    """Every block passes and equals the reference at each worker count (worker
    processes even for these small blocks)."""
    (ref,) = list_cases([str(path)]).cases
    for count in workers:
        engine = ParallelEngine(workers=count, min_parallel_txs=2, fork_after=0)
        reports = run_case_ref(ref, engine, ReferenceEngine())
        for report in reports:
            assert report.status == PASSED, (count, report.error,
                                             [str(m) for m in report.mismatches])


# -- thousands of checkpoints in one transaction ---------------------------------
def _call_loop(iterations: int) -> bytes:
    """CALL an empty account with no gas ``iterations`` times (a frame and a
    journal checkpoint each)."""
    return bytes.fromhex(
        "61" + iterations.to_bytes(2, "big").hex()   # PUSH2 n
        + "5b"                                       # loop: JUMPDEST
        + "6000" * 5 + "60ff" + "6000" + "f1" + "50"  # CALL(0, 0xff, 0, 0,0,0,0) POP
        + "6001" + "90" + "03"                       # n - 1
        + "80" + "6003" + "57"                       # JUMPI loop if n
        + "00")


def _create_loop(iterations: int) -> bytes:
    """CREATE an empty contract ``iterations`` times."""
    return bytes.fromhex(
        "61" + iterations.to_bytes(2, "big").hex() + "5b"
        + "600060006000" + "f0" + "50"               # CREATE(0, 0, 0) POP
        + "6001" + "90" + "03" + "80" + "6003" + "57" + "00")


@pytest.mark.parametrize("fork", ["Cancun", "Prague"])
def test_thousands_of_frames_in_a_fresh_process(tmp_path: Path, fork: str) -> None:
    s = Scenario(fork=fork, seed=71)
    caller = s.place(s.named_address("call-loop"), _call_loop(20_000), nonce=1)
    creator = s.place(s.named_address("create-loop"), _create_loop(300), nonce=1)
    s.call(s.account(), caller, gas=4_000_000)
    s.call(s.account(), creator, gas=12_000_000)
    path = _write(tmp_path, f"frames_{fork}", s)
    # A fresh interpreter: py-evm's checkpoint counter starts where a user's would.
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from pevm.cli.main import main; "
         "sys.exit(main(sys.argv[1:]))", "run", str(path), "--check",
         "--workers", "1", "--json", "--quiet"],
        capture_output=True, text=True, timeout=600)
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    assert [r["status"] for r in reports] == [PASSED]


# -- CREATE2 onto an account with storage ----------------------------------------
_INIT = bytes.fromhex("6042600155" "00")  # SSTORE(1, 0x42); STOP: empty code


def _factory(revert: bool) -> bytes:
    """CREATE2(salt 0) of the calldata as initcode, then REVERT or STOP."""
    return bytes.fromhex("366000600037"
                         + "6000" + "36" + "6000" + "6000" + "f5" + "50"
                         + ("60006000fd" if revert else "00"))


def _create2_address(factory: bytes, init: bytes) -> bytes:
    return keccak(b"\xff" + factory + bytes(32) + keccak(init))[12:]


def test_create2_onto_storage_equals_reference(tmp_path: Path) -> None:
    s = Scenario(fork="Cancun", seed=72)
    reverting = s.place(s.named_address("create2-revert"), _factory(True), nonce=1)
    keeping = s.place(s.named_address("create2-keep"), _factory(False), nonce=1)
    for factory in (reverting, keeping):
        # what CREATE2 targets: storage, a balance, no code, nonce 0
        s.place(_create2_address(factory, _INIT), balance=10, storage={1: 1, 2: 2})
    s.call(s.account(), reverting, _INIT, expect_success=False)  # the wipe sticks
    s.call(s.account(), keeping, _INIT)                          # a plain wipe
    s.call(s.account(), s.fresh_address(), value=5)              # independent
    s.call(s.account(), reverting, _INIT, expect_success=False)  # opened: reverts
    path = _write(tmp_path, "create2_storage", s)
    case = json.loads(path.read_text())["create2_storage"]
    wiped = "0x" + _create2_address(reverting, _INIT).hex()
    assert case["postState"][wiped]["storage"] == {}, "py-evm's behaviour changed"
    _equal_to_reference(path)


# -- a chain crossing the DAO fork block ------------------------------------------
def _dao_fork_fixture() -> dict:
    """A ``HomesteadToDaoAt5`` chain of six blocks with a transfer in each, whose
    genesis funds some of the DAO accounts: block 5 moves their balances to the
    refund contract before its transaction runs."""
    from eth.chains.base import MiningChain
    from eth.tools.builder.chain import build, disable_pow_check, fork_at, genesis
    from eth.chains.mainnet import MainnetDAOValidatorVM
    from eth.vm.forks.homestead.headers import dao_drain_list
    from eth_keys import keys

    from pevm.workloads.fixture import AccountSpec, header_json, hex_bytes, state_json

    vm_class = MainnetDAOValidatorVM.configure(support_dao_fork=True,
                                               _dao_fork_block_number=5)
    key = keys.PrivateKey(b"\x21" * 32)
    sender = key.public_key.to_canonical_address()
    pre = {sender: AccountSpec(balance=10**21)}
    for index, hex_address in enumerate(dao_drain_list[:6]):
        pre[bytes.fromhex(hex_address[2:])] = AccountSpec(balance=(index + 1) * 10**18)
    chain = build(MiningChain, fork_at(vm_class, 0), disable_pow_check(),
                  genesis(params={"gas_limit": 3_000_000, "difficulty": 131072},
                          state={address: {"balance": spec.balance, "nonce": 0,
                                           "code": b"", "storage": {}}
                                 for address, spec in pre.items()}))
    genesis_header = chain.get_canonical_head()
    blocks = []
    for number in range(1, 7):
        extra = b"dao-hard-fork" if number >= 5 else b""
        # the header configuration is where py-evm makes the fork block's moves
        chain.header = chain.get_vm().configure_header(extra_data=extra)
        vm = chain.get_vm()
        tx = vm.create_unsigned_transaction(
            nonce=number - 1, gas_price=10**9, gas=21000,
            to=(b"\x0b" * 19 + bytes([number])), value=number,
            data=b"").as_signed_transaction(key)
        chain.apply_transaction(tx)
        block = chain.mine_block()
        blocks.append({"blockHeader": header_json(block.header),
                       "rlp": hex_bytes(rlp.encode(block)),
                       "transactions": [], "uncleHeaders": []})
    return {"network": "HomesteadToDaoAt5", "sealEngine": "NoProof",
            "genesisBlockHeader": header_json(genesis_header),
            "pre": state_json(pre), "blocks": blocks,
            "lastblockhash": hex_bytes(chain.get_canonical_head().hash)}


def test_dao_fork_block_state_root_from_the_diff(tmp_path: Path) -> None:
    path = tmp_path / "dao.json"
    path.write_text(json.dumps({"dao_fork_at_5": _dao_fork_fixture()}))
    (ref,) = list_cases([str(path)]).cases
    # Every block's stateRoot is checked against the root pevm.gpu rebuilds from
    # the block's state diff on its parent's flat state: with the DAO balance
    # moves missing from the diff, block 5 (and every block after it) differs.
    for engine in (ReferenceEngine(), ParallelEngine(workers=1)):
        reports = run_case_ref(ref, engine)
        assert [r.status for r in reports] == [PASSED] * 6, \
            [(r.block, [str(m) for m in r.mismatches]) for r in reports]
    _equal_to_reference(path, workers=(1, 2))
