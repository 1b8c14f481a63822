"""Fork rules: from a network name or a mainnet block number to py-evm VM classes.

py-evm keeps every fork's rules in its VM class; pevm never re-implements them, it
only chooses the class. BlockchainTests ``network`` names (single forks and
transition networks such as ``CancunToPragueAtTime15k``) map through py-evm's own
fixture helper; mainnet blocks use py-evm's mainnet chain configuration.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth.abc import VirtualMachineAPI
from eth.chains.mainnet import MAINNET_VM_CONFIGURATION
from eth.tools.fixtures.helpers import chain_vm_configuration

VMConfiguration = tuple[tuple[int, type[VirtualMachineAPI]], ...]

#: Every network name a BlockchainTests fixture may carry that pevm runs.
NETWORKS: tuple[str, ...] = (
    "Frontier", "Homestead", "EIP150", "EIP158", "Byzantium", "Constantinople",
    "ConstantinopleFix", "Istanbul", "Berlin", "London", "Paris", "Shanghai",
    "Cancun", "Prague",
    "FrontierToHomesteadAt5", "HomesteadToEIP150At5", "HomesteadToDaoAt5",
    "EIP158ToByzantiumAt5", "ByzantiumToConstantinopleFixAt5", "BerlinToLondonAt5",
    "ArrowGlacierToParisAtDiffC0000", "ParisToShanghaiAtTime15k",
    "ShanghaiToCancunAtTime15k", "CancunToPragueAtTime15k",
)

#: Friendly fork names (``--fork`` of the generator) to the network of that fork.
FORK_ALIASES: dict[str, str] = {
    "tangerinewhistle": "EIP150", "spuriousdragon": "EIP158",
    "petersburg": "ConstantinopleFix",
}


class UnknownNetwork(ValueError):
    """The network name is not one pevm (py-evm) knows."""


def canonical_network(name: str) -> str:
    """Return the fixture network name for ``name`` (case-insensitive, aliases ok)."""
    lowered = name.lower()
    if lowered in FORK_ALIASES:
        return FORK_ALIASES[lowered]
    for network in NETWORKS:
        if network.lower() == lowered:
            return network
    raise UnknownNetwork(
        f"unknown network or fork {name!r} (known: {', '.join(NETWORKS)})"
    )


def vm_configuration_for_fixture(fixture: dict[str, Any]) -> VMConfiguration:
    """The (first block number, VM class) pairs of a BlockchainTests fixture."""
    network = fixture.get("network")
    if not isinstance(network, str) or network not in NETWORKS:
        raise UnknownNetwork(f"unknown network {network!r}")
    return tuple(chain_vm_configuration(fixture))


def mainnet_vm_class(block_number: int) -> type[VirtualMachineAPI]:
    """The py-evm VM class that Ethereum mainnet uses at ``block_number``."""
    return vm_class_at(MAINNET_VM_CONFIGURATION, block_number)


def vm_class_at(configuration: Sequence[tuple[int, type[VirtualMachineAPI]]],
                block_number: int) -> type[VirtualMachineAPI]:
    """The VM class a configuration uses at ``block_number``."""
    chosen = configuration[0][1]
    for start, vm_class in configuration:
        if block_number >= start:
            chosen = vm_class
    return chosen
