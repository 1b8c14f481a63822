"""Fault hooks: one record, read from the environment by the CLI only."""
from __future__ import annotations

from pathlib import Path

import pytest

import pevm.cli.run as cli_run
from pevm.cli.main import main
from pevm.engines.hooks import FaultHooks
from pevm.errors import InputError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "erc20_c0.json"


def test_no_variables_no_hooks():
    hooks = FaultHooks.from_environment({})
    assert hooks == FaultHooks()
    assert not hooks.active


def test_every_variable_sets_its_hook():
    hooks = FaultHooks.from_environment({
        "PEVM_TEST_DELAY": "0.002", "PEVM_TEST_FORCE_ABORT": "0.3",
        "PEVM_TEST_KILL_WORKER": "1:2", "PEVM_TEST_SEED": "7", "UNRELATED": "x"})
    assert hooks == FaultHooks(delay=0.002, force_abort=0.3, kill_worker={1: 2}, seed=7)
    assert hooks.active
    assert FaultHooks.from_environment({"PEVM_TEST_KILL_WORKER": "0"}).kill_worker == {0: 1}


@pytest.mark.parametrize("name, value", [
    ("PEVM_TEST_DELAY", "soon"), ("PEVM_TEST_DELAY", "-1"),
    ("PEVM_TEST_FORCE_ABORT", "1.5"), ("PEVM_TEST_KILL_WORKER", "a:b"),
    ("PEVM_TEST_KILL_WORKER", "0:0"), ("PEVM_TEST_SEED", "0.5")])
def test_a_malformed_variable_is_an_input_error_naming_it(name, value):
    with pytest.raises(InputError, match=name):
        FaultHooks.from_environment({name: value})


def test_pevm_run_hands_the_environment_s_hooks_to_the_engine(monkeypatch, capsys):
    built = []

    def spy(name, workers=1, hooks=None, **options):
        built.append(hooks)
        return real(name, workers, hooks, **options)

    real = cli_run.make_engine
    monkeypatch.setattr(cli_run, "make_engine", spy)
    monkeypatch.setenv("PEVM_TEST_FORCE_ABORT", "1")
    monkeypatch.setenv("PEVM_TEST_KILL_WORKER", "1:1")
    assert main(["run", str(FIXTURE), "--workers", "2", "--check", "-q"]) == 0
    assert built[0] == FaultHooks(force_abort=1.0, kill_worker={1: 1})


def test_pevm_run_rejects_a_malformed_hook(monkeypatch, capsys):
    monkeypatch.setenv("PEVM_TEST_FORCE_ABORT", "often")
    assert main(["run", str(FIXTURE)]) == 2
    assert "PEVM_TEST_FORCE_ABORT" in capsys.readouterr().err
