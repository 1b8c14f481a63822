"""State-diff merge and latest-writer search (pevm.gpu.diff) against plain Python."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pevm.gpu import backend as B
from pevm.gpu.diff import latest_writers, merge_writes


def require_cuda() -> None:
    ok, reason = B._probe_cuda()
    if not ok:
        pytest.skip(f"no CUDA device: {reason}")


def reference_merge(loc: list[int], tx: list[int], val: list[int]) -> dict[int, tuple[int, int]]:
    """Sequential replay in block order: location -> (tx, value) of its last write.
    Writes of one transaction apply in input order."""
    order = sorted(range(len(loc)), key=lambda i: (tx[i], i))
    final: dict[int, tuple[int, int]] = {}
    for i in order:
        final[loc[i]] = (tx[i], val[i])
    return final


def reference_latest(rloc: list[int], rtx: list[int], wloc: list[int],
                     wtx: list[int]) -> list[int]:
    return [max((t for w, t in zip(wloc, wtx) if w == r and t < reader), default=-1)
            for r, reader in zip(rloc, rtx)]


# Few distinct locations and transactions so that collisions are common; some
# huge and negative ids to check that nothing assumes small or positive ids.
locations = st.one_of(st.integers(-4, 6), st.sampled_from([2**62, -(2**62), 2**63 - 1]))
txs = st.integers(0, 8)
writes = st.lists(st.tuples(locations, txs, st.integers(-(2**63), 2**63 - 1)), max_size=60)
reads = st.lists(st.tuples(locations, txs), max_size=60)


@settings(max_examples=200, deadline=None)
@given(writes)
def test_merge_writes(ws: list[tuple[int, int, int]]) -> None:
    loc, tx, val = ([w[i] for w in ws] for i in range(3))
    merged = merge_writes(np.array(loc, np.int64), np.array(tx, np.int32),
                          np.array(val, np.int64), backend="cpu")
    expected = reference_merge(loc, tx, val)
    assert merged.location.tolist() == sorted(expected)
    assert list(zip(merged.tx.tolist(), merged.value.tolist())) == [
        expected[k] for k in sorted(expected)]
    assert merged.location.dtype == np.int64 and merged.tx.dtype == np.int32


@settings(max_examples=200, deadline=None)
@given(reads, writes)
def test_latest_writers(rs: list[tuple[int, int]], ws: list[tuple[int, int, int]]) -> None:
    rloc, rtx = [r[0] for r in rs], [r[1] for r in rs]
    wloc, wtx = [w[0] for w in ws], [w[1] for w in ws]
    out = latest_writers(np.array(rloc, np.int64), np.array(rtx, np.int32),
                         np.array(wloc, np.int64), np.array(wtx, np.int32), backend="cpu")
    assert out.dtype == np.int32
    assert out.tolist() == reference_latest(rloc, rtx, wloc, wtx)


def test_lists_accepted_and_empty() -> None:
    merged = merge_writes([], [], [], backend="cpu")
    assert merged.location.size == 0
    assert latest_writers([1, 2], [3, 0], [], [], backend="cpu").tolist() == [-1, -1]
    assert latest_writers([], [], [1], [0], backend="cpu").tolist() == []
    assert latest_writers([5, 5, 5], [0, 1, 9], [5, 5], [0, 4], backend="cpu").tolist() == [
        -1, 0, 4]


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        merge_writes([1, 2], [0], [1, 2], backend="cpu")
    with pytest.raises(ValueError):
        merge_writes([1], [-1], [1], backend="cpu")
    with pytest.raises(ValueError):
        latest_writers([1], [0, 1], [1], [0], backend="cpu")


def test_large_random_against_reference() -> None:
    rng = np.random.default_rng(7)
    wloc = rng.integers(0, 300, 5000)
    wtx = rng.integers(0, 1000, 5000).astype(np.int32)
    wval = rng.integers(-(2**40), 2**40, 5000)
    rloc = rng.integers(0, 400, 5000)
    rtx = rng.integers(0, 1000, 5000).astype(np.int32)
    merged = merge_writes(wloc, wtx, wval, backend="cpu")
    expected = reference_merge(wloc.tolist(), wtx.tolist(), wval.tolist())
    assert dict(zip(merged.location.tolist(), zip(merged.tx.tolist(),
                                                  merged.value.tolist()))) == expected
    # Reference via sorting per location (the quadratic one is too slow here).
    by_loc: dict[int, list[int]] = {}
    for loc, tx in zip(wloc.tolist(), wtx.tolist()):
        by_loc.setdefault(loc, []).append(tx)
    want = [max((t for t in by_loc.get(loc, []) if t < r), default=-1)
            for loc, r in zip(rloc.tolist(), rtx.tolist())]
    assert latest_writers(rloc, rtx, wloc, wtx, backend="cpu").tolist() == want


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    require_cuda()
    import cupy
    rng = np.random.default_rng(8)
    wloc = rng.integers(-(2**62), 2**62, 200_000) % 5000
    wtx = rng.integers(0, 10_000, 200_000).astype(np.int32)
    wval = rng.integers(0, 2**62, 200_000)
    rloc = rng.integers(0, 6000, 300_000)
    rtx = rng.integers(0, 10_000, 300_000).astype(np.int32)
    cpu = merge_writes(wloc, wtx, wval, backend="cpu")
    gpu = merge_writes(wloc, wtx, wval, backend="cuda")
    for a, b in zip(cpu, gpu):
        assert isinstance(b, cupy.ndarray)
        assert np.array_equal(a, cupy.asnumpy(b))
    assert np.array_equal(latest_writers(rloc, rtx, wloc, wtx, backend="cpu"),
                          cupy.asnumpy(latest_writers(rloc, rtx, wloc, wtx, backend="cuda")))
