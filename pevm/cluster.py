"""Run ``pevm run`` cases on a Dask distributed cluster: ``pevm run --cluster``.

A corpus of block fixtures is embarrassingly parallel across cases, so a cluster
runs one Dask task per case. A task carries only a :class:`~pevm.inputs.discover.CaseRef`
(file path + case name), never the case's data: the worker reads the file from the
path itself, so every worker needs the inputs at the same absolute path, and pevm
installed (``pip install "pevm[cluster]"``). Workers build their engines themselves
and import pevm on their own (Dask starts its worker processes with ``spawn``), so
no per-process state of the submitting process leaks into a task.

Failures stay contained: a task that raises, or that keeps killing its workers, comes
back as an ``error`` :class:`~pevm.runner.BlockReport` carrying the error text, and the
run goes on. A worker that dies while running a task has that task rescheduled on
another worker by the scheduler (up to ``distributed.scheduler.allowed-failures``
worker deaths per task; :data:`ALLOWED_FAILURES` for clusters started here).

Addresses: ``local`` or ``local:N`` start a :class:`distributed.LocalCluster` of N
single-threaded worker processes on this machine (default: the CPU count); anything
else is the address of a running scheduler (``tcp://host:8786``) to connect to.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from types import ModuleType
from typing import Any

from pevm.host import usable_cores
from pevm.errors import PevmError, describe
from pevm.inputs.discover import CaseRef
from pevm.runner import ERROR, BlockReport, run_case_ref

#: How a missing Dask installation is reported (one line, with the fix).
MISSING_DASK = ('--cluster needs Dask distributed, which is not installed: '
                'pip install "pevm[cluster]"')

#: Worker deaths a task may cause on a cluster started here before it is reported as
#: an error (the scheduler's ``allowed-failures``; a remote scheduler uses its own).
ALLOWED_FAILURES = 3

#: Re-runs of a task that raised an exception (worker deaths are counted separately,
#: above). One retry covers a transient failure without tripling a real bug's cost.
TASK_RETRIES = 1

#: Seconds to wait for a remote scheduler to have at least one worker.
WORKER_WAIT_SECONDS = 60.0

#: How many distinct input files the pre-flight check looks for on every worker.
PREFLIGHT_PATHS = 16

#: Key prefix of the per-case tasks (as shown on Dask's dashboard).
TASK_PREFIX = "pevm-case"


def require_distributed() -> ModuleType:
    """The ``distributed`` module, or a :class:`PevmError` saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise PevmError(MISSING_DASK) from exc
    return distributed


def parse_address(address: str) -> tuple[str, int | None]:
    """``("local", N)`` for ``local``/``local:N``, else ``("remote", None)``."""
    text = address.strip()
    if not text:
        raise PevmError("--cluster: empty address (use local, local:N or tcp://host:port)")
    if text == "local":
        return "local", usable_cores()
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise PevmError(f"--cluster {address}: expected local:N with N a positive "
                            f"number of worker processes")
        return "local", int(count)
    return "remote", None


def check_cluster_args(address: str) -> None:
    """Fail early (before listing inputs) when ``--cluster`` cannot work here."""
    kind, _ = parse_address(address)
    require_distributed()
    if kind == "remote":
        _check_scheme(address)


def _check_scheme(address: str) -> None:
    """A scheduler address is ``[scheme://]host:port`` with a scheme Dask knows.

    Checked before a Client is made: a Client built from a malformed address fails
    and then stalls for 20 s while it is garbage-collected.
    """
    from distributed.comm.addressing import parse_address as split_address
    from distributed.comm.registry import get_backend

    try:
        scheme, location = split_address(address.strip())
        if scheme == "inproc":
            raise ValueError("inproc addresses are for a scheduler in this process")
        try:
            get_backend(scheme).get_address_host_port(location)
        except NotImplementedError:  # a transport without host:port addresses
            pass
    except ValueError as exc:
        raise PevmError(f"--cluster {address}: not a Dask scheduler address ({exc}); "
                        f"use local, local:N or tcp://host:port") from exc


