"""``pevm info``: package versions, CuPy under whichever wheel provides it."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib import metadata

import pytest

from pevm.cli import info
from pevm.cli.main import main
from pevm.host import cpu_description


def _fake_distributions(monkeypatch: pytest.MonkeyPatch,
                        installed: dict[str, str]) -> None:
    """Only ``installed`` (distribution -> version) exists; cupy-cuda* wheels
    provide the import name ``cupy``."""
    def version(name: str) -> str:
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    provides = {"cupy": [name for name in installed if name.startswith("cupy-")]}
    monkeypatch.setattr(info.metadata, "version", version)
    monkeypatch.setattr(info.metadata, "packages_distributions", lambda: provides)


def test_cupy_is_found_under_its_cuda_specific_wheel(monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    _fake_distributions(monkeypatch, {"pevm": "0.1.0", "cupy-cuda13x": "13.6.0"})
    assert info.package_version("cupy") == "13.6.0"
    assert info.package_version("pevm") == "0.1.0"
    assert info.package_version("numpy") is None


def test_text_names_cupy_and_says_not_installed(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    _fake_distributions(monkeypatch, {"pevm": "0.1.0"})
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "cupy        not installed" in lines
    assert "pevm        0.1.0" in lines


def test_json_lists_every_package(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert list(document["packages"]) == list(info.PACKAGES)
    assert "cupy" in document["packages"]
    assert document["packages"]["py-evm"] == metadata.version("py-evm")
    # the machine-speed probe the engine's cost model scales by, within its bounds
    assert 0.25 <= document["slowness"] <= 8.0


def test_a_reader_that_goes_away_ends_it_quietly() -> None:
    # stdout is a pipe whose reading end is already closed (`pevm info | head -0`)
    code = ("import os, sys\n"
            "read, write = os.pipe()\n"
            "os.close(read)\n"
            "os.dup2(write, 1)\n"
            "from pevm.cli.main import main\n"
            "sys.exit(main(['info']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "Error" not in done.stderr


#: two processors of one core with SMT, as Linux's /proc/cpuinfo lists them
SMT_CPUINFO = """processor\t: 0
model name\t: Example CPU @ 3.0GHz
siblings\t: 2
cpu cores\t: 1

processor\t: 1
model name\t: Example CPU @ 3.0GHz
siblings\t: 2
cpu cores\t: 1
"""


def test_the_cpu_is_described_by_model_and_threads_per_core() -> None:
    assert cpu_description(SMT_CPUINFO) == {"model": "Example CPU @ 3.0GHz",
                                            "threads_per_core": 2}
    no_smt = SMT_CPUINFO.replace("siblings\t: 2", "siblings\t: 1")
    assert cpu_description(no_smt)["threads_per_core"] == 1
    # a platform that says nothing (no /proc/cpuinfo, or an ARM one without them)
    assert cpu_description("") == {"model": None, "threads_per_core": None}


def test_info_reports_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["cpu_model"] == cpu_description()["model"]
    assert document["threads_per_core"] == cpu_description()["threads_per_core"]
    assert main(["info"]) == 0
    assert any(line.startswith("cpu ") for line in capsys.readouterr().out.splitlines())


def test_one_line_describes_the_machine() -> None:
    machine = {"cpu_count": 16, "python": "3.12.3", "slowness": 1.26,
               "cpu_model": "Intel(R) Xeon(R) Processor", "threads_per_core": 1}
    assert info.describe_machine(machine) == \
        "16 CPUs (Intel(R) Xeon(R) Processor, 1 thread per core), Python 3.12.3, " \
        "slowness 1.26x"
    # a bench run whose speed probes moved
    assert info.describe_machine(machine | {"slowness_probes": [1.26, 1.4, 1.31]}) \
        .endswith("slowness 1.26x (probed 1.26-1.40x during the run)")
    # a bench JSON from before the CPU was recorded
    assert info.describe_machine({"cpu_count": 2, "python": "3.11.7"}) == \
        "2 CPUs, Python 3.11.7"


#: per precompile pevm reports on: the line's name, the module and function that
#: decide it, the JSON key, and (line, JSON value) with and without the library
_PRECOMPILE_LINES = {
    "bn254": ("pevm.precompiles", "revm_available", "bn254_precompiles",
              ("revm's outputs through pyrevm, py-evm's gas and errors", "revm"),
              ("py-evm's py_ecc (pyrevm not installed: a zk proof's pairing check "
               "takes ~0.5 s)", "py-evm")),
    "blake2f": ("pevm.precompiles", "blake2f_native", "blake2f_precompile",
                ("blake2b-py's Rust compression, through py-evm", "blake2b-py"),
                ("py-evm's pure-Python compression (blake2b-py not installed: ~9 us a "
                 "round, a round a unit of gas)", "py-evm")),
    "bls12_381": ("pevm.bls_precompiles", "bls_native", "bls12_381_precompiles",
                  ("arkworks' outputs through py-arkworks-bls12381, py-evm's gas and "
                   "errors", "arkworks"),
                  ("py-evm's py_ecc (py-arkworks-bls12381 not installed: a two-pair "
                   "pairing check takes ~0.85 s)", "py-evm")),
}


@pytest.mark.parametrize("installed", [True, False])
@pytest.mark.parametrize("name", list(_PRECOMPILE_LINES))
def test_info_says_who_computes_the_slow_precompiles(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, installed: bool) -> None:
    module, function, key, with_it, without = _PRECOMPILE_LINES[name]
    monkeypatch.setattr(importlib.import_module(module), function, lambda: installed)
    text, value = with_it if installed else without
    assert main(["info"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith(name + " ")]
    assert line == [f"{name:<11} {text}"]
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[key] == value
