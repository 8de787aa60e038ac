"""Shared fixtures: run the `pixelwise` command in-process, as a user would from the shell."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEVICE_VARIABLE = "PIXELWISE_TEST_DEVICE"

# cuBLAS is deterministic only with a fixed workspace, read when its first handle is made: an earlier test
# on a GPU may make it before a run with ``deterministic`` sets this (nothing changes on the CPU)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

# a shell starts a background job (`make test &`, nohup) with Ctrl-C ignored, and the commands the tests start
# would inherit that: the tests that send SIGINT and expect status 130 would see it ignored
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help=f"where the device-sensitive tests run (default: ${DEVICE_VARIABLE}, else cpu)",
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """Where the device-sensitive tests run (training repeatability and resume, padding, RNG states, the
    predictor's blending and precisions): the CPU,
    as in CI, or CUDA with ``--device cuda`` or ``PIXELWISE_TEST_DEVICE=cuda``; skipped with the reason
    when CUDA is asked for and torch sees no GPU."""
    name = request.config.getoption("--device") or os.environ.get(DEVICE_VARIABLE) or "cpu"
    if name not in ("cpu", "cuda"):
        raise pytest.UsageError(f"{DEVICE_VARIABLE}={name!r}: choose cpu or cuda")
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("CUDA asked for (--device cuda or PIXELWISE_TEST_DEVICE=cuda), but torch sees no GPU")
    return name


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path) -> CliResult:
    """Run ``pixelwise ARGS`` through the real entry point (its error handling included), in this process."""
    from pixelwise.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    saved, saved_sigterm = sys.argv, signal.getsignal(signal.SIGTERM)
    sys.argv = ["pixelwise", *map(str, args)]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = saved
        signal.signal(signal.SIGTERM, saved_sigterm)  # main() makes SIGTERM a Ctrl-C; pytest's is its own
    return CliResult(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """One torch thread per test process: on two cores shared with other jobs, more threads oversubscribe
    and a small forward pass can stall ten times over; on a quiet machine the tiny tensors lose little."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _test_module(name: str) -> Any:
    """A helper module of tests/ by file name (pytest's importlib mode does not put tests/ on the path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def deploy_blocker() -> str:
    """Python source that refuses every import the README's install without PyTorch does not bring
    (``deploy_path.py``; httpx2, FastAPI's test client, allowed for the test itself); run it first in a
    subprocess."""
    return str(_test_module("deploy_path").blocker_source("httpx2"))


@pytest.fixture(scope="session")
def geodata() -> Any:
    """``geodata.py``: small multispectral GeoTIFFs and datasets of them (``write_raster``,
    ``write_signal_dataset``); skipped where rasterio (the ``[geo]`` extra) is missing."""
    pytest.importorskip("rasterio")
    return _test_module("geodata")


@pytest.fixture(scope="session")
def small_unet_checkpoint() -> Callable[..., Path]:
    """``write(path, classes=..., in_channels=1, tile_size=32, mpp=None, adjust=None)``: a checkpoint of an
    untrained ``unet-small`` of width 4 and depth 2 (seeded), as ``pixelwise train`` saves one; ``adjust(model)``
    may change its weights first. Normalised by mean 0.5 and std 0.25 in every band."""

    def write(
        path: Path,
        *,
        classes: Any,
        in_channels: int = 1,
        tile_size: int = 32,
        mpp: float | None = None,
        adjust: Callable[[Any], None] | None = None,
    ) -> Path:
        import torch

        from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
        from pixelwise.models.registry import create_model

        torch.manual_seed(0)
        model = create_model("unet-small", num_classes=classes.num_classes, in_channels=in_channels, width=4, depth=2)
        if adjust is not None:
            adjust(model)
        save_checkpoint(
            path,
            Checkpoint(
                model="unet-small",
                model_options={"width": 4, "depth": 2},
                state_dict=model.state_dict(),
                classes=classes,
                normalization=Normalization((0.5,) * in_channels, (0.25,) * in_channels),
                in_channels=in_channels,
                tile_size=tile_size,
                mpp=mpp,
            ),
        )
        return path

    return write


@pytest.fixture(scope="session")
def pyramids() -> Any:
    """``pyramids.py``: synthetic slides (tissue on glass), pyramidal TIFFs and fake SVS files written as the
    formats' tools write them, and a numpy "network" whose logits depend on where a tile was cut."""
    return _test_module("pyramids")


@pytest.fixture(autouse=True, scope="session")
def strict_numpy_scalars() -> Iterator[None]:
    """The whole suite under NumPy 2.5's rule for Python integers (see ``strict_numpy.py``), which the
    NumPy we can install does not yet apply everywhere."""
    with _test_module("strict_numpy").strict_python_scalars():
        yield


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches (ONNX exports of checkpoints) go to a folder of the test session, never the user's."""
    saved = os.environ.get("PIXELWISE_CACHE")
    os.environ["PIXELWISE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        del os.environ["PIXELWISE_CACHE"]
    else:
        os.environ["PIXELWISE_CACHE"] = saved


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """``cli("evaluate", pred_dir, truth_dir)`` -> CliResult(returncode, stdout, stderr)."""
    return run_cli


def write_unseen_dataset(root: Path, count: int = 12) -> None:
    """A dataset folder as a user brings it: grey 8-bit PNG and 16-bit TIFF images, index masks, classes.yaml.

    Bright blobs on a dark background, 3 classes (background, cell, nucleus), ``count`` images of 40x48,
    no train/ val/ test/ folders.
    """
    import numpy as np
    import tifffile
    from PIL import Image

    rng = np.random.default_rng(11)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text(
        "classes:\n  - background\n  - {name: cell, color: [0, 200, 0]}\n  - {name: nucleus, color: [200, 0, 0]}\n"
    )
    rows, cols = np.mgrid[:40, :48]
    for index in range(count):
        mask = np.zeros((40, 48), np.uint8)
        centre_row, centre_col = rng.integers(12, 28), rng.integers(12, 36)
        distance = np.hypot(rows - centre_row, cols - centre_col)
        mask[distance < 10] = 1
        mask[distance < 4] = 2
        levels = np.array([0.1, 0.5, 0.9])[mask] + rng.normal(0, 0.04, mask.shape)
        if index % 2:
            # a 16-bit microscope-style TIFF using a small part of its range
            tifffile.imwrite(root / "images" / f"cell_{index:02d}.tif", (800 + 2000 * levels).astype(np.uint16))
        else:
            Image.fromarray((255 * levels.clip(0, 1)).astype(np.uint8)).save(root / "images" / f"cell_{index:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"cell_{index:02d}.png")


@pytest.fixture
def unseen_dataset(tmp_path: Path) -> Path:
    """The folder of :func:`write_unseen_dataset`, at ``tmp_path / "unseen"``."""
    write_unseen_dataset(tmp_path / "unseen")
    return tmp_path / "unseen"


@pytest.fixture
def write_unseen() -> Callable[..., None]:
    """:func:`write_unseen_dataset` itself: ``write_unseen(root, count=13)`` for a folder of another size."""
    return write_unseen_dataset
