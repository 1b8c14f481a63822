"""Mutated real blocks: pevm must judge every one, and both engines alike.

A robustness harness shared by ``tests/test_mutations.py`` (a seeded hypothesis
test) and ``scripts/mutate.py`` (the same check at scale). It takes real blocks --
BlockchainTests cases (pevm's ``fixtures/``, ethereum/tests) and mainnet snapshot
directories -- and breaks them in one way each: bytes of the block's or a
transaction's RLP flipped or cut, header fields changed, transactions reordered,
dropped, duplicated or re-signed with odd fields, signatures altered, pre-state
accounts given odd values (negative or huge numbers, odd-length or non-hex
strings, missing fields, invalid opcodes). Each mutated input then runs through
pevm's runner with py-evm's reference engine and with the parallel engine at
several worker counts, and :func:`check_mutant` lists the problems: an exception
escaping pevm or ending a case as anything but an input error, a block without a
verdict, an unclear error report, or a parallel verdict, rejection or result that
differs from the reference's.

- :mod:`pevm.mutations.sources`: the blocks to mutate (loading, trimming to a few
  transactions, writing a mutant back to disk);
- :mod:`pevm.mutations.mutators`: the mutations, each deterministic given a
  ``random.Random``;
- :mod:`pevm.mutations.check`: running one mutant and judging the verdicts.
"""
from __future__ import annotations

from pevm.mutations.check import (CRASH, DIFFERS, INTERNAL, NO_VERDICT, UNCLEAR,
                                  CheckRecord, Problem, Verdict, check_mutant,
                                  parallel_engine)
from pevm.mutations.mutators import KINDS, mutant_for_seed, mutate
from pevm.mutations.sources import FIXTURE, SNAPSHOT, Mutant, Source, load_sources

__all__ = ["CRASH", "DIFFERS", "FIXTURE", "INTERNAL", "KINDS", "NO_VERDICT", "SNAPSHOT",
           "UNCLEAR", "CheckRecord", "Mutant", "Problem", "Source", "Verdict", "check_mutant",
           "load_sources", "mutant_for_seed", "mutate", "parallel_engine"]
