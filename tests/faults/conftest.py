"""The fault corpus's tools: the user's files before and after, the one-line error, tiny inputs of every kind.

Each test of ``tests/faults`` is one bad input or fault a user met (issue 9). It asserts what the README's
"What is promised" section says: the exit status (2 for anything the user can fix), one line naming the
file or value, no traceback, and the user's files byte-identical afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.classes import ClassSpec

if TYPE_CHECKING:
    from pixelwise.checkpoint import Checkpoint


def tree(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` -> the SHA-256 of its bytes (folders: "dir"): what must not change."""
    found: dict[str, str] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            found[str(path)] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_refused(result: Any, *fragments: object, status: int = 2) -> str:
    """The command failed with ``status`` and exactly one error line that names every fragment; no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything and 'File "' not in everything, everything
    errors = [line for line in result.stderr.splitlines() if line.startswith("pixelwise: error:")]
    assert len(errors) == 1, result.stderr
    # nothing but notes besides the error line: no usage screen, no warning with its source line
    assert all(line.startswith(("pixelwise: error:", "note:")) for line in result.stderr.splitlines() if line), (
        result.stderr
    )
    for fragment in fragments:
        assert str(fragment) in errors[0], (fragment, errors[0])
    return errors[0]


def write_images(folder: Path, count: int = 2) -> Path:
    """``count`` grey 8-bit PNGs of 24x30, ``img0.png`` ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 30), dtype=np.uint8)).save(folder / f"img{index}.png")
    return folder


def checkpoint_payload(*, seed: int = 0) -> Checkpoint:
    """What ``pixelwise train`` saves in a ``best.pt``, for a 3-class grey unet-small of width 4."""
    import torch

    from pixelwise.checkpoint import Checkpoint, Normalization
    from pixelwise.models.registry import create_model

    torch.manual_seed(seed)
    model = create_model("unet-small", num_classes=3, in_channels=1, width=4, depth=2)
    return Checkpoint(
        model="unet-small",
        model_options={"width": 4, "depth": 2},
        state_dict=model.state_dict(),
        classes=ClassSpec.default(3),
        normalization=Normalization((0.5,), (0.25,)),
        in_channels=1,
        tile_size=32,
    )


def png_header(path: Path, width: int, height: int, *, rgb: bool = False) -> Path:
    """A PNG whose header promises ``width`` x ``height`` grey (or ``rgb``) pixels (the pixel data is a few
    bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2 if rgb else 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return write_images(tmp_path / "photos")


@pytest.fixture
def dataset(tmp_path: Path, write_unseen: Callable[..., None]) -> Path:
    """A flat dataset folder: 12 images (PNG and 16-bit TIFF), index masks, classes.yaml with 3 classes."""
    write_unseen(tmp_path / "cells", count=12)
    return tmp_path / "cells"


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    from pixelwise.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path / "run" / "best.pt", checkpoint_payload())


@pytest.fixture
def predictions(tmp_path: Path, dataset: Path) -> Path:
    """A prediction for every mask of ``dataset`` (the truth itself, as palette PNGs)."""
    from pixelwise.data.io import read_mask, write_mask

    folder = tmp_path / "predicted"
    classes = ClassSpec.load(dataset / "classes.yaml")
    for mask in sorted((dataset / "masks").iterdir()):
        write_mask(folder / mask.name, read_mask(mask, classes), classes)
    return folder


# --- a folder that refuses writes, also to root --------------------------------------------------------

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


@contextlib.contextmanager
def _without_root_override() -> Iterator[None]:
    """Root ignores permission bits (CAP_DAC_OVERRIDE); drop that from the effective set for the block, so a
    0o555 folder refuses writes as it would for any user. Skips the test where capabilities cannot be set."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable}
    if libc.capget(header, data) != 0:
        pytest.skip("cannot read this process's capabilities to make a folder read-only for root")
    saved = list(data)
    data[0] &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH) | (1 << _CAP_FOWNER))
    if libc.capset(header, data) != 0:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE to make a folder read-only for root")
    try:
        yield
    finally:
        data[:] = saved
        libc.capset(header, data)


@pytest.fixture
def read_only() -> Callable[[Path], contextlib.AbstractContextManager[None]]:
    """``with read_only(folder):`` the folder exists and nobody (root included) may write into it."""

    @contextlib.contextmanager
    def protect(folder: Path) -> Iterator[None]:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        try:
            with _without_root_override():
                yield
        finally:
            folder.chmod(0o755)

    return protect