def run_on_cluster(cases: list[CaseRef], address: str, engine_name: str, workers: int,
                   check: bool) -> Iterator[list[BlockReport]]:
    """Run every case as one Dask task; yield each case's reports as it completes.

    ``engine_name`` and ``workers`` are what :func:`pevm.engines.make_engine` builds in
    each worker (``workers`` are the parallel engine's own processes inside one Dask
    worker); ``check`` also runs the py-evm reference there. Reports come back in
    completion order, with the same ``source`` as the given refs. The client, and a
    local cluster started for the run, are closed at the end, on an error and on
    Ctrl-C (or when the caller stops iterating).
    """
    kind, count = parse_address(address)
    distributed = require_distributed()
    return _stream(distributed, cases, address, kind, count, engine_name, workers, check)


def _stream(distributed: ModuleType, cases: list[CaseRef], address: str, kind: str,
            count: int | None, engine_name: str, workers: int, check: bool
            ) -> Iterator[list[BlockReport]]:
    if not cases:
        return
    with ExitStack() as stack:
        client = stack.enter_context(_connect(distributed, address, kind, count))
        shipped = [_absolute(ref) for ref in cases]
        _preflight(client, shipped)
        futures: dict[Any, CaseRef] = {}
        try:
            # One map, not a submit per case: the scheduler then sees the whole group
            # at once and queues it, handing each worker only what it can run now.
            # Queued tasks start in map order: biggest cases first, so that a long
            # case does not start last and leave the other workers idle at the end.
            order = _largest_first(shipped)
            total = len(order)
            run = uuid.uuid4().hex
            submitted = client.map(
                run_case_task, [shipped[i] for i in order], [engine_name] * total,
                [workers] * total, [check] * total,
                key=[f"{TASK_PREFIX}-{i}-{run}" for i in order],
                retries=TASK_RETRIES, pure=False)
            futures.update(zip(submitted, [cases[i] for i in order]))
            for future in distributed.as_completed(list(futures), loop=client.loop):
                ref = futures.pop(future)
                reports = _collect(future, ref)
                future.release()
                yield reports
        finally:
            # Ctrl-C, an error, or a caller that stopped iterating: drop what is left.
            if futures:
                try:
                    client.cancel(list(futures), force=True)
                except Exception:  # noqa: BLE001 - best effort while shutting down
                    pass


def _connect(distributed: ModuleType, address: str, kind: str, count: int | None
             ) -> Any:
    """A client (as a context manager that also closes a local cluster)."""
    if kind == "local":
        return _LocalClient(distributed, count or 1)
    _check_scheme(address)
    try:
        client = distributed.Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PevmError(f"--cluster: cannot connect to a Dask scheduler at {address}: "
                        f"{exc}") from exc
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except (TimeoutError, OSError) as exc:
        client.close()
        raise PevmError(f"--cluster: the scheduler at {address} has no workers "
                        f"(waited {WORKER_WAIT_SECONDS:.0f} s); start some with "
                        f"`dask worker {address}`") from exc
    return client


