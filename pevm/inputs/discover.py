"""From command-line paths to runnable cases.

A path is a BlockchainTests JSON file, a mainnet snapshot directory, or a directory
searched recursively for both. Discovery only lists sources; files are parsed when
their cases are run, so a large corpus starts at once and streams.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Protocol

from pevm.compare import Mismatch
from pevm.errors import InputError
from pevm.inputs.blockchain_tests import FixtureCase, load_cases, looks_like_blockchain_tests, read_json
from pevm.inputs.mainnet import is_snapshot_dir, load_snapshot
from pevm.task import BlockTask


class CaseRun(Protocol):
    """One pass over a case's blocks, each on the state the previous one left."""

    def tasks(self) -> Iterator[BlockTask]: ...

    def final_mismatches(self) -> list[Mismatch]: ...


class Case(Protocol):
    """A unit of work: a chain of blocks (fixture case) or one snapshot block."""

    source: str
    name: str

    @property
    def network(self) -> str: ...

    def start(self) -> CaseRun: ...


@dataclass
class Source:
    """A fixture file or a snapshot directory."""

    path: str
    kind: str  # "fixture" | "snapshot"
    explicit: bool  # named on the command line (not found by a directory walk)

    def cases(self) -> list[Case]:
        """The source's cases (raises InputError for unreadable input)."""
        if self.kind == "snapshot":
            return [SnapshotCase(self.path)]
        data = read_json(self.path)
        if not looks_like_blockchain_tests(data):
            raise InputError(self.path, "not a BlockchainTests file (expected "
                                        "{case name: {..., 'blocks': [...]}})")
        return list(load_cases(self.path, data))


class SnapshotCase:
    """A mainnet snapshot directory as a one-block case."""

    def __init__(self, path: str) -> None:
        self.source = path
        self.name = f"mainnet-{os.path.basename(os.path.normpath(path))}"
        self._network: str | None = None

    @property
    def network(self) -> str:
        if self._network is None:
            from pevm.forks import mainnet_vm_class
            try:
                number = int(os.path.basename(os.path.normpath(self.source)))
                self._network = mainnet_vm_class(number).fork
            except ValueError:
                self._network = "mainnet"
        return self._network

    def start(self) -> "SnapshotRun":
        return SnapshotRun(load_snapshot(self.source))


class SnapshotRun:
    def __init__(self, task: BlockTask) -> None:
        self.task = task

    def tasks(self) -> Iterator[BlockTask]:
        yield self.task

    def final_mismatches(self) -> list[Mismatch]:
        return []


def discover(paths: list[str]) -> Iterator[Source]:
    """Every source under ``paths``, in a stable (sorted) order."""
    for path in paths:
        if not os.path.exists(path):
            raise InputError(path, "no such file or directory")
        if os.path.isdir(path):
            if is_snapshot_dir(path):
                yield Source(path, "snapshot", True)
                continue
            yield from _walk(path)
        else:
            yield Source(path, "fixture", True)


def _walk(root: str) -> Iterator[Source]:
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        if is_snapshot_dir(directory):
            subdirs[:] = []
            yield Source(directory, "snapshot", False)
            continue
        for name in sorted(files):
            if name.endswith(".json"):
                yield Source(os.path.join(directory, name), "fixture", False)


__all__ = ["Case", "CaseRun", "FixtureCase", "SnapshotCase", "Source", "discover"]
