"""What `--instances` costs per image: the instances sink's commit (objects found and measured, GeoJSON,
COCO RLE, files written) on synthetic images of bright discs, a third of them touching, against writing the
mask alone; and the peak memory of finding the objects, per pixel (what ``sinks.objects`` budgets).

    nice -n 5 .venv/bin/python bench/instances_sink.py --sizes 512,1024,2048

One run per size, CPU time of this process (the wall time of a shared machine is mostly waiting).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def discs(size: int, *, seed: int = 0) -> np.ndarray:
    """(size, size) uint8: discs of radius 5-8 at a density of one per 1,600 pixels, some touching."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    picture = np.full((size, size), 30, np.uint8)
    for _ in range(size * size // 1600):
        centre = rng.integers(10, size - 10, 2)
        rows, columns = disk(tuple(centre), int(rng.integers(5, 9)), shape=picture.shape)
        picture[rows, columns] = 200
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024,2048")
    arguments = parser.parse_args()

    from PIL import Image

    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageInfo
    from pixelwise.instances.measure import image_objects
    from pixelwise.sinks import PredictionBand, make_sink
    from pixelwise.sinks.objects import InstanceSink

    classes = ClassSpec(("background", "nucleus"), ((0, 0, 0), (0, 200, 0)))
    print("| size | objects | mask alone (s) | --instances (s) | with --coco (s) | peak bytes / pixel |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for size in (64, *(int(value) for value in arguments.sizes.split(","))):  # 64: imports, not shown
        picture = discs(size)
        labels = (picture > 100).astype(np.uint8)
        info = ImageInfo(size, size, 1, "uint8")
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder)
            Image.fromarray(picture).save(out / "scan.png")
            times = []
            for sink in (
                make_sink("mask"),
                InstanceSink(out=out, inputs={"scan": out / "scan.png"}),
                InstanceSink(out=out, coco=True, inputs={"scan": out / "scan.png"}),
            ):
                started = time.process_time()
                writer = sink.open(sink.path(out, "scan"), info, classes)
                writer.write(PredictionBand(0, labels))
                writer.commit()
                times.append(time.process_time() - started)
            image_objects(labels[:64, :64], classes, name="warm")
            tracemalloc.start()
            found = image_objects(labels, classes, name="scan", pixels=picture)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        if size == 64:
            continue
        print(
            f"| {size}² | {found.instances.count} | {times[0]:.2f} | {times[1]:.2f} | {times[2]:.2f} | "
            f"{peak / size**2:.0f} |"
        )


if __name__ == "__main__":
    main()
