"""BlockchainTests JSON (ethereum/tests, execution-spec-tests, pevm's own fixtures).

A file holds ``{caseName: fixture}``. Each case is a chain: a genesis with a
pre-state, then blocks imported in order. A block marked ``expectException`` must be
rejected, and the chain goes on from the previous head. After the last block the
chain's state is checked against ``postState`` (or ``postStateHash``) and its head
against ``lastblockhash``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import rlp
from pevm.pyevm_compat import normalize_blockchain_fixtures
from eth.tools.builder.chain.builders import disable_pow_check
from eth.tools.fixtures.helpers import genesis_params_from_fixture
from eth.exceptions import PyEVMError
from eth_utils import ValidationError, decode_hex

from pevm.compare import Mismatch, show
from pevm.errors import InputError, describe
from pevm.forks import NETWORKS, UnknownNetwork, vm_class_at, vm_configuration_for_fixture
from eth.chains.mainnet import MainnetChain

from pevm.inputs.chain import ChainTarget
from pevm.result import hex0x
from pevm.state.backend import StateBackend, chain_class_on, new_database
from pevm.task import BlockTask, Expectations

REQUIRED_KEYS = ("network", "genesisBlockHeader", "pre", "blocks")
#: The JSON shape each of those keys must have (py-evm's normalisation would
#: otherwise stop on a bare TypeError that names no field).
REQUIRED_SHAPES: dict[str, type] = {"network": str, "genesisBlockHeader": dict,
                                    "pre": dict, "blocks": list}
_SHAPE_NAMES: dict[type, str] = {str: "a string", dict: "a JSON object", list: "a JSON list"}


def read_json(path: str) -> Any:
    """Parse a JSON file, turning every way it can fail into an InputError."""
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc


def looks_like_blockchain_tests(data: Any) -> bool:
    """True when ``data`` is a ``{name: fixture}`` mapping of BlockchainTests cases."""
    return (isinstance(data, dict) and bool(data)
            and all(isinstance(v, dict) and "blocks" in v for v in data.values()))


def load_cases(path: str, data: Any | None = None) -> list[FixtureCase]:
    """Every case of a BlockchainTests file."""
    if data is None:
        data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise InputError(path, "expected a JSON object of {case name: fixture}")
    cases = []
    for name, fixture in data.items():
        if not isinstance(fixture, dict):
            raise InputError(path, f"case {name!r} is not a JSON object")
        missing = [key for key in REQUIRED_KEYS if key not in fixture]
        if missing:
            raise InputError(path, f"case {name!r} lacks required key(s) "
                                   f"{', '.join(missing)}")
        for key, shape in REQUIRED_SHAPES.items():
            if not isinstance(fixture[key], shape):
                raise InputError(path, f"case {name!r}: {key!r} must be "
                                       f"{_SHAPE_NAMES[shape]}, got "
                                       f"{type(fixture[key]).__name__}")
        cases.append(FixtureCase(source=path, name=name, raw=fixture))
    return cases


@dataclass
class FixtureCase:
    """One BlockchainTests case, runnable any number of times from its genesis."""

    source: str
    name: str
    raw: dict[str, Any]

    @property
    def network(self) -> str:
        return str(self.raw.get("network"))

    @property
    def block_count(self) -> int:
        return len(self.raw.get("blocks", ()))

    def start(self, backend: StateBackend = StateBackend.PYEVM) -> FixtureRun:
        """Build the genesis chain on ``backend``; the returned run yields the
        blocks as tasks."""
        if self.network not in NETWORKS:
            raise InputError(self.source, f"case {self.name!r}: unknown network "
                                          f"{self.network!r}")
        try:
            fixture = normalize_blockchain_fixtures(self.raw)
            if "postStateHash" in self.raw:
                fixture["postStateHash"] = decode_hex(self.raw["postStateHash"])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise InputError(self.source, f"case {self.name!r}: malformed field: "
                                          f"{describe(exc)}") from exc
        try:
            # After normalisation: timestamp transitions compare integers.
            configuration = vm_configuration_for_fixture(fixture)
        except UnknownNetwork as exc:
            raise InputError(self.source, f"case {self.name!r}: {exc}") from exc
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            raise InputError(self.source, f"case {self.name!r}: cannot configure "
                                          f"network: {exc}") from exc
        try:
            chain = _new_chain(fixture, configuration, backend)
        except (ValidationError, KeyError, ValueError, TypeError) as exc:
            raise InputError(self.source, f"case {self.name!r}: invalid genesis: "
                                          f"{describe(exc)}") from exc
        return FixtureRun(self, fixture, configuration, chain)


def _new_chain(fixture: dict[str, Any], configuration: Any, backend: StateBackend) -> Any:
    """The fixture's genesis chain, as py-evm's ``new_chain_from_fixture`` builds
    it, with every VM's state on ``backend``."""
    chain_class = chain_class_on(backend, MainnetChain.configure(
        "ChainFromFixture", vm_configuration=configuration))
    if fixture.get("sealEngine") == "NoProof":
        chain_class = disable_pow_check(chain_class)
    return chain_class.from_genesis(new_database(backend),
                                    genesis_params=genesis_params_from_fixture(fixture),
                                    genesis_state=fixture["pre"])


