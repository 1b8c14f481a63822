"""``pevm info``: versions, engines, and the hashing, signature, BN254, BLAKE2 F and
BLS12-381 backends in use."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
from importlib import metadata
from typing import Any

from pevm.engines import ENGINE_NAMES, default_engine_name
from pevm.host import cpu_description, machine_slowness

#: What ``pevm info`` and ``pevm bench --json`` report the versions of. CuPy is named
#: by what pevm imports, ``cupy``: it ships as one wheel per CUDA version
#: (``cupy-cuda12x``, ``cupy-cuda13x``, ...), and whichever provides it counts.
PACKAGES = ("pevm", "py-evm", "eth-hash", "coincurve", "pyrevm", "blake2b-py",
            "py-arkworks-bls12381", "rlp", "trie", "numpy", "cupy")

#: The precompiles pevm computes with a library where it is installed: the line's
#: name, the JSON key, the module and function that say whether the library runs,
#: and (JSON value, line) with and without it.
PRECOMPILE_LINES: tuple[tuple[str, str, str, str, tuple[str, str], tuple[str, str]], ...] = (
    ("bn254", "bn254_precompiles", "pevm.precompiles", "revm_available",
     ("revm", "revm's outputs through pyrevm, py-evm's gas and errors"),
     ("py-evm", "py-evm's py_ecc (pyrevm not installed: a zk proof's pairing check "
                "takes ~0.5 s)")),
    ("blake2f", "blake2f_precompile", "pevm.precompiles", "blake2f_native",
     ("blake2b-py", "blake2b-py's Rust compression, through py-evm"),
     ("py-evm", "py-evm's pure-Python compression (blake2b-py not installed: ~9 us a "
                "round, a round a unit of gas)")),
    ("bls12_381", "bls12_381_precompiles", "pevm.bls_precompiles", "bls_native",
     ("arkworks", "arkworks' outputs through py-arkworks-bls12381, py-evm's gas and "
                  "errors"),
     ("py-evm", "py-evm's py_ecc (py-arkworks-bls12381 not installed: a two-pair "
                "pairing check takes ~0.85 s)")),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info", help="show versions, engines and the GPU/CPU backend",
        description="Show the machine, package versions, available engines and which "
                    "hashing backend (CUDA through CuPy, or CPU) pevm would use.")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=info_command)


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` or, failing that, of the
    distribution that provides the importable package ``name``; None if neither."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    for distribution in metadata.packages_distributions().get(name, ()):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_info() -> dict[str, Any]:
    """The facts a benchmark or a bug report needs about this machine (``slowness``:
    :func:`~pevm.host.machine_slowness`, how much longer than the cost model's
    reference machine it takes for the engine's kind of work; ``cpu_model`` and
    ``threads_per_core``: :func:`~pevm.host.cpu_description`)."""
    versions: dict[str, str | None] = {name: package_version(name) for name in PACKAGES}
    cpu = cpu_description()
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "cpu_model": cpu["model"],
            "threads_per_core": cpu["threads_per_core"],
            "slowness": round(machine_slowness(), 3), "packages": versions}


def describe_machine(machine: dict[str, Any]) -> str:
    """One line for a :func:`machine_info` record (or an older bench JSON's, which
    lacks the CPU): CPUs, CPU model and threads per core, Python, slowness -- and
    the range of a bench's speed probes where they moved (``slowness_probes``)."""
    threads = machine.get("threads_per_core")
    cpu = ", ".join(part for part in (machine.get("cpu_model"),
                                      _per_core(threads) if threads else None) if part)
    slowness = machine.get("slowness")
    probes = machine.get("slowness_probes") or []
    moved = f" (probed {min(probes):.2f}-{max(probes):.2f}x during the run)" \
        if probes and min(probes) != max(probes) else ""
    return (f"{machine['cpu_count']} CPUs" + (f" ({cpu})" if cpu else "")
            + f", Python {machine['python']}"
            + (f", slowness {slowness}x{moved}" if slowness is not None else ""))


def _per_core(threads: int) -> str:
    return f"{threads} thread{'s' if threads != 1 else ''} per core"


def backend_info() -> dict[str, Any]:
    from pevm.gpu import backend
    try:
        return backend.describe()
    except Exception as exc:  # noqa: BLE001 - a forced but unusable backend: report it
        return {"backend": "unavailable", "error": str(exc)}


def info_command(args: argparse.Namespace) -> int:
    info = machine_info()
    info["engines"] = {"available": list(ENGINE_NAMES), "default": default_engine_name()}
    info["backend"] = backend_info()
    try:
        from eth_keys.backends import get_backend
        info["signature_backend"] = type(get_backend()).__name__
    except Exception:  # pragma: no cover  # noqa: BLE001 - informational only
        info["signature_backend"] = None
    for _name, key, module, function, (fast, _), (slow, _) in PRECOMPILE_LINES:
        native = getattr(importlib.import_module(module), function)()
        info[key] = fast if native else slow
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"python      {info['python']} on {info['platform']} ({info['cpu_count']} CPUs)")
    threads = info["threads_per_core"]
    print(f"cpu         {info['cpu_model'] or 'model unknown'}, "
          + (_per_core(threads) if threads else "threads per core unknown"))
    print(f"slowness    {info['slowness']}x the engine's reference machine "
          "(scales the engine's cost model)")
    for name, version in info["packages"].items():
        print(f"{name:<11} {version or 'not installed'}")
    print(f"engines     {', '.join(info['engines']['available'])} "
          f"(default {info['engines']['default']})")
    print(f"signatures  {info['signature_backend']}")
    for name, key, _module, _function, (fast, with_it), (_, without) in PRECOMPILE_LINES:
        print(f"{name:<11} {with_it if info[key] == fast else without}")
    print(f"backend     {json.dumps(info['backend'])}")
    return 0
