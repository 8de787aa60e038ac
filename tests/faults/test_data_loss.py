"""Nothing the user has is lost: inputs are never written, outputs replaced only when asked, no two writers,
checkpoints verified, files created with the user's permissions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .conftest import assert_refused, checkpoint_payload, tree

# --- classical ------------------------------------------------------------------------------------------


def test_classical_refuses_to_write_into_its_input_dataset(cli: Any, dataset: Path) -> None:
    before = tree(dataset)
    result = cli("classical", "otsu", dataset, "-o", dataset / "masks", "--oracle", "-q")
    assert_refused(result, dataset / "masks")
    assert tree(dataset) == before


def test_classical_refuses_its_input_folder_even_with_overwrite(cli: Any, images: Path) -> None:
    before = tree(images)
    result = cli("classical", "otsu", images, "-o", images, "--overwrite", "-q")
    assert_refused(result, images)
    assert tree(images) == before


def test_classical_refuses_to_replace_its_input_file_even_with_overwrite(cli: Any, tmp_path: Path) -> None:
    import tifffile

    folder = tmp_path / "scans"
    folder.mkdir()
    tifffile.imwrite(folder / "scan.tif", np.random.default_rng(0).integers(0, 255, (20, 20), dtype=np.uint8))
    before = tree(folder)
    # the regions of scan.tif would be written as scan.tif, over the image
    result = cli("classical", "otsu", folder / "scan.tif", "-o", folder, "--overwrite", "-q")
    assert_refused(result, folder / "scan.tif")
    assert tree(folder) == before


def test_classical_keeps_a_non_empty_output_folder_without_overwrite(cli: Any, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "regions"
    out.mkdir()
    (out / "img0.tif").write_bytes(b"the user's own file")
    before = tree(out, images)
    result = cli("classical", "otsu", images, "-o", out, "-q")
    assert_refused(result, out, "--overwrite")
    assert tree(out, images) == before
    assert cli("classical", "otsu", images, "-o", out, "-q", "--overwrite").returncode == 0
    assert (out / "img0.tif").read_bytes() != b"the user's own file"


# --- compare --------------------------------------------------------------------------------------------

QUICK_COMPARE = ["--methods", "otsu", "--sigmas", "0", "--salt-pepper", "", "--examples", "1"]


def test_compare_keeps_a_non_empty_folder_without_overwrite(cli: Any, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    before = tree(out, dataset)
    result = cli("compare", dataset, "--out", out, *QUICK_COMPARE)
    assert_refused(result, out, "--overwrite")
    assert tree(out, dataset) == before


def test_compare_overwrite_keeps_no_file_of_an_earlier_failed_run(cli: Any, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    (out / "examples").mkdir(parents=True)
    (out / "models" / "cnn").mkdir(parents=True)
    (out / "examples" / "007-old-clean-image.png").write_bytes(b"an earlier run's example")
    (out / "models" / "cnn" / "last.pt").write_bytes(b"an earlier run's network")
    result = cli("compare", dataset, "--out", out, *QUICK_COMPARE, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert not (out / "examples" / "007-old-clean-image.png").exists()
    assert not (out / "models").exists()
    assert (out / "report.html").is_file() and (out / "results.json").is_file()
    assert not [path for path in out.rglob(".*")], "temporary files left behind"


def test_compare_overwrite_refuses_a_folder_that_is_not_a_report(cli: Any, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "documents"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    before = tree(out)
    result = cli("compare", dataset, "--out", out, *QUICK_COMPARE, "--overwrite")
    assert_refused(result, out, "thesis.tex")
    assert tree(out) == before


# --- predict --------------------------------------------------------------------------------------------


def test_predict_refuses_to_replace_its_inputs_even_with_overwrite(cli: Any, checkpoint: Path, images: Path) -> None:
    before = tree(images)
    result = cli("predict", checkpoint, images, "--out", images, "--overwrite")
    assert_refused(result, images)
    assert tree(images) == before


# --- two writers ----------------------------------------------------------------------------------------


def _holding_lock(folder: Path) -> subprocess.Popen[str]:
    """Another process that holds ``folder``'s output lock until its stdin closes."""
    code = (
        "import sys; from pixelwise.files import output_lock\n"
        "with output_lock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if line.strip() != "locked":
        holder.kill()
        pytest.fail(f"the lock holder did not start: {line!r}")
    return holder


@pytest.mark.parametrize("command", ["predict", "classical", "compare", "train"])
def test_a_second_writer_into_the_same_folder_refuses(
    command: str, cli: Any, checkpoint: Path, images: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    arguments = {
        "predict": ["predict", checkpoint, images, "--out", out],
        "classical": ["classical", "otsu", images, "-o", out, "-q"],
        "compare": ["compare", dataset, "--out", out, *QUICK_COMPARE],
        "train": ["train", dataset, "--out", out, "--epochs", "1", "-q"],
    }[command]
    holder = _holding_lock(out)
    try:
        before = tree(out, images, dataset)
        result = cli(*arguments)
        assert_refused(result, out, str(holder.pid))
        assert tree(out, images, dataset) == before
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


# --- evaluate -o -----------------------------------------------------------------------------------------


def test_evaluate_json_keeps_an_existing_file_without_overwrite(
    cli: Any, dataset: Path, predictions: Path, tmp_path: Path
) -> None:
    given = tmp_path / "settings.yaml"
    given.write_text("epochs: 30\n")
    result = cli("evaluate", predictions, dataset, "-o", given)
    assert_refused(result, given, "--overwrite")
    assert given.read_text() == "epochs: 30\n"
    assert cli("evaluate", predictions, dataset, "-o", given, "--overwrite").returncode == 0
    assert '"miou"' in given.read_text()


# --- checkpoints ----------------------------------------------------------------------------------------


def test_a_checkpoint_damaged_in_its_middle_is_refused(
    cli: Any, checkpoint: Path, images: Path, tmp_path: Path
) -> None:
    data = bytearray(checkpoint.read_bytes())
    start = len(data) // 2 - 2048
    data[start : start + 4096] = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    checkpoint.write_bytes(bytes(data))
    result = cli("predict", checkpoint, images, "--out", tmp_path / "out")
    assert_refused(result, checkpoint)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))


