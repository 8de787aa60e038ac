"""Class colours where a reader must tell them apart: outlines for light colours, and the legend of an overlay.

A class coloured (240, 240, 240) is invisible as a swatch on a white page, so every swatch of a light
colour gets a dark outline (``is_light``, ``OUTLINE``). ``with_legend`` puts a band under an overlay
(``pixelwise predict --overlay``) naming the colours of the classes it shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixelwise.data.classes import ClassSpec, Color

OUTLINE = (85, 85, 85)  # dark grey: visible around white and light grey, quiet around the rest
LIGHT = 0.8  # relative luminance above which a colour needs an outline on white


def is_light(color: Sequence[int]) -> bool:
    """Whether a swatch of ``color`` (0..255 RGB) would vanish on a white page (Rec. 709 luminance > 0.8).

    >>> is_light((240, 240, 240)), is_light((255, 255, 0)), is_light((0, 0, 255)), is_light((128, 0, 0))
    (True, True, False, False)
    """
    red, green, blue = (channel / 255 for channel in color[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue > LIGHT


def hex_color(color: Sequence[int]) -> str:
    """``(240, 240, 240)`` -> ``"#f0f0f0"``."""
    return "#{:02x}{:02x}{:02x}".format(*color[:3])


def with_legend(picture: np.ndarray, labels: np.ndarray, classes: ClassSpec) -> np.ndarray:
    """(H, W, 3) uint8 ``picture`` with a white band below naming the colour of each class in ``labels``.

    Only the classes present are listed, in class order; the band is as wide as the picture (or, for a
    picture too narrow to hold one entry, wider, with the picture padded white on the right). Text scales
    with the picture so that the legend stays readable on a 4000-pixel slide and on a 64-pixel crop.
    """
    from PIL import Image, ImageDraw, ImageFont

    present = [index for index in range(classes.num_classes) if np.any(labels == index)]
    height, width = picture.shape[:2]
    size = int(np.clip(round(max(height, width) / 40), 11, 64))
    font = ImageFont.load_default(size=size)
    gap, box = size // 2, size
    entries = [(classes.names[index], classes.colors[index]) for index in present]
    widths = [box + gap // 2 + int(np.ceil(font.getlength(name))) for name, _ in entries]
    band_width = max(width, *(entry + 2 * gap for entry in widths)) if entries else width
    rows: list[list[int]] = [[]]
    used = gap
    for index, entry in enumerate(widths):
        if rows[-1] and used + entry + gap > band_width:
            rows.append([])
            used = gap
        rows[-1].append(index)
        used += entry + 2 * gap
    row_height = size + gap
    band = Image.new("RGB", (band_width, gap + row_height * len(rows)), "white")
    draw = ImageDraw.Draw(band)
    for row, members in enumerate(rows):
        x, y = gap, gap + row * row_height
        for index in members:
            name, color = entries[index]
            outline = OUTLINE if is_light(color) else None
            draw.rectangle(
                [x, y, x + box - 1, y + box - 1], fill=tuple(color), outline=outline, width=max(1, size // 12)
            )
            draw.text((x + box + gap // 2, y + box / 2), name, fill=(0, 0, 0), font=font, anchor="lm")
            x += widths[index] + 2 * gap
    canvas = np.full((height + band.height, band_width, 3), 255, dtype=np.uint8)
    canvas[:height, :width] = picture[..., :3]
    canvas[height:] = np.asarray(band)
    return canvas


def legend_colors(colors: Sequence[Color]) -> list[tuple[str, str]]:
    """(face, edge) hex colours of matplotlib legend patches: light ones outlined, the rest edged in their own
    colour (no grey frame around a dark swatch)."""
    return [(hex_color(color), hex_color(OUTLINE) if is_light(color) else hex_color(color)) for color in colors]
