"""One line for every bad input and every fault, never a traceback, never silent acceptance."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from .conftest import assert_refused, png_header, tree

# --- OS errors: a read-only folder, a path under a file, a full disk -----------------------------------

COMMANDS = ["predict", "train", "classical", "evaluate", "compare"]


def _writing_into(
    command: str, out: Path, *, checkpoint: Path, images: Path, dataset: Path, predictions: Path
) -> list[Any]:
    """The command line of ``command`` that writes into ``out`` (evaluate: its -o file there)."""
    return {
        "predict": ["predict", checkpoint, images, "--out", out],
        "train": ["train", dataset, "--out", out, "--epochs", "1", "-q"],
        "classical": ["classical", "otsu", images, "-o", out, "-q"],
        "evaluate": ["evaluate", predictions, dataset, "-o", out / "scores.json"],
        "compare": ["compare", dataset, "--out", out, "--methods", "otsu", "--sigmas", "0", "--salt-pepper", ""],
    }[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_output_folder_is_one_line(
    command: str,
    cli: Any,
    read_only: Any,
    checkpoint: Path,
    images: Path,
    dataset: Path,
    predictions: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "locked"
    inputs = [images, dataset, predictions, checkpoint]
    before = tree(*inputs)
    arguments = _writing_into(
        command, out, checkpoint=checkpoint, images=images, dataset=dataset, predictions=predictions
    )
    with read_only(out):
        result = cli(*arguments)
    line = assert_refused(result, out)
    assert "ermission denied" in line or "read-only" in line
    assert tree(*inputs) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_under_a_regular_file_is_one_line(
    command: str, cli: Any, checkpoint: Path, images: Path, dataset: Path, predictions: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text("a file, not a folder")
    out = plain / "out"
    inputs = [images, dataset, predictions, checkpoint, plain]
    before = tree(*inputs)
    arguments = _writing_into(
        command, out, checkpoint=checkpoint, images=images, dataset=dataset, predictions=predictions
    )
    assert_refused(cli(*arguments), plain)
    assert tree(*inputs) == before


def test_a_full_disk_is_one_line_naming_the_file(
    cli: Any, checkpoint: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write() reports it: without a file name

    monkeypatch.setattr(Path, "write_bytes", full)  # how masks reach the disk (data.io.write_mask)
    out = tmp_path / "out"
    line = assert_refused(cli("predict", checkpoint, images, "--out", out, "--backend", "torch"), out / "img0.png")
    assert "No space left on device" in line
    assert not [path for path in out.rglob("*") if path.is_file()], "a half-written file was left"


# --- classes.yaml ---------------------------------------------------------------------------------------

CLASSES_CASES = {
    "bad colour": ("classes:\n  - background\n  - {name: cell, color: '#zzzzzz'}\n  - nucleus\n", ["#zzzzzz"]),
    "duplicate colours": (
        "classes:\n  - background\n  - {name: cell, color: [9, 9, 9]}\n  - {name: nucleus, color: [9, 9, 9]}\n",
        ["cell", "nucleus", "[9, 9, 9]"],
    ),
    "unknown key": ("classes: [background, cell, nucleus]\nignore_idx: 0\n", ["ignore_idx", "ignore_index"]),
    "duplicate names": ("classes: [background, cell, cell]\n", ["'cell'"]),
    "yaml syntax": ("classes:\n  - background\n  - {name: cell, color: [0, 255, 0]\n  - nucleus\n", ["line 4"]),
}


@pytest.mark.parametrize("case", list(CLASSES_CASES))
def test_a_bad_classes_yaml_is_one_line_naming_the_file(
    case: str, cli: Any, dataset: Path, predictions: Path, tmp_path: Path
) -> None:
    text, fragments = CLASSES_CASES[case]
    file = tmp_path / "classes.yaml"
    file.write_text(text)
    assert_refused(cli("evaluate", predictions, dataset, "--classes", file), file, *fragments)


# --- images ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_valid_14000_square_png_is_read(tmp_path: Path) -> None:
    from pixelwise.data.io import image_size, read_image

    path = tmp_path / "slide.png"
    pixels = np.zeros((14000, 14000), np.uint8)
    pixels[7000:7010, 100:200] = 255
    Image.fromarray(pixels).save(path, compress_level=1)
    del pixels
    assert image_size(path) == (14000, 14000)
    image = read_image(path)
    assert image.shape == (14000, 14000, 1) and image[7005, 150, 0] == 1.0


def test_an_image_larger_than_memory_says_what_it_needs(cli: Any, checkpoint: Path, tmp_path: Path) -> None:
    huge = png_header(tmp_path / "huge.png", 300_000, 300_000)
    line = assert_refused(cli("predict", checkpoint, huge, "--out", tmp_path / "out"), huge)
    assert re.search(r"\d+(\.\d+)? [GT]B", line), line


def test_a_multi_page_tiff_is_refused(cli: Any, tmp_path: Path) -> None:
    stack = tmp_path / "stack.tif"
    for page in range(3):
        tifffile.imwrite(stack, np.full((16, 16), 60 * page, np.uint8), append=True)
    assert_refused(cli("classical", "otsu", stack, "-o", tmp_path / "out", "-q"), stack, "3 pages")


def test_a_two_channel_image_is_refused(cli: Any, tmp_path: Path) -> None:
    two = tmp_path / "two.tif"
    tifffile.imwrite(two, np.zeros((16, 16, 2), np.uint8), photometric="minisblack", planarconfig="contig")
    assert_refused(cli("classical", "otsu", two, "-o", tmp_path / "out", "-q"), two, "2 channels")


def test_a_palette_mask_contradicting_classes_yaml_is_refused(cli: Any, dataset: Path, predictions: Path) -> None:
    # classes.yaml: cell (0, 200, 0), nucleus (200, 0, 0); this mask's palette has them the other way round
    mask = predictions / "cell_03.png"
    labels = np.asarray(Image.open(mask))
    swapped = Image.fromarray(labels, mode="P")
    swapped.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] + [0] * (253 * 3))
    swapped.save(mask)
    assert_refused(cli("evaluate", predictions, dataset), mask)


# --- devices --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cuda", "tpu"])
def test_an_unusable_device_is_one_line(device: str, cli: Any, checkpoint: Path, images: Path, tmp_path: Path) -> None:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert_refused(cli("predict", checkpoint, images, "--out", tmp_path / "out", "--device", device), device)


# --- checkpoints ----------------------------------------------------------------------------------------


def _damaged(kind: str, good: bytes) -> bytes:
    import io
    import pickle

    import torch

    if kind == "foreign":
        buffer = io.BytesIO()
        torch.save({"model": torch.nn.Linear(2, 2)}, buffer)  # a whole module: code, not data
        return buffer.getvalue()
    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "text": b"these are my notes\n" * 20,
        "pickle": pickle.dumps({"weights": [1.0, 2.0]}),
    }[kind]


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "pickle", "foreign"])
def test_checkpoint_errors_are_plain_words(kind: str, cli: Any, checkpoint: Path, images: Path, tmp_path: Path) -> None:
    damaged = tmp_path / f"{kind}.pt"
    damaged.write_bytes(_damaged(kind, checkpoint.read_bytes()))
    line = assert_refused(cli("predict", damaged, images, "--out", tmp_path / "out"), damaged)
    assert "\x1b" not in line and "[1m" not in line, line
    # no exception names or bare codes standing in for a reason, no reason cut mid-word
    assert not re.search(r"\((\w*Error|\d+|\[Errno \d+\][^)]*)\)", line), line
    # nor torch's own words: its advice about weights_only and Python's internals mean nothing to a user
    assert not re.search(r"weights.only|PyTorch 2\.6|pop from|Errno|Unpickl", line, re.IGNORECASE), line
    assert line.rstrip().endswith(("train'", "again", "copy", "file")), line


# --- train: interrupt, a finished run -------------------------------------------------------------------

TINY_TRAIN = ["--crop-size", "32", "--batch-size", "4", "--model-option", "width=4", "--model-option", "depth=2"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_training_says_how_to_resume(stop: signal.Signals, dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "pixelwise", "train", str(dataset), "--out", str(run), "--epochs", "500"]
    process = subprocess.Popen(
        [*command, *TINY_TRAIN, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert (run / "last.pt").exists(), process.communicate()[1]
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) <= 2, stderr
    assert str(run / "last.pt") in stderr and "--resume" in stderr and str(dataset) in stderr


def test_resuming_a_finished_run_says_it_is_complete(cli: Any, dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert cli("train", dataset, "--out", run, "--epochs", "1", *TINY_TRAIN, "-q").returncode == 0
    before = tree(run)
    result = cli("train", dataset, "--out", run, "--resume", "-q")
    assert result.returncode == 0, result.stderr
    assert "complete" in result.stdout + result.stderr and str(run) in result.stdout + result.stderr
    assert tree(run) == before


# --- compare: everything checked before any work, values refused ----------------------------------------


def test_compare_checks_everything_before_any_work(cli: Any, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    started = time.perf_counter()
    result = cli("compare", dataset, "--out", out, "--methods", "otsu,semi", "--sigmas", "0", "--salt-pepper", "")
    assert_refused(result, "semi", "unlabeled")
    assert time.perf_counter() - started < 20
    assert not out.exists() or not [path for path in out.rglob("*") if path.is_file()], "work was done first"


def test_negative_sigmas_are_refused(cli: Any, dataset: Path, tmp_path: Path) -> None:
    result = cli("compare", dataset, "--out", tmp_path / "r", "--methods", "otsu", "--sigmas", "0,-0.1")
    assert_refused(result, "--sigmas", "-0.1")


def test_a_negative_tolerance_is_refused(cli: Any, dataset: Path, predictions: Path) -> None:
    assert_refused(cli("evaluate", predictions, dataset, "--tolerance", "-1"), "--tolerance", "-1")


# --- evaluate: notes and partial scores -----------------------------------------------------------------


def test_the_0_255_notice_is_one_note_per_folder(cli: Any, tmp_path: Path) -> None:
    for name in ("truth", "pred"):
        (tmp_path / name).mkdir()
        for index in range(3):
            mask = np.zeros((12, 12), np.uint8)
            mask[2 : 6 + index, 3:9] = 255
            Image.fromarray(mask).save(tmp_path / name / f"m{index}.png")
    result = cli("evaluate", tmp_path / "pred", tmp_path / "truth")
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if "0/255" in line]
    assert len(notices) == 2 and all(line.startswith("note:") for line in notices), result.stderr
    assert "Warning" not in result.stderr and "warnings.warn" not in result.stderr, result.stderr


def test_predictions_without_truth_are_refused_and_listed(cli: Any, dataset: Path, predictions: Path) -> None:
    (predictions / "stray.png").write_bytes((predictions / "cell_00.png").read_bytes())
    assert_refused(cli("evaluate", predictions, dataset), "stray.png", "--partial")


def test_a_partial_score_says_how_many_were_left_out(
    cli: Any, dataset: Path, predictions: Path, tmp_path: Path
) -> None:
    (predictions / "stray.png").write_bytes((predictions / "cell_00.png").read_bytes())
    (predictions / "cell_05.png").unlink()
    scores = tmp_path / "scores.json"
    result = cli("evaluate", predictions, dataset, "--partial", "-o", scores)
    assert result.returncode == 0, result.stderr
    assert "left out" in result.stdout + result.stderr
    written = json.loads(scores.read_text())
    assert written["num_images"] == 11
    assert written["left_out"] == {
        "predictions_without_truth": ["stray.png"],
        "truths_without_prediction": ["cell_05.png"],
    }


# --- train: one pass over the labeled images ------------------------------------------------------------


def test_one_pass_over_the_labeled_images_rounds_up(
    cli: Any, tmp_path: Path, write_unseen: Callable[..., None]
) -> None:
    data = tmp_path / "split"
    write_unseen(data / "train", count=12)
    write_unseen(data / "val", count=2)
    (data / "train" / "classes.yaml").rename(data / "classes.yaml")
    (data / "val" / "classes.yaml").unlink()
    run = tmp_path / "run"
    result = cli("train", data, "--out", run, "--epochs", "1", *TINY_TRAIN, "--batch-size", "8", "-q")
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert record["iteration"] == 2  # 12 images at 8 a batch: two batches, not one
