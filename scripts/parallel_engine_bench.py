"""Speed of the parallel engine: one process vs py-evm, N workers vs one.

    python scripts/parallel_engine_bench.py [--workloads transfers,erc20,compute,hotspot]
        [--txs 1000] [--workers 1,2] [--rounds 3] [--mainnet DIR ...] [--json OUT]

Each workload is one Cancun block mined by py-evm from a generated genesis:

``transfers``  plain value transfers, every transaction from its own sender, to
               one of 200 recipients
``transfers-few``  the same among few accounts: 20 senders (chains of nonces) to
               20 recipients
``erc20``      ``transfer(to, amount)`` on an ERC-20 token (the project's own
               contract, :mod:`pevm.workloads.contracts`), distinct holders
``compute``    independent compute-heavy calls (a ``--loop``-iteration loop, then a
               store to a slot of the caller's own), distinct senders
``hotspot``    fully conflicting: every transaction increments the same slot

``--mainnet`` adds mainnet snapshot directories (``pevm.inputs.mainnet``).

Every configuration imports the same block on its own fresh chain, round after
round, interleaved (reference, parallel with 1 worker, parallel with N workers...)
so machine noise hits all alike, after one warm-up round. Two times are kept per
run: the whole py-evm block import (wall clock) and the transaction phase alone
(``EngineStats.seconds``: the reference's ``execute``, the parallel engine's
``total``: sender recovery, execution, merge). Ratios come from medians. This is a
measurement, never a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from eth import constants
from eth.chains.base import MiningChain
from eth.consensus.noproof import NoProofConsensus
from eth.db.atomic import AtomicDB
from eth.vm.forks import CancunVM
from eth_keys import keys

from pevm.compare import compare_results
from pevm.engines.parallel import ParallelEngine
from pevm.engines.reference import ReferenceEngine
from pevm.inputs.chain import ChainTarget

COINBASE = b"\xc0" * 20
TOKEN = b"\x20" * 20
LOOP = b"\x21" * 20
COUNTER = b"\x22" * 20
RECIPIENTS = [bytes([0x30, i // 256, i % 256]) + b"\x30" * 17 for i in range(200)]


def _loop_code() -> bytes:
    """``for i in range(calldata[0]): pass`` then ``slot[CALLER] = 1``."""
    return bytes([
        0x60, 0x00, 0x35,          # PUSH1 0 CALLDATALOAD          [n]
        0x5B,                      # 3: JUMPDEST
        0x60, 0x01, 0x90, 0x03,    # PUSH1 1 SWAP1 SUB             [n-1]
        0x80, 0x60, 0x03, 0x57,    # DUP1 PUSH1 3 JUMPI
        0x50,                      # POP
        0x60, 0x01, 0x33, 0x55,    # PUSH1 1 CALLER SSTORE
        0x00,                      # STOP
    ])


COUNTER_CODE = bytes([0x60, 0x00, 0x54, 0x60, 0x01, 0x01, 0x60, 0x00, 0x55, 0x00])


@dataclass
class Workload:
    name: str
    chain: Callable[[], MiningChain]
    block: Any


def _keys(n: int) -> list[Any]:
    return [keys.PrivateKey((1000 + i).to_bytes(32, "big")) for i in range(n)]


def _chain_factory(state: dict[bytes, dict[str, Any]]) -> Callable[[], MiningChain]:
    vm = CancunVM.configure(consensus_class=NoProofConsensus)
    chain_class = MiningChain.configure("BenchChain", vm_configuration=((0, vm),),
                                        chain_id=1)
    params = {"coinbase": COINBASE, "difficulty": 0, "gas_limit": 1_000_000_000,
              "timestamp": 1_700_000_000, "extra_data": b"", "nonce": b"\0" * 8,
              "mix_hash": constants.ZERO_HASH32, "base_fee_per_gas": 7,
              "parent_beacon_block_root": constants.ZERO_HASH32}

    def make() -> MiningChain:
        return chain_class.from_genesis(AtomicDB(), params, state)
    return make


def _sign(chain: MiningChain, key: Any, nonce: int, to: bytes, data: bytes = b"",
          value: int = 0, gas: int = 21_000) -> Any:
    builder = chain.get_vm().get_transaction_builder()
    unsigned = builder.new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=nonce, max_priority_fee_per_gas=2, max_fee_per_gas=10**4,
        gas=gas, to=to, value=value, data=data, access_list=())
    return unsigned.as_signed_transaction(key)


def build(name: str, txs: int, loop: int) -> Workload:
    senders = _keys(20 if name == "transfers-few" else txs)
    addresses = [k.public_key.to_canonical_address() for k in senders]
    state: dict[bytes, dict[str, Any]] = {
        a: {"balance": 10**20, "nonce": 0, "code": b"", "storage": {}}
        for a in addresses}
    data: list[tuple[bytes, bytes, int, int]] = []   # (to, data, value, gas)
    if name == "transfers":
        data = [(RECIPIENTS[(i * 7) % len(RECIPIENTS)], b"", 1, 21_000)
                for i in range(txs)]
    elif name == "transfers-few":
        data = [(RECIPIENTS[i % 20], b"", 1, 21_000) for i in range(txs)]
    elif name == "erc20":
        from pevm.workloads.contracts import bytecode, erc20_balance_slot, \
            erc20_transfer
        state[TOKEN] = {"balance": 0, "nonce": 1, "code": bytecode("erc20"),
                        "storage": {erc20_balance_slot(a): 10**9 for a in addresses}}
        data = [(TOKEN, erc20_transfer(RECIPIENTS[(i * 7) % len(RECIPIENTS)], 5), 0,
                 100_000) for i in range(txs)]
    elif name == "compute":
        state[LOOP] = {"balance": 0, "nonce": 1, "code": _loop_code(), "storage": {}}
        data = [(LOOP, loop.to_bytes(32, "big"), 0, 40 * loop + 100_000)
                for _ in range(txs)]
    elif name == "hotspot":
        state[COUNTER] = {"balance": 0, "nonce": 1, "code": COUNTER_CODE,
                          "storage": {0: 1}}
        data = [(COUNTER, b"", 0, 60_000) for _ in range(txs)]
    else:
        raise SystemExit(f"unknown workload {name!r}")
    make = _chain_factory(state)
    chain = make()
    signed = [_sign(chain, senders[i % len(senders)], i // len(senders), to, payload,
                    value, gas)
              for i, (to, payload, value, gas) in enumerate(data)]
    result, _, _ = chain.mine_all(signed, coinbase=COINBASE)
    return Workload(name, make, result.imported_block)


def _fresh(block: Any) -> Any:
    builder = type(block).get_transaction_builder()
    return block.copy(transactions=[builder.decode(t.encode())
                                    for t in block.transactions])


@dataclass
class Series:
    label: str
    imports: list[float] = field(default_factory=list)
    phases: list[float] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def median(self, which: str) -> float:
        return statistics.median(getattr(self, which))


def _engine(label: str) -> Any:
    if label == "reference":
        return ReferenceEngine()
    return ParallelEngine(workers=int(label.split("=")[1]))


def run_block(run: Callable[[Any], Any], labels: list[str], rounds: int,
              ) -> dict[str, Series]:
    series = {label: Series(label) for label in labels}
    reference = None
    for round_ in range(rounds + 1):
        for label in labels:
            engine = _engine(label)
            start = time.perf_counter()
            outcome = run(engine)
            took = time.perf_counter() - start
            if outcome.rejection is not None or outcome.result is None:
                raise SystemExit(f"{label}: block rejected: {outcome.rejection}")
            if label == "reference":
                reference = outcome.result
            elif reference is not None:
                problems = compare_results(reference, outcome.result)
                if problems:
                    raise SystemExit(f"{label} differs from py-evm: {problems[0]}")
            if round_ == 0:
                continue  # warm-up
            seconds = outcome.result.stats.seconds
            series[label].imports.append(took)
            series[label].phases.append(seconds.get("total", seconds.get("execute")))
            if isinstance(engine, ParallelEngine):
                series[label].detail = dict(engine.last_detail,
                                            aborts=outcome.result.stats.aborts,
                                            used_workers=outcome.result.stats.workers)
    return series


def report(name: str, txs: int, series: dict[str, Series]) -> dict[str, Any]:
    ref = series.get("reference")
    one = series.get("parallel=1")
    rows = {}
    print(f"\n== {name}: {txs} transactions")
    print(f"{'engine':14s} {'import s':>9s} {'tx phase s':>11s} {'vs py-evm':>10s} "
          f"{'vs 1 worker':>12s}  detail")
    for label, s in series.items():
        imp, phase = s.median("imports"), s.median("phases")
        vs_ref = ref.median("phases") / phase if ref else float("nan")
        vs_one = one.median("phases") / phase if one and label != "reference" \
            else float("nan")
        detail = {k: s.detail[k] for k in ("used_workers", "aborts", "inline",
                                           "chunks", "pauses", "blocked")
                  if k in s.detail}
        print(f"{label:14s} {imp:9.3f} {phase:11.3f} {vs_ref:9.2f}x {vs_one:11.2f}x"
              f"  {detail}")
        rows[label] = {"import_median_s": imp, "phase_median_s": phase,
                       "phase_vs_reference": vs_ref, "phase_vs_one_worker": vs_one,
                       "imports": s.imports, "phases": s.phases, "detail": s.detail}
    return {"workload": name, "txs": txs, "engines": rows}


def compare_validation(workload: Workload, workers: str) -> dict[str, Any]:
    """Value- vs version-based validation on the same speculative results."""
    counts = {}
    for count in (int(w) for w in workers.split(",") if int(w) > 1):
        engine = ParallelEngine(workers=count, fork_after=0, measure_versions=True)
        outcome = ChainTarget(workload.chain()).execute(_fresh(workload.block), engine)
        assert outcome.result is not None
        d = engine.last_detail
        counts[count] = {"validations": outcome.result.stats.validations,
                         "value_failures": d["validation_failures"],
                         "version_failures": d["version_failures"]}
        print(f"   validation, {count} workers: {counts[count]}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="transfers,erc20,compute,hotspot")
    parser.add_argument("--txs", type=int, default=1000)
    parser.add_argument("--loop", type=int, default=300,
                        help="loop iterations per compute transaction")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--mainnet", nargs="*", default=[])
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--versions", action="store_true",
                        help="also count, per workload, the results version-based "
                             "validation would reject against value-based")
    args = parser.parse_args(argv)
    labels = ([] if args.no_reference else ["reference"]) + \
        [f"parallel={w}" for w in args.workers.split(",")]
    print(f"cpus={os.cpu_count()} load={os.getloadavg()} rounds={args.rounds} "
          f"(+1 warm-up)")
    out = []
    for name in filter(None, args.workloads.split(",")):
        started = time.perf_counter()
        workload = build(name, args.txs, args.loop)
        print(f"[{name}: block built in {time.perf_counter() - started:.1f}s]")
        series = run_block(
            lambda engine, w=workload: ChainTarget(w.chain()).execute(
                _fresh(w.block), engine), labels, args.rounds)
        out.append(report(name, len(workload.block.transactions), series))
        if args.versions:
            out[-1]["validation"] = compare_validation(workload, args.workers)
    for path in args.mainnet:
        from pevm.inputs.mainnet import load_snapshot
        task = load_snapshot(path)
        series = run_block(lambda engine, p=path: load_snapshot(p).execute(engine),
                           labels, args.rounds)
        out.append(report(f"mainnet {os.path.basename(path.rstrip('/'))}",
                          len(task.transactions), series))
    print(f"\nload after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
