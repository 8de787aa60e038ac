"""GeoJSON polygons: what QuPath and GIS expect (RFC 7946 rings), and filling them gives back the pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import polygon2mask

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.geojson import object_features, write_geojson
from pixelwise.instances.labels import Instances, instance_labels

CLASSES = ClassSpec(("background", "nucleus"), ((0, 0, 0), (255, 0, 0)))


def signed_area(ring: list[list[float]]) -> float:
    points = np.asarray(ring[:-1], dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def filled(ring: list[list[float]], shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres the ring (pixel-corner x, y) encloses, by scikit-image's rasteriser."""
    points = np.asarray(ring, dtype=np.float64)
    return polygon2mask(shape, np.stack([points[:, 1] - 0.5, points[:, 0] - 0.5], axis=1))


def polygons_of(geometry: dict) -> list[list[list[list[float]]]]:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]


def check_rings(geometry: dict) -> None:
    """RFC 7946 §3.1.6 and simple-features validity of each ring: closed, at least four positions, no vertex
    twice, exterior counter-clockwise, holes clockwise."""
    assert geometry["type"] in ("Polygon", "MultiPolygon")
    for polygon in polygons_of(geometry):
        for index, ring in enumerate(polygon):
            assert ring[0] == ring[-1] and len(ring) >= 4
            assert len({tuple(point) for point in ring[:-1]}) == len(ring) - 1
            assert (signed_area(ring) > 0) == (index == 0)


def blobs(seed: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Smoothed noise thresholded: ragged objects with holes and pixels touching at a corner only."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 1.2)
    return (noise > np.quantile(noise, 0.55)).astype(np.uint8)


@pytest.mark.parametrize("seed", range(4))
def test_filling_the_polygons_gives_back_each_objects_pixels(seed: int) -> None:
    objects = instance_labels(blobs(seed), CLASSES, split=False, min_size=0)
    collection = object_features(objects, CLASSES, name="tile")
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == objects.count
    holes = 0
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        check_rings(feature["geometry"])
        label = feature["properties"]["label"]
        drawn = np.zeros(objects.labels.shape, bool)
        for polygon in polygons_of(feature["geometry"]):
            shell = filled(polygon[0], objects.labels.shape)
            for hole in polygon[1:]:
                assert not (filled(hole, objects.labels.shape) & ~shell).any()  # each hole inside its shell
                shell &= ~filled(hole, objects.labels.shape)
                holes += 1
            drawn |= shell
        assert np.array_equal(drawn, objects.labels == label)
        assert feature["properties"]["area"] == int((objects.labels == label).sum())
    assert holes > 0  # the blobs have holes, so they were kept


def test_corner_touches_make_simple_rings() -> None:
    # an 8-connected object of two squares touching at a corner: two polygons; a ring of pixels whose hole
    # touches the outside at a corner: a shell and a hole sharing one vertex, no ring touching itself
    labels = np.zeros((10, 12), np.int32)
    labels[1:3, 1:3] = 1
    labels[3:5, 3:5] = 1
    labels[5:9, 6:11] = 2
    labels[6:8, 7:10] = 0
    labels[5, 6] = 0
    labels[6, 6] = 0
    labels[6, 7] = 2
    objects = Instances(labels, np.array([1, 1], np.int32))
    features = object_features(objects, CLASSES)["features"]
    assert features[0]["geometry"]["type"] == "MultiPolygon"
    for feature in features:
        check_rings(feature["geometry"])


def test_properties_say_class_and_colour_as_qupath_reads_them(tmp_path: Path) -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:6] = 1
    collection = object_features(instance_labels(mask, CLASSES, min_size=0), CLASSES, name="a")
    properties = collection["features"][0]["properties"]
    assert properties["classification"] == {"name": "nucleus", "color": [255, 0, 0]}
    assert properties["objectType"] == "detection"
    assert (properties["class"], properties["color"], properties["image"]) == ("nucleus", "#ff0000", "a")
    # pixel corners of the full image, x = column, y = row
    assert collection["features"][0]["geometry"]["coordinates"] == [[[2, 2], [6, 2], [6, 5], [2, 5], [2, 2]]]
    assert "crs" not in collection
    write_geojson(tmp_path / "a.geojson", collection)
    assert json.loads((tmp_path / "a.geojson").read_text()) == collection


def test_map_coordinates_keep_the_exterior_counter_clockwise() -> None:
    # a north-up GeoTIFF: 0.5 m pixels, y decreasing with the row; the mirror would turn rings clockwise
    objects = instance_labels(blobs(7), CLASSES, split=False, min_size=0)
    affine = (0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0)
    collection = object_features(objects, CLASSES, transform=affine, crs="EPSG:32633")
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    pixel = object_features(objects, CLASSES)
    for mapped, plain in zip(collection["features"], pixel["features"], strict=True):
        check_rings(mapped["geometry"])
        first = polygons_of(plain["geometry"])[0][0]
        x, y = first[0]
        assert [500000.0 + 0.5 * x, 4100000.0 - 0.5 * y] in polygons_of(mapped["geometry"])[0][0]
    # an Affine of nine numbers (rasterio's) is accepted; a singular one is not
    nine = (*affine, 0.0, 0.0, 1.0)
    assert object_features(objects, CLASSES, transform=nine) == object_features(objects, CLASSES, transform=affine)
    with pytest.raises(PixelwiseError, match="invertible"):
        object_features(objects, CLASSES, transform=(1, 0, 0, 1, 0, 0))
    with pytest.raises(PixelwiseError, match="six finite numbers"):
        object_features(objects, CLASSES, transform=(1, 0, 0))
