"""From command-line paths to runnable cases.

A path is a BlockchainTests JSON file, a mainnet snapshot directory, or a directory
searched recursively for both. :func:`list_cases` names every case as a small,
picklable :class:`CaseRef` (file + case name), so a case can be shipped to another
process or machine and loaded there from the shared path; :meth:`CaseRef.load`
turns it into a runnable :class:`Case`.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pevm.abc import Case, CaseRun
from pevm.compare import Mismatch
from pevm.errors import InputError
from pevm.forks import mainnet_vm_class
from pevm.inputs.blockchain_tests import (FixtureCase, load_cases,
                                          looks_like_blockchain_tests, read_json)
from pevm.inputs.mainnet import (SNAPSHOT_FILES, absent_snapshot_files, is_snapshot_dir,
                                 load_snapshot, missing_snapshot_file)
from pevm.state.backend import StateBackend
from pevm.task import BlockTask


@dataclass(frozen=True)
class CaseRef:
    """A case by name: cheap to list, to filter and to send to another process."""

    source: str
    name: str
    kind: str  # "fixture" | "snapshot"
    network: str

    def load(self) -> Case:
        """The runnable case (raises InputError for unreadable input)."""
        if self.kind == "snapshot":
            return SnapshotCase(self.source)
        for case in _fixture_cases(self.source):
            if case.name == self.name:
                return case
        raise InputError(self.source, f"no case named {self.name!r}")


@lru_cache(maxsize=1)
def _fixture_cases(path: str) -> tuple[FixtureCase, ...]:
    # Cases of one file are run one after another: parse the file once for all.
    data = read_json(path)
    if not looks_like_blockchain_tests(data):
        raise InputError(path, "not a BlockchainTests file (expected "
                               "{case name: {..., 'blocks': [...]}})")
    return tuple(load_cases(path, data))


@dataclass
class Listing:
    """What a set of paths holds: runnable cases and the paths that could not be read."""

    cases: list[CaseRef] = field(default_factory=list)
    #: (path, message, named explicitly on the command line)
    problems: list[tuple[str, str, bool]] = field(default_factory=list)

    def matching(self, text: str | None) -> list[CaseRef]:
        """The cases whose name or file path contains ``text`` (all for None)."""
        return [ref for ref in self.cases
                if not text or text in ref.name or text in ref.source]

    def skip_reasons(self) -> Counter[str]:
        """How many paths found on the way (not named) were passed over, by short
        reason: "not a BlockchainTests file", "not valid JSON", "a snapshot
        directory without pre_state.json", ..."""
        return Counter(message.split(" (")[0].split(": ")[0]
                       for _path, message, explicit in self.problems if not explicit)

    def raise_for_named(self) -> None:
        """An InputError for the first unreadable path the user named explicitly."""
        for path, message, explicit in self.problems:
            if explicit:
                raise InputError(path, message)


def skips_text(reasons: Counter[str]) -> str:
    """``reasons`` (:meth:`Listing.skip_reasons`, and any the caller adds) as one
    clause: ``"1 skipped: not valid JSON; 2 skipped: ..."``, "" for none."""
    return "; ".join(f"{count} skipped: {reason}"
                     for reason, count in sorted(reasons.items()))


def list_cases(paths: list[str]) -> Listing:
    """Every case under ``paths``, in a stable order (sorted directory walks)."""
    listing = Listing()
    for path, kind, explicit in _sources(paths):
        if kind == "partial snapshot":
            listing.problems.append((path, (
                f"a snapshot directory without {missing_snapshot_file(path)} (needs "
                f"{' and '.join(SNAPSHOT_FILES)})"), explicit))
            continue
        if kind == "snapshot":
            listing.cases.append(CaseRef(path, snapshot_name(path), "snapshot",
                                         snapshot_network(path)))
            continue
        try:
            cases = _fixture_cases(path)
        except InputError as exc:
            listing.problems.append((path, exc.message, explicit))
            continue
        listing.cases.extend(CaseRef(path, c.name, "fixture", c.network) for c in cases)
    return listing


def _sources(paths: list[str]) -> Iterator[tuple[str, str, bool]]:
    for path in paths:
        if not os.path.exists(path):
            raise InputError(path, "no such file or directory")
        if os.path.isdir(path):
            if is_snapshot_dir(path):
                yield path, "snapshot", True
                continue
            for directory, subdirs, files in os.walk(path):
                subdirs.sort()
                absent = len(absent_snapshot_files(directory))
                if not absent:
                    subdirs[:] = []
                    yield directory, "snapshot", False
                    continue
                partial = absent == 1
                if partial:  # its one file is no BlockchainTests file: say why
                    yield directory, "partial snapshot", directory == path
                for name in sorted(files):
                    if partial and name in SNAPSHOT_FILES:
                        continue
                    if name.endswith(".json"):
                        yield os.path.join(directory, name), "fixture", False
        else:
            yield path, "fixture", True


def _snapshot_label(path: str) -> str:
    """A snapshot directory's name without a leading ``mainnet-``: the corpus names
    them by block number (``13217637``), copies elsewhere often by case name
    (``mainnet-13217637``), and both are the same case."""
    base = os.path.basename(os.path.normpath(path))
    return base.removeprefix("mainnet-")


def snapshot_name(path: str) -> str:
    return f"mainnet-{_snapshot_label(path)}"


def snapshot_network(path: str) -> str:
    """The fork of a snapshot named by its block number (else "mainnet")."""
    try:
        return mainnet_vm_class(int(_snapshot_label(path))).fork
    except ValueError:
        return "mainnet"


class SnapshotCase:
    """A mainnet snapshot directory as a one-block case."""

    def __init__(self, path: str) -> None:
        self.source = path
        self.name = snapshot_name(path)
        self.network = snapshot_network(path)

    def start(self, backend: StateBackend = StateBackend.PYEVM) -> SnapshotRun:
        return SnapshotRun(load_snapshot(self.source, backend))


class SnapshotRun:
    def __init__(self, task: BlockTask) -> None:
        self.task = task

    def tasks(self) -> Iterator[BlockTask]:
        yield self.task

    def final_mismatches(self) -> list[Mismatch]:
        return []


__all__: list[Any] = ["Case", "CaseRef", "CaseRun", "Listing", "SnapshotCase",
                      "list_cases"]
