"""pixelwise against nnU-Net v2 at the same wall-time budget, on the same data and CPU: test mIoU.

One (dataset, budget) per invocation; each side trains on the dataset's ``train/`` images, validates on its
``val/`` images, and is scored on its ``test/`` images by the same code (``pixelwise.metrics.Evaluator``:
the confusion matrix over all test pixels). One JSON line per side is appended to ``--results``.

- **nnU-Net v2** (``pip install 'pixelwise[bench]'``): the dataset converted to its raw format (the stored
  image files copied as they are, the masks as label images), its stock fingerprint, planner
  (``ExperimentPlanner``, configuration ``2d``) and preprocessing, its stock trainer on the CPU (as
  ``nnUNetv2_train -device cpu``: torch on every core, its default data-augmentation processes) with the
  schedule shortened to the budget: epochs of 25 training and 5 validation iterations (a tenth of its 250 +
  50, the same ratio), the poly learning rate driven by the elapsed share of the budget so that it reaches its
  end there, and no new epoch started that would not end within it. Its split is the dataset's own
  (``splits_final.json``: train / val), its model ``checkpoint_final.pth``, predicted by its stock predictor
  (Gaussian sliding window, mirroring). Planning, preprocessing and prediction are outside the budget.
- **pixelwise**: ``pixelwise train DATA`` as a user runs it (the plan from the data applies), with ``--time``
  and ``--patience 0`` (the whole budget, as nnU-Net takes it) when this pixelwise has ``--time``, else
  ``--epochs`` and ``--iterations-per-epoch`` sized from its step and its validation timed just before
  (``size_to_budget``); ``best.pt`` predicted by ``Predictor`` (its default tiling), outside the budget.

Both sides run one after the other in this process's environment, pixelwise first: on a shared machine the
load moves its time away from the budget it was sized for, so nnU-Net then gets exactly the time pixelwise's
training loop took (``given_seconds``). Each record carries the load average before and after. Usage:

    .venv/bin/python bench/nnunet.py nuclei 2m                  # then 5m, 15m; fashion likewise
    .venv/bin/python bench/nnunet.py fashion 5m --only pixelwise --results bench/results/nnunet.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "nnunet.jsonl"
DATASET_IDS = {"nuclei": 901, "fashion": 902, "shapes": 903}
ITERATIONS, VALIDATION_ITERATIONS = 25, 5  # a tenth of nnU-Net's 250 + 50 per epoch
# pixelwise without --time: the share of the budget its validations may take, and an epoch's writes
VALIDATION_SHARE, WRITES_SECONDS = 0.2, 2.0


def parse_budget(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)", text)
    if match is None:
        raise SystemExit(f"budget {text!r}: give seconds, minutes or hours, e.g. 90s, 2m, 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# --- the dataset as nnU-Net reads it ----------------------------------------------------------------------


def export_raw(root: Path, raw: Path, dataset_id: int, name: str) -> tuple[str, dict[str, Path]]:
    """``root``'s train/ and val/ as imagesTr/labelsTr, test/ as imagesTs (once); returns nnU-Net's dataset name
    and the test images' truth masks by case name."""
    import tifffile
    from PIL import Image

    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.io import read_mask

    dataset_name = f"Dataset{dataset_id}_{name}"
    folder = raw / dataset_name
    splits = {split: SegmentationFolder(root, split) for split in ("train", "val", "test")}
    classes = splits["train"].classes
    suffix = splits["train"].image_paths[0].suffix.lower()
    ending = {".png": ".png", ".tif": ".tif", ".tiff": ".tif"}[suffix]
    truths = {f"test_{stem}": mask for stem, mask in zip(splits["test"].stems, splits["test"].mask_paths, strict=True)}
    if (folder / "dataset.json").is_file():
        return dataset_name, truths
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True)
    ignored = False
    for split, data in splits.items():
        images = folder / ("imagesTs" if split == "test" else "imagesTr")
        for stem, image_path, mask_path in zip(data.stems, data.image_paths, data.mask_paths, strict=True):
            case = f"{split}_{stem}".replace("/", "_")
            shutil.copyfile(image_path, images / f"{case}_0000{ending}")  # the stored pixels, as they are
            if split == "test":
                continue
            labels = read_mask(mask_path, classes)
            ignored |= bool((labels == classes.ignore_index).any())
            # nnU-Net's ignore label is the one after the classes
            labels = np.where(labels == classes.ignore_index, classes.num_classes, labels).astype(np.uint8)
            target = folder / "labelsTr" / f"{case}{ending}"
            if ending == ".tif":
                tifffile.imwrite(target, labels)
            else:
                Image.fromarray(labels).save(target)
    channels = int(splits["train"].in_channels)
    labels_json = {label: index for index, label in enumerate(classes.names)}
    if ignored:
        labels_json["ignore"] = classes.num_classes
    description = {
        "channel_names": {"0": "grey"} if channels == 1 else {"0": "R", "1": "G", "2": "B"},
        "labels": labels_json,
        "numTraining": len(splits["train"]) + len(splits["val"]),
        "file_ending": ending,
    }
    (folder / "dataset.json").write_text(json.dumps(description, indent=2))
    return dataset_name, truths


