"""A genesis state, a list of transactions to sign, and one block built from them.

:class:`Scenario` collects what a block needs: funded accounts (deterministic keys
from a seed), contracts placed in the genesis state with their storage, and
transaction intents (sender, target, call data, gas). :meth:`Scenario.build` signs
the intents with correct nonces and fees, executes them with py-evm through the
fork's own ``VM.import_block`` (pre-block system steps, transactions, withdrawals,
post-block requests, finalisation), and returns a :class:`Built` block with its
receipts and post-state, which :mod:`pevm.workloads.fixture` writes out as a
BlockchainTests case. The building itself is :mod:`pevm.workloads.builder`.

Tests use the same class to check the contracts' behaviour::

    s = Scenario(fork="Prague", seed=1)
    alice, bob = s.account(), s.account()
    token = s.deploy_erc20({alice.address: 10**21})
    s.call(alice, token, contracts.erc20_transfer(bob.address, 5))
    built = s.build()
    built.receipts[0].logs, built.state.get_storage(token, ...)
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coincurve import PrivateKey as CoincurvePrivateKey
from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI, StateAPI, VirtualMachineAPI
from eth.tools.fixtures.helpers import chain_vm_configuration
from eth.vm.forks import BerlinVM, CancunVM, LondonVM, PragueVM, ShanghaiVM
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE
from eth.vm.forks.prague.constants import (
    HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CONTRACT_CODE,
)
from eth_hash.auto import keccak
from eth_typing import Address

from pevm.errors import PevmError
from pevm.forks import NETWORKS, UnknownNetwork, canonical_network
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
        # builder imports this module (for Scenario, Built, ...): import it here
        from pevm.workloads.builder import build_block
        return build_block(self, progress, check)

