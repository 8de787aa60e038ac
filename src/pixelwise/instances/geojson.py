"""Objects as GeoJSON (RFC 7946): a FeatureCollection, one Polygon or MultiPolygon per object.

QuPath (File > Import objects), QGIS and GDAL read it. Each feature's ``properties``: ``objectType``
("detection") and ``classification`` ({``name``, ``color`` [r, g, b]}) as QuPath writes and reads them,
and flat ``class``, ``color`` ("#rrggbb"), ``label`` (the value in the label image), ``area`` (pixels) and
``image`` for GIS tables.

Coordinates are pixel corners of the full image (x = column, y = row, the top-left corner of the image at
0, 0), as QuPath expects, unless an affine ``transform`` is given: rasterio's order (a, b, c, d, e, f), map
x = a·column + b·row + c, map y = d·column + e·row + f (``tuple(dataset.transform)[:6]``; GDAL's
geotransform is (c, a, b, f, d, e)). A ``crs`` ("EPSG:32633", or any name) is written as the ``crs``
member GDAL writes and reads (RFC 7946 itself knows only WGS 84 longitude/latitude). Exterior rings run
counter-clockwise and holes clockwise in the coordinates written (RFC 7946 §3.1.6), whichever way the
transform turns them; every ring is closed and simple.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.labels import Instances
from pixelwise.instances.polygons import Polygon, Ring, object_polygons

Affine = tuple[float, float, float, float, float, float]


def object_features(
    instances: Instances,
    classes: ClassSpec | None = None,
    *,
    transform: Sequence[float] | None = None,
    crs: str | None = None,
    name: str = "",
) -> dict[str, Any]:
    """The objects of one image as a GeoJSON FeatureCollection (a JSON-ready dict), ordered by label."""
    from scipy import ndimage

    affine = _affine(transform) if transform is not None else None
    features = []
    for index, window in enumerate(ndimage.find_objects(instances.labels)):
        if window is None:
            continue
        label = index + 1
        region = instances.labels[window] == label
        polygons = object_polygons(region, offset=(window[0].start, window[1].start))
        class_index = int(instances.classes[index])
        class_name, color = _class_of(classes, class_index)
        properties: dict[str, Any] = {
            "objectType": "detection",
            "classification": {"name": class_name, "color": list(color)},
            "class": class_name,
            "color": "#{:02x}{:02x}{:02x}".format(*color),
            "label": label,
            "area": int(region.sum()),
        }
        if name:
            properties["image"] = name
        features.append(
            {
                "type": "Feature",
                "id": f"{name}-{label}" if name else label,
                "geometry": _geometry(polygons, affine),
                "properties": properties,
            }
        )
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        collection["crs"] = {"type": "name", "properties": {"name": _crs_name(crs)}}
    return collection


def write_geojson(path: str | os.PathLike[str], collection: dict[str, Any]) -> None:
    """Write a FeatureCollection atomically (compact JSON: a slide's nuclei make large files)."""
    from pixelwise.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(collection, separators=(",", ":"), allow_nan=False))


def _geometry(polygons: list[Polygon], affine: Affine | None) -> dict[str, Any]:
    flips = affine is not None and affine[0] * affine[4] - affine[1] * affine[3] < 0
    coordinates = [
        [_positions(polygon.shell, affine, flips), *(_positions(hole, affine, flips) for hole in polygon.holes)]
        for polygon in polygons
    ]
    if len(coordinates) == 1:
        return {"type": "Polygon", "coordinates": coordinates[0]}
    return {"type": "MultiPolygon", "coordinates": coordinates}


def _positions(ring: Ring, affine: Affine | None, flips: bool) -> list[list[float]]:
    """A ring as closed GeoJSON positions, reversed when the transform mirrors (keeping RFC 7946's order)."""
    ordered = ring[::-1] if flips else ring
    closed = [*ordered, ordered[0]]
    if affine is None:
        return [[x, y] for x, y in closed]
    a, b, c, d, e, f = affine
    return [[a * x + b * y + c, d * x + e * y + f] for x, y in closed]


def _affine(transform: Sequence[float]) -> Affine:
    values = [float(value) for value in transform]
    if len(values) == 9 and values[6:] == [0.0, 0.0, 1.0]:
        values = values[:6]  # a rasterio/affine Affine is nine numbers, the last row (0, 0, 1)
    if len(values) != 6 or not all(np.isfinite(values)):
        raise PixelwiseError(
            f"transform {list(transform)}: give six finite numbers (a, b, c, d, e, f) in rasterio's order"
        )
    if values[0] * values[4] - values[1] * values[3] == 0:
        raise PixelwiseError(f"transform {list(transform)}: it maps the image onto a line; give an invertible one")
    a, b, c, d, e, f = values
    return (a, b, c, d, e, f)


def _crs_name(crs: str) -> str:
    match = re.fullmatch(r"\s*(EPSG|epsg):(\d+)\s*", crs)
    return f"urn:ogc:def:crs:EPSG::{match.group(2)}" if match else crs


def _class_of(classes: ClassSpec | None, index: int) -> tuple[str, tuple[int, int, int]]:
    if classes is not None and 0 <= index < classes.num_classes:
        return classes.names[index], classes.colors[index]
    from pixelwise.data.classes import default_colors

    return str(index), default_colors(max(index + 1, 2))[index]
