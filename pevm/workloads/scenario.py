"""A genesis state, a list of transactions to sign, and one block built from them.

:class:`Scenario` collects what a block needs: funded accounts (deterministic keys
from a seed), contracts placed in the genesis state with their storage, and
transaction intents (sender, target, call data, gas). :meth:`Scenario.build` signs
the intents with correct nonces and fees, executes them with py-evm through the
fork's own ``VM.import_block`` (pre-block system steps, transactions, withdrawals,
post-block requests, finalisation), and returns a :class:`Built` block with its
receipts and post-state, which :mod:`pevm.workloads.fixture` writes out as a
BlockchainTests case.

Tests use the same class to check the contracts' behaviour::

    s = Scenario(fork="Prague", seed=1)
    alice, bob = s.account(), s.account()
    token = s.deploy_erc20({alice.address: 10**21})
    s.call(alice, token, contracts.erc20_transfer(bob.address, 5))
    built = s.build()
    built.receipts[0].logs, built.state.get_storage(token, ...)
"""
from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coincurve import PrivateKey as CoincurvePrivateKey
from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI, StateAPI, VirtualMachineAPI
from eth.chains.mainnet import MainnetChain
from eth.constants import BLANK_ROOT_HASH, ZERO_ADDRESS, ZERO_HASH32
from eth.db.atomic import AtomicDB
from eth.tools.builder.chain import disable_pow_check
from eth.tools.fixtures.helpers import chain_vm_configuration
from eth.vm.forks import (
    BerlinVM, CancunVM, LondonVM, ParisVM, PragueVM, ShanghaiVM,
)
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE
from eth.vm.forks.prague.constants import (
    HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CONTRACT_CODE,
)
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.datatypes import PrivateKey
from eth_typing import Address
from eth_utils import ValidationError

from pevm.errors import PevmError
from pevm.forks import NETWORKS, UnknownNetwork, canonical_network
from pevm.pyevm_compat import WriteLog, observed_vm_class
from pevm.workloads import contracts as C

#: Chain id of every generated block: pevm's loader (like py-evm's fixture tools)
#: builds fixture chains as mainnet chains.
CHAIN_ID = 1
GWEI = 10**9
ETHER = 10**18
#: Every funded account starts with this much ether (plenty for any workload).
DEFAULT_FUNDING = 10**6 * ETHER
GENESIS_BASE_FEE = GWEI
GENESIS_DIFFICULTY = 0x020000
BLOCK_TIME = 12
#: Fee recipient of the generated block.
COINBASE = keccak(b"pevm workloads: coinbase")[12:]
#: The oldest fork the generator supports (its contracts use SHL/SHR and CREATE2).
OLDEST_FORK = "Constantinople"
SUPPORTED_NETWORKS: tuple[str, ...] = tuple(
    n for n in NETWORKS[NETWORKS.index(OLDEST_FORK):NETWORKS.index("Prague") + 1])

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class WorkloadError(PevmError):
    """A workload cannot be generated as asked (bad arguments, unsupported fork)."""


class GenerationFailed(PevmError):
    """py-evm rejected the generated block, or a transaction did not do what the
    generator meant it to: a bug in the generator."""


def resolve_fork(name: str) -> tuple[str, type[VirtualMachineAPI]]:
    """(fixture network name, py-evm VM class) for a fork name, case-insensitive."""
    try:
        network = canonical_network(name)
    except UnknownNetwork:
        raise WorkloadError(f"unknown fork {name!r} (choose from: "
                            f"{', '.join(SUPPORTED_NETWORKS)})") from None
    if network not in SUPPORTED_NETWORKS:
        raise WorkloadError(f"fork {network} is not supported by the generator "
                            f"(choose from: {', '.join(SUPPORTED_NETWORKS)})")
    ((_, vm_class),) = tuple(chain_vm_configuration({"network": network}))
    return network, vm_class


@dataclass(frozen=True)
class Account:
    """An externally owned account with a deterministic key."""

    index: int
    private_key: bytes
    address: Address


