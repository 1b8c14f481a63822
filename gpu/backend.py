"""Which backend the GPU layer runs on: CUDA through CuPy, or the CPU.

``PEVM_GPU`` chooses: ``auto`` (the default) picks ``cuda`` when CuPy imports *and*
a CUDA device answers, else ``cpu``; ``cpu`` and ``cuda`` force one. Forcing
``cuda`` where it cannot work raises :class:`BackendUnavailable`, a
:class:`~pevm.errors.PevmError`, so the CLI prints one line instead of a traceback.

CuPy is imported lazily, only here and only when a CUDA backend is asked about:
importing :mod:`pevm.gpu` never needs it.
"""
from __future__ import annotations

import functools
import os
from typing import Any

from pevm.errors import PevmError

#: Environment variable that forces a backend.
ENV_VAR = "PEVM_GPU"
#: Values ``PEVM_GPU`` and every ``backend=`` argument accept.
CHOICES = ("auto", "cpu", "cuda")


class BackendError(PevmError):
    """A backend name that is not one of :data:`CHOICES`."""


class BackendUnavailable(BackendError):
    """The CUDA backend was forced but CuPy or a working device is missing."""


@functools.lru_cache(maxsize=1)
def _probe_cuda() -> tuple[bool, str]:
    """(usable, reason): whether CuPy imports and device 0 runs a kernel.

    Cached: the answer does not change within a process, and asking the driver
    costs tens of milliseconds. A device count alone is not enough (a driver
    without a usable device, or a CuPy built for another CUDA, fails later), so a
    tiny computation is run as well.
    """
    try:
        import cupy  # optional dependency
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken CUDA library
        return False, f"CuPy is not importable ({type(exc).__name__}: {exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return False, "CuPy found no CUDA device"
        probe = cupy.arange(4, dtype=cupy.uint64) * 3
        if int(probe.sum()) != 18:
            return False, "CUDA device returned a wrong result"
    except Exception as exc:  # noqa: BLE001 - CUDARuntimeError, driver errors, ...
        return False, f"no working CUDA device ({type(exc).__name__}: {exc})"
    return True, "ok"


def cuda_available() -> bool:
    """True when CuPy imports and a CUDA device runs a kernel."""
    return _probe_cuda()[0]


def requested() -> str:
    """The backend the environment asks for: ``PEVM_GPU`` lower-cased, ``auto`` if unset."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    return value or "auto"


def resolve(backend: str | None = None) -> str:
    """The backend to use, ``"cpu"`` or ``"cuda"``.

    ``backend`` (an explicit argument) wins over ``PEVM_GPU``; ``None`` or
    ``"auto"`` defer to the environment, then to detection.

    Raises:
        BackendError: the name is not one of :data:`CHOICES`.
        BackendUnavailable: ``cuda`` was forced and cannot run here.
    """
    choice = (backend or "auto").lower()
    source = "backend argument"
    if choice == "auto":
        choice, source = requested(), f"{ENV_VAR}"
    if choice not in CHOICES:
        raise BackendError(f"{source} must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "cpu":
        return "cpu"
    usable, reason = _probe_cuda()
    if choice == "cuda":
        if not usable:
            raise BackendUnavailable(f"CUDA backend forced ({source}=cuda) but {reason}")
        return "cuda"
    return "cuda" if usable else "cpu"


def is_forced(backend: str | None = None) -> bool:
    """True when the argument or ``PEVM_GPU`` names a backend instead of ``auto``.

    Callers use it to decide whether small batches may go to the CPU anyway
    (launch and transfer costs dominate them on a GPU) or must obey the choice.
    """
    choice = (backend or "auto").lower()
    if choice == "auto":
        choice = requested()
    return choice != "auto"


def backend_name() -> str:
    """``"cuda"`` or ``"cpu"``: the backend :func:`resolve` picks with no argument."""
    return resolve(None)


def describe() -> dict[str, Any]:
    """Facts for ``pevm info`` and benchmark reports; never raises.

    Keys: ``backend`` (``cpu``, ``cuda``, or ``unavailable`` with ``error``),
    ``requested`` (the ``PEVM_GPU`` value), ``cupy`` (version or None), ``device``,
    ``compute_capability`` and ``memory_gib`` when a device is usable, and
    ``cuda_note`` saying why CUDA is not used when it is not.
    """
    info: dict[str, Any] = {"requested": requested(), "cupy": None, "device": None}
    try:
        info["backend"] = backend_name()
    except BackendError as exc:
        info["backend"] = "unavailable"
        info["error"] = str(exc)
    try:
        import cupy
        info["cupy"] = cupy.__version__
    except Exception:  # noqa: BLE001 - informational: the probe below says why
        pass
    usable, reason = _probe_cuda()
    if usable:
        import cupy
        try:
            device = cupy.cuda.Device(0)
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props.get("name", b"")
            info["device"] = name.decode() if isinstance(name, bytes) else str(name)
            info["compute_capability"] = device.compute_capability
            info["memory_gib"] = round(device.mem_info[1] / 2**30, 1)
        except Exception as exc:  # noqa: BLE001 - informational only
            info["device_error"] = str(exc)
    else:
        info["cuda_note"] = reason
    from pevm.gpu.keccak import cpu_method_info
    info["keccak_cpu"] = cpu_method_info()
    return info
