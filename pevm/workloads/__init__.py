"""Workloads: the project's own contracts and a block generator with a contention knob.

    from pevm.workloads import generate, write_fixture
    fixture = generate("erc20", txs=200, conflict=0.5, seed=1)   # {case: BlockchainTests case}
    write_fixture(fixture, "erc20_c50.json")

``pevm gen`` is the command-line face of :func:`generate`. The contracts live in
:mod:`pevm.workloads.contracts` (sources assembled by :mod:`pevm.workloads.asm`),
transactions and genesis state in :mod:`pevm.workloads.scenario`, the block built
from them in :mod:`pevm.workloads.builder`, the fixture layout in
:mod:`pevm.workloads.fixture`, the workloads in :mod:`pevm.workloads.generate`
and what each one's block holds in :mod:`pevm.workloads.plans`.
"""
from pevm.workloads.fixture import dumps, fixture_case, write_fixture
from pevm.workloads.generate import (
    WORKLOADS, Generated, command_line, generate, generate_block,
)
from pevm.workloads.scenario import (
    SUPPORTED_NETWORKS, Account, Built, GenerationFailed, Intent, Scenario, WorkloadError,
)

DEFAULT_FORK = "Prague"

__all__ = [
    "Account", "Built", "DEFAULT_FORK", "GenerationFailed", "Generated", "Intent",
    "SUPPORTED_NETWORKS", "Scenario", "WORKLOADS", "WorkloadError", "command_line",
    "dumps", "fixture_case", "generate", "generate_block", "write_fixture",
]