class KeyRing:
    """Deterministic private keys: account i of seed s is the same on every run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._accounts: dict[int, Account] = {}

    def __getitem__(self, index: int) -> Account:
        account = self._accounts.get(index)
        if account is None:
            counter = 0
            while True:
                material = (b"pevm workloads: key" + self.seed.to_bytes(8, "big", signed=True)
                            + index.to_bytes(8, "big") + counter.to_bytes(4, "big"))
                secret = keccak(material)
                if 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
                    break
                counter += 1  # pragma: no cover (probability ~2**-128)
            public = CoincurvePrivateKey(secret).public_key.format(compressed=False)[1:]
            account = Account(index, secret, Address(keccak(public)[12:]))
            self._accounts[index] = account
        return account


@dataclass
class AccountSpec:
    """One account of the genesis state."""

    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


@dataclass
class Intent:
    """A transaction before signing: the generator's plan for one transaction."""

    sender: Account
    to: bytes | None  # None: contract creation
    data: bytes = b""
    value: int = 0
    gas: int = 100_000
    #: (address, storage keys) hints: used as the access list of typed transactions.
    access: tuple[tuple[bytes, tuple[int, ...]], ...] = ()
    #: Touches the workload's shared location (counts toward --conflict).
    hot: bool = False
    #: The transaction is meant to revert (status 0).
    expect_success: bool = True
    #: What it does, e.g. "erc20.transfer" (for summaries and error messages).
    label: str = ""
    #: Force a transaction type (0, 1, 2); None: chosen by the scenario's mix.
    tx_type: int | None = None


@dataclass
class Built:
    """A block that py-evm built and executed, with what it needs to be a fixture."""

    network: str
    vm_class: type[VirtualMachineAPI]
    genesis_header: Any
    genesis_block: BlockAPI
    pre: dict[bytes, AccountSpec]
    block: BlockAPI
    transactions: tuple[SignedTransactionAPI, ...]
    senders: tuple[bytes, ...]
    intents: tuple[Intent, ...]
    receipts: tuple[ReceiptAPI, ...]
    errors: tuple[str | None, ...]
    state: StateAPI
    post: dict[bytes, AccountSpec]
    withdrawals: tuple[Any, ...]


