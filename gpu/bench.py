"""Measurements behind ``pevm hashbench``: Keccak throughput and state-root time.

Keccak: for each message size and batch size, the hashes per second and GB/s
of every method side by side in one run, on the same messages:

``eth-hash``      ``eth_hash.auto.keccak`` once per message: the baseline.
``cpu-loop``      :func:`~pevm.gpu.keccak.keccak256_batch`, CPU, per-message C loop.
``cpu-numpy``     the same API with the vectorised NumPy permutation.
``cuda``          the same API on the CUDA backend (host lists in and out).
``cuda-device``   :func:`~pevm.gpu.keccak.keccak256_flat` on arrays already on the
                  device (kernel time plus synchronisation, no host copies).

State root: :func:`~pevm.gpu.trie.state_root` on generated accounts against
py-evm's ``AccountDB`` (set every account, then ``make_state_root()``); the two
roots are compared, and a mismatch is reported.

Every method is warmed up (its first call compiles kernels and loads
libraries), then timed in interleaved rounds of at least ``min_time`` each; the
best round counts (see :func:`bench_keccak`). A measurement whose predicted
duration (from the previous batch size) exceeds ``max_seconds`` is skipped and
marked so, never extrapolated into a number; so is one that would start, or be
predicted to end, after the whole run's ``budget`` (a time limit for the run, such
as a device check's step, that would otherwise kill it with nothing reported).
"""
from __future__ import annotations

import os
import platform
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from pevm.gpu import backend as _backend
from pevm.gpu.keccak import keccak256_batch, keccak256_flat
from pevm.gpu.trie import AccountState, state_root

#: Message sizes measured by default: a hash, two words, exactly one rate block
#: (so two blocks after padding), and a full branch node (four blocks).
DEFAULT_SIZES = (32, 64, 136, 532)
CPU_METHODS = ("eth-hash", "cpu-loop", "cpu-numpy")
CUDA_METHODS = ("cuda", "cuda-device")
#: Methods that take a Python list of bytes are not run above this many messages
#: (10M x 532 bytes of ``bytes`` objects would need gigabytes of host memory).
LIST_LIMIT = 2_000_000


def batch_sizes(min_batch: int, max_batch: int) -> list[int]:
    """Powers of ten from ``min_batch`` up to ``max_batch``, plus ``max_batch``."""
    sizes = []
    n = max(1, min_batch)
    while n < max_batch:
        sizes.append(n)
        n *= 10
    sizes.append(max_batch)
    return sizes


