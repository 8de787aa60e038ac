"""A dataset folder as one COCO JSON file of RLE masks, for CVAT, Label Studio or any COCO reader.

Each class present in a mask becomes one annotation per image (a compressed RLE, ``iscrowd`` 0, with its
``area`` and ``bbox``); class 0, the background, is listed among the categories but gets no annotations,
so a labelling tool shows the objects only. Categories have ids ``class index + 1`` (COCO's ids start at 1)
and carry the class colour as ``color`` (as COCO panoptic files do), which ``pixelwise datasets import
coco`` reads back. Images are named by file name (``file_name``); import them back with ``--images`` set
to their folder. The round trip dataset -> COCO -> dataset gives the same masks and classes, with one
limit: COCO has no ignore label, so pixels of ``ignore_index`` are left out (and come back as the
background), with a note.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.data.importers import rle
from pixelwise.data.importers.base import BACKGROUND_NAMES, Patch
from pixelwise.errors import PixelwiseError


@dataclass(frozen=True)
class ExportReport:
    """What ``export_coco`` wrote: the file and how many images, annotations and categories it holds."""

    path: Path
    images: int
    annotations: int
    categories: int


def export_coco(
    dataset: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "all",
    overwrite: bool = False,
    quiet: bool = True,
) -> ExportReport:
    """Write the masks of ``dataset`` (a folder or a built-in name; its ``split``, all by default) to the
    COCO file ``out`` (atomically; an existing file is replaced only with ``overwrite``)."""
    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.io import image_size, read_mask
    from pixelwise.data.splits import dataset_folders
    from pixelwise.files import atomic_path, check_apart
    from pixelwise.progress import progress_bar

    target = Path(out)
    if target.suffix.lower() != ".json":
        raise PixelwiseError(f"-o {target}: a COCO file is JSON; give a path ending in .json")
    if target.is_dir():
        raise PixelwiseError(f"-o {target} is a folder; give the path of the .json file to write")
    if target.exists() and not overwrite:
        raise PixelwiseError(f"-o {target} exists; pass --overwrite to replace it or choose another name")
    rle.mask_api("exporting COCO")
    root = dataset_root(dataset)
    check_apart(target.parent, input_folders=dataset_folders(root), flag="-o")
    folder = SegmentationFolder(root, split)
    classes = folder.classes
    _check_file_names(folder.image_paths)
    categories = coco_categories(classes)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    with_ignored: list[str] = []
    with progress_bar(total=len(folder), desc="export-coco", unit="image", quiet=quiet) as bar:
        for image_id, (image_path, mask_path) in enumerate(zip(folder.image_paths, folder.mask_paths, strict=True), 1):
            labels = read_mask(mask_path, classes)
            height, width = labels.shape
            if image_size(image_path) != (height, width):
                raise PixelwiseError(f"mask {mask_path} differs in size from its image {image_path}; fix the mask")
            images.append({"id": image_id, "file_name": image_path.name, "width": width, "height": height})
            for value in np.unique(labels).tolist():
                if value == classes.ignore_index:
                    with_ignored.append(image_path.name)
                elif value != 0:
                    patch = _patch(labels == value)
                    annotations.append(coco_annotation(len(annotations) + 1, image_id, value + 1, patch, labels.shape))
            bar.update(1)
    _notes(with_ignored, classes.names[0], classes.ignore_index)
    document = {
        "info": {"description": f"exported by pixelwise from {root}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    with atomic_path(target) as staging:
        staging.write_text(json.dumps(document) + "\n")
    return ExportReport(target, len(images), len(annotations), len(categories))


def coco_categories(classes: ClassSpec) -> list[dict[str, Any]]:
    """COCO's categories of ``classes``: id ``class index + 1``, the name, the colour (as panoptic files do)."""
    return [
        {"id": index + 1, "name": name, "supercategory": "", "color": list(color)}
        for index, (name, color) in enumerate(zip(classes.names, classes.colors, strict=True))
    ]


def coco_annotation(
    annotation_id: int, image_id: int, category_id: int, patch: Patch, size: tuple[int, int]
) -> dict[str, Any]:
    """One annotation: the pixels of ``patch`` (not empty) on an image of ``size`` (H, W) as a compressed RLE,
    with their area and box ([x, y, width, height] of the pixels, COCO's order), not a crowd."""
    rows = np.flatnonzero(patch.mask.any(axis=1))
    columns = np.flatnonzero(patch.mask.any(axis=0))
    box = [
        patch.left + int(columns[0]),
        patch.top + int(rows[0]),
        int(columns[-1] - columns[0] + 1),
        int(rows[-1] - rows[0] + 1),
    ]
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": rle.encode_patch(patch, size),
        "area": int(np.count_nonzero(patch.mask)),
        "bbox": box,
        "iscrowd": 0,
    }


def _patch(binary: np.ndarray) -> Patch:
    """The box of the pixels of ``binary`` (H, W) bool, not empty."""
    rows = np.flatnonzero(binary.any(axis=1))
    columns = np.flatnonzero(binary.any(axis=0))
    box = slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)
    return Patch(binary[box], int(rows[0]), int(columns[0]))


def _check_file_names(paths: list[Path]) -> None:
    """COCO names images by file name: two images of one name (in two splits) could not be told apart."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path.name in seen:
            raise PixelwiseError(
                f"{seen[path.name]} and {path} have one file name; export one split at a time (--split) or rename one"
            )
        seen[path.name] = path


def _notes(with_ignored: list[str], background: str, ignore_index: int) -> None:
    if with_ignored:
        shown = ", ".join(with_ignored[:3]) + (f" and {len(with_ignored) - 3} more" if len(with_ignored) > 3 else "")
        warnings.warn(
            f"{len(with_ignored)} image(s) hold ignored pixels ({ignore_index}: {shown}); COCO has no ignore label, so "
            "they are left out and an import reads them as the background",
            UserWarning,
            stacklevel=3,
        )
    if background.lower() not in BACKGROUND_NAMES:
        warnings.warn(
            f"class 0 {background!r} is written as a category without annotations (the background); import the file "
            f"back with --background {background!r} to keep it class 0",
            UserWarning,
            stacklevel=3,
        )