class Scenario:
    """Genesis accounts and contracts plus transaction intents; see the module doc."""

    def __init__(self, fork: str = "Prague", seed: int = 0, accounts: int | None = None,
                 system_contracts: bool = True, funding: int = DEFAULT_FUNDING) -> None:
        self.network, self.vm_class = resolve_fork(fork)
        if accounts is not None and accounts < 1:
            raise WorkloadError(f"--accounts must be at least 1, got {accounts}")
        self.seed = seed
        self.rng = random.Random(f"pevm workloads {seed}")
        self.keys = KeyRing(seed)
        self.account_limit = accounts
        self.funding = funding
        self.pre: dict[bytes, AccountSpec] = {}
        self.intents: list[Intent] = []
        self.withdrawals: list[tuple[int, int, bytes, int]] = []
        self._next_account = 0
        self._fresh_addresses = 0
        self._named: dict[tuple[str, int], Address] = {}
        if system_contracts:
            self._place_system_contracts()

    # -- fork features ----------------------------------------------------------
    def has(self, vm_base: type) -> bool:
        return issubclass(self.vm_class, vm_base)

    @property
    def tx_types(self) -> tuple[int, ...]:
        if self.has(LondonVM):
            return (0, 1, 2)
        if self.has(BerlinVM):
            return (0, 1)
        return (0,)

    def _place_system_contracts(self) -> None:
        # The EIP-4788 / EIP-2935 contracts make py-evm run the pre-block system
        # steps (beacon root, parent hash) like a real chain does.
        if self.has(CancunVM):
            self.place(BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE, nonce=1)
        if self.has(PragueVM):
            self.place(HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CONTRACT_CODE, nonce=1)

    # -- accounts ----------------------------------------------------------------
    def account(self, funded: bool = True) -> Account:
        """The next account of the pool (wraps around after ``accounts``)."""
        index = self._next_account
        self._next_account += 1
        if self.account_limit is not None:
            index %= self.account_limit
        account = self.keys[index]
        if funded and account.address not in self.pre:
            self.pre[account.address] = AccountSpec(balance=self.funding)
        return account

    def fresh_address(self) -> Address:
        """An address that exists nowhere yet (a brand-new recipient)."""
        self._fresh_addresses += 1
        return Address(keccak(b"pevm workloads: fresh"
                              + self.seed.to_bytes(8, "big", signed=True)
                              + self._fresh_addresses.to_bytes(8, "big"))[12:])

    def named_address(self, kind: str, index: int = 0) -> Address:
        """A fixed contract address for (kind, index), the same for every seed."""
        key = (kind, index)
        if key not in self._named:
            self._named[key] = Address(keccak(f"pevm workloads: {kind} {index}".encode())[12:])
        return self._named[key]

    # -- genesis state --------------------------------------------------------
    def place(self, address: bytes, code: bytes = b"", storage: dict[int, int] | None = None,
              balance: int = 0, nonce: int = 0) -> Address:
        spec = self.pre.setdefault(address, AccountSpec())
        spec.code = code
        spec.balance = max(spec.balance, balance)
        spec.nonce = max(spec.nonce, nonce)
        for slot, value in (storage or {}).items():
            self.set_storage(address, slot, value)
        return Address(address)

    def set_storage(self, address: bytes, slot: int, value: int) -> None:
        spec = self.pre.setdefault(address, AccountSpec())
        if value:
            spec.storage[slot] = value
        else:
            spec.storage.pop(slot, None)

    def get_storage(self, address: bytes, slot: int) -> int:
        spec = self.pre.get(address)
        return spec.storage.get(slot, 0) if spec else 0

    def deploy_erc20(self, holders: dict[bytes, int] | None = None,
                     address: bytes | None = None) -> Address:
        """An ERC-20 token in the genesis state, with initial balances."""
        if address is None:
            address = self.named_address("erc20", sum(1 for k in self._named if k[0] == "erc20"))
        address = self.place(address, C.bytecode("erc20"), nonce=1)
        for holder, amount in (holders or {}).items():
            self.erc20_credit(address, holder, amount)
        return address

    def erc20_credit(self, token: bytes, holder: bytes, amount: int) -> None:
        """Add to a genesis balance (and to the total supply)."""
        slot = C.erc20_balance_slot(holder)
        self.set_storage(token, slot, self.get_storage(token, slot) + amount)
        supply = self.get_storage(token, C.ERC20_TOTAL_SUPPLY) + amount
        self.set_storage(token, C.ERC20_TOTAL_SUPPLY, supply)

    def erc20_approve(self, token: bytes, owner: bytes, spender: bytes, amount: int) -> None:
        """Set a genesis allowance."""
        self.set_storage(token, C.erc20_allowance_slot(owner, spender), amount)

    def deploy_pair(self, token0: bytes, token1: bytes, reserve0: int, reserve1: int,
                    founder: bytes, address: bytes | None = None) -> Address:
        """An AMM pair holding the reserves; ``founder`` owns all its shares."""
        if address is None:
            address = self.named_address("pair", sum(1 for k in self._named if k[0] == "pair"))
        supply = math.isqrt(reserve0 * reserve1)
        address = self.place(address, C.bytecode("amm_pair"), nonce=1, storage={
            C.PAIR_TOKEN0: int.from_bytes(token0, "big"),
            C.PAIR_TOKEN1: int.from_bytes(token1, "big"),
            C.PAIR_RESERVE0: reserve0, C.PAIR_RESERVE1: reserve1,
            C.PAIR_TOTAL_SUPPLY: supply,
            C.pair_shares_slot(founder): supply,
        })
        self.erc20_credit(token0, address, reserve0)
        self.erc20_credit(token1, address, reserve1)
        return address

    def pair_give_shares(self, pair: bytes, founder: bytes, holder: bytes, shares: int) -> None:
        """Move genesis liquidity shares from the founder to ``holder``."""
        founder_slot, holder_slot = C.pair_shares_slot(founder), C.pair_shares_slot(holder)
        have = self.get_storage(pair, founder_slot)
        if have < shares:
            raise WorkloadError("founder has too few shares")
        self.set_storage(pair, founder_slot, have - shares)
        self.set_storage(pair, holder_slot, self.get_storage(pair, holder_slot) + shares)

    def deploy_simple(self, name: str, index: int = 0) -> Address:
        """Contract ``name`` (hotspot, storage, factory) at its named address."""
        return self.place(self.named_address(name, index), C.bytecode(name), nonce=1)

    def deploy_child(self, owner: bytes, balance: int = 0, index: int = 0) -> Address:
        """A factory child already in the genesis state, owned by ``owner``."""
        return self.place(self.named_address("child", index), C.bytecode("child"), nonce=1,
                          balance=balance,
                          storage={C.CHILD_OWNER: int.from_bytes(owner, "big")})

    # -- transactions ---------------------------------------------------------
    def call(self, sender: Account, to: bytes | None, data: bytes = b"", value: int = 0,
             gas: int = 100_000, **kwargs: Any) -> Intent:
        intent = Intent(sender=sender, to=to, data=data, value=value, gas=gas, **kwargs)
        self.intents.append(intent)
        return intent

    def withdraw(self, validator_index: int, address: bytes, amount_gwei: int) -> None:
        """Add an EIP-4895 withdrawal (Shanghai and later) to the block."""
        if not self.has(ShanghaiVM):
            raise WorkloadError(f"{self.network} has no withdrawals")
        self.withdrawals.append((len(self.withdrawals), validator_index, address, amount_gwei))

    # -- building --------------------------------------------------------------
    def build(self, progress: Callable[[str, int, int], None] | None = None,
              check: bool = True) -> Built:
        """Sign, execute with py-evm and return the block.

        ``progress(phase, done, total)`` reports the phases: genesis, signing,
        executing (per transaction), state root, post-state.
        With ``check`` every transaction must end as its intent says (success or
        revert); otherwise :class:`GenerationFailed` is raised.
        """
        return _build(self, progress, check)