def _timed(fn: Callable[[], Any], min_time: float) -> float:
    """Seconds per call of ``fn``, repeating it for at least ``min_time``."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls


def _methods(backend: str) -> list[str]:
    methods = list(CPU_METHODS)
    if backend == "cuda":
        methods += list(CUDA_METHODS)
    return methods


def _runner(method: str, msgs: list[bytes] | None, data: np.ndarray,
            offsets: np.ndarray) -> Callable[[], Any] | None:
    if method == "eth-hash":
        from eth_hash.auto import keccak
        return None if msgs is None else (lambda: [keccak(m) for m in msgs])
    if method == "cpu-loop":
        return None if msgs is None else (
            lambda: keccak256_batch(msgs, backend="cpu", method="loop"))
    if method == "cpu-numpy":
        return None if msgs is None else (
            lambda: keccak256_batch(msgs, backend="cpu", method="numpy"))
    if method == "cuda":
        return None if msgs is None else (lambda: keccak256_batch(msgs, backend="cuda"))
    if method == "cuda-device":
        import cupy
        d_data, d_offsets = cupy.asarray(data), cupy.asarray(offsets)

        def run() -> None:
            keccak256_flat(d_data, d_offsets, backend="cuda")
            cupy.cuda.get_current_stream().synchronize()
        return run
    raise ValueError(f"unknown method {method!r}")


#: Why a measurement was not run: the run's time budget was spent.
OVER_BUDGET = "over the run's --budget"


def _past(deadline: float | None, seconds: float = 0.0) -> bool:
    """Whether ``seconds`` from now is past ``deadline`` (``time.monotonic``)."""
    return deadline is not None and time.monotonic() + seconds > deadline


def bench_keccak(sizes: Sequence[int], batches: Sequence[int], methods: Sequence[str],
                 min_time: float = 0.2, max_seconds: float = 8.0, rounds: int = 3,
                 seed: int = 1, progress: Callable[[str], None] | None = None,
                 deadline: float | None = None) -> list[dict[str, Any]]:
    """One record per (size, batch, method): ``hashes_per_s``, ``gb_per_s`` and
    ``seconds`` (per batch, best round), or ``skipped`` with the reason.

    The methods of one (size, batch) run interleaved, ``rounds`` times each,
    and the best round counts: on a shared machine other processes slow some
    rounds down, and interleaving keeps that from favouring one method. A
    method runs a single round when ``rounds`` of them are predicted (from its
    rate at the previous batch size) to exceed ``max_seconds``, and is skipped
    when one round is. With a ``deadline`` (``time.monotonic``), a measurement
    that would start after it, or whose one round is predicted to end after it,
    is skipped too.
    """
    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    for size in sizes:
        last_rate: dict[str, float] = {}
        for batch in batches:
            if _past(deadline):
                records.extend({"size": size, "batch": batch, "method": method,
                                "skipped": OVER_BUDGET} for method in methods)
                continue
            data = rng.integers(0, 256, size * batch, dtype=np.uint8)
            offsets = np.arange(batch + 1, dtype=np.int64) * size
            msgs = None
            if batch <= LIST_LIMIT:
                blob = data.tobytes()
                msgs = [blob[i:i + size] for i in range(0, size * batch, size)]
                del blob
            plan: list[tuple[dict[str, Any], Callable[[], Any], int]] = []
            for method in methods:
                record: dict[str, Any] = {"size": size, "batch": batch, "method": method}
                records.append(record)
                predicted = batch / last_rate[method] if method in last_rate else 0.0
                if max_seconds and predicted > max_seconds:
                    record["skipped"] = f"~{predicted:.0f} s per batch predicted"
                    continue
                if _past(deadline, predicted):
                    record["skipped"] = OVER_BUDGET
                    continue
                fn = _runner(method, msgs, data, offsets)
                if fn is None:
                    record["skipped"] = f"list form limited to {LIST_LIMIT:,} messages"
                    continue
                # Warm up on a small slice: first calls load libraries and compile
                # kernels, which is not what a batch costs.
                warm = _runner(method, msgs[:1000] if msgs else None,
                               data[:size * min(batch, 1000)],
                               offsets[:min(batch, 1000) + 1])
                if warm is not None:
                    warm()
                n_rounds = rounds if not max_seconds or predicted * rounds <= max_seconds else 1
                plan.append((record, fn, n_rounds))
            best: dict[int, float] = {}
            for round_ in range(max((p[2] for p in plan), default=0)):
                for record, fn, n_rounds in plan:
                    if round_ < n_rounds:
                        seconds = _timed(fn, min_time)
                        best[id(record)] = min(best.get(id(record), seconds), seconds)
            for record, _, n_rounds in plan:
                seconds = best[id(record)]
                rate = batch / seconds
                last_rate[record["method"]] = rate
                record.update(seconds=seconds, hashes_per_s=rate, gb_per_s=rate * size / 1e9,
                              rounds=n_rounds)
                if progress:
                    progress(f"keccak {size:>4} B x {batch:>10,} {record['method']:<12} "
                             f"{rate:>12,.0f} h/s")
            del msgs, plan
    return records


def make_accounts(count: int, seed: int = 1, contract_every: int = 10,
                  slots_per_contract: int = 10) -> dict[bytes, AccountState]:
    """Deterministic random state: externally owned accounts, and every
    ``contract_every``-th account a contract with 100-1000 bytes of code and
    ``slots_per_contract`` non-zero storage slots."""
    rnd = random.Random(seed)
    accounts: dict[bytes, AccountState] = {}
    while len(accounts) < count:
        address = rnd.getrandbits(160).to_bytes(20, "big")
        if len(accounts) % contract_every == 0:
            storage = {rnd.getrandbits(rnd.choice((8, 64, 256))): rnd.getrandbits(64) + 1
                       for _ in range(slots_per_contract)}
            code = rnd.randbytes(rnd.randint(100, 1000))
            accounts[address] = AccountState(1, rnd.getrandbits(64), storage, code)
        else:
            accounts[address] = AccountState(rnd.randint(0, 1000), rnd.getrandbits(80), {}, b"")
    return accounts


def pyevm_state_root(accounts: dict[bytes, Any]) -> tuple[bytes, float, float]:
    """py-evm's root for ``accounts``: (root, seconds setting accounts, seconds
    in ``make_state_root``)."""
    from eth.db.account import AccountDB
    from eth.db.atomic import AtomicDB

    from pevm.state.backend import write_account
    start = time.perf_counter()
    db = AccountDB(AtomicDB())
    for raw_address, (nonce, balance, storage, code) in accounts.items():
        write_account(db, raw_address, nonce, balance, code, storage)
    mid = time.perf_counter()
    root = db.make_state_root()
    return root, mid - start, time.perf_counter() - mid


def bench_state_root(counts: Iterable[int], backend: str, pyevm: bool = True,
                     max_seconds: float = 8.0, seed: int = 1,
                     progress: Callable[[str], None] | None = None,
                     deadline: float | None = None) -> list[dict[str, Any]]:
    """One record per account count: batched seconds, py-evm seconds (or why
    skipped), speedup and whether the roots match; past ``deadline``, only
    ``skipped``."""
    records: list[dict[str, Any]] = []
    pyevm_rate = None  # accounts per second of the previous py-evm run
    for count in counts:
        if _past(deadline):
            records.append({"accounts": count, "backend": backend, "skipped": OVER_BUDGET})
            continue
        accounts = make_accounts(count, seed)
        record: dict[str, Any] = {
            "accounts": count,
            "contracts": sum(1 for s in accounts.values() if s.code),
            "slots": sum(len(s.storage) for s in accounts.values()),
            "backend": backend,
        }
        state_root(dict(list(accounts.items())[:100]), backend=backend)  # warm-up
        start = time.perf_counter()
        root = state_root(accounts, backend=backend)
        record["batched_s"] = time.perf_counter() - start
        record["root"] = "0x" + root.hex()
        if progress:
            progress(f"state root {count:>9,} accounts: batched {record['batched_s']:.2f} s")
        predicted = count / pyevm_rate if pyevm_rate else 0.0
        if not pyevm:
            record["pyevm_skipped"] = "disabled"
        elif max_seconds and predicted > max_seconds:
            record["pyevm_skipped"] = f"~{predicted:.0f} s predicted"
        elif _past(deadline, predicted):
            record["pyevm_skipped"] = OVER_BUDGET
        else:
            py_root, set_s, root_s = pyevm_state_root(accounts)
            pyevm_rate = count / (set_s + root_s)
            record.update(pyevm_set_s=set_s, pyevm_root_s=root_s,
                          pyevm_s=set_s + root_s, roots_match=py_root == root,
                          speedup=(set_s + root_s) / record["batched_s"])
            if progress:
                progress(f"state root {count:>9,} accounts: py-evm {set_s + root_s:.2f} s")
        records.append(record)
    return records


def machine() -> dict[str, Any]:
    """Where the numbers came from (load average included: shared machines)."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        load = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "load_average": load}