class FixtureRun:
    """One pass over a case's blocks on a fresh chain."""

    def __init__(self, case: FixtureCase, fixture: dict[str, Any],
                 configuration: Any, chain: Any) -> None:
        self.case = case
        self.fixture = fixture
        self.configuration = configuration
        self.chain = chain
        self.target = ChainTarget(chain)

    def tasks(self) -> Iterator[BlockTask]:
        for index, block_fixture in enumerate(self.fixture["blocks"]):
            yield self._task(index, block_fixture)

    def _task(self, index: int, block_fixture: dict[str, Any]) -> BlockTask:
        header = block_fixture.get("blockHeader")
        expect = Expectations(rejected=block_fixture.get("expectException"))
        if header is not None:
            number = header["number"]
            expect.gas_used = header.get("gasUsed")
            expect.bloom = header.get("bloom")
            expect.receipts_root = header.get("receiptTrie")
            expect.transactions_root = header.get("transactionsTrie")
            expect.state_root = header.get("stateRoot")
            expect.block_hash = header.get("hash")
        else:
            number = self.chain.get_canonical_head().block_number + 1
        vm_class = vm_class_at(self.configuration, number)
        block, error = None, None
        if "rlp_error" in block_fixture:
            error = f"undecodable block RLP: {block_fixture['rlp_error']}"
        else:
            # The same block class choice as py-evm's apply_fixture_block_to_chain.
            if header is not None:
                block_class = self.chain.get_vm_class_for_block_number(
                    number).get_block_class()
            else:
                block_class = self.chain.get_vm().get_block_class()
            try:
                block = rlp.decode(block_fixture["rlp"], sedes=block_class)
            except (rlp.DecodingError, rlp.DeserializationError, TypeError,
                    ValidationError, ValueError, PyEVMError) as exc:
                error = f"undecodable block: {describe(exc)}"
        return BlockTask(source=self.case.source, case=self.case.name, index=index,
                         network=self.case.network, vm_class=vm_class, block=block,
                         target=self.target, expect=expect, decode_error=error)

    def final_mismatches(self) -> list[Mismatch]:
        """The chain after the last block vs ``postState`` and ``lastblockhash``."""
        out: list[Mismatch] = []
        head = self.chain.get_canonical_head()
        want_head = self.fixture.get("lastblockhash")
        if want_head and head.hash != want_head:
            out.append(Mismatch("lastblockhash", show(want_head), show(head.hash)))
        state = self.chain.get_vm().state
        want_root = self.fixture.get("postStateHash")
        if want_root and state.state_root != want_root:
            out.append(Mismatch("postStateHash", show(want_root), show(state.state_root)))
        for address, account in sorted(self.fixture.get("postState", {}).items()):
            where = f"postState[{hex0x(address)}]"
            for name, actual in (("balance", state.get_balance(address)),
                                 ("nonce", state.get_nonce(address)),
                                 ("code", state.get_code(address))):
                if actual != account[name]:
                    out.append(Mismatch(f"{where}.{name}", show(account[name]),
                                        show(actual)))
            for slot, value in sorted(account["storage"].items()):
                actual = state.get_storage(address, slot)
                if actual != value:
                    out.append(Mismatch(f"{where}.storage[{hex(slot)}]", show(value),
                                        show(actual)))
        return out
