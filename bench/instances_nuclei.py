"""Objects on the built-in nuclei (issue 23): count error, PQ and AJI of Otsu + split, a CNN + split, and a
CNN trained with the boundary class.

Four folds: the nuclei dataset's ``seed`` option picks the quadrant held out for test (0: bottom-right,
2: top-right, 3: top-left, 4: bottom-left), so each of the 125 nuclei is scored by models that never saw it
(nuclei cut by a tile border count once per tile, in the truth and the predictions alike). Per fold, the
CNNs train on the two training quadrants and keep the epoch with the best validation mIoU on the third.
The truth's objects are the dataset's ``instances/`` (the real instance labels). Each arm's objects are
found as ``predict --instances`` / ``classical --instances`` will find them (``instance_labels``); the
variants: plain components (``split=False``), split on the distance transform, and (CNNs) split with the
foreground probability. Each fold's masks and label images are kept in OUT/fold<seed>/<arm>/ (the masks
folded back to background/nucleus for the boundary arm), so ``pixelwise evaluate OUT/fold0/cnn nuclei
--data-option seed=0 --instances`` scores one of them again.

    nice -n 5 .venv/bin/python bench/instances_nuclei.py --out /tmp/objects --epochs 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

FOLDS = (0, 2, 3, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--folds", default=",".join(map(str, FOLDS)), help="dataset seeds, one per held-out quadrant")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20, help="iterations per epoch")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()

    import torch

    from pixelwise.instances import InstanceEvaluator

    torch.set_num_threads(arguments.threads)
    evaluators: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for fold in (int(value) for value in arguments.folds.split(",")):
        truths, classes, found = run_fold(fold, arguments)
        for arm, variants in found.items():
            for variant, (objects, elapsed) in variants.items():
                evaluator = evaluators.setdefault(f"{arm} | {variant}", InstanceEvaluator(classes))
                for index, (predicted, truth) in enumerate(zip(objects, truths, strict=True)):
                    evaluator.add(predicted, truth, name=f"fold{fold}/{index}")
                seconds[arm] = seconds.get(arm, 0.0) + elapsed
    rows = {key: evaluator.result() for key, evaluator in evaluators.items()}
    table = [
        "| arm | objects | found / true | count error | PQ | SQ | RQ (F1 at 0.5) | AJI |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, scores in rows.items():
        arm, variant = key.split(" | ")
        table.append(
            f"| {arm} | {variant} | {scores.count_predicted} / {scores.count_true} | {scores.count_error:+.1%} | "
            f"{scores.pq:.3f} | {scores.sq:.3f} | {scores.rq:.3f} | {scores.aji:.3f} |"
        )
    text = "\n".join(table)
    print(text)
    print("training seconds per arm, all folds:", {arm: round(value) for arm, value in seconds.items()})
    (arguments.out / "table.md").write_text(text + "\n")
    (arguments.out / "results.json").write_text(
        json.dumps({key: scores.to_dict() for key, scores in rows.items()} | {"seconds": seconds}, indent=2)
    )


Found = dict[str, tuple[list[Any], float]]  # variant -> (objects per test image, training seconds)


def run_fold(fold: int, arguments: argparse.Namespace) -> tuple[list[Any], Any, dict[str, Found]]:
    """Every arm on one fold: the true objects of the test images, their classes, and {arm: Found}."""
    from pixelwise.classical.segmenter import ClassicalSegmenter
    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.instances import fold_boundary, instance_labels
    from pixelwise.instances.truth import truth_instances

    root = dataset_root("nuclei", seed=fold)
    train, val, test = (SegmentationFolder(root, split) for split in ("train", "val", "test"))
    classes = test.classes
    samples = [test[index] for index in range(len(test))]
    read = [truth_instances(path, sample.mask, classes) for path, sample in zip(test.mask_paths, samples, strict=True)]
    assert all(from_file for _, from_file in read), f"{root}: no instances/; the nuclei built-in writes them"
    truths = [objects for objects, _ in read]
    found: dict[str, Found] = {}

    started = time.perf_counter()
    otsu = ClassicalSegmenter("otsu", {}, "fitted").fit(train)
    masks = [otsu.predict(sample.image) for sample in samples]
    elapsed = time.perf_counter() - started
    found["otsu"] = {
        "plain components": ([instance_labels(mask, classes, split=False) for mask in masks], elapsed),
        "split": ([instance_labels(mask, classes) for mask in masks], 0.0),
    }
    keep(arguments.out / f"fold{fold}" / "otsu", test.stems, masks, found["otsu"]["split"][0], classes)

    for arm, boundary in (("cnn", False), ("cnn + boundary class", True)):
        started = time.perf_counter()
        predictor = trained(arguments, fold, arm, boundary, train, val)
        elapsed = time.perf_counter() - started
        probabilities = [predictor.predict(sample.image) for sample in samples]
        labels = [probability.argmax(0).astype(np.uint8) for probability in probabilities]
        model_classes = predictor.classes
        found[arm] = {
            "plain components": ([instance_labels(mask, model_classes, split=False) for mask in labels], elapsed),
            "split": ([instance_labels(mask, model_classes) for mask in labels], 0.0),
            "split + probability": (
                [
                    instance_labels(mask, model_classes, probability=probability)
                    for mask, probability in zip(labels, probabilities, strict=True)
                ],
                0.0,
            ),
        }
        folded = [fold_boundary(mask, model_classes)[0] for mask in labels]
        folder = arguments.out / f"fold{fold}" / ("cnn-boundary" if boundary else "cnn")
        keep(folder, test.stems, folded, found[arm]["split"][0], classes)
    return truths, classes, found


def trained(arguments: argparse.Namespace, fold: int, arm: str, boundary: bool, train: Any, val: Any) -> Any:
    """The arm's predictor, trained once (a rerun loads ``best.pt``)."""
    from pixelwise.inference.predictor import Predictor
    from pixelwise.train.config import TrainConfig
    from pixelwise.train.loop import fit

    run = arguments.out / "runs" / f"fold{fold}-{'boundary' if boundary else 'cnn'}"
    if not (run / "best.pt").is_file():
        config = TrainConfig(
            epochs=arguments.epochs,
            iterations_per_epoch=arguments.iterations,
            crop_size=96,
            batch_size=8,
            lr=3e-3,
            patience=0,
            vertical_flip=True,
            seed=arguments.seed,
            device="cpu",
            boundary_class=boundary,
        )
        result = fit(config, train, val, out_dir=run, force=True, progress=False)
        best = result.history[result.best_epoch - 1]
        print(f"fold {fold} {arm}: best epoch {result.best_epoch} val mIoU {best['val_miou']:.3f}", flush=True)
    return Predictor.load(run / "best.pt")


def keep(folder: Path, stems: list[str], masks: list[np.ndarray], objects: list[Any], classes: Any) -> None:
    """Masks and label images as ``--instances`` will write them: OUT/<stem>.png, OUT/instances/<stem>.tif."""
    from pixelwise.data.io import write_mask
    from pixelwise.instances import write_label_image

    (folder / "instances").mkdir(parents=True, exist_ok=True)
    for stem, mask, found in zip(stems, masks, objects, strict=True):
        write_mask(folder / f"{stem}.png", mask, classes)
        write_label_image(folder / "instances" / f"{stem}.tif", found.labels)


if __name__ == "__main__":
    main()