def plan_and_preprocess(dataset_id: int, dataset_name: str, preprocessed: Path, raw: Path) -> float:
    """nnU-Net's stock fingerprint, plan and 2d preprocessing (once), then the dataset's own train/val split."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )

    started = time.perf_counter()
    folder = preprocessed / dataset_name
    if not (folder / "nnUNetPlans_2d").is_dir():
        extract_fingerprints([dataset_id], num_processes=2, check_dataset_integrity=True)
        plans = plan_experiments([dataset_id])
        preprocess([dataset_id], plans, configurations=("2d",), num_processes=(2,))
    cases = [
        path.name.removesuffix("_0000" + path.suffix) for path in sorted((raw / dataset_name / "imagesTr").iterdir())
    ]
    split = [
        {
            "train": [case for case in cases if case.startswith("train_")],
            "val": [case for case in cases if case.startswith("val_")],
        }
    ]
    (folder / "splits_final.json").write_text(json.dumps(split))
    return time.perf_counter() - started


def budget_trainer(budget: float) -> type:
    """nnU-Net's stock trainer with its schedule shortened to ``budget`` seconds (see the module)."""
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    class nnUNetTrainerBudget(nnUNetTrainer):
        # nnU-Net records its constructor's arguments by their names: the same signature as its own
        def __init__(
            self,
            plans: dict[str, Any],
            configuration: str,
            fold: int,
            dataset_json: dict[str, Any],
            device: torch.device = torch.device("cpu"),
        ) -> None:
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_iterations_per_epoch = ITERATIONS
            self.num_val_iterations_per_epoch = VALIDATION_ITERATIONS
            self.num_epochs = 10**6  # the budget ends it
            self.started = 0.0
            self.iterations_done = 0

        def set_learning_rate(self) -> None:
            """The poly schedule over the budget's time instead of over a number of epochs, set every step."""
            share = min((time.perf_counter() - self.started) / budget, 1.0)
            for group in self.optimizer.param_groups:
                group["lr"] = self.initial_lr * (1 - share) ** 0.9

        def run_training(self) -> None:
            self.started = time.perf_counter()
            self.on_train_start()
            steps: list[float] = []  # the training iterations' times; the first waits for the data workers
            closing = 0.0  # what an epoch's validation and end took (estimated until measured)

            def step() -> float:
                return float(np.median(steps[1:] or steps)) if steps else 0.0

            def elapsed() -> float:
                return time.perf_counter() - self.started

            # an epoch starts when one iteration and its validation still fit, and its iterations stop early
            # when the next one and the validation would not
            while not (steps and elapsed() + step() + closing > budget):
                self.on_epoch_start()
                self.on_train_epoch_start()
                outputs = []
                for _ in range(self.num_iterations_per_epoch):
                    self.set_learning_rate()
                    began = time.perf_counter()
                    outputs.append(self.train_step(next(self.dataloader_train)))
                    steps.append(time.perf_counter() - began)
                    closing = closing or self.num_val_iterations_per_epoch * step() / 2  # forward passes only
                    self.iterations_done += 1
                    if elapsed() + step() + closing > budget:
                        break
                began = time.perf_counter()
                self.on_train_epoch_end(outputs)
                with torch.no_grad():
                    self.on_validation_epoch_start()
                    validation = [
                        self.validation_step(next(self.dataloader_val))
                        for _ in range(self.num_val_iterations_per_epoch)
                    ]
                    self.on_validation_epoch_end(validation)
                self.on_epoch_end()
                closing = time.perf_counter() - began
            self.on_train_end()

    return nnUNetTrainerBudget


