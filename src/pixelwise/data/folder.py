"""SegmentationFolder: a folder of images and masks, paired by file stem, as a sequence of samples.

Two layouts are understood::

    root/images/a.png  root/masks/a.png     (+ root/classes.yaml, + root/unlabeled/)
    root/train/images  root/train/masks  root/val/...  root/test/...   (+ root/classes.yaml)

An image and its mask share the file stem; their extensions may differ (``a.jpg`` + ``a.png``). Which
images make which split, and which split a command uses, is decided in ``data.splits``: a flat folder is
split there, deterministically by seed, when a split is asked for.

Without ``classes.yaml`` the number of classes K is inferred from the masks: the largest label over all
masks of every split (``ignore_index`` 255 left out) + 1, at least 2; two classes are named
``background`` and ``foreground``, more ``class0``, ``class1``, ... Reading every mask once costs time on a
large dataset, and a class absent from every mask cannot be guessed: a ``classes.yaml`` avoids both. Seeing
every mask, this also refuses a dataset whose masks use 255 in two ways (a 0/255 binary mask beside a mask
holding 255 next to label 1, see ``data.masks``) before any work.

Images may have any number of bands (``bands`` picks and orders them); a no-data value (``nodata``, else each
file's own) makes its pixels the ignore label; multispectral, georeferenced and band-picked images are scaled
per band by the training split's range: the reading rule is ``data.folder_bands``. A mask whose georeference
differs from its image's is refused.

An image without its mask (or a mask without its image) is an error that lists them, with a hint where a
name of the other folder nearly matches: the same letters in another case (``IM00.PNG``, ``im00.png``), a
tool's affix (``a.png``, ``a_mask.png``), or a close spelling.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pixelwise.data.bands import Band, InputBands
from pixelwise.data.channels import check_channels, conform_channels
from pixelwise.data.classes import ClassSpec
from pixelwise.data.folder_bands import FolderBands
from pixelwise.data.io import image_name, image_size, list_images, read_mask, stored_labels
from pixelwise.data.masks import conflicting_masks
from pixelwise.data.splits import (
    ALL,
    TEST_FRACTION,
    VAL_FRACTION,
    Layout,
    available_splits,
    check_fractions,
    check_split,
    dataset_layout,
    split_stems,
)
from pixelwise.errors import PixelwiseError

CLASSES_FILE = "classes.yaml"

# inferred number of classes per set of mask files (path, size, modification time): train and val of the
# same folder are usually opened one after the other, and the masks should be read only once
_inferred_classes: dict[tuple[tuple[str, int, int], ...], int] = {}


class Sample(NamedTuple):
    """One image with its mask.

    image: (H, W, C) float32 in [0, 1]; mask: (H, W) uint8 labels in 0..K-1 or ignore_index, or None.
    """

    image: np.ndarray
    mask: np.ndarray | None
    stem: str
    image_path: Path


class SegmentationFolder:
    """The labelled images of one split of a dataset folder (see the module docstring for the layouts).

    ``split`` is ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (every labelled pair). ``classes`` and
    ``in_channels`` override what the folder says (a model's classes and input channels, for evaluation).
    Images are conformed to ``in_channels``: grey repeated to 3 channels, RGB to grey by luminance; other
    band counts must match (``data.channels``). ``bands`` (1-based numbers or names), ``nodata`` and
    ``scaling`` (``auto``, ``image``, ``dataset``) set the reading rule, or ``input_bands`` gives a model's
    (``data.folder_bands``); ``input_bands`` (the attribute) is what a model trained on the folder records.

    >>> data = SegmentationFolder("data/cells", split="val")  # doctest: +SKIP
    >>> image, mask, stem, path = data[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        seed: int = 0,
        val_fraction: float = VAL_FRACTION,
        test_fraction: float = TEST_FRACTION,
        classes: ClassSpec | None = None,
        in_channels: int | None = None,
        bands: Sequence[Band] = (),
        nodata: float | None = None,
        scaling: str = "auto",
        input_bands: InputBands | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        check_split(split)
        if not self.root.is_dir():
            raise PixelwiseError(f"{self.root}: no such folder; give a dataset folder with images/ and masks/")
        present = available_splits(self.root)  # an error for a folder in neither layout
        self.layout: Layout = dataset_layout(self.root) or "splits"
        if self.layout == "flat":
            check_fractions(val_fraction, test_fraction)
            pairs = _pairs(self.root / "images", self.root / "masks")
            every_pair = pairs
            by_name = split_stems([stem for stem, _, _ in pairs], seed, val_fraction, test_fraction)
            training = [image for stem, image, _ in pairs if stem in set(by_name["train"])]
            if split != ALL:
                chosen = set(by_name[split])
                pairs = [pair for pair in pairs if pair[0] in chosen]
        else:
            wanted = present if split == ALL else (split,)
            if split not in present and split != ALL:
                raise PixelwiseError(
                    f"{self.root / split / 'images'}: no such folder (this dataset has {', '.join(present)}); "
                    f"pick one of them or add {split}/images and {split}/masks"
                )
            by_split = {name: _pairs(self.root / name / "images", self.root / name / "masks") for name in present}
            pairs = [pair for name in wanted for pair in by_split[name]]
            every_pair = [pair for name in present for pair in by_split[name]]
            training = [image for _, image, _ in by_split.get("train", [])]

        self.stems: list[str] = [stem for stem, _, _ in pairs]
        self.image_paths: list[Path] = [image for _, image, _ in pairs]
        self.mask_paths: list[Path] = [mask for _, _, mask in pairs]
        self.unlabeled_paths: list[Path] = self._unlabeled()
        self.classes: ClassSpec = classes if classes is not None else self._classes([m for _, _, m in every_pair])
        first_image = every_pair[0][1]
        # the band ranges come from the training images, whichever split this is (all images without them)
        self.bands = FolderBands(
            [image for _, image, _ in every_pair],
            training,
            selection=bands,
            nodata=nodata,
            scaling=scaling,
            given=input_bands,
        )
        if in_channels is None:
            in_channels = self.bands.channels(first_image)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise PixelwiseError(f"in_channels must be a positive integer, got {in_channels!r}")
        self.in_channels: int = in_channels

    @property
    def input_bands(self) -> InputBands | None:
        """How the images are read, for a model trained on them to record (None: grey or RGB as before)."""
        return self.bands.input_bands

    # --- the sequence ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image_path, mask_path = self.image_paths[index], self.mask_paths[index]
        image, missing = self.read_image(image_path)
        mask = read_mask(mask_path, self.classes)
        if mask.shape != image.shape[:2]:
            raise PixelwiseError(_size_mismatch(image_path, image.shape[:2], mask_path, mask.shape))
        if missing is not None:  # no data: left out of the loss and the scores
            mask = np.where(missing, np.uint8(self.classes.ignore_index), mask)
        return Sample(image, mask, self.stems[index], image_path)

    def read_image(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """An image of this folder (or an unlabeled one) as its samples are read: (H, W, in_channels) float32
        in [0, 1] by the folder's band rule, and its no-data pixels (or None)."""
        image, missing = self.bands.read(path)
        check_channels(image.shape[2], self.in_channels, str(path), expected="the dataset's images have")
        return conform_channels(image, self.in_channels), missing

    def missing_pixels(self, index: int) -> np.ndarray | None:
        """The no-data pixels of sample ``index`` (None when it has none): what the statistics leave out."""
        return self.bands.read(self.image_paths[index])[1]

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return (
            f"SegmentationFolder({str(self.root)!r}, split={self.split!r}: {len(self)} images, "
            f"{self.classes.num_classes} classes, {self.in_channels} channel(s), "
            f"{len(self.unlabeled_paths)} unlabeled)"
        )

    # --- validation ------------------------------------------------------------------------------------

    def check(self, *, decode: bool = False) -> None:
        """Fail now, not halfway through training: every mask must have its image's size.

        Reads only the file headers; with ``decode`` also decodes every image and mask (damaged files,
        labels outside the classes) and the unlabeled images.
        """
        self.bands.check(self.image_paths, self.mask_paths, self.in_channels)
        mismatched = []
        for image_path, mask_path in zip(self.image_paths, self.mask_paths, strict=True):
            image_hw, mask_hw = image_size(image_path), image_size(mask_path)
            if image_hw != mask_hw:
                mismatched.append((image_path, image_hw, mask_path, mask_hw))
        if len(mismatched) == 1:
            raise PixelwiseError(_size_mismatch(*mismatched[0]))
        if mismatched:
            shown = "; ".join(
                f"{mask} {_hw(mask_hw)} vs {image.name} {_hw(image_hw)}"
                for image, image_hw, mask, mask_hw in mismatched[:5]
            )
            raise PixelwiseError(
                f"{len(mismatched)} masks differ in size from their images ({shown}); give every mask its image's size"
            )
        if decode:
            for index in range(len(self)):
                self[index]
            for path in self.unlabeled_paths:
                self.read_image(path)

    # --- helpers ---------------------------------------------------------------------------------------

    def _unlabeled(self) -> list[Path]:
        folders = [self.root / "unlabeled"]
        if self.layout == "splits":
            folders.append(self.root / "train" / "unlabeled")
        return [path for folder in folders if folder.is_dir() for path in list_images(folder)]

    def _classes(self, mask_paths: list[Path]) -> ClassSpec:
        file = self.root / CLASSES_FILE
        if file.is_file():
            return ClassSpec.load(file)
        return infer_classes(mask_paths)


def infer_classes(mask_paths: Sequence[Path]) -> ClassSpec:
    """Classes from the masks alone: K = largest label (255 left out; a 0/255 binary mask counts as 0 and 1)
    + 1, at least 2. Masks that use 255 in two ways (binary foreground, ignore beside label 1) are refused."""
    key = tuple((str(path), (stat := path.stat()).st_size, stat.st_mtime_ns) for path in mask_paths)
    if key not in _inferred_classes:
        largest = 0
        binary: Path | None = None  # the first 0/255 binary mask
        ignoring: Path | None = None  # the first mask holding 255 beside a label
        for path in mask_paths:
            stored = stored_labels(path)
            values = stored.values[stored.values != 255]
            if stored.zero_255:
                binary, largest = binary or path, max(largest, 1)
            elif values.size:
                largest = max(largest, int(values[-1]))
            if stored.ignore_beside_labels:
                ignoring = ignoring or path
        if binary is not None and ignoring is not None and largest < 2:
            raise conflicting_masks(binary, ignoring)
        _inferred_classes[key] = max(largest + 1, 2)
    count = _inferred_classes[key]
    return ClassSpec.default(count, names=("background", "foreground") if count == 2 else None)


# --- layout and pairing --------------------------------------------------------------------------------


def _pairs(images_dir: Path, masks_dir: Path) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) for every image of ``images_dir``, sorted by stem; every mismatch an error."""
    images = _by_stem(list_images(images_dir), images_dir)
    if not images:
        raise PixelwiseError(f"{images_dir} is empty; put the images there")
    if not masks_dir.is_dir():
        raise PixelwiseError(
            f"{masks_dir}: no such folder; put a mask per image there (same file name), "
            f"or move unlabelled images to {images_dir.parent / 'unlabeled'}"
        )
    masks = _by_stem(list_images(masks_dir), masks_dir)
    without_mask = sorted(images.keys() - masks.keys())
    without_image = sorted(masks.keys() - images.keys())
    if without_mask:
        raise PixelwiseError(
            f"{len(without_mask)} image(s) in {images_dir} have no mask in {masks_dir}: "
            f"{_names(images[stem] for stem in without_mask)}; add their masks or move them to unlabeled/"
            + _near_match(
                {stem: images[stem] for stem in without_mask}, {stem: masks[stem] for stem in without_image}, masks_dir
            )
        )
    if without_image:
        raise PixelwiseError(
            f"{len(without_image)} mask(s) in {masks_dir} have no image in {images_dir}: "
            f"{_names(masks[stem] for stem in without_image)}; add their images or remove the masks"
        )
    return [(stem, images[stem], masks[stem]) for stem in sorted(images)]


def _by_stem(paths: list[Path], folder: Path) -> dict[str, Path]:
    """Images by name (``data.io.image_name``: the path within ``folder`` without the suffix)."""
    found: dict[str, Path] = {}
    for path in paths:
        name = image_name(path, folder)
        if name in found:
            raise PixelwiseError(
                f"{folder} has {found[name].relative_to(folder)} and {path.relative_to(folder)} with the same name; "
                "images and masks are paired by name, keep one of them"
            )
        found[name] = path
    return found


def _near_match(alone: dict[str, Path], others: dict[str, Path], folder: Path) -> str:
    """A hint for images without a mask, from the masks (of ``folder``) without an image, by name (the path
    in the folder without its extension): ``" (masks/im00.png differs from IM00.PNG only in letter case; ...)"``,
    or ``""``."""
    lowered = {name.lower(): name for name in others}
    for name, path in alone.items():
        if name.lower() in lowered:
            partner = others[lowered[name.lower()]].relative_to(folder.parent).as_posix()
            return (
                f" ({partner} differs from {path.name} only in letter case: images and masks are paired by the exact "
                "name; rename one of them)"
            )
    for name, path in alone.items():
        for other_name, other in others.items():
            if other_name.startswith(name) and other_name[len(name) : len(name) + 1] in ("_", "-", ".", " "):
                affix = other_name[len(name) :]
            elif other_name.endswith(name) and other_name[-len(name) - 1 : -len(name)] in ("_", "-", ".", " "):
                affix = other_name[: -len(name)]
            else:
                continue
            return (
                f" ({other.relative_to(folder.parent).as_posix()} looks like the mask of {path.name}: a mask takes "
                f"its image's name, without {affix!r}; rename the masks)"
            )
    for name, path in alone.items():
        close = difflib.get_close_matches(name, list(others), n=1, cutoff=0.8)
        if close:
            partner = others[close[0]].relative_to(folder.parent).as_posix()
            return f" (is {partner} the mask of {path.name}? images and masks are paired by the exact name)"
    return ""


def _names(paths: Iterator[Path] | Sequence[Path]) -> str:
    listed = [path.name for path in paths]
    return ", ".join(listed[:10]) + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")


def _hw(size: tuple[int, ...]) -> str:
    return f"{size[0]}x{size[1]}"


def _size_mismatch(image: Path, image_hw: tuple[int, ...], mask: Path, mask_hw: tuple[int, ...]) -> str:
    return (
        f"mask {mask} is {_hw(mask_hw)} (HxW) but its image {image} is {_hw(image_hw)}; give the mask the image's size"
    )
