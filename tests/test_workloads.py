"""The workload contracts (through py-evm), the generator, and the committed fixtures."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from pevm.pyevm_compat import normalize_account_state
from eth.vm.forks import PragueVM
from eth_hash.auto import keccak
from eth_typing import Address
from eth_utils import to_canonical_address

from pevm.compare import compare_expectations
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.blockchain_tests import load_cases
from pevm.workloads import (
    SUPPORTED_NETWORKS, Scenario, WorkloadError, dumps, generate, generate_block,
)
from pevm.workloads import contracts as C
from pevm.workloads.asm import AsmError, assemble, assemble_all, disassemble

from .conftest import FIXTURES

FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
pytestmark = pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")
TRANSFER = C.event_topic("Transfer(address,address,uint256)")
APPROVAL = C.event_topic("Approval(address,address,uint256)")
SWAP = C.event_topic("Swap(address,uint256,uint256,uint256,uint256,address)")
SYNC = C.event_topic("Sync(uint112,uint112)")
MINT = C.event_topic("Mint(address,uint256,uint256)")
BURN = C.event_topic("Burn(address,uint256,uint256,address)")


def topics(log) -> list[bytes]:
    return [t.to_bytes(32, "big") for t in log.topics]


def words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 32], "big") for i in range(0, len(data), 32)]


def ok(receipt) -> bool:
    return receipt.state_root == b"\x01"


# -- the assembler ------------------------------------------------------------------
def test_assembler_labels_pushes_and_macros() -> None:
    code = assemble("""
        .const SLOT 0x05
        .macro twice        ; local labels are unique per expansion
          PUSH @%here JUMP
          %here:
        .endm
        PUSH SLOT SLOAD PUSH 0x1234 PUSH 0 twice twice
        end: STOP
        .label data
        .bytes 0xbeef
    """)
    listing = disassemble(code)
    assert listing[:4] == ["0: PUSH1 0x05", "2: SLOAD", "3: PUSH2 0x1234", "6: PUSH1 0x00"]
    # twice: PUSH2 target, JUMP, JUMPDEST -- the target is the JUMPDEST right after.
    assert listing[4] == "8: PUSH2 0x000c" and listing[6] == "12: JUMPDEST"
    assert listing[7] == "13: PUSH2 0x0011" and listing[9] == "17: JUMPDEST"
    assert code.endswith(bytes([0x5B, 0x00, 0xBE, 0xEF]))


def test_assembler_selectors_sizes_and_embedding() -> None:
    built = assemble_all({
        "inner": "PUSH1 1 STOP",
        "outer": 'PUSH4 selector("transfer(address,uint256)") PUSH size(inner) '
                 "PUSH @blob-@start\n.label start\n.label blob\n.code inner",
    })
    assert built["outer"][:5] == bytes.fromhex("63a9059cbb")
    assert built["outer"][5:7] == bytes([0x60, 3])  # size(inner) == 3
    assert built["outer"].endswith(built["inner"])


@pytest.mark.parametrize("source, message", [
    ("FOO", "unknown instruction"),
    ("PUSH @nowhere JUMP", "undefined label"),
    ("PUSH1 0x1234", "does not fit"),
    ("a: a: STOP", "defined twice"),
    (".code missing", "unknown contract"),
    (".macro m\nSTOP", "lacks '.endm'"),
])
def test_assembler_errors_name_the_line(source: str, message: str) -> None:
    with pytest.raises(AsmError, match=message):
        assemble(source, "src")


def test_committed_bytecode_matches_the_sources() -> None:
    built = C.build_all()
    for name in C.CONTRACTS:
        assert built[name] == C.bytecode(name), f"{name}.hex is stale: rebuild it"


# -- the contracts, executed by py-evm -----------------------------------------------
def test_erc20_transfer_moves_balances_and_emits_transfer() -> None:
    s = Scenario(seed=11)
    alice, bob = s.account(), s.account()
    token = s.deploy_erc20({alice.address: 1000})
    s.call(alice, token, C.erc20_transfer(bob.address, 300))
    s.call(bob, token, C.erc20_transfer(alice.address, 301), expect_success=False)
    built = s.build()
    first, second = built.receipts
    assert ok(first) and not ok(second)
    (log,) = first.logs
    assert log.address == token
    assert topics(log) == [TRANSFER, C.word(alice.address), C.word(bob.address)]
    assert words(log.data) == [300]
    assert second.logs == ()
    state = built.state
    assert state.get_storage(token, C.erc20_balance_slot(alice.address)) == 700
    assert state.get_storage(token, C.erc20_balance_slot(bob.address)) == 300
    assert state.get_storage(token, C.ERC20_TOTAL_SUPPLY) == 1000


def test_transfer_from_respects_the_allowance() -> None:
    s = Scenario(seed=12)
    owner, spender, other, stranger = (s.account() for _ in range(4))
    token = s.deploy_erc20({owner.address: 10**6})
    s.call(owner, token, C.erc20_approve(spender.address, 500))
    s.call(spender, token, C.erc20_transfer_from(owner.address, other.address, 200))
    s.call(spender, token, C.erc20_transfer_from(owner.address, other.address, 301),
           expect_success=False)                     # only 300 left
    s.call(stranger, token, C.erc20_transfer_from(owner.address, other.address, 1),
           expect_success=False)                     # no allowance at all
    s.erc20_approve(token, owner.address, other.address, C.MAX_UINT256)   # in genesis
    s.call(other, token, C.erc20_transfer_from(owner.address, spender.address, 50))
    built = s.build()
    approve, spend, *_ = built.receipts
    (log,) = approve.logs
    assert topics(log) == [APPROVAL, C.word(owner.address), C.word(spender.address)]
    assert words(log.data) == [500]
    assert topics(spend.logs[0]) == [TRANSFER, C.word(owner.address), C.word(other.address)]
    state = built.state
    assert state.get_storage(token, C.erc20_allowance_slot(owner.address, spender.address)) == 300
    # An infinite allowance is not spent.
    assert state.get_storage(token, C.erc20_allowance_slot(owner.address, other.address)) \
        == C.MAX_UINT256
    assert state.get_storage(token, C.erc20_balance_slot(owner.address)) == 10**6 - 250
    assert state.get_storage(token, C.erc20_balance_slot(other.address)) == 200
    assert state.get_storage(token, C.erc20_balance_slot(spender.address)) == 50


def test_amm_swaps_keep_k_and_move_both_tokens() -> None:
    s = Scenario(seed=13)
    user = s.account()
    t0 = s.deploy_erc20({user.address: 10**24})
    t1 = s.deploy_erc20({user.address: 10**24})
    founder = s.named_address("founder")
    pair = s.deploy_pair(t0, t1, 10**22, 3 * 10**22, founder)
    for token in (t0, t1):
        s.erc20_approve(token, user.address, pair, C.MAX_UINT256)
    s.pair_give_shares(pair, founder, user.address, 10**20)
    s.call(user, pair, C.amm_swap(True, 10**20, 0), gas=300_000)
    s.call(user, pair, C.amm_swap(False, 5 * 10**20, 0), gas=300_000)
    s.call(user, pair, C.amm_swap(True, 10**18, 10**30), gas=300_000,
           expect_success=False)                     # minOut not met
    s.call(user, pair, C.amm_add_liquidity(10**19, 3 * 10**19), gas=300_000)
    s.call(user, pair, C.amm_remove_liquidity(10**20), gas=300_000)
    built = s.build()
    reserves = [(10**22, 3 * 10**22)]
    user0, user1 = 10**24, 10**24
    for index in (0, 1):
        receipt = built.receipts[index]
        sent, paid, sync, swap = receipt.logs
        assert topics(sent)[0] == topics(paid)[0] == TRANSFER
        assert topics(sync) == [SYNC] and topics(swap)[0] == SWAP
        assert topics(swap)[1:] == [C.word(user.address), C.word(user.address)]
        in0, in1, out0, out1 = words(swap.data)
        r0, r1 = reserves[-1]
        new = tuple(words(sync.data))
        assert new == (r0 + in0 - out0, r1 + in1 - out1)
        assert new[0] * new[1] >= r0 * r1            # k never decreases
        amount_in, r_in, r_out = (in0, r0, r1) if in0 else (in1, r1, r0)
        assert max(out0, out1) == amount_in * 997 * r_out // (r_in * 1000 + amount_in * 997)
        assert (in0 and out1 and not in1 and not out0) or (in1 and out0 and not in0)
        user0 += out0 - in0
        user1 += out1 - in1
        reserves.append(new)
    assert not ok(built.receipts[2])
    add, remove = built.receipts[3], built.receipts[4]
    assert topics(add.logs[-1]) == [MINT, C.word(user.address)]
    assert topics(remove.logs[-1]) == [BURN, C.word(user.address), C.word(user.address)]
    state = built.state
    r0, r1 = state.get_storage(pair, C.PAIR_RESERVE0), state.get_storage(pair, C.PAIR_RESERVE1)
    # Reserves are the pair's real token balances.
    assert r0 == state.get_storage(t0, C.erc20_balance_slot(pair))
    assert r1 == state.get_storage(t1, C.erc20_balance_slot(pair))
    burned0, burned1 = words(remove.logs[-1].data)
    added0, added1 = words(add.logs[-1].data)
    assert state.get_storage(t0, C.erc20_balance_slot(user.address)) \
        == user0 - added0 + burned0
    assert state.get_storage(t1, C.erc20_balance_slot(user.address)) \
        == user1 - added1 + burned1
    minted = state.get_storage(pair, C.PAIR_TOTAL_SUPPLY) - (
        int(s.get_storage(pair, C.PAIR_TOTAL_SUPPLY)) - 10**20)
    assert state.get_storage(pair, C.pair_shares_slot(user.address)) == minted


def test_hotspot_counter_increments_per_call() -> None:
    s = Scenario(seed=14)
    counter = s.deploy_simple("hotspot")
    callers = [s.account() for _ in range(4)]
    for caller in callers:
        s.call(caller, counter, C.hotspot_increment(), gas=80_000)
    s.call(callers[0], counter, C.hotspot_increment_mine(), gas=80_000)
    s.call(callers[0], counter, C.hotspot_increment_mine(), gas=80_000)
    built = s.build()
    values = [words(r.logs[0].data)[0] for r in built.receipts]
    assert values == [1, 2, 3, 4, 1, 2]
    for caller, receipt in zip(callers, built.receipts):
        assert topics(receipt.logs[0]) == [
            C.event_topic("Incremented(address,uint256)"), C.word(caller.address)]
    state = built.state
    assert state.get_storage(counter, C.HOTSPOT_COUNTER) == 4
    assert state.get_storage(counter, C.hotspot_counter_of_slot(callers[0].address)) == 2


def test_storage_contract_writes_the_expected_slots() -> None:
    s = Scenario(seed=15)
    store = s.deploy_simple("storage")
    caller = s.account()
    key = caller.address.rjust(32, b"\0")
    s.call(caller, store, C.storage_fill(key, 5), gas=300_000)
    s.call(caller, store, C.storage_fill(key, 3), gas=300_000)
    built = s.build()
    state = built.state
    assert state.get_storage(store, C.storage_nonce_slot(key)) == 2
    for nonce, n in ((0, 5), (1, 3)):
        for i, slot in enumerate(C.storage_fill_slots(key, nonce, n)):
            assert state.get_storage(store, slot) == C.storage_fill_value(caller.address, i)
        assert state.get_storage(store, C.storage_fill_slots(key, nonce, n + 1)[-1]) == 0
    assert len(built.post[store].storage) == 5 + 3 + 1   # the slots and one nonce


def test_compute_contract_stores_the_hash_chain() -> None:
    s = Scenario(seed=17)
    contract = s.deploy_simple("compute")
    alice, bob = s.account(), s.account()
    s.call(alice, contract, C.compute_work(7), gas=100_000)
    s.call(bob, contract, C.compute_work(0), gas=100_000)
    s.call(alice, contract, C.compute_work_shared(3), gas=100_000)
    s.call(bob, contract, C.compute_work_shared(2), gas=100_000)
    built = s.build()
    assert [r.state_root for r in built.receipts] == [b"\x01"] * 4   # all succeeded
    state = built.state

    def stored(slot: int) -> bytes:
        return state.get_storage(contract, slot).to_bytes(32, "big")

    assert stored(C.compute_result_of_slot(alice.address)) == \
        C.compute_chain(alice.address, 7)
    assert stored(C.compute_result_of_slot(bob.address)) == bob.address.rjust(32, b"\0")
    assert stored(C.COMPUTE_SHARED) == C.compute_chain(bytes(32), 5)   # 3 then 2 more


def test_create2_child_address_and_create() -> None:
    s = Scenario(seed=16)
    factory = s.deploy_simple("factory")
    sender = s.account()
    salt = keccak(b"salt")
    s.call(sender, factory, C.factory_create2(salt), value=123, gas=300_000)
    s.call(sender, factory, C.factory_create(), gas=300_000)
    s.call(sender, factory, C.factory_create2(salt), gas=300_000,
           expect_success=False)                     # the address is taken
    built = s.build()
    init = C.bytecode("child_init")
    expected = Address(keccak(b"\xff" + factory + salt + keccak(init))[12:])
    assert C.create2_address(factory, salt, init) == expected
    log = built.receipts[0].logs[0]
    assert topics(log) == [C.event_topic("Created(address,bytes32)"), C.word(expected)]
    state = built.state
    assert state.get_code(expected) == C.bytecode("child")
    assert state.get_balance(expected) == 123
    assert state.get_storage(expected, C.CHILD_OWNER) == int.from_bytes(factory, "big")
    created = C.create_address(factory, 2)          # the factory's nonce was 2 by then
    assert state.get_code(created) == C.bytecode("child")
    assert state.get_nonce(factory) == 3


@pytest.mark.parametrize("fork, survives", [("Shanghai", False), ("Cancun", True),
                                            ("Prague", True)])
def test_selfdestruct_follows_the_fork(fork: str, survives: bool) -> None:
    s = Scenario(fork=fork, seed=17)
    owner = s.account()
    factory = s.deploy_simple("factory")
    child = s.deploy_child(owner.address, balance=10**15)
    beneficiary, second = s.fresh_address(), s.fresh_address()
    salt = keccak(b"same tx")
    s.call(owner, child, C.child_kill(beneficiary), gas=80_000)
    s.call(owner, factory, C.factory_create_and_destroy(salt, second), value=77,
           gas=300_000)
    s.call(s.account(), child, C.child_kill(beneficiary), gas=80_000,
           expect_success=not survives)              # only the owner may kill
    built = s.build()
    state = built.state
    assert state.get_balance(beneficiary) == 10**15
    assert state.get_balance(child) == 0
    # A genesis child: destroyed before Cancun, only emptied from Cancun (EIP-6780).
    assert state.account_exists(child) is survives
    assert (state.get_code(child) == C.bytecode("child")) is survives
    assert (child in built.post) is survives
    # Created and destroyed in one transaction: gone under every fork.
    same_tx = C.create2_address(factory, salt, C.bytecode("child_init"))
    assert not state.account_exists(same_tx) and same_tx not in built.post
    assert state.get_balance(second) == 77


# -- the generator ------------------------------------------------------------------
def test_generation_is_deterministic() -> None:
    one = dumps(generate("mixed", txs=25, seed=3))
    two = dumps(generate("mixed", txs=25, seed=3))
    other = dumps(generate("mixed", txs=25, seed=4))
    assert one == two and one != other


@pytest.mark.parametrize("conflict", [0.0, 0.3, 1.0])
def test_conflict_is_the_share_of_hot_transactions(conflict: float) -> None:
    generated = generate_block("erc20", txs=30, conflict=conflict, seed=5)
    intents = generated.built.intents
    assert generated.hot_count == round(conflict * 30)
    senders = [intent.sender.address for intent in intents]
    assert len(set(senders)) == len(senders)          # no same-sender chains
    slots = [set(slot for _, keys in intent.access for slot in keys) for intent in intents]
    hot = [s for s, intent in zip(slots, intents) if intent.hot]
    cold = [s for s, intent in zip(slots, intents) if not intent.hot]
    for i, a in enumerate(cold):                     # cold transactions share nothing
        for b in cold[i + 1:] + hot:
            assert not a & b
    if len(hot) > 1:                                 # hot ones share the recipient slot
        assert set.intersection(*hot)


def test_transfers_hot_share_is_one_sender_chain() -> None:
    generated = generate_block("transfers", txs=20, conflict=1.0, seed=6)
    assert len({intent.sender.address for intent in generated.built.intents}) == 1
    nonces = [tx.nonce for tx in generated.built.transactions]
    assert nonces == list(range(20))


def test_prague_block_mixes_transaction_types() -> None:
    generated = generate_block("transfers", txs=40, seed=7)
    types = {getattr(tx, "type_id", None) or 0 for tx in generated.built.transactions}
    assert types == {0, 1, 2}
    assert issubclass(generated.built.vm_class, PragueVM)


@pytest.mark.parametrize("fork", SUPPORTED_NETWORKS)
def test_every_supported_fork_builds_a_valid_block(fork: str) -> None:
    fixture = generate("mixed", txs=12, conflict=0.5, seed=8, fork=fork)
    _check_fixture(fixture, f"<{fork}>")


@pytest.mark.parametrize("kwargs, message", [
    ({"workload": "nope"}, "unknown workload"),
    ({"txs": 0}, "--txs"),
    ({"conflict": 1.5}, "--conflict"),
    ({"conflict": -0.1}, "--conflict"),
    ({"fork": "Frontier"}, "not supported"),
    ({"fork": "Nowhere"}, "unknown fork"),
    ({"accounts": 0}, "--accounts"),
    ({"pools": 2}, "--pools"),
    ({"workload": "storage", "slots": 0}, "--slots"),
])
def test_bad_arguments_raise_workload_errors(kwargs: dict, message: str) -> None:
    arguments = {"workload": "erc20", "txs": 5, **kwargs}
    with pytest.raises(WorkloadError, match=re.escape(message)):
        generate(**arguments)


def test_post_state_is_complete_state_root_matches() -> None:
    """postState lists every account: rebuilt on its own it gives the header's root."""
    for fork in ("Shanghai", "Prague"):
        case = next(iter(generate("factory", txs=20, conflict=0.5, seed=9,
                                  fork=fork).values()))
        accounts = AccountDB(AtomicDB())
        for address, account in normalize_account_state(case["postState"]).items():
            accounts.set_balance(address, account["balance"])
            accounts.set_nonce(address, account["nonce"])
            accounts.set_code(address, account["code"])
            for slot, value in account["storage"].items():
                accounts.set_storage(address, slot, value)
        accounts.persist()
        root = "0x" + accounts.state_root.hex()
        assert root == case["blocks"][0]["blockHeader"]["stateRoot"]


