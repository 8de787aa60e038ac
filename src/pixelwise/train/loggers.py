"""Where a run is watched besides ``metrics.jsonl``: TensorBoard and MLflow (``--logger``, several allowed).

``LOGGERS`` is the registry: a name, the extra that brings its package and how to open it. Each logger gets,
once per epoch, what ``metrics.jsonl`` has (losses, learning rate, validation mIoU and per-class IoU, D's
losses and accuracies, the pseudo-label diagnostics) under the names ``scalars`` gives them
(``train/loss``, ``val/miou``, ``val_iou/<class>``, ``pseudo/auroc_softmax``, ``lr``), at the step of the
iteration count; a few validation images beside their truth and their prediction as overlays; and, once,
the resolved config as parameters. MLflow also keeps ``config.yaml``, ``curves.png`` and ``best.pt`` as
artifacts (``best.pt`` when the run ends or is interrupted: one copy, not one per improvement).

- **TensorBoard**: event files in ``RUN/tensorboard/`` (``tensorboard --logdir RUN``).
- **MLflow**: the tracking URI in ``MLFLOW_TRACKING_URI``, else a local store ``mlruns/`` beside the run
  folder (MLflow's file store, which MLflow 3 keeps for compatibility: it is opened with
  ``MLFLOW_ALLOW_FILE_STORE``); the experiment ``MLFLOW_EXPERIMENT_NAME``, else ``pixelwise``; the run is
  named after the run folder.

Only the main process logs. ``loggers.json`` in the run folder records each logger's run (TensorBoard's
folder, MLflow's URI, experiment and run id), so ``--resume`` continues the same runs, with the same
loggers unless others are named; TensorBoard drops what an interrupted session logged after ``last.pt``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pixelwise.errors import PixelwiseError, did_you_mean
from pixelwise.files import atomic_path

STATE_FILE = "loggers.json"
TENSORBOARD_FOLDER = "tensorboard"
SHOWN_IMAGES = 4  # validation images shown with their overlays each epoch
SHOWN_SIDE = 256  # the longest side of each shown image (larger ones are subsampled)
EXTRA = "track"  # the optional extra that brings tensorboard and mlflow-skinny


@dataclass(frozen=True)
class Epoch:
    """What a logger receives after an epoch: the record (one line of ``metrics.jsonl``), its step (the
    iteration count), the overlays (name -> (H, W, 3) uint8) and the run folder's files worth keeping."""

    record: dict[str, Any]
    step: int
    overlays: dict[str, np.ndarray]
    files: dict[str, Path]  # name -> path: config.yaml, curves.png, best.pt (when it improved)


class RunLogger(Protocol):
    """One place a run is logged to."""

    def state(self) -> dict[str, Any]:
        """What continues this logger's run on ``--resume`` (kept in ``loggers.json``)."""
        ...

    def log_epoch(self, epoch: Epoch) -> None: ...

    def close(self, *, files: dict[str, Path], failed: bool) -> None: ...


@dataclass(frozen=True)
class Opening:
    """What a logger opens with: the run folder, the resolved config, and for a resumed run its saved state
    and the iteration it resumes from."""

    out: Path
    config: dict[str, Any]
    saved: dict[str, Any] | None
    iteration: int


