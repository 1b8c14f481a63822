"""Property-based differential tests: random blocks, parallel engine == py-evm.

Hypothesis draws blocks of transfers among a few accounts (the beneficiary among
them, as sender and recipient), chains of transactions from one sender, counter
increments sharing storage slots, reverts in nested calls, CREATE/CREATE2 with
self-destruct and re-creation, calls to a self-destructing contract with storage,
value to fresh and to empty accounts, contract deployments, a contract reading
the beneficiary's balance, and one reading balance, code size and code hash of
missing, empty, destroyed or live accounts before calling them -- on a random
fork. Each block is mined by py-evm, then imported on identical fresh chains with
the reference engine and the parallel engine at 1 to 4 workers (also under random
delays and forced aborts); results and rejection status must be identical.

``PEVM_HYPOTHESIS_EXAMPLES`` raises the number of examples for a longer run.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pevm.compare import compare_results
from pevm.engines.hooks import FaultHooks
from pevm.engines.parallel import ParallelEngine
from tests.parallel_support import (FORKS, Intent, assert_same, build_block,
                                    hypothesis_profile_examples, import_block,
                                    reference)

KINDS = ["transfer", "transfer", "transfer", "incr", "incr", "read_coinbase",
         "read_sender",
         "revert", "nested_revert", "create2", "create", "kill_child",
         "kill_created", "doom", "deploy", "probe", "probe_hash", "vault", "vault",
         "vault_peek"]
FORK_NAMES = ["spurious", "byzantium", "istanbul", "berlin", "london", "shanghai",
              "cancun", "prague"]

intents = st.builds(
    Intent,
    kind=st.sampled_from(KINDS),
    sender=st.integers(0, 7) | st.just(1),          # bias: chains from one sender
    a=st.integers(0, 31),
    b=st.integers(0, 5),
    tip=st.sampled_from([0, 1, 3]),
)
blocks = st.lists(intents, min_size=6, max_size=32)
PROPERTY = settings(max_examples=hypothesis_profile_examples(25), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@PROPERTY
@given(fork=st.sampled_from(FORK_NAMES), block_intents=blocks)
def test_random_blocks_match_py_evm_at_every_worker_count(fork, block_intents):
    vm_class = FORKS[fork]
    block = build_block(vm_class, block_intents)
    want = reference(vm_class, block)
    results = []
    for workers in (1, 2, 3, 4):
        got = import_block(vm_class, block, ParallelEngine(
            workers=workers, min_parallel_txs=2, fork_after=0, chunk_size=1 + workers % 3))
        assert_same(want, got, f"{fork} workers={workers}")
        results.append(got.result)
    for other in results[1:]:                  # determinism across worker counts
        assert compare_results(results[0], other) == []


@settings(max_examples=hypothesis_profile_examples(15), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fork=st.sampled_from(FORK_NAMES), block_intents=blocks,
       workers=st.integers(2, 4), seed=st.integers(0, 2**16),
       force_abort=st.sampled_from([0.0, 0.3, 1.0]))
def test_adversarial_schedules_match_py_evm(fork, block_intents, workers, seed,
                                            force_abort):
    vm_class = FORKS[fork]
    block = build_block(vm_class, block_intents)
    want = reference(vm_class, block)
    engine = ParallelEngine(workers=workers, min_parallel_txs=2, fork_after=0, chunk_size=2,
                            hooks=FaultHooks(delay=0.003, delay_probability=0.3,
                                             force_abort=force_abort, seed=seed))
    assert_same(want, import_block(vm_class, block, engine), f"{fork} {workers}")


@settings(max_examples=hypothesis_profile_examples(10), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(block_intents=blocks, data=st.data())
def test_blocks_with_an_invalid_transaction_reject_like_py_evm(block_intents, data):
    # Reorder a valid block's transactions: nonces out of order make some
    # transaction invalid at its position (or not, when the senders differ).
    vm_class = FORKS["cancun"]
    block = build_block(vm_class, block_intents)
    order = data.draw(st.permutations(range(len(block.transactions))))
    shuffled = block.copy(transactions=[block.transactions[i] for i in order])
    want = reference(vm_class, shuffled)
    for workers in (1, 3):
        got = import_block(vm_class, shuffled, ParallelEngine(
            workers=workers, min_parallel_txs=2, fork_after=0, chunk_size=2))
        assert_same(want, got, f"workers={workers}")
