"""Files of any size in, mask files out (``Predictor.predict_file``, what ``pixelwise predict`` runs): equal to
the in-memory prediction, the background skipped, the level chosen, a PNG too big refused, and a run killed
midway resumed at its last finished block."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr

from pixelwise.data.io import read_mask
from pixelwise.errors import PixelwiseError
from pixelwise.inference import file_prediction
from pixelwise.sinks import tiled_tiff
from pixelwise.sinks.spill import spill_path


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiled_tiff, "TILE", 64)


@pytest.fixture
def slide(pyramids: Any, tmp_path: Path) -> Path:
    """A 400 × 300 pyramidal RGB TIFF at 0.5 µm/px, 30 % of it tissue on glass."""
    return pyramids.write_pyramid(tmp_path / "slide.tif", pyramids.tissue_image(400, 300), levels=3, mpp=0.5)


def test_a_tiled_tiff_becomes_a_tiled_mask_equal_to_the_in_memory_prediction(
    pyramids: Any, slide: Path, tmp_path: Path
) -> None:
    predictor = pyramids.mixing_predictor(tile_size=48, batch_size=3)
    mask = predictor.predict_file(slide, tmp_path / "out", foreground=False, probabilities=True)
    assert mask == tmp_path / "out" / "slide.tif"
    image = tifffile.imread(slide, level=0)
    np.testing.assert_array_equal(read_mask(mask), predictor.predict_labels(image))
    probabilities = zarr.open_array(tmp_path / "out" / "probabilities" / "slide.ome.zarr" / "0", mode="r")[:]
    np.testing.assert_allclose(probabilities, predictor.predict(image), atol=1e-3)


def test_background_tiles_of_a_microscope_pyramid_are_skipped_by_default(
    pyramids: Any, slide: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictor = pyramids.mixing_predictor(tile_size=48, batch_size=3)
    mask = read_mask(predictor.predict_file(slide, tmp_path / "out", quiet=False))
    total = predictor.tiles(400, 300)
    note = re.search(
        rf"note: slide.tif: foreground on \d+% of the image: (\d+) of {total} tiles are background",
        capsys.readouterr().err,
    )
    assert note is not None
    skipped = int(note.group(1))
    assert skipped > 0.3 * total and predictor.backend.tiles == total - skipped
    whole = predictor.predict_labels(tifffile.imread(slide, level=0))
    # the tissue's centre is predicted as in a whole run; far glass is class 0
    np.testing.assert_array_equal(mask[150:200, 120:180], whole[150:200, 120:180])
    assert not mask[360:, :].any()
    # --no-foreground-mask runs every tile
    everything = pyramids.mixing_predictor(tile_size=48, batch_size=3)
    everything.predict_file(slide, tmp_path / "all", foreground=False)
    assert everything.backend.tiles == everything.tiles(400, 300)


def test_a_level_is_predicted_at_its_size_and_a_missing_one_refused(pyramids: Any, slide: Path, tmp_path: Path) -> None:
    predictor = pyramids.mixing_predictor(tile_size=48)
    mask = predictor.predict_file(slide, tmp_path / "out", level=1, foreground=False)
    assert read_mask(mask).shape == (200, 150)
    with tifffile.TiffFile(mask) as tiff:
        assert json.loads(tiff.pages[0].description)["mpp"] == pytest.approx(1.0)
    with pytest.raises(PixelwiseError, match=r"slide.tif: there is no level 3; the image has 3 .*give --level 0 to 2"):
        predictor.predict_file(slide, tmp_path / "other", level=3)


def test_a_png_too_large_is_refused_naming_the_tiled_format(
    pyramids: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    monkeypatch.setattr(file_prediction, "WHOLE_IMAGE_MAX_PIXELS", 10_000)
    Image.fromarray(pyramids.tissue_image(120, 100)).save(tmp_path / "big.png")
    predictor = pyramids.mixing_predictor(tile_size=48)
    with pytest.raises(
        PixelwiseError, match=r"big.png: a PNG mask of 100 × 120 pixels is over the limit .*--mask-format tiff"
    ):
        predictor.predict_file(tmp_path / "big.png", tmp_path / "png", mask_format="png")
    assert not (tmp_path / "png" / "big.png").exists()
    # auto: the same image gets a tiled TIFF
    assert predictor.predict_file(tmp_path / "big.png", tmp_path / "auto").name == "big.tif"
    # and a small one keeps its PNG
    Image.fromarray(pyramids.tissue_image(60, 50)).save(tmp_path / "small.png")
    assert predictor.predict_file(tmp_path / "small.png", tmp_path / "auto").name == "small.png"


KILLED_RUN = """
    import importlib.util, os, signal, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("pyramids", {helpers!r})
    pyramids = importlib.util.module_from_spec(spec); spec.loader.exec_module(pyramids)
    from pixelwise.sinks import tiled_tiff
    tiled_tiff.TILE = 64
    predictor = pyramids.mixing_predictor(tile_size=48, batch_size=2)
    predictor.model_path = Path({model!r})
    network = predictor.backend

    def dying(batch):
        if network.calls == {calls}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception: a killed process
        return network(batch)

    predictor.backend = dying
    predictor.predict_file({image!r}, {out!r}, foreground=False)
"""


def test_a_killed_run_resumes_at_its_last_finished_block(
    pyramids: Any, slide: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, out = tmp_path / "model.bin", tmp_path / "out"
    model.write_bytes(b"weights")  # what identifies the model for resuming
    predictor = pyramids.mixing_predictor(tile_size=48, batch_size=2)
    total = predictor.tiles(400, 300)
    code = textwrap.dedent(KILLED_RUN).format(
        helpers=str(Path(pyramids.__file__)), model=str(model), calls=40, image=str(slide), out=str(out)
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert killed.returncode == -9, killed.stderr
    assert not (out / "slide.tif").exists()  # never half a file
    assert spill_path(out / "slide.tif").exists()
    predictor.model_path = model
    mask = predictor.predict_file(slide, out, foreground=False, quiet=False)
    assert "note: slide.tif: resuming at row 128 of 400, where an earlier run stopped" in capsys.readouterr().err
    assert predictor.backend.tiles < total - 40  # the rows done before the kill were not run again
    assert not spill_path(mask).exists()
    reference = pyramids.mixing_predictor(tile_size=48, batch_size=2)
    np.testing.assert_array_equal(read_mask(mask), reference.predict_labels(tifffile.imread(slide, level=0)))


def test_a_slide_predicts_on_the_install_without_pytorch(
    pyramids: Any, exported: tuple[Path, Path], tmp_path: Path, deploy_blocker: str
) -> None:
    """Regions, the background skip (on for a microscope pyramid) and the tiled mask need nothing beyond the
    README's install without PyTorch: no torch, SciPy, scikit-image, tiffslide or zarr."""
    _, model_file = exported
    image = pyramids.write_pyramid(tmp_path / "slide.tif", pyramids.tissue_image(256, 192), levels=3, mpp=0.5)
    code = deploy_blocker + textwrap.dedent(
        f"""
        sys.argv = ["pixelwise", "predict", {str(model_file)!r}, {str(image)!r}, "-o", {str(tmp_path / "out")!r}]
        from pixelwise.cli import main
        try:
            main()
        finally:
            print("loaded:", sorted(name for name in ("torch", "scipy", "skimage", "tiffslide", "zarr") if name in sys.modules))
        """
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "loaded: []" in completed.stdout and "tiles skipped as background" in completed.stdout
    assert read_mask(tmp_path / "out" / "slide.tif").shape == (256, 192)