def test_a_checkpoint_with_non_finite_weights_is_refused(cli: Any, images: Path, tmp_path: Path) -> None:
    from pixelwise.checkpoint import save_checkpoint

    payload = checkpoint_payload()
    name = next(key for key, value in payload.state_dict.items() if value.is_floating_point())
    payload.state_dict[name][0] = float("nan")
    path = save_checkpoint(tmp_path / "diverged.pt", payload)
    result = cli("predict", path, images, "--out", tmp_path / "out")
    assert_refused(result, path, "NaN")


def test_a_checkpoint_without_a_digest_still_loads_with_a_note(cli: Any, images: Path, tmp_path: Path) -> None:
    import torch

    path = tmp_path / "old.pt"
    torch.save(checkpoint_payload().to_payload(), path)  # as pixelwise wrote before the digest
    result = cli("predict", path, images, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "digest" in line]
    assert len(notes) == 1 and notes[0].startswith("note:") and str(path) in notes[0], result.stderr


# --- permissions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_permissions_of_the_umask(
    umask: int, cli: Any, checkpoint: Path, images: Path, tmp_path: Path
) -> None:
    previous = os.umask(umask)
    try:
        out = tmp_path / "out"
        assert cli("predict", checkpoint, images, "--out", out, "--overlay").returncode == 0
        export = tmp_path / "export"
        assert cli("datasets", "export", "shapes", "-o", export, "--count", "4", "--size", "16").returncode == 0
    finally:
        os.umask(previous)
    for file in [*out.rglob("*.png"), *export.rglob("*.png")]:
        assert file.stat().st_mode & 0o777 == 0o666 & ~umask, file
    for folder in [out, out / "overlays", export, export / "train"]:
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, folder


def test_images_are_untouched_by_a_successful_prediction(
    cli: Any, checkpoint: Path, images: Path, tmp_path: Path
) -> None:
    """The control of the cases above: a normal run leaves its inputs byte-identical too."""
    before = tree(images, checkpoint)
    assert cli("predict", checkpoint, images, "--out", tmp_path / "out").returncode == 0
    assert tree(images, checkpoint) == before
    assert Image.open(tmp_path / "out" / "img0.png").mode == "P"
