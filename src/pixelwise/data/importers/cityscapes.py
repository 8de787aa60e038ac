"""Cityscapes: ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` and
``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png``, in a folder or a zip.

The 34 label ids become the 19 train ids of the benchmark, with their names and colours, and every other id
(unlabeled, ego vehicle, parking, guard rail ...) the ignore label 255: the table of ``cityscapesscripts``
(``helpers/labels.py``). All splits found are imported into one flat folder (the test split's public masks
are all "unlabeled", so they come out all ignore); the coarse annotations (``gtCoarse``) are not read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from pixelwise.data.classes import ClassSpec, Color
from pixelwise.data.importers.archive import Tree
from pixelwise.data.importers.base import (
    IGNORE_INDEX,
    ImageFile,
    ImportedDataset,
    ImportedImage,
    Importer,
    ImportOptions,
    unique_stems,
)
from pixelwise.data.importers.masks import check_sizes, find_image, folder_index, image_index, mask_values
from pixelwise.errors import PixelwiseError

LABEL_SUFFIX = "_gtFine_labelIds.png"
IMAGE_ENDING = "_leftImg8bit"
# (train id, name, colour) by label id, for the ids that are trained on; every other id of 0..33 is ignored
TRAIN_IDS: dict[int, tuple[int, str, Color]] = {
    7: (0, "road", (128, 64, 128)),
    8: (1, "sidewalk", (244, 35, 232)),
    11: (2, "building", (70, 70, 70)),
    12: (3, "wall", (102, 102, 156)),
    13: (4, "fence", (190, 153, 153)),
    17: (5, "pole", (153, 153, 153)),
    19: (6, "traffic light", (250, 170, 30)),
    20: (7, "traffic sign", (220, 220, 0)),
    21: (8, "vegetation", (107, 142, 35)),
    22: (9, "terrain", (152, 251, 152)),
    23: (10, "sky", (70, 130, 180)),
    24: (11, "person", (220, 20, 60)),
    25: (12, "rider", (255, 0, 0)),
    26: (13, "car", (0, 0, 142)),
    27: (14, "truck", (0, 0, 70)),
    28: (15, "bus", (0, 60, 100)),
    31: (16, "train", (0, 80, 100)),
    32: (17, "motorcycle", (0, 0, 230)),
    33: (18, "bicycle", (119, 11, 32)),
}
LABEL_IDS = 34  # 0..33


def classes() -> ClassSpec:
    """The 19 classes in train-id order, with Cityscapes' colours; 255 ignored."""
    ordered = sorted(TRAIN_IDS.values())
    return ClassSpec(tuple(name for _, name, _ in ordered), tuple(color for _, _, color in ordered), IGNORE_INDEX)


def train_id_table() -> np.ndarray:
    """(256,) uint8: label id -> train id, 255 for the ids not trained on (and for values no id has)."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label_id, (train_id, _, _) in TRAIN_IDS.items():
        table[label_id] = train_id
    return table


def read(source: Path, options: ImportOptions) -> ImportedDataset:
    tree = Tree(source)
    try:
        labels = [name for name in tree.names if name.endswith(LABEL_SUFFIX)]
        if not labels:
            raise PixelwiseError(
                f"{source}: no *{LABEL_SUFFIX} files; give the Cityscapes folder (or zip) that holds gtFine/ and "
                "leftImg8bit/"
            )
        top = tree.top("leftImg8bit/")
        if options.images is not None:
            index = folder_index(options.images, strip=IMAGE_ENDING)
        elif top is not None:
            index = image_index(tree, top + "leftImg8bit", strip=IMAGE_ENDING)
        else:
            raise PixelwiseError(f"{source}: no leftImg8bit/ folder of images; give the images with --images DIR")
        records = [_record(tree, name, index) for name in labels]
        unique_stems([(record.stem, record.image.name) for record in records], source=str(source))
        return ImportedDataset("cityscapes", source, classes(), tuple(records), close=tree.close)
    except BaseException:
        tree.close()
        raise


def _record(tree: Tree, name: str, index: dict[str, ImageFile]) -> ImportedImage:
    # gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png -> train/aachen/aachen_000000_000019
    relative = name.split("gtFine/", 1)[1] if "gtFine/" in name else PurePosixPath(name).name
    key = relative.removesuffix(LABEL_SUFFIX)
    image = find_image(index, key)
    if image is None:
        raise PixelwiseError(
            f"{tree.where(name)}: no image {PurePosixPath(key).name}{IMAGE_ENDING}.png in leftImg8bit/; give the "
            "images with --images DIR"
        )
    size = check_sizes(image, tree, name)
    return ImportedImage(PurePosixPath(key).name, image, size, _labels(tree, name))


def _labels(tree: Tree, name: str) -> Callable[[], np.ndarray]:
    def labels() -> np.ndarray:
        pixels, _ = mask_values(tree, name)  # a palette image's indices are its values
        where = tree.where(name)
        if pixels.ndim != 2:
            raise PixelwiseError(f"{where}: a colour mask; the *_labelIds.png masks hold label ids (grey)")
        found = np.unique(pixels)
        if found.size and found[-1] >= LABEL_IDS:
            raise PixelwiseError(
                f"{where} has values {[int(value) for value in found if value >= LABEL_IDS][:10]}, no Cityscapes label "
                f"id (0..{LABEL_IDS - 1}); is it a *_labelIds.png mask?"
            )
        return train_id_table()[pixels]

    return labels


IMPORTER = Importer(
    name="cityscapes",
    description="Cityscapes: *_gtFine_labelIds.png mapped to the 19 train ids, the rest ignored",
    source="a folder or zip",
    options=("images",),
    read=read,
)
