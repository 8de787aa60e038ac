"""Padding an image to a multiple of a network's stride: how much on each side, and with which border mode.

One rule, shared by the network that pads inside ``forward`` (torch, ``models.network``) and the tiler that
pads each window before the backend (numpy or torch, ``inference``), so that a network exported without its
padding (ONNX) sees exactly the pixels the PyTorch one sees. Plain integers here: no numpy, no torch.
"""

from __future__ import annotations

from typing import Literal

PadMode = Literal["reflect", "replicate"]


def pad_amounts(size: int, *, multiple: int = 1, minimum: int = 0) -> tuple[int, int]:
    """(before, after) padding that takes ``size`` to the next multiple of ``multiple`` that is ≥ ``minimum``.

    Split evenly (the extra pixel after), so the content stays centred and both borders get context.

    >>> pad_amounts(97, multiple=32)
    (15, 16)
    >>> pad_amounts(64, multiple=32)
    (0, 0)
    >>> pad_amounts(50, minimum=64)
    (7, 7)
    """
    if multiple < 1:
        raise ValueError(f"multiple must be at least 1, got {multiple}")
    target = max(size, minimum)
    target = -(-target // multiple) * multiple
    total = target - size
    return total // 2, total - total // 2


def pad_mode(height: int, width: int, rows: tuple[int, int], columns: tuple[int, int]) -> PadMode:
    """``reflect`` (mirror without repeating the border pixel: torch's ``reflect``, numpy's ``reflect``)
    when the image is longer than every padding, else ``replicate`` (numpy's ``edge``) for all sides.

    Reflection cannot pad more than the image minus one pixel; tiny inputs repeat the border instead.

    >>> pad_mode(37, 50, (5, 6), (7, 7)), pad_mode(1, 50, (7, 8), (7, 7))
    ('reflect', 'replicate')
    """
    return "reflect" if max(rows) < height and max(columns) < width else "replicate"