def run_nnunet(
    dataset_id: int, dataset_name: str, truths: dict[str, Path], classes: Any, budget: float, work: Path
) -> dict[str, Any]:
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
    from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

    preprocessing = plan_and_preprocess(dataset_id, dataset_name, Path(nnUNet_preprocessed), Path(nnUNet_raw))
    folder = Path(nnUNet_preprocessed) / dataset_name
    plans, dataset_json = load_json(str(folder / "nnUNetPlans.json")), load_json(str(folder / "dataset.json"))
    configuration = dict(plans["configurations"]["2d"])
    plans["continue_training"] = False  # what nnUNetv2_train's get_trainer_from_args adds
    torch.set_num_threads(os.cpu_count() or 1)  # what nnUNetv2_train -device cpu does
    trainer = budget_trainer(budget)(plans, "2d", 0, dataset_json, device=torch.device("cpu"))
    started = time.perf_counter()
    trainer.run_training()
    seconds = time.perf_counter() - started
    model_folder = Path(trainer.output_folder_base)
    # the predictor rebuilds the network by the trainer's name, which it looks up inside nnunetv2: the
    # architecture is the stock trainer's, so the checkpoint names that
    checkpoint_file = model_folder / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
    checkpoint["trainer_name"] = "nnUNetTrainer"
    torch.save(checkpoint, checkpoint_file)
    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(
        str(model_folder), use_folds=(0,), checkpoint_name=checkpoint_file.name
    )
    predictions = work / "nnunet-test"
    shutil.rmtree(predictions, ignore_errors=True)
    predict_started = time.perf_counter()
    predictor.predict_from_files(
        str(Path(nnUNet_raw) / dataset_name / "imagesTs"),
        str(predictions),
        save_probabilities=False,
        overwrite=True,
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
    )
    ending = dataset_json["file_ending"]
    scores = score({case: read_labels(predictions / f"{case}{ending}") for case in truths}, truths, classes)
    return {
        "train_seconds": round(seconds, 1),
        "epochs": trainer.current_epoch,
        "iterations": trainer.iterations_done,
        "patch_size": configuration["patch_size"],
        "batch_size": configuration["batch_size"],
        "normalization": configuration["normalization_schemes"],
        "plan_and_preprocess_seconds": round(preprocessing, 1),
        "predict_seconds": round(time.perf_counter() - predict_started, 1),
        "data_augmentation_processes": get_allowed_n_proc_DA(),
        **scores,
    }


def read_labels(path: Path) -> np.ndarray:
    from PIL import Image

    if path.suffix == ".tif":
        import tifffile

        return np.asarray(tifffile.imread(path))
    return np.asarray(Image.open(path))


