"""OpenVINO: the exported file runs in OpenVINO like in PyTorch at any size; auto prefers it on the CPU;
bad files are one line; nothing needs it installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.inference.backends import RUNTIMES, load_backend
from pixelwise.inference.predictor import Predictor

pytest.importorskip("openvino")

from pixelwise.inference.openvino_backend import OpenVinoBackend


def test_openvino_predicts_what_pytorch_predicts_at_odd_sizes(exported: tuple[Path, Path]) -> None:
    checkpoint, model_file = exported
    backend, spec = load_backend(model_file, backend="openvino", threads=1)
    assert isinstance(backend, OpenVinoBackend) and backend.description.endswith("cpu, fp32")
    torch_predictor = Predictor.load(checkpoint, backend="torch", batch_size=3)
    openvino_predictor = Predictor(backend, spec, batch_size=3)
    generator = np.random.default_rng(0)
    for shape in [(37, 50), (1, 1), (3, 2), (70, 45)]:
        image = generator.random(shape, dtype=np.float32)
        expected = torch_predictor.predict_logits(image)
        np.testing.assert_allclose(openvino_predictor.predict_logits(image), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(openvino_predictor.predict_labels(image), torch_predictor.predict_labels(image))


def test_auto_picks_the_fastest_installed_runtime_and_a_checkpoint_only_once_exported(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint, model_file = exported
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    assert RUNTIMES["openvino"].cpu_rank > RUNTIMES["onnx"].cpu_rank  # measured: bench/backends.py
    assert isinstance(load_backend(model_file, backend="auto")[0], OpenVinoBackend)
    # a checkpoint: PyTorch until its export is cached, never an export first
    assert load_backend(checkpoint, backend="auto", device="cpu")[0].runtime == "torch"  # type: ignore[attr-defined]
    with pytest.warns(UserWarning, match="to ONNX once"):
        assert isinstance(load_backend(checkpoint, backend="openvino")[0], OpenVinoBackend)
    assert isinstance(load_backend(checkpoint, backend="auto", device="cpu")[0], OpenVinoBackend)
    # a GPU, or fp16, is PyTorch's
    assert load_backend(checkpoint, backend="auto", precision="fp16")[0].runtime == "torch"  # type: ignore[attr-defined]


def test_bad_files_and_settings_are_one_line(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, model_file = exported
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(PixelwiseError, match=r"broken\.onnx: not a model OpenVINO .* can run"):
        load_backend(broken, backend="openvino")
    with pytest.raises(PixelwiseError, match="ONNX models run on the CPU here"):
        load_backend(model_file, backend="openvino", device="cuda")
    with pytest.raises(PixelwiseError, match=r"openvino computes in fp32/bf16 \(no fp16 kernels\)"):
        load_backend(model_file, backend="openvino", precision="fp16")
    with pytest.raises(PixelwiseError, match=r"backend 'openvin' \(did you mean 'openvino'\?\)"):
        load_backend(model_file, backend="openvin")


def test_without_openvino_everything_else_runs_and_asking_for_it_is_one_line(exported: tuple[Path, Path]) -> None:
    _, model_file = exported
    code = (
        "import sys; sys.modules['openvino'] = None\n"
        "from pixelwise.inference.backends import load_backend\n"
        "from pixelwise.errors import PixelwiseError\n"
        f"print(type(load_backend({str(model_file)!r}, backend='auto')[0]).__name__)\n"
        "try:\n"
        f"    load_backend({str(model_file)!r}, backend='openvino')\n"
        "except PixelwiseError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "OnnxBackend"
    assert lines[1].endswith("openvino is not installed; pip install 'pixelwise[openvino]'")
