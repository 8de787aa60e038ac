"""`pixelwise export` and `pixelwise predict MODEL.onnx`: the checks printed, files atomic, one-line errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask


def _checkpoint(path: Path, name: str = "unet-small", **options: Any) -> Path:
    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
    from pixelwise.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=1, **options)
    stored = {key: value for key, value in model.spec.items() if key not in ("name", "num_classes", "in_channels")}
    return save_checkpoint(
        path,
        Checkpoint(
            model=name,
            model_options=stored,
            state_dict=model.state_dict(),
            classes=ClassSpec.default(3),
            normalization=Normalization((0.5,), (0.25,)),
            in_channels=1,
            tile_size=32,
            stride=model.stride,
        ),
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with best.pt, its export best.onnx, and images/ with a grey and a colour image of odd
    sizes."""
    from pixelwise.inference.onnx_export import export

    folder = tmp_path_factory.mktemp("run")
    _checkpoint(folder / "best.pt", width=4, depth=2)
    export(folder / "best.pt")
    (folder / "images").mkdir()
    generator = np.random.default_rng(0)
    Image.fromarray(generator.integers(0, 256, (45, 70), dtype=np.uint8)).save(folder / "images" / "grey.png")
    Image.fromarray(generator.integers(0, 256, (30, 21, 3), dtype=np.uint8)).save(folder / "images" / "colour.png")
    return folder


def test_export_prints_the_checks_and_predict_runs_the_file_like_the_checkpoint(cli: Any, run: Path) -> None:
    result = cli("export", run / "best.pt", "-o", run / "model.onnx")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ONNX Runtime against PyTorch (input shape N×C×H×W):"
    assert lines[1].startswith("  1×1×37×50: largest logit difference ") and lines[1].endswith("% ok")
    assert "argmax agreement 100.000%" in lines[2] and len(lines) == 6
    assert lines[-1].startswith(f"wrote {run / 'model.onnx'} (") and "opset 20" in lines[-1]

    onnx = cli(
        "predict",
        run / "model.onnx",
        run / "images",
        "-o",
        run / "onnx",
        "--threads",
        "1",
        "--save-probs",
        "--backend",
        "onnx",
    )
    assert onnx.returncode == 0, onnx.stderr
    assert "(onnxruntime " in onnx.stdout and "note: colour.png: the image is RGB" in onnx.stderr
    pytorch = cli("predict", run / "best.pt", run / "images", "-o", run / "torch", "--backend", "torch", "--save-probs")
    assert pytorch.returncode == 0, pytorch.stderr
    assert "(torch, cpu, fp32)" in pytorch.stdout
    for stem in ("grey", "colour"):
        labels = read_mask(run / "onnx" / f"{stem}.png", ClassSpec.default(3))
        np.testing.assert_array_equal(labels, read_mask(run / "torch" / f"{stem}.png", ClassSpec.default(3)))
        np.testing.assert_allclose(
            np.load(run / "onnx" / "probabilities" / f"{stem}.npy").astype(np.float32),
            np.load(run / "torch" / "probabilities" / f"{stem}.npy").astype(np.float32),
            atol=1e-3,
        )


def test_export_defaults_beside_the_checkpoint_and_keeps_what_exists(cli: Any, tmp_path: Path) -> None:
    _checkpoint(tmp_path / "best.pt", width=4, depth=2)
    first = cli("export", tmp_path, "-q")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"wrote {tmp_path / 'best.onnx'}") and len(first.stdout.splitlines()) == 1
    again = cli("export", tmp_path / "best.pt")
    assert again.returncode == 2 and "best.onnx: exists already; add --overwrite" in again.stderr
    assert cli("export", tmp_path / "best.pt", "--overwrite", "-q").returncode == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.onnx", "best.pt"]


def test_export_and_predict_errors_are_one_line_and_write_nothing(cli: Any, run: Path, tmp_path: Path) -> None:
    _checkpoint(tmp_path / "psp.pt", name="pspnet", encoder="tu-test_resnet", psp_out_channels=8)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    cases = [
        (("export", tmp_path / "psp.pt"), "model 'pspnet' cannot be exported to ONNX: its pyramid pooling"),
        (("export", tmp_path / "broken.pt"), "broken.pt: not a PyTorch checkpoint"),
        (("export", run / "best.pt", "-o", tmp_path / "model.txt"), "must end in .onnx"),
        (("export", run / "best.pt", "--threads", "0"), "--threads 0: give 1 or more"),
        (("predict", tmp_path / "broken.onnx", run / "images", "-o", tmp_path / "out"), "broken.onnx: not a model"),
        (
            ("predict", run / "best.onnx", run / "images", "-o", tmp_path / "out", "--backend", "torch"),
            "give the .pt checkpoint for --backend torch",
        ),
        (
            ("predict", run / "best.pt", run / "images", "-o", tmp_path / "out", "--precision", "half"),
            "precision 'half': choose one of auto, fp32, fp16, bf16",
        ),
        (
            ("predict", run / "best.pt", run / "images", "-o", tmp_path / "out", "--device", "tpu"),
            "--device tpu: not a device pixelwise runs on; give auto, cpu, cuda or cuda:N",
        ),
    ]
    for arguments, message in cases:
        result = cli(*arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        assert message in result.stderr, (message, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no "exporting ..." before it
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.onnx", "broken.pt", "psp.pt"]


def test_a_missing_onnxruntime_is_one_line(
    cli: Any, run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    monkeypatch.setitem(sys.modules, "openvino", None)  # the other runtime of .onnx files
    for arguments in (
        ("export", run / "best.pt", "-o", tmp_path / "model.onnx"),
        ("predict", run / "best.onnx", run / "images", "-o", tmp_path / "out"),
        ("predict", run / "best.pt", run / "images", "-o", tmp_path / "out", "--backend", "onnx"),
    ):
        result = cli(*arguments)
        assert result.returncode == 2
        assert "onnxruntime is not installed; pip install 'pixelwise[onnx]'" in result.stderr
    assert list(tmp_path.iterdir()) == []
    # auto does without it
    auto = cli("predict", run / "best.pt", run / "images", "-o", tmp_path / "out", "-q")
    assert auto.returncode == 0 and auto.stderr == "" and (tmp_path / "out" / "grey.png").is_file()
    assert auto.stdout.startswith("wrote 2 masks") and "(torch" in auto.stdout
    if importlib.util.find_spec("openvino") is not None:  # an .onnx runs in the other runtime where installed
        monkeypatch.delitem(sys.modules, "openvino")
        onnx = cli("predict", run / "best.onnx", run / "images", "-o", tmp_path / "other", "-q")
        assert onnx.returncode == 0 and "(openvino" in onnx.stdout, onnx.stderr