def score(predictions: dict[str, np.ndarray], truths: dict[str, Path], classes: Any) -> dict[str, Any]:
    from pixelwise.data.io import read_mask
    from pixelwise.metrics import Evaluator

    evaluator = Evaluator(classes)
    for case, truth in truths.items():
        evaluator.add(predictions[case].astype(np.int64), read_mask(truth, classes), name=case)
    result = evaluator.result()
    return {
        "test_miou": round(result.miou, 4),
        "test_iou": {name: round(value.iou, 4) for name, value in result.per_class.items()},
    }


# --- pixelwise, as a user runs it ------------------------------------------------------------------------


def pixelwise_command(data: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pixelwise", "train", data, "--out", str(out), "--device", "cpu", "--quiet", *extra]


def has_time_budget() -> bool:
    from pixelwise.train.config import TrainConfig

    return "time" in TrainConfig.__dataclass_fields__


def size_to_budget(root: Path, budget: float) -> tuple[int, int, dict[str, float]]:
    """Epochs and iterations per epoch that fill ``budget`` as ``--time`` would plan them: the planned run's
    training step (real crops, after two warm-up steps) and one validation of the val set, timed in this
    process; validation and an epoch's writes may take a fifth of the budget, the steps the rest."""
    import torch

    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.transforms import evaluation_transform, training_transform
    from pixelwise.train.config import TrainConfig
    from pixelwise.train.data import LabeledCrops
    from pixelwise.train.plan import fingerprint, plan_training
    from pixelwise.train.trainer import build_trainer

    train = SegmentationFolder(root, "train")
    val = SegmentationFolder(root, "val", classes=train.classes, in_channels=train.in_channels)
    config = TrainConfig(device="cpu")
    config = plan_training(fingerprint(train), config).apply(config)
    channels, ignore = int(train.in_channels), train.classes.ignore_index
    trainer = build_trainer(config, classes=train.classes, in_channels=channels, total_iterations=10**6)
    crops = LabeledCrops(
        train,
        list(range(len(train))),
        training_transform(crop_size=config.crop_size, mean=[0.5] * channels, std=[0.25] * channels),
    )
    loader = iter(torch.utils.data.DataLoader(crops, batch_size=config.batch_size, shuffle=True, drop_last=False))

    def step() -> None:
        nonlocal loader
        batch = next(loader, None)
        if batch is None:
            loader = iter(torch.utils.data.DataLoader(crops, batch_size=config.batch_size, shuffle=True))
            batch = next(loader)
        trainer.train_step(*batch)

    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(5):
        step()
    step_seconds = (time.perf_counter() - started) / 5
    transform = evaluation_transform(mean=[0.5] * channels, std=[0.25] * channels, ignore_index=ignore)
    trainer.validate(val, transform)  # the first one imports what the metrics need
    started = time.perf_counter()
    trainer.validate(val, transform)
    validation = time.perf_counter() - started + WRITES_SECONDS
    epochs = min(max(math.floor(VALIDATION_SHARE * budget / validation), 1), 30)
    iterations = max(math.floor((budget - epochs * validation) / (epochs * step_seconds)), 1)
    return (
        epochs,
        iterations,
        {"measured_step_seconds": round(step_seconds, 3), "measured_validation_seconds": round(validation, 1)},
    )


def run_pixelwise(
    data: str, root: Path, truths: dict[str, Path], classes: Any, budget: float, work: Path
) -> dict[str, Any]:
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.inference.predictor import Predictor

    out = work / "pixelwise-run"
    shutil.rmtree(out, ignore_errors=True)
    record: dict[str, Any] = {}
    if has_time_budget():
        # the whole budget, as nnU-Net (which never stops early) gets it: early stopping on a noisy validation
        # would end the run while its learning rate, stretched to the budget, is still high
        arguments = ["--time", f"{int(budget)}s", "--patience", "0"]
        record.update(budget_by="--time", patience=0)
    else:
        epochs, iterations, timing = size_to_budget(root, budget)
        arguments = ["--epochs", str(epochs), "--iterations-per-epoch", str(iterations)]
        record.update(budget_by="--epochs", epochs=epochs, iterations_per_epoch=iterations, **timing)
    started = time.perf_counter()
    completed = subprocess.run(pixelwise_command(data, out, *arguments), check=True, capture_output=True, text=True)
    record["process_seconds"] = round(time.perf_counter() - started, 1)
    # the training loop's own time: from config.yaml (written when the epochs begin) to the last write of
    # metrics.jsonl, as nnU-Net's is from its run_training's start to its end (imports and data loading outside)
    record["train_seconds"] = round((out / "metrics.jsonl").stat().st_mtime - (out / "config.yaml").stat().st_mtime, 1)
    record["output"] = (completed.stdout + completed.stderr).strip().splitlines()[-12:]
    plan_file = out / "data_plan.json"
    if plan_file.is_file():
        record["plan"] = json.loads(plan_file.read_text()).get("settings")
    predict_started = time.perf_counter()
    predictor = Predictor.load(out / "best.pt", device="cpu")
    test = SegmentationFolder(root, "test", classes=classes, in_channels=predictor.in_channels)
    predictions = {f"test_{stem}": predictor.predict_labels(test[index].image) for index, stem in enumerate(test.stems)}
    record["predict_seconds"] = round(time.perf_counter() - predict_started, 1)
    return {**record, **score(predictions, truths, classes)}


def commit() -> str:
    """The pixelwise commit that ran (its source folder's git HEAD; a dirty tree is marked)."""
    source = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "src"], capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(DATASET_IDS))
    parser.add_argument("budget", help="wall time of training, e.g. 2m, 5m, 15m")
    parser.add_argument("--only", choices=("nnunet", "pixelwise"), help="run one side only")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines appended here")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pixelwise-bench-nnunet"))
    arguments = parser.parse_args()
    budget = parse_budget(arguments.budget)
    work = arguments.work.resolve() / f"{arguments.dataset}-{arguments.budget}"
    work.mkdir(parents=True, exist_ok=True)
    # nnU-Net reads its folders from the environment (its own spelling) when it is imported
    raw = Path(os.environ.setdefault("nnUNet_raw", str(arguments.work.resolve() / "raw")))
    os.environ.setdefault("nnUNet_preprocessed", str(arguments.work.resolve() / "preprocessed"))
    os.environ["nnUNet_results"] = str(work / "results")  # noqa: SIM112

    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.versions import library_versions

    root = dataset_root(arguments.dataset)
    classes = SegmentationFolder(root, "train").classes
    dataset_id = DATASET_IDS[arguments.dataset]
    dataset_name, truths = export_raw(root, raw, dataset_id, arguments.dataset)
    # pixelwise first: nnU-Net then gets the time pixelwise's training actually took, whatever the load did
    sides = [arguments.only] if arguments.only else ["pixelwise", "nnunet"]
    seconds = budget
    for side in sides:
        before = load_average()
        if side == "nnunet":
            result = run_nnunet(dataset_id, dataset_name, truths, classes, seconds, work)
        else:
            result = run_pixelwise(arguments.dataset, root, truths, classes, budget, work)
            seconds = result["train_seconds"]
        record = {
            "dataset": arguments.dataset,
            "budget_seconds": budget,
            "method": side,
            "given_seconds": round(seconds, 1),
            **result,
            "load_before": before,
            "load_after": load_average(),
            "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "commit": commit(),
            "versions": {key: value for key, value in library_versions().items() if key in ("torch", "timm")},
        }
        arguments.results.parent.mkdir(parents=True, exist_ok=True)
        with arguments.results.open("a") as file:
            file.write(json.dumps(record) + "\n")
        print(
            json.dumps(
                {key: record[key] for key in ("dataset", "budget_seconds", "method", "test_miou", "train_seconds")}
            )
        )


if __name__ == "__main__":
    main()
