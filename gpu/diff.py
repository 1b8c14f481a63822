"""State-diff merge and conflict detection as array work (NumPy or CuPy).

Locations (a balance, a nonce, a storage slot...) are int64 ids chosen by the
caller; transactions are their int32 index in the block. Two questions the
parallel executor asks of a whole block's accesses at once:

* :func:`merge_writes`: the final value of every written location, i.e. the write
  of the highest transaction index (block order wins).
* :func:`latest_writers`: for each read, the latest transaction *before* the
  reader that wrote the same location, or -1 (the read saw the pre-state). A
  read is valid when the value it saw came from exactly that writer.

Both are sorts and binary searches, so the same code runs on NumPy and on CuPy
(``xp`` below); CuPy's sorts are stable like NumPy's ``kind="stable"``, so ties
break identically and the results are bit-identical.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from pevm.gpu import backend as _backend

#: Below this many accesses an auto-selected CUDA backend stays on the CPU:
#: launch and transfer costs exceed the work. An estimate, not yet measured on a
#: device.
GPU_MIN_ACCESSES = 1 << 16


class MergedWrites(NamedTuple):
    """Result of :func:`merge_writes`, sorted by location (arrays of one module)."""

    location: Any   #: int64 (k,): every written location, ascending, once
    value: Any      #: int64 (k,): its final value
    tx: Any         #: int32 (k,): the transaction that wrote it last


def _module(backend: str | None, size: int, arrays: tuple[Any, ...]) -> Any:
    """NumPy or CuPy for this call. CuPy inputs stay on the device unless the CPU
    is forced; an auto-selected GPU takes only large inputs."""
    on_device = any(type(a).__module__.split(".")[0] == "cupy" for a in arrays)
    name = _backend.resolve(backend)
    if name == "cuda" and (on_device or _backend.is_forced(backend) or size >= GPU_MIN_ACCESSES):
        import cupy
        return cupy
    return np


def _as(xp: Any, array: Any, dtype: Any) -> Any:
    """``array`` as a 1-D contiguous ``dtype`` array of module ``xp``."""
    if xp is np and type(array).__module__.split(".")[0] == "cupy":
        array = array.get()
    return xp.ascontiguousarray(xp.asarray(array), dtype=dtype).reshape(-1)


def _argsort_stable(xp: Any, keys: Any) -> Any:
    # CuPy's argsort is always stable (thrust stable sort) and older versions
    # take no ``kind``; NumPy needs to be asked.
    return np.argsort(keys, kind="stable") if xp is np else keys.argsort()


def _check_tx(xp: Any, tx: Any, name: str) -> None:
    if tx.size and bool((tx < 0).any()):
        raise ValueError(f"{name} must be non-negative transaction indexes")


def merge_writes(location: Any, tx: Any, value: Any,
                 backend: str | None = None) -> MergedWrites:
    """Final value per written location: the write with the highest ``tx`` wins;
    between writes with the same location and ``tx``, the later one in the input.

    Args:
        location: int64 (m,) location ids.
        tx: int32 (m,) writer transaction indexes (non-negative).
        value: int64 (m,) values (or ids of values kept elsewhere).
        backend: ``"cpu"``, ``"cuda"`` or ``None`` (see :mod:`pevm.gpu.backend`).

    Returns:
        :class:`MergedWrites` of NumPy arrays, or CuPy arrays when computed on
        the device.
    """
    xp = _module(backend, len(location), (location, tx, value))
    loc = _as(xp, location, xp.int64)
    txs = _as(xp, tx, xp.int32)
    val = _as(xp, value, xp.int64)
    if not (loc.size == txs.size == val.size):
        raise ValueError("location, tx and value must have the same length")
    _check_tx(xp, txs, "tx")
    if loc.size == 0:
        return MergedWrites(loc, val, txs)
    # Sort by (location, tx) keeping input order among equals: two stable
    # argsorts, the minor key first. (xp.lexsort is not in every CuPy version.)
    order = _argsort_stable(xp, txs)
    order = order[_argsort_stable(xp, loc[order])]
    loc_s = loc[order]
    # The last entry of each location run is its final write.
    last = xp.ones(loc_s.size, dtype=bool)
    last[:-1] = loc_s[1:] != loc_s[:-1]
    pick = order[last]
    return MergedWrites(loc[pick], val[pick], txs[pick])


def latest_writers(read_location: Any, read_tx: Any, write_location: Any,
                   write_tx: Any, backend: str | None = None) -> Any:
    """For each read, the highest writer transaction index strictly below the
    reader's at the same location, or -1 when no earlier transaction wrote it.

    Args:
        read_location: int64 (r,) location ids read.
        read_tx: int32 (r,) reader transaction indexes.
        write_location: int64 (w,) location ids written.
        write_tx: int32 (w,) writer transaction indexes.
        backend: as in :func:`merge_writes`.

    Returns:
        int32 (r,) array (NumPy, or CuPy when computed on the device).
    """
    xp = _module(backend, len(read_location) + len(write_location),
                 (read_location, read_tx, write_location, write_tx))
    rloc = _as(xp, read_location, xp.int64)
    rtx = _as(xp, read_tx, xp.int32)
    wloc = _as(xp, write_location, xp.int64)
    wtx = _as(xp, write_tx, xp.int32)
    if rloc.size != rtx.size or wloc.size != wtx.size:
        raise ValueError("locations and transaction indexes must have matching lengths")
    _check_tx(xp, rtx, "read_tx")
    _check_tx(xp, wtx, "write_tx")
    out = xp.full(rloc.size, -1, dtype=xp.int32)
    if rloc.size == 0 or wloc.size == 0:
        return out
    # Rank-compress the written locations so that (rank, tx) packs into one
    # int64 key, rank * 2**32 + tx: one sort and one searchsorted instead of a
    # two-key binary search. Ranks are < 2**31 and tx < 2**31.
    written = xp.unique(wloc)
    wrank = xp.searchsorted(written, wloc)
    wkey = wrank.astype(xp.int64) * (1 << 32) + wtx.astype(xp.int64)
    wkey = xp.sort(wkey)
    rrank = xp.searchsorted(written, rloc)
    present = rrank < written.size
    present[present] = written[rrank[present]] == rloc[present]
    # The last write key below (rank, reader tx) is the latest earlier writer
    # when it has the same rank.
    rkey = rrank.astype(xp.int64) * (1 << 32) + rtx.astype(xp.int64)
    pos = xp.searchsorted(wkey, rkey, side="left") - 1
    safe = xp.maximum(pos, 0)
    hit = present & (pos >= 0) & ((wkey[safe] >> 32) == rrank)
    out[hit] = (wkey[safe][hit] & 0xFFFFFFFF).astype(xp.int32)
    return out
