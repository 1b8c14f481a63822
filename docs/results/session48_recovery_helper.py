"""Experiment: the sender pipeline's worker as a process that outlives the block.

A sender pipeline (``pevm.engines.cost_model.pipeline_pays``) forks one worker per
block only to recover senders. The fork costs the coordinator its start (~4 ms on
1,000 transfers) and, while the worker lives, a copy of every page it writes that
the two share (~3,800 minor faults a block at ~2.5 us). Recovering senders needs
no state: only the block's transactions. So a helper forked once, and sent with
each batch of senders to recover the batch's encoded transactions (cached by
py-evm's decoding: ~0.6 us a transaction to get), could serve every block after
the first without a fork. (Sent all at once, the 118 KB of 1,000 transfers'
transactions cost the coordinator ~8 ms in a write that waits for the helper to
drain the pipe.)

The engine has been built that way since ca01308 (pevm/engines/recovery_helper.py,
``ParallelEngine(persistent_helper=True)``, the default); this script, written
before it, measures the idea by monkeypatch on engines with
``persistent_helper=False``: where the
scheduler runs the block as a pipeline, ``WorkerFeed``'s pool is swapped for a
``HelperPool`` with the same interface, backed by one persistent process (forked
in the untimed first round). The helper decodes each transaction with the fork's
transaction builder and recovers it with ``pevm.engines.senders.recover_sender``,
the worker's own function, so the senders are the same. Each round imports each
block at 1 worker, at 2 workers as shipped and at 2 workers with the helper, in
an order reversed every other round, each from ``pevm.bench.fresh_round`` (as
``pevm bench`` times them); it prints the transaction phase's medians, the ratios
over 1 worker and the paired ratio shipped/helper (above 1: the helper is faster).

``encoded`` (the default) sends each transaction's encoding; ``whole`` sends
the transaction object, pickled (2.9 us a transaction on 1,000 generated
transfers, where getting their encodings took 8 us; 1.6 against 0.3 us on
mainnet 11814555), and the helper recovers it without decoding.

Usage: session48_recovery_helper.py [encoded|whole] ROUNDS BLOCK...
"""
import multiprocessing
import select
import statistics
import sys
import time

import pevm.engines.feed as feed_module
from pevm.bench import _run_once
from pevm.compare import compare_results
from pevm.engines.parallel import ParallelEngine
from pevm.engines.senders import recover_sender
from pevm.engines.timeline import minor_page_faults
from pevm.engines.workers import Recover, Senders
from pevm.inputs.discover import list_cases


def _helper_main(conn):
    builder, generation = None, 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "block":
            _, generation, builder = message
            continue
        _, asked, items = message
        cpu = time.process_time()
        out = []
        for txn, encoded in items:
            try:
                tx = builder.decode(encoded) if isinstance(encoded, bytes) else encoded
                sender = recover_sender(tx)
            except Exception:  # noqa: BLE001 - the coordinator recovers it itself
                sender = None
            out.append((txn, sender))
        conn.send((asked, Senders(0, out, time.process_time() - cpu, ({}, []),
                                  minor_page_faults())))


class Helper:
    """One persistent recovery process, forked at first use."""

    def __init__(self):
        self.conn = None
        self.process = None
        self.generation = 0

    def ensure(self):
        if self.process is None or not self.process.is_alive():
            mp = multiprocessing.get_context("fork")
            parent, child = mp.Pipe(duplex=True)
            self.process = mp.Process(target=_helper_main, args=(child,), daemon=True)
            self.process.start()
            child.close()
            self.conn = parent
        return self


HELPER = Helper()


