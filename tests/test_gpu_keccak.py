"""Batch Keccak-256 (pevm.gpu.keccak) against eth_hash, on every method and form."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from pevm.gpu import keccak as K
from pevm.gpu.keccak_loop import (KNOWN_ANSWERS, ctypes_loop, loop_impl,
                                  pycryptodome_objects, pysha3_loop)
from pevm.gpu.keccak import keccak256, keccak256_batch, keccak256_flat, pack

METHODS = ("loop", "numpy", "auto")
# Lengths around every padding edge: empty, one byte short of a block (0x01 and
# 0x80 share a byte), exactly a block (padding needs a whole extra block), etc.
EDGE_LENGTHS = (0, 1, 31, 32, 33, 64, 134, 135, 136, 137, 271, 272, 273, 532, 2000)


def require_cuda() -> None:
    ok, reason = K._backend._probe_cuda()
    if not ok:
        pytest.skip(f"no CUDA device: {reason}")


def messages_of(lengths: list[int], seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in lengths]


def test_known_answers() -> None:
    assert keccak256(b"") == K.EMPTY_KECCAK == keccak(b"")
    assert keccak256(b"abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
    # Ethereum Keccak is not SHA3-256 (padding 0x01, not 0x06).
    assert keccak256(b"abc") != hashlib.sha3_256(b"abc").digest()


@pytest.mark.parametrize("method", METHODS)
def test_edge_lengths(method: str) -> None:
    msgs = messages_of(list(EDGE_LENGTHS))
    assert keccak256_batch(msgs, backend="cpu", method=method) == [keccak(m) for m in msgs]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=2000), max_size=24))
def test_batch_equals_eth_hash(msgs: list[bytes]) -> None:
    expected = [keccak(m) for m in msgs]
    for method in METHODS:
        assert keccak256_batch(msgs, backend="cpu", method=method) == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=700), max_size=24))
def test_flat_equals_list(msgs: list[bytes]) -> None:
    data, offsets = pack(msgs)
    expected = keccak256_batch(msgs, backend="cpu")
    for method in METHODS:
        out = keccak256_flat(data, offsets, backend="cpu", method=method)
        assert out.shape == (len(msgs), 32) and out.dtype == np.uint8
        assert [bytes(row) for row in out] == expected


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 300)), min_size=1, max_size=20))
def test_flat_with_gaps_and_offset_start(spans: list[tuple[int, int]]) -> None:
    """Offsets need not start at 0 nor cover data contiguously: message i is
    data[offsets[i]:offsets[i+1]], and bytes before offsets[0] are ignored."""
    rng = np.random.default_rng(len(spans))
    lengths = [n for _, n in spans]
    lead = spans[0][0]
    data = rng.integers(0, 256, lead + sum(lengths), dtype=np.uint8)
    offsets = np.array([lead] + list(np.cumsum(lengths) + lead), dtype=np.int64)
    raw = data.tobytes()
    expected = [keccak(raw[offsets[i]:offsets[i + 1]]) for i in range(len(lengths))]
    for method in METHODS:
        out = keccak256_flat(data, offsets, backend="cpu", method=method)
        assert [bytes(row) for row in out] == expected


def test_numpy_chunks_and_groups() -> None:
    """More messages than one numpy chunk, several block counts interleaved:
    exercises the thread pool and the scatter of group results."""
    lengths = [EDGE_LENGTHS[i % len(EDGE_LENGTHS)] % 600 for i in range(K.NUMPY_CHUNK + 700)]
    msgs = messages_of(lengths, seed=3)
    expected = [keccak(m) for m in msgs]
    assert keccak256_batch(msgs, backend="cpu", method="numpy") == expected
    equal = messages_of([32] * (2 * K.NUMPY_CHUNK + 5), seed=4)
    assert keccak256_batch(equal, backend="cpu", method="numpy") == [keccak(m) for m in equal]


def test_bytes_like_inputs() -> None:
    msgs: list[bytes | bytearray | memoryview] = [bytearray(b"abc"),
                                                  memoryview(b"hello world"), b"x" * 200]
    expected = [keccak(bytes(m)) for m in msgs]
    for method in METHODS:
        assert keccak256_batch(msgs, backend="cpu", method=method) == expected


def test_empty_inputs() -> None:
    assert keccak256_batch([], backend="cpu") == []
    out = keccak256_flat(np.zeros(0, np.uint8), np.zeros(1, np.int64), backend="cpu")
    assert out.shape == (0, 32)
    out = keccak256_flat(np.zeros(0, np.uint8), np.zeros(3, np.int64), backend="cpu")
    assert [bytes(r) for r in out] == [keccak(b"")] * 2


@pytest.mark.parametrize("make", [pysha3_loop, ctypes_loop, pycryptodome_objects],
                         ids=["pysha3", "ctypes", "objects"])
def test_every_loop_implementation_matches(make) -> None:
    """pysha3 and pycryptodome are two independent C Keccaks: each of the loop's
    three implementations, by message and over a packed buffer, gives eth_hash's
    digests at every padding edge."""
    impl = make()
    assert impl is not None, "pycryptodome's library did not load through ctypes"
    msgs = messages_of(list(EDGE_LENGTHS), seed=5)
    assert impl.hash_list(msgs) == [keccak(m) for m in msgs]
    data, offsets = pack(msgs)
    out = np.empty((len(msgs), 32), np.uint8)
    impl.hash_flat(data, offsets, out)
    assert [bytes(r) for r in out] == [keccak(m) for m in msgs]


def test_fast_loop_is_in_use() -> None:
    """pysha3's Keccak (a dependency) is the loop: the others are correct but slower."""
    assert loop_impl().name == pysha3_loop().name, K.cpu_method_info()


