"""Predict class probabilities for images of any size: overlapping tiles, Gaussian-blended logits.

The image is read from an ``ImageSource`` (``data.sources``) a band of rows at a time, and the blended
result leaves as row bands (``Predictor.stream``) as soon as no later tile touches them: memory holds one
batch of tiles and one band of the canvas (K × tile height × W float32 logit sums and the weights), never
the whole canvas or the whole image, so a slide larger than the memory streams through. The in-memory
calls (``predict``, ``predict_labels``, ``predict_logits``) assemble the same bands into one array.
Logits (not probabilities) are blended, as nnU-Net does: averaging
scores before the softmax keeps confident tiles confident where a tile edge cuts an object.

The network sits behind a ``Backend`` (``inference.backends``), a callable from a (N, C, h, w) float32
numpy batch to (N, K, h, w) float32 logits, described by an ``InferenceSpec``. Every window is padded to a
multiple of the network's stride here, outside the network, so an exported network without padding of its
own (ONNX) takes any image. The loop is written once over ``inference.arrays``: numpy on the host, or, for
a ``TorchBackend``, torch on the model's device, so that a GPU blends its own tiles.
"""

from __future__ import annotations

import os
import secrets
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pixelwise.data.channels import conform_channels
from pixelwise.data.sources import ImageSource, as_source
from pixelwise.errors import InputError, PixelwiseError
from pixelwise.inference.arrays import Array, Arrays, NumpyArrays, padded_forward
from pixelwise.inference.backends import ArrayBackend, Backend, load_backend
from pixelwise.inference.spec import InferenceSpec
from pixelwise.inference.tiling import gaussian_importance_map, tile_starts

if TYPE_CHECKING:
    import torch

    from pixelwise.data.classes import ClassSpec


Output = Literal["labels", "probabilities", "logits"]
Progress = Callable[[int], Any]
# (top, left, height, width) of a tile -> whether to run it (e.g. inference.foreground.Foreground.wants)
TileFilter = Callable[[int, int, int, int], bool]


@dataclass(frozen=True)
class Band:
    """Rows [top, top + rows) of an image's prediction: (rows, W) labels or (K, rows, W) values."""

    top: int
    values: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.values.shape[-2])


