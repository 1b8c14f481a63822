"""``pevm gen`` end to end: files, determinism, stdout, and bad arguments."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pevm.cli.main import main
from pevm.inputs.blockchain_tests import load_cases


def test_gen_writes_a_loadable_fixture(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hot.json"
    code = main(["gen", "hotspot", "--txs", "12", "--conflict", "0.5", "--seed", "2",
                 "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == ""
    assert "wrote" in captured.err and "12 txs (6 hot)" in captured.err
    data = json.loads(out.read_text())
    ((name, case),) = data.items()
    assert name == "hotspot_12tx_c50_seed2_Prague"
    assert case["_info"]["command"] == ("pevm gen hotspot --txs 12 --conflict 0.5 "
                                        "--seed 2 --fork Prague")
    assert len(case["blocks"][0]["transactions"]) == 12
    (loaded,) = load_cases(str(out))
    assert loaded.block_count == 1


def test_gen_is_byte_identical_on_repeat(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for path in (first, second):
        assert main(["gen", "amm", "--txs", "6", "--pools", "2", "--conflict", "0.5",
                     "--seed", "9", "--fork", "cancun", "-q", "-o", str(path)]) == 0
    assert first.read_bytes() == second.read_bytes()
    case = next(iter(json.loads(first.read_text()).values()))
    assert case["network"] == "Cancun"


def test_gen_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen", "transfers", "--txs", "3", "-o", "-"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert len(next(iter(data.values()))["blocks"][0]["transactions"]) == 3
    assert "wrote stdout" in captured.err


def test_gen_replaces_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    out.write_text("old")
    assert main(["gen", "storage", "--txs", "2", "--slots", "3", "-q", "-o", str(out)]) == 0
    assert json.loads(out.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]   # no temporary left


BAD_ARGUMENTS = [
    (["nope", "--txs", "3"], "unknown workload 'nope'"),
    (["erc20", "--txs", "0"], "--txs must be a positive integer"),
    (["erc20", "--txs", "-4"], "--txs must be a positive integer"),
    (["erc20", "--txs", "many"], "argument --txs: expected an integer"),
    (["erc20", "--txs", "3", "--conflict", "1.5"], "--conflict must be a number from 0 to 1"),
    (["erc20", "--txs", "3", "--conflict", "-0.5"], "--conflict must be a number from 0 to 1"),
    (["erc20", "--txs", "3", "--conflict", "half"], "argument --conflict: expected a number"),
    (["erc20", "--txs", "3", "--fork", "Atlantis"], "unknown fork 'Atlantis'"),
    (["erc20", "--txs", "3", "--fork", "Homestead"], "not supported by the generator"),
    (["erc20", "--txs", "3", "--accounts", "0"], "--accounts must be a positive integer"),
    (["erc20", "--txs", "3", "--pools", "2"], "--pools applies only"),
    (["storage", "--txs", "3", "--slots", "0"], "--slots must be an integer"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGUMENTS,
                         ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_fail_with_one_line(argv: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    code: str | int | None
    try:
        code = main(["gen", *argv, "-o", str(out)])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    assert code != 0
    assert not out.exists()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and message in errors[0], captured.err
    if "argument" not in message:                    # pevm's own errors: exactly one line
        assert lines == errors


@pytest.mark.parametrize("where, message", [
    ("missing-dir/out.json", "does not exist"),
    (".", "is a directory"),
])
def test_unwritable_output_fails_before_generating(where: str, message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / where
    code = main(["gen", "erc20", "--txs", "100000", "-o", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("pevm: error:") and message in err and "\n" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_directory_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code = main(["gen", "erc20", "--txs", "3", "-o", str(folder / "x.json")])
    finally:
        folder.chmod(0o700)
    assert code == 2 and "not writable" in capsys.readouterr().err


def test_gen_help_lists_the_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["gen", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("transfers", "erc20", "amm", "hotspot", "storage", "factory", "mixed"):
        assert name in out