def test_the_loop_s_self_test_vectors_are_keccak() -> None:
    """What the loop's implementation is checked against at load time."""
    assert [keccak(m) for m, _ in KNOWN_ANSWERS] == [d for _, d in KNOWN_ANSWERS]
    assert any(len(m) > K.RATE for m, _ in KNOWN_ANSWERS)  # a two-block message


@pytest.mark.parametrize("offsets", [[0, 5, 3], [0, 99], [-1, 2], []])
def test_bad_offsets(offsets: list[int]) -> None:
    with pytest.raises(ValueError):
        keccak256_flat(np.zeros(10, np.uint8), np.array(offsets, np.int64), backend="cpu")


def test_bad_method() -> None:
    with pytest.raises(ValueError):
        keccak256_batch([b""], method="sha3")


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    require_cuda()
    rng = np.random.default_rng(11)
    lengths = list(EDGE_LENGTHS) + rng.integers(0, 2000, 3000).tolist()
    msgs = messages_of(lengths, seed=12)
    expected = keccak256_batch(msgs, backend="cpu")
    assert keccak256_batch(msgs, backend="cuda") == expected
    data, offsets = pack(msgs)
    out = keccak256_flat(data, offsets, backend="cuda")
    assert isinstance(out, np.ndarray)
    assert [bytes(r) for r in out] == expected


@pytest.mark.cuda
def test_cuda_device_arrays_stay_on_device() -> None:
    require_cuda()
    import cupy
    msgs = messages_of([32] * 5000 + [0, 135, 136, 1000], seed=13)
    data, offsets = pack(msgs)
    out = keccak256_flat(cupy.asarray(data), cupy.asarray(offsets), backend="cuda")
    assert isinstance(out, cupy.ndarray)
    assert [bytes(r) for r in cupy.asnumpy(out)] == [keccak(m) for m in msgs]


@pytest.mark.cuda
def test_cuda_large_batch_split_into_launches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny pack-buffer bound forces several launches per block-count group."""
    require_cuda()
    monkeypatch.setattr(K, "CUDA_PACK_BYTES", 136 * 100)
    msgs = messages_of([40] * 1000 + [300] * 333, seed=14)
    assert keccak256_batch(msgs, backend="cuda") == [keccak(m) for m in msgs]
