"""Batch Keccak-256 (Ethereum's Keccak, not SHA3-256) on the CPU or a CUDA device.

Three implementations give bit-identical digests:

``loop`` (CPU)
    pycryptodome's C Keccak, called once per message through our own ctypes
    handle on its shared library with argument types declared up front. That
    skips the hash-object construction of ``Crypto.Hash.keccak.new`` and of
    ``eth_hash`` (measured 2.1-4x the hashes/s of ``eth_hash`` per message for
    32-532-byte messages on the project's 2-core machine). If the
    library cannot be loaded or fails a known-answer check, it falls back to
    ``Crypto.Hash.keccak.new`` per message (still correct, slower).
``numpy`` (CPU)
    Keccak-f[1600] vectorised across messages: the state is a (25, k) uint64
    array, one column per message, so each of the ~17 NumPy calls of a round
    works on thousands of messages at once. Messages are grouped by block count
    and padded into (k, blocks*136) byte arrays. NumPy releases the GIL inside
    its loops, so chunks run on a thread pool.
``cuda``
    ``keccak.cu`` through CuPy (see that file for the kernel design).

``method="auto"`` picks ``loop`` or ``numpy`` per batch shape from measured
costs (:data:`NUMPY_AUTO_MIN_THREADS`: on the measured 2-core machine, always
``loop``); ``backend`` chooses CPU or CUDA
(:mod:`pevm.gpu.backend`). ``hashlib.sha3_256`` is *not* usable here: SHA3 pads
with 0x06, Ethereum's Keccak with 0x01.
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pevm.gpu import backend as _backend

#: Keccak-256 rate in bytes (1600-bit state minus 512-bit capacity).
RATE = 136
#: keccak256(b"")
EMPTY_KECCAK = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
#: CPU methods accepted by ``method=``.
CPU_METHODS = ("auto", "loop", "numpy")
#: Below this many messages an auto-selected CUDA backend hands the batch to the
#: CPU: kernel launches and host-device copies cost more than hashing them here.
#: An estimate (tens of microseconds of launch and copy latency against ~3-6 us per
#: message on the CPU), not yet measured on a device: check with ``pevm hashbench``.
GPU_MIN_BATCH = 4096

_KNOWN_ANSWERS = (
    (b"", EMPTY_KECCAK),
    (b"abc", bytes.fromhex("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")),
)

Message = bytes | bytearray | memoryview


# --------------------------------------------------------------------------- loop
class _CLoop:
    """pycryptodome's C Keccak through a private ctypes handle.

    The library is loaded a second time under our own ``CDLL`` object so that
    declaring ``argtypes`` (which makes each call ~2x cheaper) cannot change how
    pycryptodome itself calls it. One C state is allocated per batch and reset
    between messages, so concurrent batches on different threads are safe.
    """

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        vp, size, u8 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint8

        def fn(name: str, *argtypes: Any) -> Any:
            f = lib[name]  # __getitem__ gives a fresh function object per call
            f.argtypes = list(argtypes)
            f.restype = ctypes.c_int
            return f

        self.path = path
        self._init = fn("keccak_init", ctypes.POINTER(vp), size, u8)
        self._destroy = fn("keccak_destroy", vp)
        self._reset = fn("keccak_reset", vp)
        self._absorb_bytes = fn("keccak_absorb", vp, ctypes.c_char_p, size)
        self._absorb_ptr = fn("keccak_absorb", vp, vp, size)
        self._digest_buf = fn("keccak_digest", vp, ctypes.c_char_p, size, u8)
        self._digest_ptr = fn("keccak_digest", vp, vp, size, u8)

    def _new_state(self) -> ctypes.c_void_p:
        state = ctypes.c_void_p()
        # capacity 64 bytes (Keccak-256), 24 rounds
        if self._init(ctypes.byref(state), 64, 24) != 0 or not state.value:
            raise RuntimeError("keccak_init failed")
        return state

    def hash_list(self, messages: Sequence[bytes]) -> list[bytes]:
        """Digests of ``messages`` (each must be ``bytes``)."""
        state = self._new_state()
        try:
            reset, absorb, digest = self._reset, self._absorb_bytes, self._digest_buf
            buf = ctypes.create_string_buffer(32)
            out: list[bytes] = []
            append = out.append
            for m in messages:
                reset(state)
                absorb(state, m, len(m))
                digest(state, buf, 32, 0x01)  # 0x01: Keccak padding, not SHA3's 0x06
                append(buf.raw)
            return out
        finally:
            self._destroy(state)

    def hash_flat(self, data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
        """Hash ``data[offsets[i]:offsets[i+1]]`` into ``out[i]`` without copying."""
        state = self._new_state()
        try:
            reset, absorb, digest = self._reset, self._absorb_ptr, self._digest_ptr
            base = data.ctypes.data
            dst = out.ctypes.data
            offs = offsets.tolist()
            start = offs[0] if offs else 0
            for i in range(len(offs) - 1):
                end = offs[i + 1]
                reset(state)
                absorb(state, base + start, end - start)
                digest(state, dst + 32 * i, 32, 0x01)
                start = end
        finally:
            self._destroy(state)


class _ObjectLoop:
    """Fallback: pycryptodome's public hash objects, one per message."""

    path = None

    def hash_list(self, messages: Sequence[bytes]) -> list[bytes]:
        from Crypto.Hash import keccak
        new = keccak.new
        return [new(data=m, digest_bits=256).digest() for m in messages]

    def hash_flat(self, data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
        buf = data.tobytes()
        offs = offsets.tolist()
        digests = self.hash_list([buf[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)])
        if digests:
            out[:] = np.frombuffer(b"".join(digests), np.uint8).reshape(-1, 32)


@functools.lru_cache(maxsize=1)
def _loop_impl() -> _CLoop | _ObjectLoop:
    """The fastest working per-message implementation, checked on known answers."""
    try:
        import Crypto.Hash
        folder = Path(Crypto.Hash.__file__).parent
        candidates = sorted(p for p in folder.glob("_keccak*")
                            if p.suffix in (".so", ".pyd", ".dylib"))
        for path in candidates:
            try:
                impl = _CLoop(str(path))
                if impl.hash_list([m for m, _ in _KNOWN_ANSWERS]) == [d for _, d in _KNOWN_ANSWERS]:
                    return impl
            except (OSError, AttributeError, RuntimeError):
                continue
    except ImportError:
        pass
    return _ObjectLoop()


def cpu_method_info() -> dict[str, Any]:
    """Which per-message implementation the ``loop`` method uses (for ``pevm info``)."""
    impl = _loop_impl()
    return {"loop": "pycryptodome C keccak via ctypes" if isinstance(impl, _CLoop)
            else "pycryptodome hash objects (fallback)",
            "threads": _thread_count()}


# -------------------------------------------------------------------------- numpy
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
def _thread_count() -> int:
    return max(1, min(os.cpu_count() or 1, 16))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_thread_count(), thread_name_prefix="pevm-keccak")
        return _POOL