class HelperPool:
    """``WorkerPool``'s interface for the pipeline's one worker, on ``HELPER``."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.timeline = ctx.timeline
        self.alive = set()
        self.processes = {}
        self.nursery = None

    def start(self, workers):
        assert workers == 1
        helper = HELPER.ensure()
        helper.generation += 1
        self.generation = helper.generation
        helper.conn.send(("block", self.generation,
                          self.ctx.vm.get_transaction_builder()))
        self.alive = {0}
        yield [0]

    def send(self, worker, message):
        assert isinstance(message, Recover)
        if worker not in self.alive:
            return False
        transactions = self.ctx.transactions
        HELPER.conn.send(("recover", self.generation,
                          [(txn, SHIP(transactions[txn])) for txn in message.txns]))
        return True

    def receive(self, timeout):
        if not self.alive:
            return []
        conn = HELPER.conn
        out = []
        wait = -1 if timeout is None else timeout
        ready = select.select([conn], [], [], None if wait < 0 else wait)[0]
        while ready:
            generation, senders = conn.recv()
            if generation == self.generation:  # not a late answer to an earlier block
                out.append(senders)
            ready = select.select([conn], [], [], 0)[0]
        return out

    def stop(self):
        self.alive.clear()

    def close(self):
        self.alive.clear()


def encoded(tx):
    """The transaction's encoding (cached by py-evm where it hashed it)."""
    return tx.encode()


def whole(tx):
    """The transaction object itself, pickled with the message."""
    return tx


SHIP = encoded
SHIPPED_INIT = feed_module.WorkerFeed.__init__
USE_HELPER = False


def patched_init(self, ctx, scheduler, mv, committed, hooks, nice, *rest):
    SHIPPED_INIT(self, ctx, scheduler, mv, committed, hooks, nice, *rest)
    if USE_HELPER and scheduler.pipelined:
        self.pool = HelperPool(ctx)


feed_module.WorkerFeed.__init__ = patched_init


def main():
    global USE_HELPER, SHIP
    args = sys.argv[1:]
    if args[0] in ("encoded", "whole"):
        SHIP = {"encoded": encoded, "whole": whole}[args.pop(0)]
    rounds = int(args[0])
    for path in args[1:]:
        ref = list_cases([path]).cases[0]
        # the per-block worker both ways: since ca01308 the engine's own
        # default is a helper like this script's (persistent_helper=True)
        one, two = ParallelEngine(workers=1), ParallelEngine(workers=2,
                                                             persistent_helper=False)
        configs = [("1 worker", one, False), ("2, shipped", two, False),
                   ("2, helper", two, True)]
        phases = {name: [] for name, _, _ in configs}
        modes = {name: set() for name, _, _ in configs}
        for round_index in range(rounds + 1):
            order = configs if round_index % 2 == 0 else configs[::-1]
            results = {}
            for name, engine, helper in order:
                USE_HELPER = helper
                results[name] = []
                _, phase, *_ = _run_once(ref, engine, results[name])
                if round_index:
                    phases[name].append(phase)
                    modes[name].add("pipeline" if engine.last_detail.sender_pipeline
                                    else "other")
            for name in ("2, shipped", "2, helper"):  # every round: the same results
                for want, got in zip(results["1 worker"], results[name], strict=True):
                    mismatches = compare_results(want, got)
                    if mismatches:
                        raise SystemExit(f"{path}: {name} differs: {mismatches[0]}")
        USE_HELPER = False
        med = {name: statistics.median(values) for name, values in phases.items()}
        paired = statistics.median(a / b for a, b in zip(phases["2, shipped"],
                                                          phases["2, helper"]))
        print(f"{path.rstrip('/').split('/')[-1][:24]:24} "
              + " ".join(f"{name} {value * 1e3:.1f} ms" for name, value in med.items())
              + f" | over 1 worker: shipped {med['1 worker'] / med['2, shipped']:.3f},"
              f" helper {med['1 worker'] / med['2, helper']:.3f}"
              f" | shipped/helper paired {paired:.3f}"
              f" | modes {sorted(modes['2, shipped'])} {sorted(modes['2, helper'])}",
              flush=True)


if __name__ == "__main__":
    main()