# -- signing ---------------------------------------------------------------------
def _sign_all(scenario: Scenario, base_fee: int | None,
              progress: Callable[[str, int, int], None] | None
              ) -> tuple[list[SignedTransactionAPI], list[bytes]]:
    # the fork's own builder: its typed-transaction methods are not in py-evm's API
    builder: Any = scenario.vm_class.get_transaction_builder()
    rng = random.Random(f"pevm workloads {scenario.seed} fees")
    nonces: dict[bytes, int] = {}
    key_objects: dict[bytes, PrivateKey] = {}
    types = scenario.tx_types
    weights = {0: 20, 1: 15, 2: 65}
    signed: list[SignedTransactionAPI] = []
    senders: list[bytes] = []
    total = len(scenario.intents)
    for index, intent in enumerate(scenario.intents):
        sender = intent.sender.address
        nonce = nonces.get(sender, scenario.pre.get(sender, AccountSpec()).nonce)
        nonces[sender] = nonce + 1
        key = key_objects.get(sender)
        if key is None:
            key = key_objects[sender] = keys.PrivateKey(intent.sender.private_key)
        tx_type = intent.tx_type
        if tx_type is None:
            tx_type = rng.choices(types, weights=[weights[t] for t in types])[0]
        elif tx_type not in types:
            raise WorkloadError(f"{scenario.network} has no type-{tx_type} transactions")
        tip = rng.randrange(1, 4) * GWEI // rng.choice((1, 2, 4))
        base = base_fee if base_fee is not None else GWEI
        to = intent.to if intent.to is not None else b""
        access_list = tuple((address, tuple(slots)) for address, slots in intent.access)
        if tx_type == 2:
            if rng.random() < 0.7:
                access_list = ()
            unsigned = builder.new_unsigned_dynamic_fee_transaction(
                chain_id=CHAIN_ID, nonce=nonce, max_priority_fee_per_gas=tip,
                max_fee_per_gas=2 * base + tip, gas=intent.gas, to=to,
                value=intent.value, data=intent.data, access_list=access_list)
        elif tx_type == 1:
            unsigned = builder.new_unsigned_access_list_transaction(
                chain_id=CHAIN_ID, nonce=nonce, gas_price=base + tip, gas=intent.gas,
                to=to, value=intent.value, data=intent.data, access_list=access_list)
        else:
            unsigned = builder.create_unsigned_transaction(
                nonce=nonce, gas_price=base + tip, gas=intent.gas, to=to,
                value=intent.value, data=intent.data)
        transaction = unsigned.as_signed_transaction(key, chain_id=CHAIN_ID)
        if tx_type:
            # py-evm signs typed transactions into London's class; the block's sedes
            # needs the fork's own, so round-trip through the fork's builder.
            transaction = builder.decode(transaction.encode())
        signed.append(transaction)
        senders.append(sender)
        if progress is not None:
            progress("signing", index + 1, total)
    return signed, senders