def _numpy_flat(data: np.ndarray, offsets: np.ndarray, out: np.ndarray,
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

    if len(jobs) > 1 and _thread_count() > 1:
        for _ in _pool().map(run, jobs):
            pass
    else:
        for job in jobs:
            run(job)


# ------------------------------------------------------------------------ policy
#: Minimum CPU threads for ``method="auto"`` to pick numpy; ``None``: never.
#: On the project's 2-core machine the loop won every measured shape (32-532
#: bytes, 1k-1M messages; numbers in the report of gpu/bench.py / ``pevm
#: hashbench``): the loop costs ~2-4 us per message of up to a few blocks, the
#: numpy permutation ~3 us per message *per block* on one thread and gained
#: little from a second. With many idle cores numpy may win for single-block
#: messages; set this after measuring there with ``pevm hashbench``.
NUMPY_AUTO_MIN_THREADS: int | None = None


def _prefer_numpy(count: int, nblocks: int) -> bool:
    """Whether ``method="auto"`` uses numpy for ``count`` messages of ``nblocks`` blocks."""
    if NUMPY_AUTO_MIN_THREADS is None or _thread_count() < NUMPY_AUTO_MIN_THREADS:
        return False
    # Only single-block messages, and enough of them for several full chunks.
    return nblocks == 1 and count >= 4 * NUMPY_CHUNK


# ----------------------------------------------------------------------- public
def pack(messages: Sequence[Message]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten messages into ``(data uint8, offsets int64 of length n+1)``."""
    lens = np.fromiter((len(m) for m in messages), dtype=np.int64, count=len(messages))
    offsets = np.zeros(len(messages) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    data = np.frombuffer(b"".join(messages), np.uint8)
    return data, offsets


def keccak256(message: Message) -> bytes:
    """Keccak-256 of one message (the ``loop`` implementation)."""
    return _loop_impl().hash_list([bytes(message)])[0]


def _is_cupy(array: Any) -> bool:
    return type(array).__module__.split(".")[0] == "cupy"


def _use_cuda(backend: str | None, count: int) -> bool:
    if _backend.resolve(backend) != "cuda":
        return False
    # An auto-selected GPU leaves small batches to the CPU; a forced one obeys.
    return _backend.is_forced(backend) or count >= GPU_MIN_BATCH


def _check_method(method: str) -> None:
    if method not in CPU_METHODS:
        raise ValueError(f"method must be one of {', '.join(CPU_METHODS)}, not {method!r}")


def keccak256_batch(messages: Sequence[Message], backend: str | None = None,
                    method: str = "auto") -> list[bytes]:
    """Keccak-256 digests of ``messages``, in order.

    Args:
        messages: byte strings of any lengths (bytes, bytearray or memoryview).
        backend: ``"cpu"``, ``"cuda"`` or ``None``/``"auto"`` (``PEVM_GPU``, then
            detection; see :mod:`pevm.gpu.backend`).
        method: CPU implementation, ``"auto"``, ``"loop"`` or ``"numpy"``;
            ignored on CUDA.

    Raises:
        pevm.gpu.backend.BackendUnavailable: CUDA was forced but is not usable.
    """
    _check_method(method)
    count = len(messages)
    if count == 0:
        return []
    if _use_cuda(backend, count):
        data, offsets = pack(messages)
        blob = _cuda_flat(data, offsets, to_host=True).tobytes()
        return [blob[i:i + 32] for i in range(0, 32 * count, 32)]
    if method == "numpy" or (method == "auto" and _auto_numpy_list(messages)):
        data, offsets = pack(messages)
        out = np.empty((count, 32), np.uint8)
        _numpy_flat(data, offsets, out)
        blob = out.tobytes()
        return [blob[i:i + 32] for i in range(0, 32 * count, 32)]
    if all(type(m) is bytes for m in messages):
        return _loop_impl().hash_list(messages)  # type: ignore[arg-type]
    return _loop_impl().hash_list([bytes(m) for m in messages])


def _auto_numpy_list(messages: Sequence[Message]) -> bool:
    if not _prefer_numpy(len(messages), 1):
        return False  # cheap exit before looking at lengths
    longest = max(len(m) for m in messages)
    return _prefer_numpy(len(messages), longest // RATE + 1)


def _validate_flat(data: Any, offsets: Any, xp: Any) -> tuple[Any, Any]:
    data = xp.ascontiguousarray(data, dtype=xp.uint8).reshape(-1)
    offsets = xp.ascontiguousarray(offsets, dtype=xp.int64).reshape(-1)
    if offsets.size < 1:
        raise ValueError("offsets must have n+1 entries (at least one)")
    if offsets.size > 1:
        if bool((offsets[1:] < offsets[:-1]).any()):
            raise ValueError("offsets must be non-decreasing")
        if int(offsets[0]) < 0 or int(offsets[-1]) > data.size:
            raise ValueError("offsets point outside data")
    return data, offsets


def keccak256_flat(data: Any, offsets: Any, backend: str | None = None,
                   method: str = "auto") -> Any:
    """Keccak-256 of ``data[offsets[i]:offsets[i+1]]`` for each ``i``.

    Args:
        data: uint8 array of the concatenated messages.
        offsets: int64 array of length n+1, non-decreasing.
        backend: as in :func:`keccak256_batch`. CuPy arrays are hashed on the
            device unless ``backend="cpu"``/``PEVM_GPU=cpu`` forces the CPU.
        method: CPU implementation, as in :func:`keccak256_batch`.

    Returns:
        (n, 32) uint8 digests: a NumPy array, or a CuPy array for CuPy inputs
        hashed on the device.
    """
    _check_method(method)
    if _is_cupy(data) or _is_cupy(offsets):
        if _backend.resolve(backend) == "cuda":
            import cupy
            d, o = _validate_flat(data, offsets, cupy)
            return _cuda_flat(d, o, to_host=False)
        import cupy
        data, offsets = cupy.asnumpy(data), cupy.asnumpy(offsets)
    data, offsets = _validate_flat(np.asarray(data), np.asarray(offsets), np)
    count = offsets.size - 1
    if count > 0 and _use_cuda(backend, count):
        return _cuda_flat(data, offsets, to_host=True)
    out = np.empty((count, 32), np.uint8)
    if count == 0:
        return out
    if method == "auto":
        longest = int((offsets[1:] - offsets[:-1]).max())
        method = "numpy" if _prefer_numpy(count, longest // RATE + 1) else "loop"
    if method == "numpy":
        _numpy_flat(data, offsets, out)
    else:
        _loop_impl().hash_flat(data, offsets, out)
    return out


# --------------------------------------------------------------------------- cuda
@functools.lru_cache(maxsize=1)
def _cuda_kernels() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Compile keccak.cu once per process (CuPy also caches the binary on disk)."""
    import cupy
    source = (Path(__file__).parent / "keccak.cu").read_text()
    module = cupy.RawModule(code=source, options=("--std=c++11",))
    return module.get_function("pevm_keccak_pack"), module.get_function("pevm_keccak_absorb")


#: Upper bound on the packed-block buffer of one launch, in bytes. Large batches
#: are hashed in slices so that 10M messages do not need gigabytes of padding.
CUDA_PACK_BYTES = 512 << 20
_PACK_THREADS = 256
#: Fewer threads per block for the register-heavy permutation (~60 64-bit values).
_ABSORB_THREADS = 128


def _grid(work: int, threads: int) -> int:
    # The kernels loop grid-stride, so the grid can be capped.
    return max(1, min((work + threads - 1) // threads, 1 << 20))


def _cuda_flat(data: Any, offsets: Any, to_host: bool) -> Any:
    """CUDA method: (n, 32) digests, on the host (NumPy) or the device (CuPy).

    Not yet run on a device in this repository's history: its logic (pack layout,
    padding, permutation, output order) was checked by compiling keccak.cu as
    host C++ with the CUDA qualifiers defined away and comparing with eth_hash.
    """
    import cupy
    pack_kernel, absorb_kernel = _cuda_kernels()
    offsets_h = cupy.asnumpy(offsets) if _is_cupy(offsets) else np.asarray(offsets)
    n = offsets_h.size - 1
    d_data = cupy.asarray(data, dtype=cupy.uint8)
    if d_data.size == 0:
        d_data = cupy.zeros(1, cupy.uint8)  # a valid pointer for empty messages
    d_offsets = cupy.asarray(offsets, dtype=cupy.int64)
    d_out = cupy.empty((n, 32), cupy.uint8)
    if n:
        nb_all = (offsets_h[1:] - offsets_h[:-1]) // RATE + 1
        for nb in np.unique(nb_all).tolist():
            group = (np.arange(n, dtype=np.int64) if nb_all.min() == nb_all.max()
                     else np.flatnonzero(nb_all == nb).astype(np.int64))
            nwords = nb * 17
            per_launch = max(1, CUDA_PACK_BYTES // (nwords * 8))
            for s in range(0, len(group), per_launch):
                d_idx = cupy.asarray(group[s:s + per_launch])
                k = int(d_idx.size)
                blocks = cupy.empty(k * nwords, cupy.uint64)
                pack_kernel((_grid(k * nwords, _PACK_THREADS),), (_PACK_THREADS,),
                            (d_data, d_offsets, d_idx, np.int64(k), np.int64(nwords), blocks))
                absorb_kernel((_grid(k, _ABSORB_THREADS),), (_ABSORB_THREADS,),
                              (blocks, np.int64(k), np.int32(nb), d_idx, d_out))
    return cupy.asnumpy(d_out) if to_host else d_out