@dataclass(frozen=True)
class LoggerKind:
    """A registry entry: the packages it needs (from the ``track`` extra) and how to open one."""

    name: str
    packages: tuple[str, ...]
    open: Callable[[Opening], RunLogger]


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's numbers under the names the loggers show: ``train_loss`` -> ``train/loss``, ``val_iou``'s
    classes -> ``val_iou/<class>``; ``epoch`` and the ``seconds`` too; NaN and text are left out.

    >>> scalars({"epoch": 2, "lr": 0.001, "train_loss": 0.5, "val_iou": {"cell": 0.7}, "val_miou": float("nan")})
    {'epoch': 2.0, 'lr': 0.001, 'train/loss': 0.5, 'val_iou/cell': 0.7}
    """
    flat: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update({f"{key}/{_safe(str(name))}": number for name, number in value.items() if _finite(number)})
        elif _finite(value):
            prefix, _, rest = key.partition("_")
            name = f"{prefix}/{rest}" if prefix in ("train", "val", "pseudo") and rest else key
            flat[name] = float(value)
    return flat


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _safe(name: str) -> str:
    """A class name as a metric name (letters, digits, ``_ - . /`` and spaces; MLflow allows no others)."""
    return re.sub(r"[^\w\-. /]", "_", name)


def check_loggers(names: Sequence[str]) -> list[str]:
    """``names`` checked against ``LOGGERS`` and their packages importable, each once, in order; a missing
    package is one line naming the extra."""
    import importlib.util

    chosen = list(dict.fromkeys(names))
    for name in chosen:
        if name not in LOGGERS:
            raise PixelwiseError(f"--logger {name!r}{did_you_mean(name, LOGGERS)}: choose one of {', '.join(LOGGERS)}")
        missing = [package for package in LOGGERS[name].packages if importlib.util.find_spec(package) is None]
        if missing:
            raise PixelwiseError(f"--logger {name} needs {missing[0]}: pip install 'pixelwise[{EXTRA}]'")
    return chosen


class Loggers:
    """The run's loggers on the main process (none elsewhere): opened or continued, fed each epoch, closed."""

    def __init__(self, loggers: dict[str, RunLogger], *, out: Path, shown: Sequence[Any]) -> None:
        self.loggers = loggers
        self.out = out
        self.shown = list(shown)
        self.seconds = 0.0  # spent logging, for the overhead's measure

    @classmethod
    def open(
        cls, names: Sequence[str], *, out: Path, config: dict[str, Any], iteration: int | None, shown: Sequence[Any]
    ) -> Loggers:
        """The loggers ``names`` for the run in ``out`` (``iteration``: where a resumed run goes on, None for a
        new one); resumed without names, the run's own loggers."""
        saved = _read_state(out) if iteration is not None else {}
        chosen = check_loggers(names or list(saved))
        loggers = {name: LOGGERS[name].open(Opening(out, config, saved.get(name), iteration or 0)) for name in chosen}
        opened = cls(loggers, out=out, shown=shown)
        if loggers:  # the runs of loggers not named this time stay recorded, for a later --logger
            _write_state(out, {**saved, **{name: logger.state() for name, logger in loggers.items()}})
        return opened

    def log_epoch(self, record: dict[str, Any], *, step: int, overlays: Callable[[], dict[str, np.ndarray]]) -> None:
        if not self.loggers:
            return
        started = time.perf_counter()
        files = {name: self.out / name for name in ("config.yaml", "curves.png")}
        epoch = Epoch(record, step, overlays(), {name: path for name, path in files.items() if path.is_file()})
        for logger in self.loggers.values():
            logger.log_epoch(epoch)
        self.seconds += time.perf_counter() - started

    def close(self, *, failed: bool = False) -> None:
        files = {name: self.out / name for name in ("best.pt", "config.yaml", "curves.png")}
        for logger in self.loggers.values():
            logger.close(files={name: path for name, path in files.items() if path.is_file()}, failed=failed)
        self.loggers = {}


def shown_overlays(networks: Any, samples: Sequence[Any], transform: Any, classes: Any) -> dict[str, np.ndarray]:
    """Each shown validation image beside its truth and its prediction, as overlays: name -> (H, 3W, 3) uint8
    (subsampled to ``SHOWN_SIDE``). ``networks``: the raw ``Trainer.networks(raw=True)``."""
    import torch

    from pixelwise.data.io import overlay

    shown: dict[str, np.ndarray] = {}
    networks.segmenter.eval()
    with torch.inference_mode():
        for index, sample in enumerate(samples):
            image, _ = transform(sample.image, sample.mask)
            logits = networks.segment(networks.to_device(image[None]))
            labels = logits[0].argmax(dim=0).to(torch.uint8).cpu().numpy()
            step = max(1, math.ceil(max(labels.shape) / SHOWN_SIDE))
            picture = np.asarray(sample.image, dtype=np.float32)[::step, ::step]
            truth = np.where(sample.mask == classes.ignore_index, 0, sample.mask)[::step, ::step]
            predicted = labels[::step, ::step]
            panels = [_plain(picture), overlay(picture, truth, classes), overlay(picture, predicted, classes)]
            name = _safe(str(getattr(sample, "stem", None) or index))
            shown[name] = np.concatenate(panels, axis=1)
    return shown