# -- execution -------------------------------------------------------------------
def _recording_vm(vm_class: type[VirtualMachineAPI], writes: WriteLog,
                  on_applied: Callable[[int, Any, ReceiptAPI], None]) -> type:
    """``vm_class`` logging into ``writes`` what every state it builds writes (the
    genesis state included) and calling ``on_applied`` after each transaction."""

    def transaction_applied_hook(self: Any, transaction_index: int, transactions: Any,
                                 base_header: Any, partial_header: Any, computation: Any,
                                 receipt: ReceiptAPI) -> None:
        on_applied(transaction_index, computation, receipt)

    # transaction_applied_hook is py-evm's public hook for subclasses
    return type(f"Recording{vm_class.__name__}", (observed_vm_class(vm_class, writes),),
                {"transaction_applied_hook": transaction_applied_hook})


def _genesis_params(scenario: Scenario, gas_limit: int) -> dict[str, Any]:
    merged = scenario.has(ParisVM)
    params: dict[str, Any] = {
        "coinbase": ZERO_ADDRESS,
        "difficulty": 0 if merged else GENESIS_DIFFICULTY,
        "gas_limit": gas_limit,
        "timestamp": 0,
        "extra_data": b"",
        "mix_hash": ZERO_HASH32,
        "nonce": b"\0" * 8,
    }
    if scenario.has(LondonVM):
        params["base_fee_per_gas"] = GENESIS_BASE_FEE
    if scenario.has(ShanghaiVM):
        params["withdrawals_root"] = BLANK_ROOT_HASH
    if scenario.has(CancunVM):
        params["blob_gas_used"] = 0
        params["excess_blob_gas"] = 0
        params["parent_beacon_block_root"] = ZERO_HASH32
    if scenario.has(PragueVM):
        params["requests_hash"] = hashlib.sha256(b"").digest()
    return params


def _state_dict(pre: dict[bytes, AccountSpec]) -> dict[bytes, dict[str, Any]]:
    return {address: {"balance": spec.balance, "nonce": spec.nonce, "code": spec.code,
                      "storage": dict(spec.storage)}
            for address, spec in pre.items()}


