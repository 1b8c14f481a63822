"""``pevm run --cluster``: the same verdicts on a real Dask cluster, failures contained.

Every test here runs real worker processes (no mocks). A worker is killed from
inside the cluster by a test-only Dask worker plugin that the test registers itself,
so pevm has no crash hook of its own.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pevm.cli.main import main

from .conftest import FIXTURES, corpus_dir

EIP1559 = "ethtests/ethereum-tests/BlockchainTests/ValidBlocks/bcEIP1559"

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason='needs Dask: pip install "pevm[cluster]"')


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of small BlockchainTests files, one block of one case made wrong.

    The repository's own ``fixtures/`` when it has any (at most six, smallest
    first), else the corpus's bcEIP1559 files. One header gasUsed is altered, so the
    runs also have to agree on a failure and its mismatch, not only on passes.
    """
    own = sorted(FIXTURES.glob("*.json"), key=lambda p: p.stat().st_size)[:6]
    if own:
        files = own
    else:
        corpus = corpus_dir()
        if corpus is None or not (corpus / EIP1559).is_dir():
            pytest.skip(f"no fixtures/*.json and no corpus {EIP1559} (set PEVM_CORPUS)")
        files = sorted((corpus / EIP1559).glob("*.json"))
    directory = tmp_path_factory.mktemp("cluster-inputs")
    for path in files:
        shutil.copyfile(path, directory / path.name)
    broken = directory / files[0].name
    data = json.loads(broken.read_text())
    fixture = next(iter(data.values()))
    header = next(b["blockHeader"] for b in fixture["blocks"] if "blockHeader" in b)
    header["gasUsed"] = hex(int(header["gasUsed"], 16) + 1)
    broken.write_text(json.dumps(data))
    return directory


def _verdicts(out: str) -> dict[tuple[str, str, Any], tuple[Any, ...]]:
    """JSON lines as {(source, case, block): (status, mismatches, gas_used, txs)}."""
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    table = {(r["source"], r["case"], r["block"]):
             (r["status"], json.dumps(r["mismatches"], sort_keys=True), r["gas_used"],
              r["txs"]) for r in rows}
    assert len(table) == len(rows), "a block was reported twice"
    return table


@pytest.fixture(scope="module")
def local_run(inputs: Path) -> tuple[int, dict[tuple[str, str, Any], tuple[Any, ...]]]:
    """The in-process run every cluster run must agree with."""
    capture = _Capture()
    with capture:
        code = main(["run", str(inputs), "--engine", "reference", "--check", "--json",
                     "-q"])
    verdicts = _verdicts(capture.out)
    assert code == 1  # the altered block
    assert sum(v[0] == "failed" for v in verdicts.values()) == 1
    return code, verdicts


class _Capture:
    """stdout/stderr capture usable from a module-scoped fixture."""

    def __enter__(self) -> _Capture:
        import io
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self._out, self._err = io.StringIO(), io.StringIO()
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stdout, sys.stderr = self._saved
        self.out, self.err = self._out.getvalue(), self._err.getvalue()