def run(sizes: Sequence[int] = DEFAULT_SIZES, min_batch: int = 1000,
        max_batch: int | None = None, accounts: Sequence[int] = (10_000, 100_000),
        backend: str | None = None, pyevm: bool = True, max_seconds: float = 8.0,
        min_time: float = 0.2, rounds: int = 3, seed: int = 1,
        progress: Callable[[str], None] | None = None,
        budget: float | None = None) -> dict[str, Any]:
    """The whole benchmark; returns the JSON-ready report. ``budget``: seconds for
    the whole run, after which what is left is skipped (None: no limit)."""
    name = _backend.resolve(backend)
    if max_batch is None:
        max_batch = 10_000_000 if name == "cuda" else 1_000_000
    batches = batch_sizes(min_batch, max_batch)
    report: dict[str, Any] = {
        "machine": machine(), "backend": _backend.describe(),
        "settings": {"sizes": list(sizes), "batches": batches, "accounts": list(accounts),
                     "max_seconds": max_seconds, "min_time": min_time, "rounds": rounds,
                     "seed": seed, "budget": budget},
    }
    start = time.perf_counter()
    deadline = None if budget is None else time.monotonic() + budget
    report["keccak"] = bench_keccak(sizes, batches, _methods(name), min_time=min_time,
                                    max_seconds=max_seconds, rounds=rounds, seed=seed,
                                    progress=progress, deadline=deadline)
    report["state_root"] = bench_state_root(accounts, name, pyevm=pyevm,
                                            max_seconds=max_seconds, seed=seed,
                                            progress=progress, deadline=deadline)
    report["machine"]["load_average_end"] = machine()["load_average"]
    report["seconds"] = time.perf_counter() - start
    return report