class _LocalClient:
    """A LocalCluster of single-threaded worker processes and a client to it."""

    def __init__(self, distributed: ModuleType, count: int) -> None:
        self.distributed = distributed
        self.count = count
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        import dask

        # Not daemonic, so that the parallel engine may start its own processes
        # inside a worker; allowed-failures bounds the reruns of a worker-killing task;
        # saturation 1.0 hands a worker only the case it runs, so a worker's death is
        # blamed on that case alone, not on cases queued behind it.
        # The preload (dask_setup below) keeps Ctrl-C from the workers: the client
        # process takes it and shuts the cluster down in order. Dask's statistical
        # profiler samples the running task's deep py-evm stack every 10 ms; it cost
        # about a quarter of the workers' CPU time here, and there is no dashboard.
        with dask.config.set({"distributed.worker.daemon": False,
                              "distributed.worker.preload": [__name__],
                              "distributed.worker.profile.enabled": False,
                              "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                              "distributed.scheduler.worker-saturation": 1.0}):
            self.cluster = self.distributed.LocalCluster(
                n_workers=self.count, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR)
        try:
            self.client = self.distributed.Client(self.cluster, set_as_default=False)
        except BaseException:
            self.cluster.close()
            raise
        return self.client

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.client is not None:
                self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _absolute(ref: CaseRef) -> CaseRef:
    """The ref with an absolute path: workers need not share our working directory."""
    source = os.path.abspath(ref.source)
    if source == ref.source:
        return ref
    return CaseRef(source, ref.name, ref.kind, ref.network)


def _largest_first(refs: list[CaseRef]) -> list[int]:
    """Indices of ``refs``, largest estimated case first (stable among equals).

    The estimate is the input's size on disk shared among the cases of that file
    (a snapshot: its directory's files): crude, but one long case often dominates a
    corpus sample, and starting it first is what shortens the run.
    """
    per_source: dict[str, int] = {}
    for ref in refs:
        per_source[ref.source] = per_source.get(ref.source, 0) + 1
    sizes = {source: _input_bytes(source) / count for source, count in per_source.items()}
    return sorted(range(len(refs)), key=lambda i: -sizes[refs[i].source])


def _input_bytes(path: str) -> int:
    try:
        if os.path.isdir(path):
            return sum(entry.stat().st_size for entry in os.scandir(path)
                       if entry.is_file())
        return os.path.getsize(path)
    except OSError:
        return 0


def _preflight(client: Any, refs: list[CaseRef]) -> None:
    """Every worker can import pevm and sees (a sample of) the input paths."""
    sources = list(dict.fromkeys(ref.source for ref in refs))
    step = max(1, len(sources) // PREFLIGHT_PATHS)
    sample = sources[::step][:PREFLIGHT_PATHS]
    try:
        missing = client.run(missing_paths, sample)
    except Exception as exc:  # whatever a worker's import raised: reported
        raise PevmError(f"--cluster: a worker cannot run pevm ({type(exc).__name__}: "
                        f"{exc}); every worker needs pevm installed: "
                        f'pip install "pevm[cluster]"') from exc
    for worker, paths in sorted(missing.items()):
        if paths:
            raise PevmError(f"--cluster: worker {worker} cannot see {paths[0]}"
                            f"{f' (and {len(paths) - 1} more)' if len(paths) > 1 else ''}; "
                            f"every worker needs the inputs at the same absolute path")


def missing_paths(paths: list[str]) -> list[str]:
    """The given paths that do not exist here (runs on each worker)."""
    return [path for path in paths if not os.path.exists(path)]


def _collect(future: Any, ref: CaseRef) -> list[BlockReport]:
    """A finished task's reports, or one error report saying why it failed."""
    if future.cancelled():
        reports = [_failure(ref, "the task was cancelled (lost the scheduler?)")]
    else:
        try:
            reports = future.result()
        except Exception as exc:  # noqa: BLE001 - contained: one case, one report
            reports = [_failure(ref, describe(exc))]
    absolute = os.path.abspath(ref.source)
    for report in reports:
        if report.source == absolute:
            report.source = ref.source
    return reports


def _failure(ref: CaseRef, why: str) -> BlockReport:
    return BlockReport(ref.source, ref.name, None, ERROR, network=ref.network,
                       error=f"{ref.source} :: {ref.name}: task failed on the cluster: "
                             f"{why}")


def dask_setup(worker: Any) -> None:
    """Dask worker preload for local clusters: ignore SIGINT in worker processes.

    The workers share the terminal's process group, so Ctrl-C reaches them too; the
    client process handles it alone (cancels the tasks, closes the cluster).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


_local = threading.local()


def _engines(engine_name: str, workers: int, check: bool) -> tuple[Any, Any]:
    """This worker thread's engines, built on first use and reused across cases."""
    from pevm.engines import make_engine

    cache: dict[tuple[str, int, bool], tuple[Any, Any]] = _local.__dict__.setdefault(
        "engines", {})
    key = (engine_name, workers, check)
    if key not in cache:
        engine = make_engine(engine_name, workers=workers)
        reference = make_engine("reference") if check else None
        cache[key] = (engine, reference)
    return cache[key]


def run_case_task(ref: CaseRef, engine_name: str, workers: int, check: bool
                  ) -> list[BlockReport]:
    """The Dask task: run one case in this worker and return its reports."""
    engine, reference = _engines(engine_name, workers, check)
    return run_case_ref(ref, engine, reference)


__all__ = ["ALLOWED_FAILURES", "MISSING_DASK", "check_cluster_args", "dask_setup",
           "missing_paths", "parse_address", "require_distributed", "run_case_task",
           "run_on_cluster"]
