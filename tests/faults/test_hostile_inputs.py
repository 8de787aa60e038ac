"""What a hostile probe of the command line found (issue 19, items 1, 5 and 6): ignore pixels read as a class,
a traceback under a memory limit, pipes and devices given as images, a near miss in pairing, a damaged
last.pt, a TIFF with a damaged tag, an animated PNG. Each: exit 2 and one line naming the file and the fix
(or exit 0 with one note), no traceback, the user's files unchanged."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from .conftest import assert_refused, png_header, tree
from .test_one_line import TINY_TRAIN

GIB = 1024**3


def _pixelwise(*args: object, limit: int | None = None, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """``pixelwise ARGS`` in a fresh process (under an address-space ``limit``, a real one), or ``python -c
    code``; a time limit, so that a command that would block on a pipe fails instead of hanging."""

    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    command = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "pixelwise"]
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        },
    )


# --- 1. a declared ignore label wins over the 0/255 guess -----------------------------------------------


def test_a_declared_ignore_label_is_never_read_as_a_class(cli: Any, tmp_path: Path) -> None:
    truth, predicted = tmp_path / "truth", tmp_path / "predicted"
    (truth / "masks").mkdir(parents=True)
    predicted.mkdir()
    (truth / "classes.yaml").write_text("classes: [background, cell]\nignore_index: 255\n")
    only_0_255 = np.zeros((6, 8), np.uint8)
    only_0_255[:, 4:] = 255  # half of it ignored
    mixed = np.zeros((6, 8), np.uint8)
    mixed[:3, :2], mixed[3:, 6:] = 1, 255
    Image.fromarray(only_0_255).save(truth / "masks" / "a.png")
    Image.fromarray(mixed).save(truth / "masks" / "b.png")
    for name in ("a", "b"):
        Image.fromarray(np.ones((6, 8), np.uint8)).save(predicted / f"{name}.png")
    before = tree(truth, predicted)
    scores = tmp_path / "scores.json"
    result = cli("evaluate", predicted, truth, "-o", scores)
    assert result.returncode == 0, result.stderr
    written = json.loads(scores.read_text())
    # every 255 left out, in a.png as in b.png: 24 + 42 pixels, not 48 + 42
    assert written["num_pixels"] == int((only_0_255 != 255).sum() + (mixed != 255).sum()) == 66
    notes = [line for line in result.stderr.splitlines() if "0 and 255" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ") and "classes.yaml declares" in notes[0], result.stderr
    assert tree(truth, predicted) == before


def test_masks_using_255_in_two_ways_are_one_line(cli: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for name, values in (("a", (0, 255)), ("b", (0, 1, 255))):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "images" / f"{name}.png")
        Image.fromarray(np.resize(np.array(values, np.uint8), (8, 8))).save(data / "masks" / f"{name}.png")
    before = tree(data)
    assert_refused(
        cli("train", data, "--out", tmp_path / "run", "--epochs", "1", "-q"), "a.png", "b.png", "ignore_index"
    )
    assert tree(data) == before and not (tmp_path / "run").exists()


# --- 5. a memory limit --------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
def test_a_huge_png_under_an_address_space_limit_is_one_line(tmp_path: Path) -> None:
    huge = png_header(tmp_path / "huge.png", 30_000, 30_000)  # 30000² grey: 4.2 GB to read
    before = tree(huge)
    result = _pixelwise("classical", "otsu", huge, "--out", tmp_path / "out", "-q", limit=GIB)
    line = assert_refused(result, huge, "needs about 4.2 GB", "address-space limit (ulimit -v)")
    assert "MemoryError" not in line
    assert tree(huge) == before and not [path for path in tmp_path.rglob("*") if path.is_file() and path != huge]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
def test_a_memory_error_the_guard_did_not_foresee_is_one_line(tmp_path: Path) -> None:
    huge = png_header(tmp_path / "huge.png", 30_000, 30_000, rgb=True)  # Pillow alone would take 3.4 GB
    out = tmp_path / "out"
    code = (  # the guard off, so that the allocation itself fails under the real limit
        "import sys\n"
        "from pixelwise.data import memory\n"
        "memory.memory_room = lambda: None\n"
        "from pixelwise.cli import main\n"
        f"sys.argv = ['pixelwise', 'classical', 'otsu', {str(huge)!r}, '--out', {str(out)!r}, '-q']\n"
        "main()\n"
    )
    line = assert_refused(_pixelwise(code=code, limit=GIB), huge, "needs about 12.6 GB of memory")
    assert "damaged" not in line and "MemoryError" not in line


def _numpy_short(*args: Any, **kwargs: Any) -> None:
    np.empty((2**40, 2**20), np.float32)  # numpy's MemoryError, with the array it wanted


def _torch_short(*args: Any, **kwargs: Any) -> None:
    import torch

    torch.empty(2**62, dtype=torch.uint8)  # PyTorch's RuntimeError "can't allocate memory"


@pytest.mark.parametrize(
    ("short", "said"),
    [(_numpy_short, "(1099511627776 x 1048576 float32) did not fit"), (_torch_short, "4194304.0 TB more were needed")],
    ids=["numpy", "pytorch"],
)
def test_a_memory_error_anywhere_else_is_one_line(
    cli: Any, dataset: Path, predictions: Path, monkeypatch: pytest.MonkeyPatch, short: Any, said: str
) -> None:
    from pixelwise.metrics import Evaluator

    monkeypatch.setattr(Evaluator, "add", short)  # after the masks were read: no file to blame
    line = assert_refused(cli("evaluate", predictions, dataset), "not enough memory (", said)
    assert "enforce" not in line and "Unable to allocate" not in line


def test_pytorch_short_of_memory_for_one_image_fails_that_image_only(
    cli: Any, checkpoint: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelwise.inference.predictor import Predictor

    stream = Predictor.stream

    def short_for_img0(self: Predictor, image: Any, **options: Any) -> Any:
        if "img0" in str(getattr(image, "name", "")):
            # what PyTorch's CPU allocator raises under a memory limit: a RuntimeError, not a MemoryError
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried "
                "to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"
            )
        return stream(self, image, **options)

    monkeypatch.setattr(Predictor, "stream", short_for_img0)
    before = tree(images)
    out = tmp_path / "out"
    result = cli("predict", checkpoint, images, "--out", out, "--backend", "torch", "-q")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    # a batch: the image's own line, then the summary (the jobs' form of "one line per bad input")
    failed, summary = [line for line in result.stderr.splitlines() if line.startswith("pixelwise: error:")]
    assert failed.startswith(f"pixelwise: error: {images / 'img0.png'}: not enough memory to process it (37.3 GB")
    assert "enforce" not in failed and "1 of 2 images failed" in summary
    assert (out / "img1.png").is_file() and not (out / "img0.png").exists()  # the batch went on
    assert tree(images) == before


# --- 6. messages --------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_a_link_to_a_device_is_said_as_what_it_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    for name, what in (("pipe.png", "a named pipe (FIFO)"), ("zero.png", "a link to /dev/zero, a character device")):
        result = _pixelwise("classical", "otsu", tmp_path / name, "--out", tmp_path / "out", "-q")
        assert "no such file" not in assert_refused(result, tmp_path / name, what)
    # inside a dataset folder, as an image of it
    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    os.mkfifo(data / "images" / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "masks" / "a.png")
    result = _pixelwise("train", data, "--out", tmp_path / "run", "--epochs", "1", "-q")
    assert_refused(result, data / "images" / "a.png", "a named pipe (FIFO)")


def test_an_image_without_its_mask_hints_at_the_mask_in_another_case(cli: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for name in ("im01", "im02"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "images" / f"{name}.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "masks" / f"{name}.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "images" / "IM00.PNG")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "masks" / "im00.png")
    before = tree(data)
    result = cli("train", data, "--out", tmp_path / "run", "--epochs", "1", "-q")
    assert_refused(result, "IM00.PNG", "masks/im00.png differs from IM00.PNG only in letter case")
    assert tree(data) == before


def test_a_damaged_last_pt_says_best_pt_is_intact_and_how_to_keep_it(cli: Any, dataset: Path, tmp_path: Path) -> None:
    from pixelwise.checkpoint import load_checkpoint

    run = tmp_path / "run"
    assert cli("train", dataset, "--out", run, "--epochs", "1", *TINY_TRAIN, "-q").returncode == 0
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    before = tree(run, dataset)
    line = assert_refused(cli("train", dataset, "--out", run, "--resume", "-q"), last, run / "best.pt")
    assert "truncated or damaged" in line and "is intact" in line and "another --out" in line, line
    assert tree(run, dataset) == before
    assert load_checkpoint(run / "best.pt").state_dict  # intact, as said


def _tiff_with_damaged_tag(path: Path, code: int) -> Path:
    tifffile.imwrite(path, np.arange(64, dtype=np.uint8).reshape(8, 8))
    with tifffile.TiffFile(path) as tiff:
        offset = next(tag.offset for tag in tiff.pages[0].tags.values() if tag.code == code)
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, offset + 2, 0)  # an invalid data type: tifffile logs it and drops the tag
    path.write_bytes(bytes(data))
    return path


def test_a_tiff_with_a_damaged_tag_is_one_note_naming_the_file(cli: Any, tmp_path: Path) -> None:
    scan = _tiff_with_damaged_tag(tmp_path / "scan.tif", 305)  # Software
    before = tree(scan)
    result = cli("classical", "otsu", scan, "--out", tmp_path / "out")  # -q would keep notes back
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith(f"note: {scan}: damaged TIFF metadata"), result.stderr
    assert "TiffTag" not in result.stderr and "Traceback" not in result.stderr
    assert tree(scan) == before


def test_a_tiff_whose_pixels_depend_on_a_damaged_tag_is_refused(cli: Any, tmp_path: Path) -> None:
    scan = _tiff_with_damaged_tag(tmp_path / "scan.tif", 258)  # BitsPerSample: tifffile would read 1-bit garbage
    before = tree(scan)
    assert_refused(cli("classical", "otsu", scan, "--out", tmp_path / "out", "-q"), scan, "tag 258 (BitsPerSample)")
    assert tree(scan) == before


def test_an_animated_png_is_refused_not_read_by_its_first_frame(cli: Any, tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((8, 8), value, np.uint8)) for value in (10, 200, 90)]
    animation = tmp_path / "cells.png"
    frames[0].save(animation, save_all=True, append_images=frames[1:])
    before = tree(animation)
    assert_refused(cli("classical", "otsu", animation, "--out", tmp_path / "out", "-q"), animation, "3 frames")
    assert tree(animation) == before
