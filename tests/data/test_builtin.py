"""Built-in datasets: layout, determinism, split separation (exact, pixel by pixel), cache and the CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from pixelwise.cli.app import app
from pixelwise.data import builtin
from pixelwise.data.builtin import (
    export_builtin,
    fashion,
    list_builtin,
    load_builtin,
    nuclei,
    quokka,
    shapes,
)
from pixelwise.data.builtin.base import ASSETS
from pixelwise.data.builtin.fashion import fashion_scenes
from pixelwise.data.datasets import dataset_root
from pixelwise.data.folder import SegmentationFolder
from pixelwise.data.io import read_mask
from pixelwise.errors import PixelwiseError

SPLITS = ("train", "val", "test")


def files_of(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_list_builtin_names_and_descriptions() -> None:
    names = list_builtin()
    assert list(names) == ["shapes", "fashion", "nuclei", "quokka"]
    assert all(isinstance(text, str) and text and "\n" not in text for text in names.values())


# --- shapes --------------------------------------------------------------------------------------------


def test_shapes_layout_and_classes(tmp_path: Path) -> None:
    root = export_builtin("shapes", tmp_path / "shapes", count=8, size=32)
    for name in ("classes.yaml", "README.md", builtin.METADATA_FILE):
        assert (root / name).is_file()
    counts = {split: len(SegmentationFolder(root, split)) for split in SPLITS}
    assert counts == {"train": 8, "val": 2, "test": 2}
    data = SegmentationFolder(root, "train")
    assert data.classes.names == ("background", "disc", "square", "triangle")
    assert data.in_channels == 1 and data[0].image.shape == (32, 32, 1)
    present = set(np.unique(np.concatenate([sample.mask.ravel() for sample in data])).tolist())  # type: ignore[union-attr]
    assert present == {0, 1, 2, 3}
    metadata = json.loads((root / builtin.METADATA_FILE).read_text())
    assert metadata["options"] == {"size": 32, "count": 8, "seed": 0, "noise": 0.05}


def test_shapes_are_deterministic_and_seeded(tmp_path: Path) -> None:
    first = files_of(export_builtin("shapes", tmp_path / "a", count=3, size=32))
    again = files_of(export_builtin("shapes", tmp_path / "b", count=3, size=32))
    other = files_of(export_builtin("shapes", tmp_path / "c", count=3, size=32, seed=1))
    more = files_of(export_builtin("shapes", tmp_path / "d", count=4, size=32))
    assert first == again
    assert first["train/images/train_00000.png"] != other["train/images/train_00000.png"]
    # an image depends on (seed, split, index) only, not on how many are made
    assert first["train/images/train_00001.png"] == more["train/images/train_00001.png"]
    assert first["test/masks/test_00000.png"] == more["test/masks/test_00000.png"]


def test_shapes_noise_option_changes_the_pixels_not_the_labels() -> None:
    clean_image, clean_labels = shapes.shapes_scene(np.random.default_rng(5), 32, 0.0)
    noisy_image, noisy_labels = shapes.shapes_scene(np.random.default_rng(5), 32, 0.2)
    np.testing.assert_array_equal(clean_labels, noisy_labels)
    assert np.abs(clean_image.astype(int) - noisy_image).mean() > 10


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match=r"dataset 'quokka' has no option seed; its options: size"):
        export_builtin("quokka", tmp_path / "q", seed=3)
    with pytest.raises(PixelwiseError, match=r"option count must be an integer, got '5'"):
        export_builtin("shapes", tmp_path / "s", count="5")
    with pytest.raises(PixelwiseError, match=r"count must be at least 1"):
        export_builtin("shapes", tmp_path / "s", count=0)
    with pytest.raises(PixelwiseError, match=r"no built-in dataset 'cells'; choose one of shapes, fashion"):
        export_builtin("cells", tmp_path / "c")
    assert not (tmp_path / "s").exists()  # a failed export leaves nothing behind


# --- fashion -------------------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def tiny_fashion(tmp_path: Path) -> Path:
    """Four idx files: 30 train items with values 1..30, 10 t10k items with values 101..110.

    Each item is a block of its own value with a hole, so every image pixel tells which item it came from.
    """
    folder = tmp_path / "fashion-files"
    folder.mkdir()
    for part, count, first_value in (("train", 30, 1), ("t10k", 10, 101)):
        items = np.zeros((count, 28, 28), np.uint8)
        for index in range(count):
            items[index, 4 + index % 5 : 24, 6:22] = first_value + index
            items[index, 12:14, 12:14] = 0
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", items, 0x0803)
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", np.arange(count) % 10, 0x0801)
    return folder


def test_fashion_splits_take_items_from_separate_files(tmp_path: Path, tiny_fashion: Path) -> None:
    root = export_builtin("fashion", tmp_path / "f", count=12, size=40, source=tiny_fashion)
    values = {}
    for split in SPLITS:
        pixels = np.concatenate([np.asarray(Image.open(path)).ravel() for path in (root / split / "images").iterdir()])
        values[split] = set(np.unique(pixels).tolist()) - {0}
    assert values["test"] and values["test"] <= set(range(101, 111))
    assert values["train"] and values["train"] <= set(range(1, 31))
    assert values["val"] and values["val"] <= set(range(1, 31))
    assert not values["train"] & values["val"]  # val items are held out from train scenes
    header, *rows = (root / "test" / "items.csv").read_text().splitlines()
    assert header == "stem,slot,file,index,label,row,col"
    assert {row.split(",")[2] for row in rows} == {"t10k"}
    assert SegmentationFolder(root, "train").classes.names[:2] == ("background", "T-shirt/top")
    assert (root / "LICENSE.txt").read_text().startswith("The MIT License")


def test_fashion_labels_follow_the_item_pixels(tmp_path: Path, tiny_fashion: Path) -> None:
    root = export_builtin("fashion", tmp_path / "f", count=6, size=40, source=tiny_fashion)
    classes = SegmentationFolder(root, "all").classes
    for split in SPLITS:
        for path in (root / split / "images").iterdir():
            image = np.asarray(Image.open(path))
            labels = read_mask(root / split / "masks" / path.name, classes)
            # item value v (train 1..30, t10k 101..110) has class (index % 10) + 1
            expected = np.where(
                image > 100, (image - 101) % 10 + 1, np.where(image > 0, (image.astype(int) - 1) % 10 + 1, 0)
            )
            np.testing.assert_array_equal(labels, expected)


def test_fashion_scenes_paint_in_order() -> None:
    """The vectorised painter against a plain loop over the recorded items."""
    rng = np.random.default_rng(0)
    items = (rng.random((20, 28, 28)) > 0.5) * rng.integers(1, 256, (20, 28, 28))
    item_labels = np.arange(20, dtype=np.uint8) % 10
    images, labels, record = fashion_scenes(items.astype(np.uint8), item_labels, np.arange(5, 20), 30, 50, rng)
    expected_images = np.zeros_like(images)
    expected_labels = np.zeros_like(labels)
    assert np.all(np.diff(record["slot"])[np.diff(record["scene"]) == 0] == 1)  # slots in paint order
    for scene, index, row, col in zip(record["scene"], record["index"], record["row"], record["col"], strict=True):
        item = items[index]
        window = (scene, slice(row, row + 28), slice(col, col + 28))
        expected_images[window] = np.where(item > 0, item, expected_images[window])
        expected_labels[window] = np.where(item > 0, item_labels[index] + 1, expected_labels[window])
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)
    assert set(record["index"].tolist()) <= set(range(5, 20))  # only items of the pool
    assert set(np.bincount(record["scene"]).tolist()) <= {1, 2, 3, 4}


def test_fashion_missing_files_say_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PixelwiseError, match=r"apt-get install dataset-fashion-mnist.*PIXELWISE_FASHION_MNIST"):
        export_builtin("fashion", tmp_path / "f", source=tmp_path)
    monkeypatch.setenv("PIXELWISE_FASHION_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(PixelwiseError, match=r"not found in .*nowhere"):
        export_builtin("fashion", tmp_path / "f")


def test_fashion_damaged_file(tmp_path: Path, tiny_fashion: Path) -> None:
    path = tiny_fashion / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    fashion.load_fashion.cache_clear()
    with pytest.raises(PixelwiseError, match=r"t10k-images-idx3-ubyte\.gz: cannot read"):
        export_builtin("fashion", tmp_path / "f", source=tiny_fashion)


def test_real_fashion_test_scenes_come_from_t10k(tmp_path: Path) -> None:
    if not (fashion.FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    root = export_builtin("fashion", tmp_path / "f", count=8, size=48, source=fashion.FASHION_DIR)
    t10k, t10k_labels = fashion.load_fashion(str(fashion.FASHION_DIR.resolve()), "t10k")
    train, _ = fashion.load_fashion(str(fashion.FASHION_DIR.resolve()), "train")
    rows = [row.split(",") for row in (root / "test" / "items.csv").read_text().splitlines()[1:]]
    last_item = {row[0]: row for row in rows}  # the item painted last in each scene is never covered
    for stem, _, file, index, label, row, col in last_item.values():
        assert file == "t10k"
        item = t10k[int(index)]
        window = (slice(int(row), int(row) + 28), slice(int(col), int(col) + 28))
        image = np.asarray(Image.open(root / "test" / "images" / f"{stem}.png"))[window]
        mask = np.asarray(Image.open(root / "test" / "masks" / f"{stem}.png"))[window]
        np.testing.assert_array_equal(image[item > 0], item[item > 0])
        assert not np.array_equal(image[item > 0], train[int(index)][item > 0])
        assert np.all(mask[item > 0] == t10k_labels[int(index)] + 1) and int(label) == t10k_labels[int(index)]


# --- nuclei and quokka ---------------------------------------------------------------------------------


def test_nuclei_tiles_cover_the_image_once_and_stay_16_bit(tmp_path: Path) -> None:
    root = export_builtin("nuclei", tmp_path / "n", size=128)
    source = tifffile.imread(ASSETS / "nuclei" / "img2d.tif")
    truth = tifffile.imread(ASSETS / "nuclei" / "mask2d.tif") > 0
    image = np.zeros_like(source)
    mask = np.zeros(source.shape, np.uint8)
    covered = np.zeros(source.shape, int)
    counts = {}
    for split in SPLITS:
        data = SegmentationFolder(root, split)
        counts[split] = len(data)
        masks = [sample.mask for sample in data]
        assert set(np.unique(np.concatenate([m.ravel() for m in masks])).tolist()) == {0, 1}  # type: ignore[union-attr]
        for path, tile_mask in zip(data.image_paths, masks, strict=True):
            tile = tifffile.imread(path)
            assert tile.dtype == np.uint16
            top, left = (int(part[1:]) for part in path.stem.split("_")[1:])
            image[top : top + 128, left : left + 128] = tile
            mask[top : top + 128, left : left + 128] = tile_mask
            covered[top : top + 128, left : left + 128] += 1
    assert counts == {"train": 8, "val": 4, "test": 4}
    assert np.all(covered == 1)  # every pixel in exactly one split
    np.testing.assert_array_equal(image, source)
    np.testing.assert_array_equal(mask, truth)
    assert SegmentationFolder(root, "test").classes.names == ("background", "nucleus")
    assert "BSD" in (root / "LICENSE.txt").read_text() and (root / "SOURCE.md").is_file()


def test_nuclei_seed_picks_the_quadrants() -> None:
    layouts = {json.dumps(nuclei.nuclei_quadrants(seed)) for seed in range(8)}
    assert len(layouts) > 1
    for seed in range(8):
        parts = nuclei.nuclei_quadrants(seed)
        assert sorted(name for names in parts.values() for name in names) == sorted(nuclei.QUADRANTS)


def test_quokka_bands_rebuild_the_photo(tmp_path: Path) -> None:
    root = export_builtin("quokka", tmp_path / "q", size=240)
    image, labels = quokka.quokka_scene(240)
    assert image.shape == (161, 240, 3)
    assert 0.27 < labels.mean() < 0.33  # about 30% quokka
    bands = [SegmentationFolder(root, split)[0] for split in SPLITS]
    for band in bands:
        assert band.mask is not None and set(np.unique(band.mask).tolist()) == {0, 1}
    np.testing.assert_array_equal(np.concatenate([band.mask for band in bands]), labels)  # type: ignore[misc]
    np.testing.assert_allclose(np.concatenate([band.image for band in bands]), image / 255, atol=1e-6)
    assert [band.image.shape[0] for band in bands] == [80, 41, 40]


# --- cache and loading ---------------------------------------------------------------------------------


def test_dataset_root_exports_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    first = dataset_root("shapes", count=2, size=32)
    assert first.parent == tmp_path / "cache" and first.name.startswith("shapes-")
    stamp = (first / builtin.METADATA_FILE).stat().st_mtime_ns
    assert dataset_root("shapes", count=2, size=32) == first
    assert (first / builtin.METADATA_FILE).stat().st_mtime_ns == stamp  # not exported again
    assert dataset_root("shapes", count=2, size=32, seed=1) != first
    assert dataset_root("shapes", count=2, size=64) == dataset_root("shapes", count=2, size=None)  # None: default
    data = load_builtin("shapes", "val", count=2, size=32)
    assert isinstance(data, SegmentationFolder) and len(data) == 1 and data.root == first


def test_dataset_root_passes_folders_and_refuses_unknown_names(tmp_path: Path) -> None:
    assert dataset_root(tmp_path) == tmp_path
    with pytest.raises(PixelwiseError, match=r"'celss' is neither a folder nor a built-in dataset.*shapes, fashion"):
        dataset_root("celss")


def test_unwritable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("PIXELWISE_CACHE", str(blocker / "cache"))
    with pytest.raises(PixelwiseError, match=r"cannot write the dataset cache .*set PIXELWISE_CACHE"):
        dataset_root("quokka", size=64)


# --- command line --------------------------------------------------------------------------------------


def test_cli_list_and_export(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["datasets", "list"])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()] == list(list_builtin())
    out = tmp_path / "out"
    result = runner.invoke(app, ["datasets", "export", "shapes", "-o", str(out), "--count", "4", "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "train 4, val 1, test 1" in result.output
    assert len(SegmentationFolder(out, "train")) == 4
    again = runner.invoke(
        app, ["datasets", "export", "shapes", "-o", str(out), "--count", "2", "--size", "32", "--overwrite"]
    )
    assert again.exit_code == 0 and len(SegmentationFolder(out, "train")) == 2


def test_every_option_of_every_builtin_is_a_flag_of_export_with_its_meaning() -> None:
    import typer.main

    command: Any = typer.main.get_command(app)
    flags = {param.name: param for param in command.commands["datasets"].commands["export"].params}
    for entry in builtin.BUILTINS.values():
        for option in entry.defaults:
            assert option in flags, f"{entry.name}'s option {option} has no flag in `pixelwise datasets export`"
            assert f"{entry.name}: {entry.option_help[option]}" in flags[option].help


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pixelwise.cli import main; sys.argv = ['pixelwise', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True, timeout=120)


def test_cli_refuses_to_overwrite_and_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    # through the real entry point: a PixelwiseError is one line on stderr and exit status 2
    refused = run_cli("datasets", "export", "quokka", "-o", str(tmp_path), "--size", "64", "--overwrite")
    assert refused.returncode == 2
    assert refused.stderr.startswith("pixelwise: error: ") and "pick another folder" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "q"
    assert runner.invoke(app, ["datasets", "export", "quokka", "-o", str(out), "--size", "64"]).exit_code == 0
    again = runner.invoke(app, ["datasets", "export", "quokka", "-o", str(out), "--size", "64"])
    assert isinstance(again.exception, PixelwiseError) and "pass --overwrite" in str(again.exception)
    unknown = runner.invoke(app, ["datasets", "export", "quokka", "-o", str(tmp_path / "x"), "--count", "3"])
    assert isinstance(unknown.exception, PixelwiseError) and "has no option count" in str(unknown.exception)
    (tmp_path / "file").write_text("x")
    on_file = runner.invoke(app, ["datasets", "export", "quokka", "-o", str(tmp_path / "file")])
    assert isinstance(on_file.exception, PixelwiseError) and "is a file" in str(on_file.exception)
