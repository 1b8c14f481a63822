"""Batch Keccak-256 (Ethereum's Keccak, not SHA3-256) on the CPU or a CUDA device.

Three implementations give bit-identical digests:

``loop`` (CPU; :mod:`pevm.gpu.keccak_loop`)
    A C Keccak called once per message: pysha3's ``keccak_256`` (0.5 us for a
    one-block message on the project's 2-core machine), else pycryptodome's
    through our own ctypes handle (1.4 us), else pycryptodome's hash objects
    (3.5 us) -- the first that loads and passes a known-answer check.
``numpy`` (CPU; :mod:`pevm.gpu.keccak_numpy`)
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

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pevm.gpu import backend as _backend
from pevm.gpu.keccak_loop import loop_impl
from pevm.gpu.keccak_numpy import NUMPY_CHUNK, RATE, numpy_flat, thread_count

#: keccak256(b"")
EMPTY_KECCAK = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
#: CPU methods accepted by ``method=``.
CPU_METHODS = ("auto", "loop", "numpy")
#: Below this many messages an auto-selected CUDA backend hands the batch to the
#: CPU: kernel launches and host-device copies cost more than hashing them here.
#: An estimate (tens of microseconds of launch and copy latency against ~3-6 us per
#: message on the CPU), not yet measured on a device: check with ``pevm hashbench``.
GPU_MIN_BATCH = 4096

Message = bytes | bytearray | memoryview


def cpu_method_info() -> dict[str, Any]:
    """Which per-message implementation the ``loop`` method uses (for ``pevm info``)."""
    return {"loop": loop_impl().name, "threads": thread_count()}


# ------------------------------------------------------------------------ policy
#: Minimum CPU threads for ``method="auto"`` to pick numpy; ``None``: never.
#: On the project's 2-core machine the loop won every measured shape (32-532
#: bytes, 1k-1M messages; numbers in the report of gpu/bench.py / ``pevm
#: hashbench``): the loop cost ~2-4 us per message of up to a few blocks through
#: pycryptodome (0.5-1.5 us through pysha3 since session 18), the numpy
#: permutation ~3 us per message *per block* on one thread, and it gained little
#: from a second. With many idle cores numpy may win for single-block messages;
#: set this after measuring there with ``pevm hashbench``.
NUMPY_AUTO_MIN_THREADS: int | None = None


def _prefer_numpy(count: int, nblocks: int) -> bool:
    """Whether ``method="auto"`` uses numpy for ``count`` messages of ``nblocks`` blocks."""
    if NUMPY_AUTO_MIN_THREADS is None or thread_count() < NUMPY_AUTO_MIN_THREADS:
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
    return loop_impl().hash_list([bytes(message)])[0]


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
        numpy_flat(data, offsets, out)
        blob = out.tobytes()
        return [blob[i:i + 32] for i in range(0, 32 * count, 32)]
    if all(type(m) is bytes for m in messages):
        return loop_impl().hash_list(messages)  # type: ignore[arg-type]
    return loop_impl().hash_list([bytes(m) for m in messages])


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
        numpy_flat(data, offsets, out)
    else:
        loop_impl().hash_flat(data, offsets, out)
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
