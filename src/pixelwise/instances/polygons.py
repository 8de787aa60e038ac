"""Objects as polygons along the pixel edges: exact outlines, holes kept, rings simple.

A pixel (row r, column c) is the square x in [c, c+1], y in [r, r+1]; an object's outline runs along the
edges between its pixels and the others, so filling the polygon gives back exactly the object's pixels
(what QuPath does when it turns a label image into objects). Each boundary edge is directed with the
object on its left (in the x, y numbers), the edges are chained into closed rings, and a ring that passes a
vertex twice (two pixels touching at a corner) is cut there into two rings, so no ring touches itself, as
the simple-features rules (and GEOS/JTS validity) ask. Rings of positive signed area are outlines (shells),
the others holes, each hole inside the smallest shell that contains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Ring = list[tuple[int, int]]  # (x, y) pixel-corner vertices; closed: the first vertex is not repeated


@dataclass(frozen=True)
class Polygon:
    """One outline and its holes, in pixel-corner coordinates (x = column, y = row) of the whole image."""

    shell: Ring
    holes: list[Ring]


def object_polygons(region: np.ndarray, *, offset: tuple[int, int] = (0, 0)) -> list[Polygon]:
    """The polygons of the pixels of ``region`` (H, W) bool; ``offset`` (row, column) of its top-left pixel in
    the image. Shells are counter-clockwise in the x, y numbers (positive area), holes clockwise."""
    padded = np.pad(region.astype(bool), 1)
    starts, ends = _edges(padded)
    if not len(starts):
        return []
    width = padded.shape[1] + 1
    rings = [piece for ring in _chain(starts, ends) for piece in _simple_rings(ring)]
    shells: list[tuple[Ring, float]] = []
    holes: list[tuple[Ring, tuple[float, float]]] = []
    for ring in rings:
        points = [(vertex % width, vertex // width) for vertex in ring]
        area = _signed_area(points)
        if area > 0:
            shells.append((points, area))
        else:
            holes.append((points, _point_inside_hole(points)))
    shells.sort(key=lambda item: item[1])  # smallest first: a hole belongs to the innermost shell around it
    polygons = [Polygon(_straight(shell), []) for shell, _ in shells]
    for hole, inside in holes:
        for index, (shell, _) in enumerate(shells):
            if _contains(shell, inside):
                polygons[index].holes.append(_straight(hole))
                break
    row, column = offset
    return [
        Polygon(
            _moved(polygon.shell, column - 1, row - 1), [_moved(hole, column - 1, row - 1) for hole in polygon.holes]
        )
        for polygon in polygons
    ]


def _edges(padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end vertices (as y * (W + 1) + x) of every boundary edge, the pixels on the left."""
    width = padded.shape[1] + 1
    inner = padded[1:-1, 1:-1]
    rows, columns = np.mgrid[1 : padded.shape[0] - 1, 1 : padded.shape[1] - 1]
    starts, ends = [], []
    # (neighbour that must be outside, start corner, end corner) per side, corners as (dx, dy) of the pixel
    sides = (
        (padded[:-2, 1:-1], (0, 0), (1, 0)),  # top: left to right
        (padded[1:-1, 2:], (1, 0), (1, 1)),  # right: downwards
        (padded[2:, 1:-1], (1, 1), (0, 1)),  # bottom: right to left
        (padded[1:-1, :-2], (0, 1), (0, 0)),  # left: upwards
    )
    for neighbour, (start_x, start_y), (end_x, end_y) in sides:
        on_edge = inner & ~neighbour
        y, x = rows[on_edge], columns[on_edge]
        starts.append((y + start_y) * width + x + start_x)
        ends.append((y + end_y) * width + x + end_x)
    return np.concatenate(starts), np.concatenate(ends)


def _chain(starts: np.ndarray, ends: np.ndarray) -> list[list[int]]:
    """Closed walks over all edges (each vertex has as many edges in as out, so a walk ends where it began)."""
    order = np.argsort(starts, kind="stable")
    sorted_starts = starts[order]
    outgoing: dict[int, list[int]] = {}
    first = np.searchsorted(sorted_starts, sorted_starts, side="left")
    for position, vertex in enumerate(sorted_starts.tolist()):
        if first[position] == position:
            outgoing[vertex] = []
        outgoing[vertex].append(int(order[position]))
    start_list, end_list = starts.tolist(), ends.tolist()
    used = [False] * len(start_list)
    walks = []
    for seed in range(len(start_list)):
        if used[seed]:
            continue
        walk = []
        edge: int | None = seed
        while edge is not None:
            used[edge] = True
            walk.append(start_list[edge])
            edge = next((candidate for candidate in outgoing[end_list[edge]] if not used[candidate]), None)
        walks.append(walk)
    return walks


def _simple_rings(walk: list[int]) -> list[list[int]]:
    """A closed walk cut at every vertex it passes twice: rings that never touch themselves."""
    rings: list[list[int]] = []
    stack: list[int] = []
    position: dict[int, int] = {}
    for vertex in walk:
        if vertex in position:
            start = position[vertex]
            rings.append(stack[start:])
            for dropped in stack[start + 1 :]:
                del position[dropped]
            del stack[start + 1 :]
        else:
            position[vertex] = len(stack)
            stack.append(vertex)
    rings.append(stack)
    return [ring for ring in rings if len(ring) >= 4]


def _signed_area(points: Ring) -> float:
    x = np.array([point[0] for point in points], dtype=np.float64)
    y = np.array([point[1] for point in points], dtype=np.float64)
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def _point_inside_hole(points: Ring) -> tuple[float, float]:
    """The centre of the pixel on the right of the hole's first edge: a pixel of the hole."""
    (x0, y0), (x1, y1) = points[0], points[1]
    dx, dy = np.sign(x1 - x0), np.sign(y1 - y0)
    return (x0 + dx * 0.5 + dy * 0.5, y0 + dy * 0.5 - dx * 0.5)


def _contains(ring: Ring, point: tuple[float, float]) -> bool:
    """Even-odd ray casting; ``point`` is a pixel centre, never on an edge of a pixel-corner ring."""
    x, y = point
    inside = False
    count = len(ring)
    for index in range(count):
        (x0, y0), (x1, y1) = ring[index], ring[(index + 1) % count]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def _straight(ring: Ring) -> Ring:
    """The ring without the vertices in the middle of a straight run (a side of n pixels is one segment)."""
    count = len(ring)
    kept = []
    for index in range(count):
        (x0, y0), (x1, y1), (x2, y2) = ring[index - 1], ring[index], ring[(index + 1) % count]
        if (x1 - x0) * (y2 - y1) != (y1 - y0) * (x2 - x1):
            kept.append(ring[index])
    return kept


def _moved(ring: Ring, dx: int, dy: int) -> Ring:
    return [(x + dx, y + dy) for x, y in ring]
