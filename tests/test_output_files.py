"""Output files: refused before the work where they cannot be written, written whole."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pevm.cli.main import main
from pevm.output_files import OutputError, check_writable, write_atomically

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_small.json"


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    write_atomically(str(target), "new")
    assert target.read_text() == "new"
    write_atomically(str(target), b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OutputError, match="No space left on device"):
        write_atomically(str(target), "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("where, message", [
    ("missing/out.json", "does not exist"),
    (".", "is a directory"),
])
def test_check_writable_names_what_is_wrong(tmp_path: Path, where: str, message: str) -> None:
    with pytest.raises(OutputError, match=message):
        check_writable(str(tmp_path / where))
    check_writable(str(tmp_path / "fine.json"))
    check_writable("-")


@pytest.mark.parametrize("argv", [
    ["bench", str(FIXTURE), "--repeat", "3", "--json", "{missing}"],
    ["bench", str(FIXTURE), "--repeat", "3", "--trace", "{missing}"],
    ["bench", str(FIXTURE), "--repeat", "3", "--plot", "{missing}"],
    ["run", str(FIXTURE), "--trace", "{missing}"],
    ["analyze", str(FIXTURE), "--dot", "{missing}"],
])
def test_an_unwritable_output_stops_the_command_before_it_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    # a benchmark used to run to its end and then stop on a traceback, its
    # measurements lost; now it stops at once with one line
    missing = str(tmp_path / "missing" / "out.json")
    code = main([arg.replace("{missing}", missing) for arg in argv])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{missing}: directory" in captured.err and "does not exist" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""  # no table, no analysis: it stopped before the work


def test_a_plot_format_matplotlib_does_not_write_is_refused_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs the bench extra's matplotlib")
    target = tmp_path / "speedup.xyz"
    code = main(["bench", str(FIXTURE), "--repeat", "3", "--plot", str(target)])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not write .xyz files" in err and "png" in err
    assert not target.exists()
