"""The ``loop`` CPU method of :mod:`pevm.gpu.keccak`: one C call per message.

pycryptodome's C Keccak through our own ctypes handle on its shared library, with
argument types declared up front (:class:`CLoop`); :func:`loop_impl` picks it when
it loads and passes known answers, else pycryptodome's public hash objects
(:class:`ObjectLoop`: still correct, slower).
"""
from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: (message, Keccak-256 digest): one message within a block, one of two blocks.
KNOWN_ANSWERS = (
    (b"abc", bytes.fromhex("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")),
    (bytes(range(200)),
     bytes.fromhex("bfb0aa97863e797943cf7c33bb7e880bb4543f3d2703c0923c6901c2af57b890")),
)


class CLoop:
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


class ObjectLoop:
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
def loop_impl() -> CLoop | ObjectLoop:
    """The fastest working per-message implementation, checked on known answers."""
    try:
        import Crypto.Hash
        folder = Path(Crypto.Hash.__file__).parent
        candidates = sorted(p for p in folder.glob("_keccak*")
                            if p.suffix in (".so", ".pyd", ".dylib"))
        for path in candidates:
            try:
                impl = CLoop(str(path))
                if impl.hash_list([m for m, _ in KNOWN_ANSWERS]) == [d for _, d in KNOWN_ANSWERS]:
                    return impl
            except (OSError, AttributeError, RuntimeError):
                continue
    except ImportError:
        pass
    return ObjectLoop()


__all__ = ["CLoop", "KNOWN_ANSWERS", "ObjectLoop", "loop_impl"]
