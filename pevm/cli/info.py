"""``pevm info``: versions, engines and the hashing backend in use."""
from __future__ import annotations

import argparse
import json
import os
import platform
from importlib import metadata
from typing import Any

from pevm.engines import ENGINE_NAMES, default_engine_name, parallel_available

PACKAGES = ("pevm", "py-evm", "eth-hash", "coincurve", "rlp", "trie", "numpy", "cupy-cuda12x")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info", help="show versions, engines and the GPU/CPU backend",
        description="Show the machine, package versions, available engines and which "
                    "hashing backend (CUDA through CuPy, or CPU) pevm would use.")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=info_command)


def machine_info() -> dict[str, Any]:
    """The facts a benchmark or a bug report needs about this machine."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "packages": versions}


def backend_info() -> dict[str, Any]:
    try:
        from pevm.gpu import backend
        return backend.describe()
    except ImportError:
        return {"backend": "cpu", "note": "GPU layer not built"}
    except Exception as exc:  # a forced but unusable backend: report, don't crash
        return {"backend": "unavailable", "error": str(exc)}


def info_command(args: argparse.Namespace) -> int:
    info = machine_info()
    info["engines"] = {"available": [n for n in ENGINE_NAMES
                                     if n != "parallel" or parallel_available()],
                       "default": default_engine_name()}
    info["backend"] = backend_info()
    try:
        from eth_keys.backends import get_backend
        info["signature_backend"] = type(get_backend()).__name__
    except Exception:  # pragma: no cover - informational only
        info["signature_backend"] = None
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"python      {info['python']} on {info['platform']} ({info['cpu_count']} CPUs)")
    for name, version in info["packages"].items():
        print(f"{name:<12}{version or 'not installed'}")
    print(f"engines     {', '.join(info['engines']['available'])} "
          f"(default {info['engines']['default']})")
    print(f"signatures  {info['signature_backend']}")
    print(f"backend     {json.dumps(info['backend'])}")
    return 0