class Predictor:
    """Any-size image -> per-class probabilities, by tiles blended with a Gaussian importance map.

    ``backend`` runs the network (``TorchBackend(model)``, or any callable from a numpy batch to numpy
    logits); ``spec`` says what it expects and returns: classes, per-channel standardisation of [0, 1]
    inputs, input channels, the training tile size, the network's stride. ``tile_size``: tiles are at most
    this size (default: the spec's; an image smaller than a tile is one window of its own size; every
    window is padded to a multiple of ``spec.stride``, so a tile that is one avoids the padding). ``overlap`` in [0, 1): fraction shared by neighbouring tiles. ``tta``: also predict
    the horizontally, vertically and doubly flipped tiles and average the logits (4× the time; exactly
    flip-equivariant).

    >>> from pixelwise.data.classes import ClassSpec
    >>> def bright(batch):  # a network in numpy: class 1 where the standardised pixel is positive
    ...     return np.concatenate([-batch, batch], axis=1)
    >>> spec = InferenceSpec(model="bright", classes=ClassSpec.default(2), mean=(0.5,), std=(0.25,), in_channels=1)
    >>> Predictor(bright, spec).predict_labels(np.array([[0.1, 0.4, 0.6, 0.9]])).tolist()
    [[0, 0, 1, 1]]
    """

    def __init__(
        self,
        backend: Backend,
        spec: InferenceSpec,
        *,
        tile_size: int | None = None,
        overlap: float = 0.5,
        batch_size: int = 4,
        tta: bool = False,
    ) -> None:
        tile_size = spec.tile_size if tile_size is None else tile_size
        if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
            raise PixelwiseError(f"tile size must be a positive integer, got {tile_size!r}; e.g. --tile 256")
        if not 0.0 <= float(overlap) < 1.0:
            raise PixelwiseError(f"overlap must be at least 0 and below 1, got {overlap!r}; e.g. --overlap 0.5")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise PixelwiseError(f"batch size must be a positive integer, got {batch_size!r}; e.g. --batch-size 4")
        # a torch module takes tensors, not numpy batches: say how to wrap it (importing nothing)
        torch_module = sys.modules.get("torch")
        if torch_module is not None and isinstance(backend, torch_module.nn.Module):
            raise PixelwiseError("the backend is a torch module; wrap it: Predictor(TorchBackend(model), spec)")
        self.backend = backend
        self.spec = spec
        self.mean = np.asarray(spec.mean, dtype=np.float32)
        self.std = np.asarray(spec.std, dtype=np.float32)
        self.tile_size = tile_size
        self.overlap = float(overlap)
        self.batch_size = batch_size
        self.tta = tta
        # what identifies this model in a job's record (predict_file): its file when loaded from one, else
        # this object alone (a later process cannot resume its rows, nor take its files for its own)
        self.model_path: Path | None = None
        self._instance = secrets.token_hex(8)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        tile_size: int | None = None,
        overlap: float = 0.5,
        batch_size: int = 4,
        tta: bool = False,
        backend: str | None = None,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
    ) -> Predictor:
        """A predictor for a trained model file: a checkpoint of ``pixelwise train`` (``.pt`` or its run
        folder) or an ``.onnx`` file of ``pixelwise export``.

        The network, classes, normalisation and input channels come from the file; ``tile_size`` defaults
        to the one it was trained with. ``backend`` (None: the file's own runtime; ``torch``, ``onnx``,
        ``auto``: the faster here), ``device``, ``precision`` (``auto``, ``fp32``, ``fp16``, ``bf16``) and
        ``threads``: see ``load_backend``. A missing, corrupt or foreign file is a PixelwiseError naming it.
        """
        runner, spec = load_backend(path, backend=backend, device=device, precision=precision, threads=threads)
        predictor = cls(runner, spec, tile_size=tile_size, overlap=overlap, batch_size=batch_size, tta=tta)
        predictor.model_path = Path(path)
        return predictor

    @property
    def classes(self) -> ClassSpec:
        return self.spec.classes

    @property
    def in_channels(self) -> int:
        return self.spec.in_channels

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    def predict(self, image: np.ndarray | ImageSource, *, progress: Progress | None = None) -> np.ndarray:
        """Class probabilities (K, H, W) float32 for an (H, W) or (H, W, C) image in [0, 1] (or uint8), or an
        ``ImageSource``.

        ``progress`` is called with the number of tiles done after each batch (e.g. ``tqdm.update``).
        """
        return self._assemble(image, "probabilities", progress)

    def predict_labels(self, image: np.ndarray | ImageSource, *, progress: Progress | None = None) -> np.ndarray:
        """Most probable class per pixel, (H, W) uint8."""
        return self._assemble(image, "labels", progress)

    def predict_logits(self, image: np.ndarray | ImageSource, *, progress: Progress | None = None) -> np.ndarray:
        """Blended logits (K, H, W) float32: the Gaussian-weighted average over the tiles covering each pixel."""
        return self._assemble(image, "logits", progress)

    def stream(
        self,
        image: np.ndarray | ImageSource,
        *,
        output: Output = "labels",
        progress: Progress | None = None,
        start_row: int = 0,
        tile_filter: TileFilter | None = None,
    ) -> Iterator[Band]:
        """The prediction of ``image`` in row bands, top to bottom, each as soon as no later tile touches it.

        ``output``: ``labels`` ((h, W) uint8), ``probabilities`` or ``logits`` ((K, h, W) float32). Memory
        holds one band of tiles (the tile height × the image width, for the K classes) whatever the image's
        height; the values are those of the whole canvas, bit for bit (the same tiles, weights and sums in
        the same order). ``start_row``: begin there (resuming): the rows above are not given, the rows
        from it on are exactly those of a whole run.

        ``tile_filter(top, left, height, width)``: run only the tiles it accepts (the others are neither read
        nor run, and count as done for ``progress``). A tile that runs is blended exactly as in a whole run;
        a pixel that only skipped tiles cover gets class 0 (the background): label 0, probability 1 for class
        0, logits 0. Pixels that skipped and run tiles both cover get the blend of the run ones.
        """
        source = as_source(image)
        for top, values in self._host_bands(source, output, progress, start_row, tile_filter):
            # a band on the host may be a view of the band buffer, which the next band overwrites
            yield Band(top, values if output == "labels" else values.copy())

    def _host_bands(
        self,
        source: ImageSource,
        output: Output,
        progress: Progress | None,
        start_row: int,
        tile_filter: TileFilter | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(top, values on the host) of every band from ``start_row``; the values are valid until the next."""
        if output == "labels" and self.num_classes > 256:
            raise PixelwiseError(f"{self.num_classes} classes do not fit uint8 labels; use predict() and argmax")
        for top, arrays, summed, weight in self._blend(source, progress, start_row, tile_filter):
            skip = max(0, start_row - top)
            if skip >= summed.shape[1]:
                continue
            summed, weight = summed[:, skip:], weight[skip:]
            if output == "labels":
                # every class of a pixel is divided by the same positive weight: the argmax needs no division
                yield top + skip, arrays.labels(summed)
                continue
            # pixels no run tile covered (only with a tile filter): logits 0, class 0 certain
            uncovered = (weight == 0) if tile_filter is not None else None
            if uncovered is not None:
                weight[uncovered] = 1
            summed /= weight
            if output == "probabilities":
                arrays.softmax_(summed)
                if uncovered is not None:
                    summed[:, uncovered] = 0
                    summed[0, uncovered] = 1
            yield top + skip, arrays.to_host(summed)

    def _assemble(self, image: np.ndarray | ImageSource, output: Output, progress: Progress | None) -> np.ndarray:
        """The bands of ``stream`` in one array."""
        source = as_source(image)
        height, width = source.info.height, source.info.width
        shape = (height, width) if output == "labels" else (self.num_classes, height, width)
        result = np.empty(shape, np.uint8 if output == "labels" else np.float32)
        for top, values in self._host_bands(source, output, progress, 0):
            result[..., top : top + values.shape[-2], :] = values
        return result

    def _blend(
        self, source: ImageSource, progress: Progress | None, start_row: int, tile_filter: TileFilter | None = None
    ) -> Iterator[tuple[int, Arrays, Array, Array]]:
        """(top, arrays, (K, h, W) sum of Gaussian-weighted tile logits, (h, W) sum of the weights) for every
        band of rows that is final, top to bottom; the two sums are views of buffers reused for the next band,
        to be consumed before asking for it. Tiles ``tile_filter`` refuses are left out (not read, not run)."""
        info = source.info
        height, width = info.height, info.width
        scale = self._check_source(source)
        # every window of an image has one shape: the tile, or the image where it is smaller
        tile_height, tile_width = min(self.tile_size, height), min(self.tile_size, width)
        tops = tile_starts(height, self.tile_size, self.overlap)
        lefts = tile_starts(width, self.tile_size, self.overlap)
        # the tile rows whose tiles reach start_row or below
        tops = [top for top in tops if top + tile_height > start_row] or tops[-1:]
        positions = [(top, left) for top in tops for left in lefts]
        if tile_filter is not None:
            positions = [(top, left) for top, left in positions if tile_filter(top, left, tile_height, tile_width)]
            skipped = {top: len(lefts) - sum(1 for kept, _ in positions if kept == top) for top in tops}
            if progress is not None and skipped[tops[0]]:
                progress(skipped[tops[0]])
        # the band buffers and one band of the image, all float32 at most
        arrays = self._arrays(4 * tile_height * width * (self.num_classes + 1 + max(info.bands, self.in_channels)))
        mean, std = arrays.constant(self.mean[:, None, None]), arrays.constant(self.std[:, None, None])
        importance = arrays.constant(gaussian_importance_map(tile_height, tile_width))
        summed = arrays.zeros((self.num_classes, tile_height, width))
        weight = arrays.zeros((tile_height, width))
        batch = arrays.zeros((max(1, min(self.batch_size, len(positions))), self.in_channels, tile_height, tile_width))
        row, pixels_top = 0, -1  # row: the index in tops of the band's top
        pixels: Array = None
        for first in range(0, len(positions), self.batch_size):
            chunk = positions[first : first + self.batch_size]
            for index, (top, left) in enumerate(chunk):
                if top != pixels_top:
                    pixels, pixels_top = arrays.image(self._pixels(source, top, tile_height)), top
                arrays.standardize(pixels[:, left : left + tile_width], scale, mean, std, out=batch[index])
            logits = self._run(arrays, batch[: len(chunk)])
            expected = (len(chunk), self.num_classes, tile_height, tile_width)
            if tuple(logits.shape) != expected:
                raise PixelwiseError(
                    f"the model gave logits of shape {tuple(logits.shape)} for a batch needing {expected}; "
                    f"the model and the class list ({self.num_classes} classes) do not belong together"
                )
            for index, (top, left) in enumerate(chunk):
                while tops[row] != top:
                    # no tile of the next row or below reaches the rows above its top: they are final
                    yield from self._finish_rows(arrays, summed, weight, tops, row)
                    row += 1
                    if tile_filter is not None and progress is not None and skipped[tops[row]]:
                        progress(skipped[tops[row]])
                logits[index] *= importance
                summed[:, 0:tile_height, left : left + tile_width] += logits[index]
                weight[0:tile_height, left : left + tile_width] += importance
            if progress is not None:
                progress(len(chunk))
        for later in range(row, len(tops) - 1):  # tile rows after the last tile run (all skipped)
            yield from self._finish_rows(arrays, summed, weight, tops, later)
            if tile_filter is not None and progress is not None and skipped[tops[later + 1]]:
                progress(skipped[tops[later + 1]])
        yield tops[-1], arrays, summed, weight

    @staticmethod
    def _finish_rows(
        arrays: Arrays, summed: Array, weight: Array, tops: list[int], row: int
    ) -> Iterator[tuple[int, Arrays, Array, Array]]:
        """The band of rows [tops[row], tops[row + 1]) (final once the tiles of row + 1 begin), then the
        buffers moved up so that they start at tops[row + 1]."""
        done = tops[row + 1] - tops[row]
        yield tops[row], arrays, summed[:, :done], weight[:done]
        arrays.shift_rows(summed, done)
        arrays.shift_rows(weight, done)

    def predict_file(
        self,
        image: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        mask_format: str = "auto",
        probabilities: bool = False,
        level: int | None = None,
        mpp: float | None = None,
        foreground: bool | None = None,
        overwrite: bool = False,
        quiet: bool = True,
    ) -> Path:
        """Predict an image file of any size into the folder ``out``, as ``pixelwise predict`` does, and return
        the mask's path.

        Any file an image reader takes (``data.sources.open_image``: PNG, JPEG, TIFF; tiled and pyramidal TIFF,
        OME-TIFF and whole slides by region); ``level`` / ``mpp`` pick a pyramid level; ``foreground``
        skips background tiles (None: for slides and microscope pyramids). ``mask_format``: ``auto`` (a PNG,
        or a tiled pyramidal TIFF for an image read by region or too large for a PNG), ``png``, ``tiff``;
        ``probabilities``: also ``probabilities/<stem>.npy`` (or ``.ome.zarr`` beside a TIFF). Files appear
        whole or not at all; for a predictor loaded from a file, a run killed midway resumes at its last
        finished block of rows when called again. A bad image is a PixelwiseError naming it.
        """
        from pixelwise.inference.file_prediction import OutputOptions, file_identity, predict_to_folder

        options = OutputOptions(mask_format, probabilities, False, level, mpp, foreground)
        model = file_identity(self.model_path) if self.model_path is not None else {"instance": self._instance}
        settings = {
            "command": "predict",
            "model": model,
            "tile": self.tile_size,
            "overlap": self.overlap,
            "tta": self.tta,
        }
        run = predict_to_folder(
            self, [Path(image)], Path(out), options, settings=settings, overwrite=overwrite, quiet=quiet
        )
        if run.report.failed:
            raise run.report.failure(1)
        return next(iter(run.masks.values()))

    def tiles(self, height: int, width: int) -> int:
        """How many tiles an image of ``height`` × ``width`` takes (for progress bars)."""
        return len(tile_starts(height, self.tile_size, self.overlap)) * len(
            tile_starts(width, self.tile_size, self.overlap)
        )

    def _arrays(self, nbytes: int) -> Arrays:
        """The backend's own arrays (a torch device) when it offers them and ``nbytes`` of buffers fit there,
        else numpy."""
        if isinstance(self.backend, ArrayBackend):
            arrays = self.backend.arrays(nbytes)
            if arrays is not None:
                return arrays
        return NumpyArrays(self.backend)

    def _run(self, arrays: Arrays, batch: Array) -> Array:
        """Logits for a batch of windows (padded to the stride outside the network), averaged over the four
        flips when TTA is on."""
        logits = padded_forward(arrays, batch, self.spec.stride)
        if not self.tta:
            return logits
        for axes in ((-1,), (-2,), (-2, -1)):
            logits += arrays.flip(padded_forward(arrays, arrays.flip(batch, axes), self.spec.stride), axes)
        logits /= 4
        return logits

    def _check_source(self, source: ImageSource) -> float:
        """The factor that takes the source's values to [0, 1]; a note when its channels are converted."""
        info = source.info
        dtype = np.dtype(info.dtype)
        if dtype == np.uint8:
            scale = 1 / 255
        elif np.issubdtype(dtype, np.floating) or dtype == np.bool_:
            scale = 1.0
        else:
            raise InputError(
                f"{_prefix(source)}expected a float image in [0, 1] (or uint8), got {dtype}; "
                "read files with pixelwise.data.io.read_image, which scales any type"
            )
        if info.bands == self.in_channels:
            return scale
        if info.bands == 1 and self.in_channels == 3:  # data.channels' rule: grey and RGB convert, bands never
            warnings.warn(
                f"the image is grey and the model expects {self.in_channels} channels: repeating the grey channel",
                stacklevel=4,
            )
        elif info.bands == 3 and self.in_channels == 1:
            warnings.warn("the image is RGB and the model expects grey: using its luminance", stacklevel=4)
        else:
            raise InputError(
                f"{_prefix(source)}the image has {info.bands} channels but the model was trained on "
                f"{self.in_channels}; give images like the training images"
            )
        return 1.0

    def _pixels(self, source: ImageSource, top: int, rows: int) -> np.ndarray:
        """Rows [top, top + rows) of the image, whole width, with the model's channels.

        Values are converted per window later, so a huge image is never copied; only a band whose channels
        differ from the model's is converted here (to float32, in [0, 1]).
        """
        pixels = source.read(top, 0, rows, source.info.width)
        if pixels.shape[2] == self.in_channels:
            return pixels
        as_float = pixels.astype(np.float32)
        if pixels.dtype == np.uint8:
            as_float *= np.float32(1 / 255)
        return conform_channels(as_float, self.in_channels)


def _prefix(source: ImageSource) -> str:
    """``"path: "`` for a message about a source read from a file; nothing for an array in memory."""
    return f"{source.name}: " if source.name else ""
