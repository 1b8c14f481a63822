"""Rebuild the committed contract bytecode from its sources.

    python -m pevm.workloads.build           # rewrite pevm/workloads/easm/*.hex
    python -m pevm.workloads.build --check   # exit 1 when a .hex differs from its source

Assembly is deterministic (no compiler, no versions, no timestamps), so a rebuild
of unchanged sources gives byte-identical files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pevm.workloads.contracts import CONTRACTS, build_all

CONTRACTS_DIR = Path(__file__).resolve().parent / "easm"


def hex_text(code: bytes) -> str:
    return code.hex() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pevm.workloads.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when a .hex file is stale")
    args = parser.parse_args(argv)
    built = build_all()
    stale = []
    for name in CONTRACTS:
        path = CONTRACTS_DIR / f"{name}.hex"
        text = hex_text(built[name])
        current = path.read_text() if path.exists() else None
        if current == text:
            print(f"{name:12s} {len(built[name]):5d} bytes  up to date")
            continue
        stale.append(name)
        if args.check:
            print(f"{name:12s} {len(built[name]):5d} bytes  STALE ({path})")
        else:
            path.write_text(text)
            print(f"{name:12s} {len(built[name]):5d} bytes  written to {path}")
    if args.check and stale:
        print(f"{len(stale)} contract(s) differ from their sources; run "
              f"'python -m pevm.workloads.build'", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
