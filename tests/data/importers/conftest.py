"""What the importer tests share: tiny images, and reading an imported dataset folder back as a user would."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask


def png_bytes(pixels: np.ndarray, *, palette: list[int] | None = None, format: str = "PNG") -> bytes:
    """An image file's bytes: grey (H, W) or RGB (H, W, 3) uint8, a palette image with ``palette``."""
    picture = Image.fromarray(pixels.astype(np.uint8), mode="P" if palette is not None else None)
    if palette is not None:
        picture.putpalette(palette)
    buffer = io.BytesIO()
    picture.save(buffer, format=format)
    return buffer.getvalue()


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A random RGB image (H, W, 3) uint8."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_back(folder: Path) -> tuple[ClassSpec, dict[str, np.ndarray]]:
    """The classes and every mask of an imported dataset folder, read through the data layer."""
    classes = ClassSpec.load(folder / "classes.yaml")
    masks = {path.stem: read_mask(path, classes) for path in sorted((folder / "masks").iterdir())}
    images = {path.stem for path in (folder / "images").iterdir()}
    assert images == set(masks), (images, set(masks))
    return classes, masks


@pytest.fixture
def tools() -> SimpleNamespace:
    """The helpers above, for the test modules (pytest's importlib mode leaves conftest unimportable)."""
    return SimpleNamespace(png_bytes=png_bytes, photo=photo, write=write, read_back=read_back)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where an import writes; it must not exist after a refusal."""
    return tmp_path / "dataset"


@pytest.fixture
def refused(out: Path) -> Callable[[Callable[[], object], str], str]:
    """Run an import that must be refused: one line containing ``expected``, and nothing written."""
    from pixelwise.errors import PixelwiseError

    def check(run: Callable[[], object], expected: str) -> str:
        with pytest.raises(PixelwiseError) as caught:
            run()
        message = str(caught.value)
        assert expected in message, message
        assert "\n" not in message
        assert not out.exists()
        assert not [entry.name for entry in out.parent.iterdir() if entry.name.startswith(".dataset")]
        return message

    return check
