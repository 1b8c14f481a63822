"""Paired in-process A/B of session 44's two changes to pevm's VMs, by monkeypatch.

FEATURE ``jumpdests``: off runs every message on py-evm's own ``CodeStream``
(``pevm.jumpdests.SharedCodeStream`` swapped back); ``txroot``: off drops the flat
VM's ``validate_block`` (``pevm.state.blocks.BatchedBlockTriesVM``), so py-evm's
rebuilds the transaction trie in ``HexaryTrie``. Run it at commit fd44733 or later.

Each round imports each block once with the feature on and once off, in an order
reversed every other round, after one untimed round; every import starts from
``pevm.bench.fresh_round`` (as ``pevm bench`` times them). Prints per block the
median of the per-round ratios off/on (above 1: the feature is faster) for the
transaction phase and the whole import, and the geometric mean over the blocks.

Usage: session44_vm_ab.py FEATURE ROUNDS WORKERS BLOCK..."""
import statistics
import sys

from eth.vm.code_stream import CodeStream

import pevm.jumpdests as jumpdests
from pevm.bench import _run_once
from pevm.engines.parallel import ParallelEngine
from pevm.inputs.discover import list_cases
from pevm.state.blocks import BatchedBlockTriesVM


def switch(feature: str, on: bool) -> None:
    if feature == "jumpdests":
        jumpdests.SharedCodeStream = SHARED if on else CodeStream
    elif on:
        BatchedBlockTriesVM.validate_block = VALIDATE
    elif "validate_block" in vars(BatchedBlockTriesVM):
        del BatchedBlockTriesVM.validate_block


SHARED = jumpdests.SharedCodeStream
VALIDATE = vars(BatchedBlockTriesVM)["validate_block"]

feature, rounds, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
assert feature in ("jumpdests", "txroot"), feature
phases, imports = [], []
for path in sys.argv[4:]:
    ref = list_cases([path]).cases[0]
    engine = ParallelEngine(workers=workers)
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for round_index in range(rounds + 1):
        for on in ((True, False) if round_index % 2 == 0 else (False, True)):
            switch(feature, on)
            seconds, phase, *_ = _run_once(ref, engine)
            if round_index:
                runs[on].append((seconds, phase))
    switch(feature, True)
    phase = statistics.median(off[1] / on[1] for on, off in zip(runs[True], runs[False]))
    whole = statistics.median(off[0] / on[0] for on, off in zip(runs[True], runs[False]))
    phases.append(phase)
    imports.append(whole)
    print(f"{path.rstrip('/').split('/')[-1][:24]:24} off/on phase {phase:.3f} "
          f"import {whole:.3f}  on: phase "
          f"{statistics.median(r[1] for r in runs[True]) * 1e3:.0f} ms, import "
          f"{statistics.median(r[0] for r in runs[True]) * 1e3:.0f} ms", flush=True)
print(f"geomean over {len(phases)} blocks: phase {statistics.geometric_mean(phases):.3f} "
      f"import {statistics.geometric_mean(imports):.3f}")
