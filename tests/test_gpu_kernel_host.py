"""keccak.cu's logic without a GPU: the kernels compiled as host C++.

CI has no GPU, so the CUDA tests skip there. This test still checks what can be
checked without one: keccak.cu is compiled by the host C++ compiler with the
CUDA qualifiers defined away and each kernel run as a loop over emulated
blocks and threads (the kernels are grid-stride loops with no shared memory,
so sequential emulation is faithful to their arithmetic). A stand-in ``cupy``
module backed by NumPy then drives the real host code, ``_cuda_flat``: grouping
by block count, launch splitting, argument order and scalar types. What it
cannot check: NVRTC compilation, device memory, real launch configurations.
Skipped when no C++ compiler is available.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_hash.auto import keccak

from pevm.gpu import keccak as K

HARNESS = r"""
struct pevm_dim { unsigned x; };
static pevm_dim blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __constant__
#define __forceinline__ inline
#include "KECCAK_CU"
extern "C" void run_pevm_keccak_pack(unsigned g, unsigned b, const pevm_u8 *data,
        const pevm_i64 *off, const pevm_i64 *idx, pevm_i64 k, pevm_i64 nw, pevm_u64 *out) {
    gridDim.x = g; blockDim.x = b;
    for (unsigned i = 0; i < g; ++i) for (unsigned t = 0; t < b; ++t) {
        blockIdx.x = i; threadIdx.x = t; pevm_keccak_pack(data, off, idx, k, nw, out); }
}
extern "C" void run_pevm_keccak_absorb(unsigned g, unsigned b, const pevm_u64 *blocks,
        pevm_i64 k, int nb, const pevm_i64 *idx, pevm_u64 *out) {
    gridDim.x = g; blockDim.x = b;
    for (unsigned i = 0; i < g; ++i) for (unsigned t = 0; t < b; ++t) {
        blockIdx.x = i; threadIdx.x = t; pevm_keccak_absorb(blocks, k, nb, idx, out); }
}
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no host C++ compiler to emulate keccak.cu")
    folder = tmp_path_factory.mktemp("keccak_cu")
    source = folder / "harness.cpp"
    source.write_text(HARNESS.replace("KECCAK_CU", str(Path(K.__file__).parent / "keccak.cu")))
    library = folder / "harness.so"
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-Wno-unknown-pragmas",
                    "-o", str(library), str(source)], check=True)
    return ctypes.CDLL(str(library))


def fake_cupy(lib: ctypes.CDLL, launches: list[tuple[str, int]]) -> types.ModuleType:
    """Just enough of CuPy's API for keccak._cuda_flat, on NumPy arrays."""
    cp = types.ModuleType("cupy")

    def launcher(name: str) -> Callable[..., None]:
        run = getattr(lib, "run_" + name)

        def launch(grid: tuple[int], block: tuple[int], args: tuple[Any, ...]) -> None:
            launches.append((name, grid[0]))
            converted: list[ctypes.c_void_p | ctypes.c_longlong | ctypes.c_int] = []
            for arg in args:
                if isinstance(arg, np.ndarray):
                    assert arg.flags.c_contiguous
                    converted.append(ctypes.c_void_p(arg.ctypes.data))
                elif isinstance(arg, np.int64):
                    converted.append(ctypes.c_longlong(int(arg)))
                elif isinstance(arg, np.int32):
                    converted.append(ctypes.c_int(int(arg)))
                else:  # CuPy needs sized NumPy scalars to match the C signature
                    raise TypeError(f"kernel argument of type {type(arg).__name__}")
            # The kernels are grid-stride loops: a small emulated grid covers all work.
            run(ctypes.c_uint(min(grid[0], 3)), ctypes.c_uint(min(block[0], 7)), *converted)
        return launch

    class RawModule:
        def __init__(self, code: str, options: tuple[str, ...] = ()) -> None:
            assert "pevm_keccak_absorb" in code

        def get_function(self, name: str) -> Callable[..., None]:
            return launcher(name)

    cp.RawModule = RawModule  # type: ignore[attr-defined]
    cp.asarray = lambda a, dtype=None: np.ascontiguousarray(np.asarray(a, dtype=dtype))  # type: ignore[attr-defined]
    cp.asnumpy = np.asarray  # type: ignore[attr-defined]
    cp.empty, cp.zeros = np.empty, np.zeros  # type: ignore[attr-defined]
    cp.uint8, cp.uint64, cp.int64 = np.uint8, np.uint64, np.int64  # type: ignore[attr-defined]
    return cp


@pytest.fixture
def emulated(kernels: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[list[tuple[str, int]]]:
    launches: list[tuple[str, int]] = []
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(kernels, launches))
    K._cuda_kernels.cache_clear()
    yield launches
    K._cuda_kernels.cache_clear()


LENGTHS = [0, 1, 7, 8, 9, 31, 32, 33, 134, 135, 136, 137, 271, 272, 273, 532, 1000, 2000]


def test_emulated_kernels_match_eth_hash(emulated: list[tuple[str, int]]) -> None:
    rng = np.random.default_rng(21)
    lengths = LENGTHS + rng.integers(0, 700, 300).tolist()
    msgs = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in lengths]
    data, offsets = K.pack(msgs)
    out = K._cuda_flat(data, offsets, to_host=True)
    assert [bytes(r) for r in out] == [keccak(m) for m in msgs]
    assert {name for name, _ in emulated} == {"pevm_keccak_pack", "pevm_keccak_absorb"}


def test_emulated_launch_splitting(emulated: list[tuple[str, int]],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(K, "CUDA_PACK_BYTES", 136 * 10)  # 10 one-block messages a launch
    msgs = [bytes([i]) * 40 for i in range(95)] + [b"\x01" * 300] * 7 + [b""]
    data, offsets = K.pack(msgs)
    out = K._cuda_flat(data, offsets, to_host=True)
    assert [bytes(r) for r in out] == [keccak(m) for m in msgs]
    assert sum(1 for name, _ in emulated if name == "pevm_keccak_absorb") > 10


def test_emulated_empty_data(emulated: list[tuple[str, int]]) -> None:
    out = K._cuda_flat(np.zeros(0, np.uint8), np.zeros(3, np.int64), to_host=True)
    assert [bytes(r) for r in out] == [keccak(b"")] * 2