def block_gas_limit(intents: Sequence[Intent]) -> int:
    """A gas limit that fits every transaction (at least 30M, like mainnet)."""
    need = sum(intent.gas for intent in intents)
    return max(30_000_000, need + need // 10 + 1_000_000)


def _build(scenario: Scenario, progress: Callable[[str, int, int], None] | None,
           check: bool) -> Built:
    if not scenario.intents:
        raise WorkloadError("a block needs at least one transaction")
    gas_limit = block_gas_limit(scenario.intents)
    written = WriteLog()
    receipts: list[ReceiptAPI] = []
    errors: list[str | None] = []
    total = len(scenario.intents)

    def report(phase: str, done: int, of: int) -> None:
        if progress is not None:
            progress(phase, done, of)

    def on_applied(index: int, computation: Any, receipt: ReceiptAPI) -> None:
        receipts.append(receipt)
        errors.append(repr(computation.error) if computation.is_error else None)
        report("executing", index + 1, total)
        if index + 1 == total:
            report("state root", 0, 1)

    vm_class = _recording_vm(scenario.vm_class, written, on_applied)
    chain_class = disable_pow_check(MainnetChain.configure(
        __name__="PevmWorkloadChain", vm_configuration=((0, vm_class),)))
    base_db = AtomicDB()
    pre = {address: spec for address, spec in scenario.pre.items()}
    report("genesis", 0, 1)
    chain = chain_class.from_genesis(base_db, _genesis_params(scenario, gas_limit),
                                     _state_dict(pre))
    report("genesis", 1, 1)
    genesis_header = chain.get_canonical_head()
    genesis_block = chain.get_canonical_block_by_number(0)

    header_params: dict[str, Any] = {
        "coinbase": COINBASE, "timestamp": genesis_header.timestamp + BLOCK_TIME,
        "gas_limit": gas_limit, "extra_data": b"pevm workloads",
    }
    if scenario.has(CancunVM):
        header_params["parent_beacon_block_root"] = keccak(
            b"pevm workloads: beacon root" + scenario.seed.to_bytes(8, "big", signed=True))
    header = chain.create_header_from_parent(genesis_header, **header_params)
    base_fee = getattr(header, "base_fee_per_gas", None)
    transactions, senders = _sign_all(scenario, base_fee, progress)
    withdrawals = tuple(
        Withdrawal(index=index, validator_index=validator, address=Address(address),
                   amount=amount) for index, validator, address, amount in
        scenario.withdrawals)

    vm = chain.get_vm(header)
    block_fields: dict[str, Any] = {"transactions": transactions, "uncles": []}
    if scenario.has(ShanghaiVM):
        block_fields["withdrawals"] = withdrawals
    draft = vm.get_block_class()(header, **block_fields)
    try:
        block = vm.import_block(draft).block
        chain.validate_block(block)
    except ValidationError as exc:
        index = len(receipts)
        where = ""
        if index < total:
            where = f" at transaction {index} ({scenario.intents[index].label or 'tx'})"
        raise GenerationFailed(f"py-evm rejected the generated block{where}: {exc}") from exc
    chain.chaindb.persist_block(block)
    report("state root", 1, 1)

    if check:
        for index, (intent, receipt) in enumerate(zip(scenario.intents, receipts)):
            succeeded = _receipt_succeeded(receipt)
            if succeeded != intent.expect_success:
                raise GenerationFailed(
                    f"transaction {index} ({intent.label or 'tx'}) "
                    f"{'succeeded' if succeeded else 'failed: ' + str(errors[index])}, "
                    f"but was meant to {'succeed' if intent.expect_success else 'revert'}")

    state = vm.state
    report("post-state", 0, 1)
    post = _post_state(state, pre, written)
    report("post-state", 1, 1)
    return Built(network=scenario.network, vm_class=scenario.vm_class,
                 genesis_header=genesis_header, genesis_block=genesis_block, pre=pre,
                 block=block, transactions=tuple(transactions), senders=tuple(senders),
                 intents=tuple(scenario.intents), receipts=tuple(receipts),
                 errors=tuple(errors), state=state, post=post, withdrawals=withdrawals)


def _receipt_succeeded(receipt: ReceiptAPI) -> bool:
    # Byzantium and later: the state_root field holds the status byte.
    return receipt.state_root == b"\x01"


def _post_state(state: StateAPI, pre: dict[bytes, AccountSpec],
                written: WriteLog) -> dict[bytes, AccountSpec]:
    """Every account after the block, with its non-zero storage.

    Accounts and slots the block never wrote keep their genesis values; everything
    it wrote (or wiped) is read back from py-evm's post-state.
    """
    post: dict[bytes, AccountSpec] = {}
    for raw_address in set(pre) | written.accounts:
        address = Address(raw_address)
        spec = pre.get(address)
        if address not in written.accounts and spec is not None:
            post[address] = AccountSpec(spec.balance, spec.nonce, spec.code,
                                        dict(spec.storage))
            continue
        if not state.account_exists(address):
            continue
        wiped = address in written.wiped
        storage: dict[int, int] = {}
        slots = written.slots.get(address, set())
        if spec is not None and not wiped:
            storage.update(spec.storage)
        else:
            slots = slots | set(spec.storage if spec else ())
        for slot in slots:
            value = state.get_storage(address, slot)
            if value:
                storage[slot] = value
            else:
                storage.pop(slot, None)
        post[address] = AccountSpec(balance=state.get_balance(address),
                                    nonce=state.get_nonce(address),
                                    code=state.get_code(address), storage=storage)
    return post


def iter_logs(built: Built) -> Iterable[tuple[int, Any]]:
    """(transaction index, log) for every log of the block, in order."""
    for index, receipt in enumerate(built.receipts):
        for log in receipt.logs:
            yield index, log
