"""The files pevm's commands write: checked before the work, written whole or not at all.

A benchmark can run for minutes before it writes its JSON, plot or trace; a path it
cannot write must stop it at the start (:func:`check_writable`), not cost the run at
its end. And a write that fails half-way -- a full disk, an interrupt -- must not
leave half a file where a reader expects a whole one (:func:`write_atomically`: a
temporary file in the same directory, renamed over the target once complete).
"""
from __future__ import annotations

import os
import tempfile

from pevm.errors import PevmError


class OutputError(PevmError):
    """An output file cannot be written."""


def check_writable(path: str) -> None:
    """Raise :class:`OutputError` unless a file can be written at ``path`` (its
    directory exists and is writable; it is not a directory; an existing file is
    writable). ``-`` (standard output) always can."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{path}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: directory {folder} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputError(f"{path}: file is not writable")


def write_atomically(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole, or leave ``path`` as it was and raise
    :class:`OutputError`."""
    payload = data.encode() if isinstance(data, str) else data
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".pevm-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