@needs_dask
def test_local_cluster_gives_the_same_verdicts(
        inputs: Path, local_run: tuple[int, dict], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = local_run
    # A relative path: workers get it made absolute, reports name it as given.
    monkeypatch.chdir(inputs.parent)
    got_code = main(["run", inputs.name, "--engine", "reference", "--check", "--json",
                     "-q", "--cluster", "local:2"])
    captured = capsys.readouterr()
    got = _verdicts(captured.out)
    assert got_code == code
    assert got == {(os.path.relpath(source, inputs.parent), case, block): verdict
                   for (source, case, block), verdict in expected.items()}
    assert "pevm run: engine reference" in captured.err  # summary as in a local run


# -- a cluster the tests own: its address is passed like a remote scheduler's ------

@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two single-threaded worker processes, as ``--cluster local:2`` starts them."""
    if importlib.util.find_spec("distributed") is None:
        pytest.skip('needs Dask: pip install "pevm[cluster]"')
    import logging

    import dask
    from distributed import LocalCluster

    # As pevm configures its own local clusters (pevm.cluster._LocalClient), but a
    # task may kill one worker, not two.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)
    try:
        yield cluster
    finally:
        cluster.close()


def _crash_plugin(marker_dir: str, index: int | None) -> Any:
    """A worker plugin that kills its worker process when a pevm case starts.

    ``index`` None: the first case to start anywhere, once (a marker file makes it
    once per cluster). Otherwise every start of case ``index`` (a poison task).
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class CrashWorker(WorkerPlugin):
        name = "pevm-test-crash"

        def __init__(self) -> None:
            self.marker_dir, self.index = marker_dir, index

        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            if finish != "executing" or not str(key).startswith("pevm-case-"):
                return
            if self.index is None:
                try:
                    fd = os.open(os.path.join(self.marker_dir, "killed"),
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return
                os.close(fd)
            elif not str(key).startswith(f"pevm-case-{self.index}-"):
                return
            else:
                with open(os.path.join(self.marker_dir, "kills"), "a") as log:
                    log.write(f"{key}\n")
            os._exit(17)

    return CrashWorker()


def _suspicious(cluster: Any) -> int:
    prefix = cluster.scheduler.task_prefixes.get("pevm-case")
    return prefix.suspicious if prefix is not None else 0


@needs_dask
def test_worker_killed_mid_case_is_retried_and_run_completes(
        inputs: Path, local_run: tuple[int, dict], cluster: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from distributed import Client

    code, expected = local_run
    with Client(cluster, set_as_default=False) as client:
        client.register_plugin(_crash_plugin(str(tmp_path), None))
        try:
            before = _suspicious(cluster)
            got_code = main(["run", str(inputs), "--engine", "reference", "--json",
                             "-q", "--check", "--cluster", cluster.scheduler_address])
        finally:
            client.unregister_worker_plugin("pevm-test-crash")
    got = _verdicts(capsys.readouterr().out)
    assert (tmp_path / "killed").exists(), "no worker was killed"
    # The scheduler saw a worker die while it ran a case, and ran the case again.
    assert _suspicious(cluster) == before + 1
    assert got_code == code
    assert got == expected


@needs_dask
def test_task_that_kills_every_worker_becomes_an_error_report(
        inputs: Path, local_run: tuple[int, dict], cluster: Any, tmp_path: Path
) -> None:
    from distributed import Client

    from pevm.cluster import run_on_cluster
    from pevm.inputs.discover import list_cases

    cases = list_cases([str(inputs)]).cases
    with Client(cluster, set_as_default=False) as client:
        client.register_plugin(_crash_plugin(str(tmp_path), 2))
        try:
            results = list(run_on_cluster(cases, cluster.scheduler_address,
                                          "reference", 1, False))
        finally:
            client.unregister_worker_plugin("pevm-test-crash")
    kills = (tmp_path / "kills").read_text().splitlines()
    assert len(kills) == 2  # allowed-failures 1: one rerun, then the task is given up
    assert len(results) == len(cases)
    poisoned = [reports for reports in results if reports[0].case == cases[2].name]
    assert len(poisoned) == 1
    (report,) = poisoned[0]
    assert report.status == "error" and report.source == cases[2].source
    assert report.error is not None and "KilledWorker" in report.error
    others = {(r.source, r.case, r.block): r.status
              for reports in results if reports is not poisoned[0] for r in reports}
    _, expected = local_run
    assert others == {key: value[0] for key, value in expected.items()
                      if key[1] != cases[2].name}


@needs_dask
def test_task_that_raises_becomes_an_error_report(inputs: Path, cluster: Any) -> None:
    from pevm.cluster import run_on_cluster
    from pevm.inputs.discover import list_cases

    cases = list_cases([str(inputs)]).cases
    # The engine is built inside the worker: an unknown name raises there.
    results = list(run_on_cluster(cases, cluster.scheduler_address, "no-such-engine",
                                  1, False))
    assert sorted(r[0].case for r in results) == sorted(c.name for c in cases)
    for (report,) in results:
        assert report.status == "error" and report.error is not None
        assert "ValueError: unknown engine 'no-such-engine'" in report.error


# -- without Dask, and bad addresses ----------------------------------------------

def test_missing_dask_is_one_clear_line(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    code = main(["run", str(inputs), "--engine", "reference", "--cluster", "local:2"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pevm: error:")
    assert 'pip install "pevm[cluster]"' in lines[0]


@pytest.mark.parametrize("address", ["local:0", "local:x", "local:", " ", ""])
def test_bad_local_address_is_a_usage_error(inputs: Path, address: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(inputs), "--engine", "reference", "--cluster", address])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pevm: error: --cluster") and len(err.splitlines()) == 1


@needs_dask
@pytest.mark.parametrize("address", ["nonsense://host:1", "tcp://host:port", "tcp://",
                                     "inproc://x"])
def test_malformed_scheduler_address_is_a_usage_error(
        inputs: Path, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(inputs), "--engine", "reference", "--cluster", address])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"pevm: error: --cluster {address}: not a Dask scheduler "
                          f"address") and len(err.splitlines()) == 1


@needs_dask
def test_inputs_the_workers_cannot_see_stop_the_run_early(
        inputs: Path, cluster: Any, tmp_path: Path) -> None:
    from pevm.cluster import run_on_cluster
    from pevm.errors import PevmError
    from pevm.inputs.discover import CaseRef

    gone = CaseRef(str(tmp_path / "not-there.json"), "case", "fixture", "Cancun")
    with pytest.raises(PevmError, match="cannot see .*not-there.json; every worker "
                                        "needs the inputs at the same absolute path"):
        list(run_on_cluster([gone], cluster.scheduler_address, "reference", 1, False))


def test_cases_are_submitted_largest_first(tmp_path: Path) -> None:
    from pevm.cluster import _largest_first
    from pevm.inputs.discover import CaseRef

    small, big = tmp_path / "small.json", tmp_path / "big.json"
    small.write_text("x" * 100)
    big.write_text("x" * 1000)
    refs = [CaseRef(str(small), "a", "fixture", "Cancun"),
            CaseRef(str(big), "b1", "fixture", "Cancun"),
            CaseRef(str(big), "b2", "fixture", "Cancun"),  # 500 bytes per case
            CaseRef(str(tmp_path / "gone.json"), "c", "fixture", "Cancun")]
    assert _largest_first(refs) == [1, 2, 0, 3]
