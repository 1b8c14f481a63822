"""The ``numpy`` CPU method of :mod:`pevm.gpu.keccak`: Keccak-f[1600] across messages.

The state is a (25, k) uint64 array, one column per message, so each of the ~17
NumPy calls of a round works on thousands of messages at once. Messages are
grouped by block count and padded into (k, blocks*136) byte arrays; NumPy releases
the GIL inside its loops, so column blocks run on a thread pool.
"""
from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Keccak-256 rate in bytes (1600-bit state minus 512-bit capacity).
RATE = 136

_RC = [np.uint64(c) for c in (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008)]
# Rotation offsets r[x][y].
_ROT = ((0, 36, 3, 41, 18), (1, 44, 10, 45, 2), (62, 6, 43, 15, 61),
        (28, 55, 25, 21, 56), (27, 20, 39, 8, 14))


def _rho_pi_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gather index and per-row shifts so that rho+pi is one gather and one rotate.

    pi moves lane (x, y) to (y, 2x+3y); as a gather, destination row ``d`` reads
    source row ``src[d]`` and rotates it left by ``left[d]``. The right shift is
    ``(64 - left) % 64``, so the unrotated lane (offset 0) becomes ``x | x``
    instead of a shift by 64, which C leaves undefined.
    """
    src = np.zeros(25, np.intp)
    left = np.zeros(25, np.uint64)
    for x in range(5):
        for y in range(5):
            dst = y + 5 * ((2 * x + 3 * y) % 5)
            src[dst] = x + 5 * y
            left[dst] = _ROT[x][y]
    right = (np.uint64(64) - left) % np.uint64(64)
    return src, left[:, None], right[:, None]


_PI_SRC, _RHO_LEFT, _RHO_RIGHT = _rho_pi_tables()
#: Messages per column block of the numpy permutation. About 2k-4k columns keep the
#: five (25, k) uint64 work arrays (400-800 KiB each) in L2 while amortising NumPy's
#: per-call overhead (measured on a 2-core machine: 2048-4096 best, 256 half as fast).
NUMPY_CHUNK = 2048


def _keccak_f1600_columns(a: np.ndarray) -> None:
    """Keccak-f[1600] in place on ``a``: shape (25, k) uint64, row = lane x + 5y."""
    k = a.shape[1]
    b = np.empty_like(a)
    t = np.empty_like(a)
    c = np.empty((5, k), np.uint64)
    d = np.empty((5, k), np.uint64)
    e = np.empty((5, k), np.uint64)
    a5, b5, t5 = a.reshape(5, 5, k), b.reshape(5, 5, k), t.reshape(5, 5, k)
    xor, shl, shr = np.bitwise_xor, np.left_shift, np.right_shift
    bor, band, inv = np.bitwise_or, np.bitwise_and, np.invert
    one, s63 = np.uint64(1), np.uint64(63)
    src, left, right = _PI_SRC, _RHO_LEFT, _RHO_RIGHT
    for rc in _RC:
        # theta: c[x] = xor of column x; d[x] = c[x-1] ^ rotl(c[x+1], 1)
        xor.reduce(a5, axis=0, out=c)
        shl(c[1:], one, out=d[:4])
        shl(c[0], one, out=d[4])
        shr(c[1:], s63, out=e[:4])
        shr(c[0], s63, out=e[4])
        bor(d, e, out=d)
        xor(d[1:], c[:4], out=d[1:])
        xor(d[0], c[4], out=d[0])
        xor(a5, d[None], out=a5)
        # rho + pi. Fancy indexing beats np.take(..., out=) here (measured 2.5x).
        t[...] = a[src]
        shl(t, left, out=b)
        shr(t, right, out=t)
        bor(b, t, out=b)
        # chi: a[x] = b[x] ^ (~b[x+1] & b[x+2]) within each row y; the rolls are
        # slice copies rather than gathers.
        inv(b5[:, 1:], out=t5[:, :4])
        inv(b5[:, 0], out=t5[:, 4])
        band(t5[:, :3], b5[:, 2:], out=t5[:, :3])
        band(t5[:, 3:], b5[:, :2], out=t5[:, 3:])
        xor(b, t, out=a)
        # iota
        xor(a[0], rc, out=a[0])


def _padded_blocks(data: np.ndarray, starts: np.ndarray, lens: np.ndarray,
                   nblocks: int) -> np.ndarray:
    """(k, nblocks*136) uint8: each message followed by Keccak padding 0x01 ... 0x80."""
    k = len(lens)
    width = nblocks * RATE
    padded = np.zeros((k, width), np.uint8)
    if k == 0:
        return padded
    first = int(lens[0])
    contiguous = (np.all(lens == first)
                  and np.all(starts == int(starts[0]) + first * np.arange(k)))
    if contiguous:  # equal-length messages back to back: one strided copy
        s0 = int(starts[0])
        padded[:, :first] = data[s0:s0 + k * first].reshape(k, first)
    else:
        total = int(lens.sum())
        if total:
            # Source byte for each destination byte, in row-major order of the mask.
            before = np.cumsum(lens) - lens
            src = np.arange(total, dtype=np.int64) + np.repeat(starts - before, lens)
            mask = np.arange(width)[None, :] < lens[:, None]
            padded[mask] = data[src]
    padded[np.arange(k), lens] ^= 0x01
    padded[:, width - 1] ^= 0x80
    return padded


def _numpy_group(data: np.ndarray, starts: np.ndarray, lens: np.ndarray,
                 nblocks: int) -> np.ndarray:
    """Digests (k, 32) uint8 of messages that all need ``nblocks`` blocks."""
    padded = _padded_blocks(data, starts, lens, nblocks).view("<u8")
    k = padded.shape[0]
    state = np.zeros((25, k), np.uint64)
    for blk in range(nblocks):
        state[:17] ^= padded[:, blk * 17:(blk + 1) * 17].T
        _keccak_f1600_columns(state)
    return np.ascontiguousarray(state[:4].T).astype("<u8", copy=False).view(np.uint8)


@functools.lru_cache(maxsize=1)
def thread_count() -> int:
    return max(1, min(os.cpu_count() or 1, 16))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(thread_count(), thread_name_prefix="pevm-keccak")
        return _POOL


def numpy_flat(data: np.ndarray, offsets: np.ndarray, out: np.ndarray,
                select: np.ndarray | None = None) -> None:
    """numpy method: write digests of the selected messages (all by default) to ``out``."""
    starts_all = offsets[:-1]
    lens_all = offsets[1:] - starts_all
    idx = np.arange(len(lens_all)) if select is None else select
    if len(idx) == 0:
        return
    nb_all = lens_all[idx] // RATE + 1
    jobs: list[tuple[np.ndarray, int]] = []
    for nb in np.unique(nb_all).tolist():
        group = idx if len(idx) == 0 or nb_all.min() == nb_all.max() else idx[nb_all == nb]
        for s in range(0, len(group), NUMPY_CHUNK):
            jobs.append((group[s:s + NUMPY_CHUNK], int(nb)))

    def run(job: tuple[np.ndarray, int]) -> None:
        rows, nb = job
        out[rows] = _numpy_group(data, starts_all[rows], lens_all[rows], nb)

    if len(jobs) > 1 and thread_count() > 1:
        for _ in _pool().map(run, jobs):
            pass
    else:
        for job in jobs:
            run(job)


__all__ = ["NUMPY_CHUNK", "RATE", "numpy_flat", "thread_count"]