# -- the committed fixtures ---------------------------------------------------------
def _check_fixture(data: dict, source: str) -> None:
    for case in load_cases(source, data):
        run = case.start()
        count = 0
        for task in run.tasks():
            outcome = task.execute(ReferenceEngine())
            assert outcome.rejection is None, outcome.rejection
            assert outcome.result is not None
            assert compare_expectations(task.expect, outcome.result) == []
            count += 1
        assert count == 1
        assert run.final_mismatches() == []


def test_fixtures_exist() -> None:
    assert len(FIXTURE_FILES) >= 10
    names = {path.name for path in FIXTURE_FILES}
    assert "erc20_small.json" in names


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_committed_fixture_passes(path: Path) -> None:
    assert path.stat().st_size < 1_000_000
    _check_fixture(json.loads(path.read_text()), str(path))


def _recorded_command(path: Path) -> list[str]:
    (case,) = json.loads(path.read_text()).values()
    return shlex.split(case["_info"]["command"])


def test_readme_lists_every_fixture_with_its_command() -> None:
    readme = (FIXTURES / "README.md").read_text()
    for path in FIXTURE_FILES:
        command = " ".join(_recorded_command(path)) + f" -o fixtures/{path.name}"
        assert command in readme, f"fixtures/README.md lacks: {command}"


@pytest.mark.parametrize("name", ["erc20_small.json", "factory_shanghai.json"])
def test_recorded_command_regenerates_the_identical_file(name: str, tmp_path: Path) -> None:
    from pevm.cli.main import main

    path = FIXTURES / name
    argv = _recorded_command(path)
    assert argv[:2] == ["pevm", "gen"]
    out = tmp_path / name
    assert main(argv[1:] + ["-o", str(out), "--quiet"]) == 0
    assert out.read_bytes() == path.read_bytes()


def test_fixture_addresses_are_canonical() -> None:
    (case,) = json.loads((FIXTURES / "erc20_small.json").read_text()).values()
    for address in list(case["pre"]) + list(case["postState"]):
        assert address == "0x" + to_canonical_address(address).hex()
    assert case["sealEngine"] == "NoProof" and case["network"] == "Prague"
    assert case["lastblockhash"] == case["blocks"][0]["blockHeader"]["hash"]
