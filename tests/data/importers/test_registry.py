"""The one entry: formats and options by name, the output folder (never the source, whole or absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pixelwise.data.importers import IMPORTERS, METADATA_FILE, import_dataset
from pixelwise.data.importers.base import ImportOptions
from pixelwise.errors import PixelwiseError


def voc(tmp_path: Path, tools: SimpleNamespace, count: int = 3) -> Path:
    """A tiny VOC folder (no extra needed), its masks all class 1 in a corner."""
    root = tmp_path / "voc"
    for index in range(count):
        labels = np.zeros((6, 8), dtype=np.uint8)
        labels[:2, :2] = 1 + index
        tools.write(root / "SegmentationClass" / f"m{index}.png", tools.png_bytes(labels))
        tools.write(root / "JPEGImages" / f"m{index}.png", tools.png_bytes(tools.photo(6, 8, index)))
    return root


def test_every_format_is_registered_with_options_it_names() -> None:
    assert list(IMPORTERS) == ["coco", "cvat", "labelme", "voc", "cityscapes"]
    for importer in IMPORTERS.values():
        assert importer.name and importer.description and set(importer.options) <= set(ImportOptions.names())


@pytest.mark.parametrize(
    ("format", "options", "message"),
    [
        ("cocoo", {}, "no import format 'cocoo' (did you mean 'coco'?)"),
        ("voc", {"overlap_rule": "later"}, "--overlap-rule does not apply to voc exports; they take --images"),
        ("voc", {"overlap_rules": "later"}, "no import option 'overlap_rules' (did you mean 'overlap_rule'?)"),
        ("coco", {"uncovered": "void"}, "--uncovered 'void' is not one of background, ignore"),
    ],
)
def test_names_are_checked_before_any_work(
    tmp_path: Path, out: Path, refused: Callable[..., str], format: str, options: dict[str, str], message: str
) -> None:
    refused(lambda: import_dataset(format, tmp_path / "missing", out, **options), message)


def test_the_output_is_never_the_source_and_replaced_only_when_asked(
    tmp_path: Path, tools: SimpleNamespace, out: Path
) -> None:
    source = voc(tmp_path, tools)
    for target in (source, source / "dataset", tmp_path):
        with pytest.raises(PixelwiseError, match="which the import reads; inputs are never written"):
            import_dataset("voc", source, target, overwrite=True)
    import_dataset("voc", source, out)
    assert (out / METADATA_FILE).is_file()
    with pytest.raises(PixelwiseError, match="holds an earlier import; pass --overwrite"):
        import_dataset("voc", source, out)
    assert import_dataset("voc", source, out, overwrite=True).images == 3
    other = tmp_path / "mine"
    tools.write(other / "notes.txt", b"keep me")
    with pytest.raises(PixelwiseError, match="holds no earlier import"):
        import_dataset("voc", source, other, overwrite=True)
    assert (other / "notes.txt").read_bytes() == b"keep me"


def test_a_failure_midway_leaves_the_earlier_import_as_it_was(
    tmp_path: Path, tools: SimpleNamespace, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = voc(tmp_path, tools)
    import_dataset("voc", source, out)
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    import pixelwise.data.io

    real = pixelwise.data.io.write_mask
    calls: list[Path] = []

    def failing(path: Path, *args: object) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(pixelwise.data.io, "write_mask", failing)
    tools.write(source / "SegmentationClass" / "m9.png", tools.png_bytes(np.ones((6, 8), np.uint8)))
    tools.write(source / "JPEGImages" / "m9.png", tools.png_bytes(tools.photo(6, 8, 9)))
    with pytest.raises(OSError, match="No space left"):
        import_dataset("voc", source, out, overwrite=True)
    after = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["dataset", "voc"]
