"""The workload contracts: committed bytecode, call encoding, storage layout.

Sources are ``easm/*.easm`` (see :mod:`pevm.workloads.asm`); the assembled
bytecode is committed beside them as ``easm/*.hex`` and is what the generator
deploys. ``python -m pevm.workloads.build`` rebuilds the ``.hex`` files (``--check``
verifies that they match the sources).

Contracts (see each source's header for its interface):

``erc20``       ERC-20 token, balances at ``keccak(holder . 0)``, allowances at
                ``keccak(spender . keccak(owner . 1))``, total supply in slot 2
``amm_pair``    constant-product pair (Uniswap V2 style) over two ``erc20`` tokens
``hotspot``     a global counter every ``increment()`` bumps, and per-caller ones
``storage``     ``fill(key, n)`` writes n fresh slots per call
``compute``     ``work(rounds)``: a keccak hash chain per call, stored per caller
``factory``     CREATE / CREATE2 / create-and-self-destruct of ``child`` contracts
``child``       runtime of the children (``kill(address)``, ``ping()``)
``child_init``  init code of a child (records its creator as owner)
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

import rlp
from eth_hash.auto import keccak
from eth_typing import Address

from pevm.workloads.asm import assemble_all, selector, topic

#: Contracts assembled to ``.hex`` (``common`` is a macro library, included only).
CONTRACTS: tuple[str, ...] = (
    "erc20", "amm_pair", "hotspot", "storage", "compute", "factory", "child",
    "child_init",
)
LIBRARIES: tuple[str, ...] = ("common",)

MAX_UINT256 = 2**256 - 1


def _contracts_dir() -> Any:
    return resources.files("pevm.workloads").joinpath("easm")


def read_sources() -> tuple[dict[str, str], dict[str, str]]:
    """(contract sources, library sources), by name."""
    folder = _contracts_dir()
    sources = {name: folder.joinpath(f"{name}.easm").read_text() for name in CONTRACTS}
    libraries = {name: folder.joinpath(f"{name}.easm").read_text() for name in LIBRARIES}
    return sources, libraries


def build_all() -> dict[str, bytes]:
    """Assemble every contract from its source (what the ``.hex`` files hold)."""
    sources, libraries = read_sources()
    return assemble_all(sources, libraries)


@cache
def bytecode(name: str) -> bytes:
    """The committed bytecode of contract ``name``."""
    if name not in CONTRACTS:
        raise KeyError(f"unknown contract {name!r} (known: {', '.join(CONTRACTS)})")
    text = _contracts_dir().joinpath(f"{name}.hex").read_text().strip()
    return bytes.fromhex(text.removeprefix("0x"))


# -- ABI encoding (static types only) -----------------------------------------
def word(value: int | bytes | bool) -> bytes:
    """One 32-byte ABI word: ints big-endian, addresses and bytes32 left-padded."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        if value < 0 or value > MAX_UINT256:
            raise ValueError(f"{value} does not fit in uint256")
        return value.to_bytes(32, "big")
    if len(value) > 32:
        raise ValueError("more than 32 bytes")
    return bytes(value).rjust(32, b"\0")


def call_data(signature: str, *args: int | bytes | bool) -> bytes:
    """ABI call data: the selector of ``signature`` then one word per argument."""
    return selector(signature).to_bytes(4, "big") + b"".join(word(a) for a in args)


def event_topic(signature: str) -> bytes:
    """Topic 0 of an event (keccak-256 of its signature)."""
    return topic(signature).to_bytes(32, "big")


def erc20_transfer(to: bytes, amount: int) -> bytes:
    return call_data("transfer(address,uint256)", to, amount)


def erc20_transfer_from(owner: bytes, to: bytes, amount: int) -> bytes:
    return call_data("transferFrom(address,address,uint256)", owner, to, amount)


def erc20_approve(spender: bytes, amount: int) -> bytes:
    return call_data("approve(address,uint256)", spender, amount)


def amm_swap(zero_for_one: bool, amount_in: int, min_out: int = 0) -> bytes:
    return call_data("swapExactIn(bool,uint256,uint256)", zero_for_one, amount_in, min_out)


def amm_add_liquidity(amount0: int, amount1: int) -> bytes:
    return call_data("addLiquidity(uint256,uint256)", amount0, amount1)