def _rate(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def format_report(report: dict[str, Any]) -> str:
    """Plain-text tables of a :func:`run` report."""
    lines = []
    m = report["machine"]
    lines.append(f"machine: {m['cpu_count']} CPUs, Python {m['python']}, load average "
                 f"{m['load_average']} -> {m.get('load_average_end')}; "
                 f"backend {report['backend'].get('backend')}"
                 + (f" ({report['backend']['device']})" if report["backend"].get("device") else ""))
    records = report["keccak"]
    methods = list(dict.fromkeys(r["method"] for r in records))
    for size in dict.fromkeys(r["size"] for r in records):
        lines.append("")
        lines.append(f"Keccak-256, {size}-byte messages: hashes/s (GB/s), best of "
                     f"{report['settings'].get('rounds', 1)} interleaved rounds")
        header = f"{'batch':>10}  " + "  ".join(f"{m:>18}" for m in methods)
        if "eth-hash" in methods and "cpu-loop" in methods:
            header += f"  {'loop/eth-hash':>13}"
        lines.append(header)
        for batch in dict.fromkeys(r["batch"] for r in records if r["size"] == size):
            row = {r["method"]: r for r in records if r["size"] == size and r["batch"] == batch}
            cells = []
            for method in methods:
                r = row.get(method, {})
                cells.append(f"{_rate(r['hashes_per_s']):>8} ({r['gb_per_s']:.3f})"
                             if "hashes_per_s" in r else "skipped")
            line = f"{batch:>10,}  " + "  ".join(f"{c:>18}" for c in cells)
            eth, loop = row.get("eth-hash", {}), row.get("cpu-loop", {})
            if "hashes_per_s" in eth and "hashes_per_s" in loop:
                line += f"  {loop['hashes_per_s'] / eth['hashes_per_s']:>12.2f}x"
            lines.append(line)
    skipped = sorted({r["skipped"] for r in records if "skipped" in r})
    if skipped:
        lines.append("skipped: " + "; ".join(skipped)
                     + " (raise --max-seconds or --budget to run them)")
    lines.append("")
    lines.append("State root (batched pevm.gpu.trie vs py-evm AccountDB: set accounts + "
                 "make_state_root)")
    lines.append(f"{'accounts':>10} {'contracts':>9} {'slots':>9} {'batched s':>10} "
                 f"{'py-evm s':>9} {'(set+root)':>14} {'speedup':>8}  roots")
    for r in report["state_root"]:
        if "skipped" in r:
            lines.append(f"{r['accounts']:>10,}  skipped: {r['skipped']}")
            continue
        if "pyevm_s" in r:
            py = (f"{r['pyevm_s']:>9.2f} {r['pyevm_set_s']:>6.2f}+{r['pyevm_root_s']:<7.2f} "
                  f"{r['speedup']:>7.1f}x  {'equal' if r['roots_match'] else 'DIFFERENT'}")
        else:
            py = f"{'-':>9} {'-':>14} {'-':>8}  py-evm skipped: {r['pyevm_skipped']}"
        lines.append(f"{r['accounts']:>10,} {r['contracts']:>9,} {r['slots']:>9,} "
                     f"{r['batched_s']:>10.2f} {py}")
    lines.append("")
    lines.append(f"total {report['seconds']:.1f} s")
    return "\n".join(lines)
