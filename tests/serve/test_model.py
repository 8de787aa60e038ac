"""The seam between the service and the model: loading, the backend's name, per-request options."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from pixelwise.data.builtin.quokka import QUOKKA_CLASSES
from pixelwise.errors import PixelwiseError
from pixelwise.inference.backends import load_backend
from pixelwise.serve.model import backend_name, load_predictor, with_options


def test_load_predictor_reads_the_checkpoint_and_sets_the_threads(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    try:
        predictor = load_predictor(checkpoint, device="cpu", threads=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert predictor.classes == QUOKKA_CLASSES
    assert (predictor.in_channels, predictor.tile_size) == (3, 64)
    # a checkpoint runs in PyTorch until its ONNX export is cached: the service never starts with an export
    assert backend_name(predictor) == "torch"
    if importlib.util.find_spec("onnxruntime") is not None:
        with pytest.warns(UserWarning, match="to ONNX once"):
            load_backend(checkpoint, backend="onnx")
        assert backend_name(load_predictor(checkpoint, device="cpu", threads=before)) in ("onnx", "openvino")
    assert load_predictor(checkpoint, device="auto", threads=before, tile_size=128).tile_size == 128


def test_load_predictor_refuses_a_missing_gpu_and_a_missing_file(checkpoint: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(PixelwiseError, match="--device cuda: torch sees no CUDA GPU"):
            load_predictor(checkpoint, device="cuda", threads=torch.get_num_threads())
    with pytest.raises(PixelwiseError, match=r"nothing\.pt"):
        load_predictor(tmp_path / "nothing.pt", device="cpu", threads=torch.get_num_threads())


def test_with_options_copies_and_never_changes_the_shared_predictor(predictor) -> None:  # type: ignore[no-untyped-def]
    assert with_options(predictor) is predictor  # nothing asked: nothing copied
    variant = with_options(predictor, tile_size=32, overlap=0.0, tta=True)
    assert (variant.tile_size, variant.overlap, variant.tta) == (32, 0.0, True)
    assert (predictor.tile_size, predictor.overlap, predictor.tta) == (64, 0.5, False)
    assert variant.backend is predictor.backend  # the network is shared, not copied


def test_an_onnx_model_is_served_with_only_the_install_without_pytorch(
    checkpoint: Path, tmp_path: Path, deploy_blocker: str
) -> None:
    """`pixelwise serve MODEL.onnx` on a machine with the README's install without PyTorch: loading, the page
    and a prediction import nothing else (tests/deploy_path.py)."""
    import subprocess
    import sys

    from pixelwise.inference.onnx_export import export

    model_file = export(checkpoint, tmp_path / "model.onnx").path
    code = deploy_blocker + (
        f"""
import io, sys
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from pixelwise.serve import create_app
from pixelwise.serve.model import backend_name, load_predictor

predictor = load_predictor({str(model_file)!r}, device="auto", threads=1)
buffer = io.BytesIO()
Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(buffer, format="PNG")
with TestClient(create_app(predictor)) as client:
    answer = client.post("/predict?format=json", files={{"image": ("a.png", buffer.getvalue())}})
    page = client.get("/")
print(backend_name(predictor), answer.status_code, answer.json()["width"], page.status_code, "torch" in sys.modules)
"""
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.stdout.split() == ["onnx", "200", "50", "200", "False"], result.stderr[-3000:]


def test_onnx_runtime_keeps_no_telemetry(tmp_path: Path) -> None:
    """onnxruntime 1.32 queues telemetry events (the OS, the interpreter) in ~/.cache/Microsoft/DeveloperTools
    from its import on; a session that pixelwise creates leaves nothing there."""
    import os
    import subprocess
    import sys

    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", "c", "h", "w"])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", "c", "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    model_file = tmp_path / "identity.onnx"
    model_file.write_bytes(model.SerializeToString())
    home = tmp_path / "home"
    home.mkdir()
    code = f"""
import numpy as np
from pixelwise.inference.onnx_backend import OnnxBackend
print(OnnxBackend({str(model_file)!r}, threads=1)(np.ones((1, 3, 4, 4), np.float32)).shape)
"""
    environment = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    environment.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, env=environment
    )
    assert result.stdout.strip() == "(1, 3, 4, 4)", result.stderr[-2000:]
    assert sorted(str(path.relative_to(home)) for path in home.rglob("*")) == []
