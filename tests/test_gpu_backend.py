"""Backend choice (pevm.gpu.backend): detection, PEVM_GPU, and clear errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pevm.errors import PevmError
from pevm.gpu import backend as B
from pevm.gpu.keccak import keccak256_batch


@pytest.fixture
def no_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend CUDA is missing, whatever this machine has."""
    monkeypatch.setattr(B, "_probe_cuda", lambda: (False, "CuPy is not importable (test)"))


def test_import_does_not_need_cupy() -> None:
    code = ("import sys, pevm.gpu, pevm.gpu.trie, pevm.gpu.diff, pevm.gpu.bench; "
            "assert 'cupy' not in sys.modules, 'cupy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cpu_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEVM_GPU", "cpu")
    assert B.backend_name() == "cpu"
    assert B.is_forced()


def test_auto_without_device(monkeypatch: pytest.MonkeyPatch, no_device: None) -> None:
    monkeypatch.delenv("PEVM_GPU", raising=False)
    assert B.backend_name() == "cpu"
    assert not B.is_forced()
    monkeypatch.setenv("PEVM_GPU", "AUTO")
    assert B.backend_name() == "cpu"


def test_cuda_forced_without_device(monkeypatch: pytest.MonkeyPatch, no_device: None) -> None:
    monkeypatch.setenv("PEVM_GPU", "cuda")
    with pytest.raises(B.BackendUnavailable) as info:
        B.backend_name()
    message = str(info.value)
    assert isinstance(info.value, PevmError)
    assert "PEVM_GPU=cuda" in message and "\n" not in message
    with pytest.raises(B.BackendUnavailable):
        keccak256_batch([b"abc"])
    # The explicit argument wins over the environment.
    assert keccak256_batch([b"abc"], backend="cpu") == keccak256_batch([b"abc"], backend="cpu")


def test_cuda_argument_without_device(monkeypatch: pytest.MonkeyPatch, no_device: None) -> None:
    monkeypatch.delenv("PEVM_GPU", raising=False)
    with pytest.raises(B.BackendUnavailable, match="backend argument=cuda"):
        B.resolve("cuda")


def test_real_probe_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the fake: forcing cuda raises exactly when the probe says no device."""
    monkeypatch.setenv("PEVM_GPU", "cuda")
    usable, reason = B._probe_cuda()
    if usable:
        assert B.backend_name() == "cuda"
    else:
        with pytest.raises(B.BackendUnavailable, match="CUDA backend forced"):
            B.backend_name()


def test_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEVM_GPU", "tpu")
    with pytest.raises(B.BackendError, match="PEVM_GPU must be one of"):
        B.backend_name()
    monkeypatch.delenv("PEVM_GPU")
    with pytest.raises(B.BackendError):
        B.resolve("opencl")


def test_describe_never_raises(monkeypatch: pytest.MonkeyPatch, no_device: None) -> None:
    monkeypatch.setenv("PEVM_GPU", "cuda")
    info = B.describe()
    assert info["backend"] == "unavailable" and "error" in info
    monkeypatch.setenv("PEVM_GPU", "cpu")
    info = B.describe()
    assert info["backend"] == "cpu" and info["requested"] == "cpu"
    assert "loop" in info["keccak_cpu"]


@pytest.mark.cuda
def test_cuda_detected() -> None:
    usable, reason = B._probe_cuda()
    if not usable:
        pytest.skip(f"no CUDA device: {reason}")
    info = B.describe()
    assert info["device"] and info["cupy"]
