#!/usr/bin/env python3
"""Rebuild the workload contracts' committed bytecode from their sources.

Same as ``python -m pevm.workloads.build``: assembles pevm/workloads/easm/*.easm
with pevm's own assembler and rewrites the *.hex files beside them. ``--check``
only compares (exit 1 when a .hex file is stale). No compiler is needed.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pevm.workloads.build import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
