"""pevm's accelerator layer: batch Keccak-256, batched Merkle-Patricia roots and
state-diff array work, on a CUDA device through CuPy or on the CPU with
bit-identical results.

Imported as ``pevm.gpu`` (the folder is ``gpu/`` at the repository root).
Importing it never needs CuPy: CuPy is only imported when the CUDA backend is
probed or used (see :mod:`pevm.gpu.backend`, and ``PEVM_GPU=cpu|cuda|auto``).

Modules: :mod:`~pevm.gpu.backend` (which backend), :mod:`~pevm.gpu.keccak`
(hashing; its CPU methods in :mod:`~pevm.gpu.keccak_loop` and
:mod:`~pevm.gpu.keccak_numpy`, its kernels in ``keccak.cu``), :mod:`~pevm.gpu.trie` (roots),
:mod:`~pevm.gpu.diff` (merge and latest-writer), :mod:`~pevm.gpu.bench`
(``pevm hashbench``).
"""
from __future__ import annotations

from pevm.gpu.backend import (BackendError, BackendUnavailable, backend_name,
                              cuda_available, describe)
from pevm.gpu.diff import MergedWrites, latest_writers, merge_writes
from pevm.gpu.keccak import keccak256, keccak256_batch, keccak256_flat, pack
from pevm.gpu.trie import (BLANK_ROOT, AccountState, ordered_trie_root, ordered_trie_roots,
                           secure_trie_root,
                           state_root, state_root_from_diff, storage_root, storage_roots,
                           trie_root, trie_roots)

__all__ = [
    "AccountState", "BLANK_ROOT", "BackendError", "BackendUnavailable", "MergedWrites",
    "backend_name", "cuda_available", "describe", "keccak256", "keccak256_batch",
    "keccak256_flat", "latest_writers", "merge_writes", "ordered_trie_root",
    "ordered_trie_roots", "pack",
    "secure_trie_root", "state_root", "state_root_from_diff", "storage_root",
    "storage_roots", "trie_root", "trie_roots",
]