def amm_remove_liquidity(shares: int) -> bytes:
    return call_data("removeLiquidity(uint256)", shares)


def hotspot_increment() -> bytes:
    return call_data("increment()")


def hotspot_increment_mine() -> bytes:
    return call_data("incrementMine()")


def compute_work(rounds: int) -> bytes:
    return call_data("work(uint256)", rounds)


def compute_work_shared(rounds: int) -> bytes:
    return call_data("workShared(uint256)", rounds)


def compute_result_of_slot(caller: bytes) -> int:
    return mapping_slot(caller, COMPUTE_RESULT_OF)


def compute_chain(start: bytes, rounds: int) -> bytes:
    """What ``work``/``workShared`` compute: keccak256 applied ``rounds`` times."""
    value = start.rjust(32, b"\0")
    for _ in range(rounds):
        value = keccak(value)
    return value


def storage_fill(key: bytes | int, n: int) -> bytes:
    return call_data("fill(bytes32,uint256)", key, n)


def factory_create() -> bytes:
    return call_data("create()")


def factory_create2(salt: bytes) -> bytes:
    return call_data("create2(bytes32)", salt)


def factory_create_and_destroy(salt: bytes, beneficiary: bytes) -> bytes:
    return call_data("createAndDestroy(bytes32,address)", salt, beneficiary)


def child_kill(beneficiary: bytes) -> bytes:
    return call_data("kill(address)", beneficiary)


def child_ping() -> bytes:
    return call_data("ping()")


# -- storage layout -----------------------------------------------------------
def mapping_slot(key: int | bytes, slot: int) -> int:
    """Solidity's slot of ``mapping[key]`` for a mapping declared at ``slot``."""
    return int.from_bytes(keccak(word(key) + word(slot)), "big")


ERC20_BALANCES, ERC20_ALLOWANCES, ERC20_TOTAL_SUPPLY = 0, 1, 2
PAIR_TOKEN0, PAIR_TOKEN1, PAIR_RESERVE0, PAIR_RESERVE1 = 0, 1, 2, 3
PAIR_TOTAL_SUPPLY, PAIR_SHARES = 4, 5
HOTSPOT_COUNTER, HOTSPOT_COUNTER_OF = 0, 1
COMPUTE_SHARED, COMPUTE_RESULT_OF = 0, 1
STORAGE_NONCE_OF = 0
CHILD_OWNER, CHILD_PINGS = 0, 1


def erc20_balance_slot(holder: bytes) -> int:
    return mapping_slot(holder, ERC20_BALANCES)


def erc20_allowance_slot(owner: bytes, spender: bytes) -> int:
    return mapping_slot(spender, mapping_slot(owner, ERC20_ALLOWANCES))


def pair_shares_slot(holder: bytes) -> int:
    return mapping_slot(holder, PAIR_SHARES)


def hotspot_counter_of_slot(caller: bytes) -> int:
    return mapping_slot(caller, HOTSPOT_COUNTER_OF)


def storage_nonce_slot(key: bytes | int) -> int:
    return mapping_slot(key, STORAGE_NONCE_OF)


def storage_fill_slots(key: bytes | int, nonce: int, n: int) -> list[int]:
    """The slots ``fill(key, n)`` writes when ``nonceOf[key] == nonce``."""
    base = mapping_slot(key, nonce + 1)
    return [(base + i) % 2**256 for i in range(n)]


def storage_fill_value(caller: bytes, i: int) -> int:
    """The value ``fill`` writes to its i-th slot."""
    return (int.from_bytes(caller, "big") + i + 1) % 2**256


# -- addresses ----------------------------------------------------------------
def create_address(sender: bytes, nonce: int) -> Address:
    """The address CREATE (or a creation transaction) gives: keccak(rlp([s, n]))[12:]."""
    return Address(keccak(rlp.encode([sender, nonce]))[12:])


def create2_address(deployer: bytes, salt: bytes, init_code: bytes) -> Address:
    """The address CREATE2 gives: keccak(0xff ++ deployer ++ salt ++ keccak(init))[12:]."""
    return Address(keccak(b"\xff" + deployer + word(salt) + keccak(init_code))[12:])


def describe() -> Iterable[tuple[str, int]]:
    """(name, code size) of every contract, for listings."""
    for name in CONTRACTS:
        yield name, len(bytecode(name))
