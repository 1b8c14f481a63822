"""The ``loop`` CPU method of :mod:`pevm.gpu.keccak`: one C Keccak per message.

:func:`loop_impl` picks the fastest implementation that loads and passes known
answers, in this order:

1. pysha3's ``keccak_256`` (safe-pysha3, a dependency already: eth-hash's backend
   in pevm, see :func:`pevm.pyevm_compat.use_fast_keccak`) -- one C call per message;
2. pycryptodome's C Keccak through our own ctypes handle on its shared library,
   with argument types declared up front (:class:`CLoop`) -- three calls per message;
3. pycryptodome's public hash objects (still correct, slower).

Measured on the project's 2-core machine (session 18), per message of one Keccak
block (up to 135 bytes): pysha3 0.51-0.54 us, the ctypes loop 1.4 us, pycryptodome's
objects 3.5 us; for 532 bytes 1.40 / 2.25 us. Both 1. and 3. are an
:class:`ObjectLoop` around a different constructor.
"""
from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Sequence
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

    name = "pycryptodome C keccak via ctypes"

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
    """One hash object per message from ``new`` (a C Keccak-256 constructor taking
    the message; its ``digest()`` is the 32-byte digest)."""

    path = None

    def __init__(self, name: str, new: Callable[[Any], Any]) -> None:
        self.name = name
        self._new = new

    def hash_list(self, messages: Sequence[bytes]) -> list[bytes]:
        new = self._new
        return [new(m).digest() for m in messages]

    def hash_flat(self, data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
        view = memoryview(data)  # type: ignore[arg-type]  # slices are not copies
        offs = offsets.tolist()
        digests = self.hash_list([view[offs[i]:offs[i + 1]]  # type: ignore[misc]
                                  for i in range(len(offs) - 1)])
        if digests:
            out[:] = np.frombuffer(b"".join(digests), np.uint8).reshape(-1, 32)


def pysha3_loop() -> ObjectLoop:
    """pysha3's Keccak-256 (ImportError where safe-pysha3 is not installed)."""
    from sha3 import keccak_256
    return ObjectLoop("pysha3 C keccak", keccak_256)


def pycryptodome_objects() -> ObjectLoop:
    """pycryptodome's public hash objects: the fallback of last resort."""
    from Crypto.Hash import keccak
    return ObjectLoop("pycryptodome hash objects (fallback)",
                      lambda m: keccak.new(data=m, digest_bits=256))


def _passes(impl: CLoop | ObjectLoop) -> bool:
    return impl.hash_list([m for m, _ in KNOWN_ANSWERS]) == [d for _, d in KNOWN_ANSWERS]


def ctypes_loop() -> CLoop | None:
    """pycryptodome's C Keccak through ctypes, if its library loads and passes."""
    try:
        import Crypto.Hash
    except ImportError:
        return None
    folder = Path(Crypto.Hash.__file__).parent
    for path in sorted(p for p in folder.glob("_keccak*")
                       if p.suffix in (".so", ".pyd", ".dylib")):
        try:
            loop = CLoop(str(path))
            if _passes(loop):
                return loop
        except (OSError, AttributeError, RuntimeError):
            continue
    return None


@functools.lru_cache(maxsize=1)
def loop_impl() -> CLoop | ObjectLoop:
    """The fastest working per-message implementation, checked on known answers."""
    try:
        impl = pysha3_loop()
        if _passes(impl):
            return impl
    except ImportError:
        pass
    return ctypes_loop() or pycryptodome_objects()


__all__ = ["CLoop", "KNOWN_ANSWERS", "ObjectLoop", "ctypes_loop", "loop_impl",
           "pycryptodome_objects", "pysha3_loop"]
