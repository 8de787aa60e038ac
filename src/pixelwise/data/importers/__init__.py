"""Labels from labelling tools: COCO, CVAT, LabelMe, Pascal VOC and Cityscapes exports as dataset folders.

==========  ===================================================================================================
coco        COCO JSON (polygons, RLE compressed or not, ``iscrowd``, any category ids) + a folder of images
cvat        CVAT "Segmentation mask 1.1" (zip or folder) or "CVAT for images 1.1" XML (polygons, boxes, masks)
labelme     a folder of LabelMe JSON files (polygons, rectangles, circles, masks; ``imagePath`` or ``imageData``)
voc         Pascal VOC ``SegmentationClass/`` palette masks: 21 classes, 255 ignored
cityscapes  ``*_gtFine_labelIds.png`` mapped to the 19 train ids, the other ids ignored
==========  ===================================================================================================

``import_dataset(format, source, out, **options)`` writes an ordinary dataset folder (``images/``,
``masks/``, ``classes.yaml``) that every command takes; ``IMPORTERS`` lists the formats (one module each:
``read(source, options) -> ImportedDataset``); ``export_coco(dataset, out)`` goes the other way, so that a
prediction can be corrected in a labelling tool. COCO files, and CVAT's polygons and boxes, need
pycocotools (``pip install 'pixelwise[coco]'``); the rules shapes follow (classes, background, uncovered
pixels, overlaps) are in ``base``.
"""

from __future__ import annotations

from pixelwise.data.importers.base import ImageFile, ImportedDataset, ImportedImage, Importer, ImportOptions
from pixelwise.data.importers.coco_export import ExportReport, export_coco
from pixelwise.data.importers.registry import IMPORTERS, import_dataset, importer_for
from pixelwise.data.importers.writer import METADATA_FILE, ImportReport

__all__ = [
    "IMPORTERS",
    "METADATA_FILE",
    "ExportReport",
    "ImageFile",
    "ImportOptions",
    "ImportReport",
    "ImportedDataset",
    "ImportedImage",
    "Importer",
    "export_coco",
    "import_dataset",
    "importer_for",
]
