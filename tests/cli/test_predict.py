"""`pixelwise predict`: masks by stem, overlays and probabilities, atomic and never silently overwriting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask
from pixelwise.files import JOB_MANIFEST


@pytest.fixture
def checkpoint(tmp_path: Path, small_unet_checkpoint: Any) -> Path:
    return small_unet_checkpoint(tmp_path / "run" / "best.pt", classes=ClassSpec.default(3))


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    generator = np.random.default_rng(0)
    Image.fromarray(generator.integers(0, 256, (45, 70), dtype=np.uint8)).save(folder / "grey.png")
    Image.fromarray(generator.integers(0, 256, (30, 20, 3), dtype=np.uint8)).save(folder / "colour.png")
    return folder


def test_predict_writes_masks_overlays_and_probabilities(
    cli: Any, checkpoint: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = cli("predict", checkpoint, images, "--out", out, "--overlay", "--save-probs", "--tile", "32")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 masks" in result.stdout
    # the RGB image meets a grey model: one plain note naming the file, not a Python warning
    assert "note: colour.png: the image is RGB and the model expects grey" in result.stderr
    assert "UserWarning" not in result.stderr
    for stem, size in (("grey", (45, 70)), ("colour", (30, 20))):
        mask = read_mask(out / f"{stem}.png", ClassSpec.default(3))
        assert mask.shape == size
        assert mask.max() < 3
        probabilities = np.load(out / "probabilities" / f"{stem}.npy")
        assert probabilities.dtype == np.float16
        assert probabilities.shape == (3, *size)
        np.testing.assert_allclose(probabilities.astype(np.float32).sum(axis=0), 1.0, atol=3e-3)
        # the mask is the argmax of the float32 probabilities; float16 storage may only flip near-ties
        assert (probabilities.argmax(axis=0) == mask).mean() > 0.99
        picture = np.asarray(Image.open(out / "overlays" / f"{stem}.png")).astype(np.float32)
        # the overlay is the picture's top-left corner, the legend the band below it
        assert picture.shape[0] > size[0] and picture.shape[1] >= size[1] and picture.shape[2] == 3
        overlay, legend = picture[: size[0], : size[1]], picture[size[0] :]
        image = np.asarray(Image.open(images / f"{stem}.png"), dtype=np.float32)
        image = image[:, :, None] if image.ndim == 2 else image
        colours = np.asarray(ClassSpec.default(3).colors, dtype=np.float32)[mask]
        np.testing.assert_allclose(overlay, 0.55 * image + 0.45 * colours, atol=1.0)
        for index in np.unique(mask):  # every class shown has its swatch in the legend
            assert (legend == colours[mask == index][0]).all(axis=2).sum() > 20
    # nothing half-written or temporary is left behind, only the job's record of what it finished
    assert [path.name for path in out.rglob(".*")] == [JOB_MANIFEST]


def test_existing_outputs_are_kept_unless_overwrite(cli: Any, checkpoint: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "grey.png").write_bytes(b"the user's own file")
    refused = cli("predict", checkpoint, images / "grey.png", "--out", out)
    assert refused.returncode == 2
    assert "exist already" in refused.stderr and "--overwrite" in refused.stderr
    assert (out / "grey.png").read_bytes() == b"the user's own file"
    assert cli("predict", checkpoint, images / "grey.png", "--out", out, "--overwrite").returncode == 0
    assert (out / "grey.png").read_bytes() != b"the user's own file"


def test_a_rerun_of_the_same_command_finishes_only_what_is_missing(
    cli: Any, checkpoint: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = cli("predict", checkpoint, images / "grey.png", "--out", out)
    assert first.returncode == 0, first.stderr
    written = (out / "grey.png").stat().st_mtime_ns
    again = cli("predict", checkpoint, images, "--out", out)
    assert again.returncode == 0, again.stderr
    assert "wrote 1 mask" in again.stdout and "1 were complete from an earlier run" in again.stdout
    assert (out / "grey.png").stat().st_mtime_ns == written  # not done twice
    done = cli("predict", checkpoint, images, "--out", out)
    assert done.returncode == 0 and "nothing to do" in done.stdout
    # other settings are another job: its files are not this one's to replace
    other = cli("predict", checkpoint, images, "--out", out, "--tile", "16")
    assert other.returncode == 2 and "not from an earlier run of this same command" in other.stderr


def test_user_errors_are_one_line(cli: Any, images: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = cli("predict", broken, images, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "broken.pt" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    (images / "notes.txt").write_text("not an image")
    result = cli("predict", broken, images / "notes.txt", "--out", tmp_path / "out")
    assert result.returncode == 2 and "not an image file" in result.stderr
