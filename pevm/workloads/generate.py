"""Workloads: blocks of generated transactions with a contention knob.

``conflict`` (0..1) is the share of the block's transactions that touch the
workload's shared location; the hot transactions are spread over the block at
seeded random positions. With 0 every transaction is independent of every other
(distinct senders, recipients, storage slots, pools; only the block's fee
recipient is shared, as on any chain); with 1 every transaction hits the shared
location, one serial chain.

What each workload's cold and hot transactions are is in
:mod:`pevm.workloads.plans`; this module names the workloads (:data:`WORKLOADS`),
checks the arguments, runs the planner and builds the block
(:func:`generate_block`, :func:`generate`).

Unless ``accounts`` limits the pool, every role gets a fresh account; with
``accounts=M`` accounts are reused round-robin, which adds same-sender and
same-holder dependencies beyond ``conflict``. ``mixed`` defaults to conflict 0.2;
its hot transactions spread over several hot spots, so even at 1 it is several
chains, not one.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pevm.workloads.fixture import fixture_case
from pevm.workloads.plans import (
    Options, Plan, plan_amm, plan_compute, plan_erc20, plan_factory, plan_hotspot,
    plan_mixed, plan_storage, plan_transfers, plan_withdrawals,
)
from pevm.workloads.scenario import Built, Scenario, WorkloadError, resolve_fork

MAX_TXS = 1_000_000
MAX_SLOTS = 1_000
DEFAULT_SLOTS = 8


@dataclass(frozen=True)
class Workload:
    name: str
    plan: Callable[[Plan], None]
    default_conflict: float
    summary: str


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("transfers", plan_transfers, 0.0, "plain ether transfers"),
    Workload("withdrawals", plan_withdrawals, 1.0,
             "an exchange hot wallet paying out (one sender)"),
    Workload("erc20", plan_erc20, 0.0, "ERC-20 transfer / approve / transferFrom"),
    Workload("amm", plan_amm, 0.0, "constant-product AMM swaps and liquidity"),
    Workload("hotspot", plan_hotspot, 1.0, "a global counter every call increments"),
    Workload("storage", plan_storage, 0.0, "many storage writes per call"),
    Workload("compute", plan_compute, 0.0, "compute-heavy calls (a hash chain each)"),
    Workload("factory", plan_factory, 0.0, "CREATE / CREATE2 / SELFDESTRUCT"),
    Workload("mixed", plan_mixed, 0.2, "a mainnet-like blend of all of them"),
)}


# -- the API -----------------------------------------------------------------------
@dataclass
class Generated:
    """A generated block: the fixture and what py-evm built."""

    name: str
    fixture: dict[str, Any]
    built: Built
    command: str

    @property
    def hot_count(self) -> int:
        return sum(1 for intent in self.built.intents if intent.hot)


def _validate(workload: str, txs: Any, accounts: Any, conflict: Any, seed: Any,
              pools: Any, slots: Any) -> tuple[Workload, float]:
    if workload not in WORKLOADS:
        raise WorkloadError(f"unknown workload {workload!r} (choose from: "
                            f"{', '.join(WORKLOADS)})")
    spec = WORKLOADS[workload]
    if isinstance(txs, bool) or not isinstance(txs, int) or txs < 1:
        raise WorkloadError(f"--txs must be a positive integer, got {txs!r}")
    if txs > MAX_TXS:
        raise WorkloadError(f"--txs must be at most {MAX_TXS}, got {txs}")
    if accounts is not None and (isinstance(accounts, bool) or not isinstance(accounts, int)
                                 or accounts < 1):
        raise WorkloadError(f"--accounts must be a positive integer, got {accounts!r}")
    if conflict is None:
        conflict = spec.default_conflict
    if isinstance(conflict, bool) or not isinstance(conflict, (int, float)) \
            or not 0.0 <= float(conflict) <= 1.0:
        raise WorkloadError(f"--conflict must be a number from 0 to 1, got {conflict!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not -2**63 <= seed < 2**63:
        raise WorkloadError(f"--seed must be a 64-bit integer, got {seed!r}")
    if pools is not None:
        if workload not in ("amm", "mixed"):
            raise WorkloadError("--pools applies only to the amm and mixed workloads")
        if isinstance(pools, bool) or not isinstance(pools, int) or pools < 1:
            raise WorkloadError(f"--pools must be a positive integer, got {pools!r}")
    if slots is not None:
        if workload != "storage":
            raise WorkloadError("--slots applies only to the storage workload")
        if isinstance(slots, bool) or not isinstance(slots, int) \
                or not 1 <= slots <= MAX_SLOTS:
            raise WorkloadError(f"--slots must be an integer from 1 to {MAX_SLOTS}, "
                                f"got {slots!r}")
    return spec, float(conflict)


def command_line(workload: str, txs: int, conflict: float, seed: int, network: str,
                 accounts: int | None, pools: int | None, slots: int | None) -> str:
    """The ``pevm gen`` command that reproduces a generated block (without -o)."""
    parts = [f"pevm gen {workload} --txs {txs} --conflict {conflict:g} --seed {seed} "
             f"--fork {network}"]
    if accounts is not None:
        parts.append(f"--accounts {accounts}")
    if pools is not None:
        parts.append(f"--pools {pools}")
    if slots is not None:
        parts.append(f"--slots {slots}")
    return " ".join(parts)


def generate_block(workload: str, txs: int, accounts: int | None = None,
                   conflict: float | None = None, seed: int = 0, fork: str = "Prague",
                   pools: int | None = None, slots: int | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> Generated:
    """Plan, sign and execute a workload block; see :func:`generate`."""
    spec, conflict = _validate(workload, txs, accounts, conflict, seed, pools, slots)
    network, _ = resolve_fork(fork)
    scenario = Scenario(fork=network, seed=seed, accounts=accounts)
    options = Options(txs=txs, conflict=conflict, pools=pools,
                      slots=slots if slots is not None else DEFAULT_SLOTS)
    spec.plan(Plan(scenario, options))
    built = scenario.build(progress=progress)
    command = command_line(workload, txs, conflict, seed, network, accounts, pools, slots)
    case = fixture_case(built)
    hot = sum(1 for intent in built.intents if intent.hot)
    case["_info"] = {
        "comment": f"pevm workload '{workload}': {spec.summary}; generated and "
                   f"executed with py-evm",
        "command": command,
        "generator": "pevm gen",
        "workload": workload,
        "txs": txs,
        "conflict": conflict,
        "hot-txs": hot,
        "seed": seed,
        "accounts": accounts,
        "pools": pools,
        "slots": options.slots if workload == "storage" else None,
        "gas-used": built.block.header.gas_used,
    }
    name = f"{workload}_{txs}tx_c{int(math.floor(conflict * 100 + 0.5))}_seed{seed}_{network}"
    return Generated(name=name, fixture={name: case}, built=built, command=command)


def generate(workload: str, txs: int, accounts: int | None = None,
             conflict: float | None = None, seed: int = 0, fork: str = "Prague",
             pools: int | None = None, slots: int | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """A BlockchainTests fixture ``{case name: case}`` with one generated block.

    ``workload``: one of :data:`WORKLOADS`; ``txs``: transactions in the block;
    ``accounts``: size of the account pool (default: a fresh account per role);
    ``conflict``: share of transactions on the shared location (default per
    workload); ``seed``: everything random derives from it (same arguments, same
    fixture); ``fork``: a fork from Constantinople to Prague; ``pools``: AMM pool
    count (amm, mixed); ``slots``: slots written per call (storage).
    Raises :class:`~pevm.workloads.scenario.WorkloadError` on bad arguments.
    """
    return generate_block(workload, txs, accounts=accounts, conflict=conflict, seed=seed,
                          fork=fork, pools=pools, slots=slots, progress=progress).fixture