def _plain(image: np.ndarray) -> np.ndarray:
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def _read_state(out: Path) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PixelwiseError(f"{path}: not the loggers' record; delete it to start new logger runs") from None
    return state if isinstance(state, dict) else {}


def _write_state(out: Path, state: dict[str, Any]) -> None:
    with atomic_path(out / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(state, indent=2) + "\n")


# --- TensorBoard ---------------------------------------------------------------------------------------


class TensorBoardLogger:
    """Event files in the run folder; a resumed run writes on in the same folder."""

    def __init__(self, opening: Opening) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = (opening.saved or {}).get("folder", TENSORBOARD_FOLDER)
        self.folder = folder
        # resumed: what an interrupted session logged after last.pt is dropped (its steps come again)
        purge = opening.iteration + 1 if opening.saved is not None else None
        self.writer = SummaryWriter(log_dir=str(opening.out / folder), purge_step=purge)
        if opening.saved is None:
            import yaml

            text = yaml.safe_dump(opening.config, sort_keys=False)
            self.writer.add_text("config", "\n".join(f"    {line}" for line in text.splitlines()), global_step=0)

    def state(self) -> dict[str, Any]:
        return {"folder": self.folder}

    def log_epoch(self, epoch: Epoch) -> None:
        for name, value in scalars(epoch.record).items():
            self.writer.add_scalar(name, value, global_step=epoch.step)
        for name, picture in epoch.overlays.items():
            self.writer.add_image(f"overlays/{name}", picture, global_step=epoch.step, dataformats="HWC")
        self.writer.flush()

    def close(self, *, files: dict[str, Path], failed: bool) -> None:
        self.writer.close()


# --- MLflow --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 opens its file store only when asked to (``MLFLOW_ALLOW_FILE_STORE``); a local store is what
    a run folder's ``mlruns/`` is, so it is asked for while the client is made."""
    if not uri.startswith("file:") or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def tracking_uri(out: Path) -> str:
    """``MLFLOW_TRACKING_URI``, else the file store ``mlruns/`` beside the run folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (out.resolve().parent / "mlruns").as_uri()


class MlflowLogger:
    """A run in an MLflow store; a resumed run logs on into the same MLflow run."""

    def __init__(self, opening: Opening) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        saved = opening.saved or {}
        self.uri = str(saved.get("tracking_uri") or tracking_uri(opening.out))
        with _file_store_allowed(self.uri):
            self.client = MlflowClient(tracking_uri=self.uri)
            if saved.get("run_id"):
                self.run_id = str(saved["run_id"])
                self.client.update_run(self.run_id, status="RUNNING")
                logged = set(self.client.get_run(self.run_id).data.params)
            else:
                name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "pixelwise")
                found = self.client.get_experiment_by_name(name)
                experiment = found.experiment_id if found else self.client.create_experiment(name)
                tags = {"pixelwise.run_folder": str(opening.out.resolve())}
                self.run_id = self.client.create_run(experiment, run_name=opening.out.name, tags=tags).info.run_id
                logged = set()
        # parameters cannot change in MLflow: a resumed run adds the settings it did not have
        params = [Param(key, str(value)) for key, value in opening.config.items() if key not in logged]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 per call
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        self.logged_config = False

    def state(self) -> dict[str, Any]:
        return {"tracking_uri": self.uri, "run_id": self.run_id}

    def log_epoch(self, epoch: Epoch) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, epoch.step) for key, value in scalars(epoch.record).items()]
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 per call
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])
        number = int(epoch.record.get("epoch", 0))
        for name, picture in epoch.overlays.items():
            self.client.log_image(self.run_id, picture, artifact_file=f"overlays/epoch{number:03d}/{name}.png")
        for name in ("curves.png",) if self.logged_config else ("config.yaml", "curves.png"):
            if name in epoch.files:
                self.client.log_artifact(self.run_id, str(epoch.files[name]))
        self.logged_config = True

    def close(self, *, files: dict[str, Path], failed: bool) -> None:
        for path in files.values():
            self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status="KILLED" if failed else "FINISHED")


LOGGERS: dict[str, LoggerKind] = {
    "tensorboard": LoggerKind("tensorboard", ("tensorboard",), TensorBoardLogger),
    "mlflow": LoggerKind("mlflow", ("mlflow",), MlflowLogger),
}
