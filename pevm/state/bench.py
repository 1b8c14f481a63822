"""``pevm hashbench --update K``: the incremental state root against py-evm's.

The case a block import meets: a large state exists, a block changes K accounts
(balances, nonces, and storage slots of the contracts among them), and the new
state root is wanted. pevm's path is :meth:`StateCommitment.update`; py-evm's is
its own ``AccountDB`` opened on the same state root doing the same writes, then
``make_state_root()``. Both run in one process, interleaved, on the same state:
py-evm's database is filled with the nodes pevm's trie built (``StateCommitment
.nodes()``), which py-evm reads as its own (the roots are equal), instead of
py-evm inserting N accounts one by one (~15 minutes per million).
"""
from __future__ import annotations

import random
import resource
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pevm.gpu.bench import make_accounts
from pevm.gpu.keccak import EMPTY_KECCAK, keccak256_batch
from pevm.gpu.trie import AccountState
from pevm.state.commitment import AccountUpdate, StateCommitment

#: slots rewritten per updated contract
SLOTS_PER_UPDATE = 2


def _peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def full_state(accounts: Mapping[bytes, AccountState], backend: str | None = None
               ) -> dict[bytes, AccountUpdate]:
    """:class:`AccountUpdate` records of a whole state (codes hashed in one batch)."""
    codes = sorted({s.code for s in accounts.values() if s.code})
    code_hash = dict(zip(codes, keccak256_batch(codes, backend=backend))) if codes else {}
    return {address: AccountUpdate(s.nonce, s.balance,
                                   code_hash[s.code] if s.code else EMPTY_KECCAK,
                                   dict(s.storage))
            for address, s in accounts.items()}


def block_changes(state: Mapping[bytes, AccountUpdate], count: int, seed: int
                  ) -> dict[bytes, AccountUpdate]:
    """``count`` accounts changed as a block changes them: nonce + 1, a new
    balance, and :data:`SLOTS_PER_UPDATE` storage slots of each contract rewritten
    (one of them removed when the contract has more)."""
    rnd = random.Random(seed)
    out: dict[bytes, AccountUpdate] = {}
    for address in rnd.sample(sorted(state), min(count, len(state))):
        old = state[address]
        slots = sorted(old.storage)[:SLOTS_PER_UPDATE]
        storage = {slot: rnd.getrandbits(64) + 1 for slot in slots}
        if len(old.storage) > SLOTS_PER_UPDATE and slots:
            storage[slots[0]] = 0
        out[address] = AccountUpdate(old.nonce + 1, rnd.getrandbits(80), old.code_hash,
                                     storage)
    return out


def _pyevm_update(db: Any, root: bytes, changes: Mapping[bytes, AccountUpdate]) -> bytes:
    """py-evm's ``AccountDB`` on ``root`` doing ``changes``; returns its root."""
    from eth.db.account import AccountDB
    from eth_typing import Address, Hash32

    account_db = AccountDB(db, Hash32(root))
    for raw, change in changes.items():
        address = Address(raw)
        account_db.set_nonce(address, change.nonce)
        account_db.set_balance(address, change.balance)
        for slot, value in change.storage.items():
            account_db.set_storage(address, slot, value)
    account_db.lock_changes()
    return account_db.make_state_root()


def bench_incremental_root(counts: Iterable[int], updates: Iterable[int],
                           backend: str | None = None, pyevm: bool = True,
                           rounds: int = 3, seed: int = 1,
                           progress: Callable[[str], None] | None = None
                           ) -> list[dict[str, Any]]:
    """One record per (account count, update count): the best of ``rounds``
    interleaved rounds of pevm's incremental update and py-evm's, their ratio,
    whether the roots agree, and the state's build time and peak memory."""
    from eth.db.atomic import AtomicDB

    records = []
    updates = list(updates)
    for count in counts:
        accounts = make_accounts(count, seed)
        state = full_state(accounts, backend)
        rss_before = _peak_rss_mb()
        start = time.perf_counter()
        commitment = StateCommitment.build(state, backend)
        build_s = time.perf_counter() - start
        peak_rss = _peak_rss_mb()
        if progress:
            progress(f"incremental root: {count:,}-account state built in {build_s:.1f} s "
                     f"(peak RSS {peak_rss:,.0f} MiB)")
        db = None
        if pyevm:
            db = AtomicDB()
            for node_hash, node in commitment.nodes():
                db[node_hash] = node
            codes = {s.code for s in accounts.values() if s.code}
            for code, digest in zip(codes, keccak256_batch(list(codes), backend=backend)):
                db[digest] = code
        del accounts
        for update in updates:
            changes = block_changes(state, update, seed + update)
            best = best_py = float("inf")
            root = py_root = b""
            for _ in range(rounds):
                start = time.perf_counter()
                root = commitment.update(changes, backend).root
                best = min(best, time.perf_counter() - start)
                if db is not None:
                    start = time.perf_counter()
                    py_root = _pyevm_update(db, commitment.root, changes)
                    best_py = min(best_py, time.perf_counter() - start)
            record: dict[str, Any] = {
                "accounts": count, "updated": len(changes), "seconds": best,
                "build_seconds": build_s, "peak_rss_mb": round(peak_rss, 1),
                "state_rss_mb": round(peak_rss - rss_before, 1),
                "root": "0x" + root.hex(),
            }
            if db is not None:
                record.update(pyevm_seconds=best_py, speedup_vs_pyevm=best_py / best,
                              roots_match=py_root == root)
            else:
                record["pyevm_skipped"] = "disabled"
            if progress:
                progress(f"incremental root: {len(changes):,} of {count:,} accounts: "
                         f"pevm {best * 1e3:.1f} ms"
                         + (f", py-evm {best_py * 1e3:.1f} ms" if db is not None else ""))
            records.append(record)
    return records


def format_records(records: list[dict[str, Any]]) -> str:
    """The incremental-root table of a ``hashbench`` report."""
    lines = ["Incremental state root (StateCommitment.update vs py-evm AccountDB writes + "
             "make_state_root; best of interleaved rounds)",
             f"{'accounts':>10} {'updated':>8} {'pevm ms':>9} {'py-evm ms':>10} "
             f"{'speedup':>8} {'build s':>8} {'state MiB':>10}  roots"]
    for r in records:
        if "pyevm_seconds" in r:
            py = (f"{r['pyevm_seconds'] * 1e3:>10.1f} {r['speedup_vs_pyevm']:>7.1f}x")
            match = "equal" if r["roots_match"] else "DIFFERENT"
        else:
            py, match = f"{'-':>10} {'-':>8}", f"py-evm skipped: {r['pyevm_skipped']}"
        lines.append(f"{r['accounts']:>10,} {r['updated']:>8,} {r['seconds'] * 1e3:>9.1f} "
                     f"{py} {r['build_seconds']:>8.1f} {r['state_rss_mb']:>10,.0f}  {match}")
    return "\n".join(lines)
