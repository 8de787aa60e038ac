"""Where encoder weights come from without a download: a file, or a folder of the Hugging Face cache.

Many users sit on an offline machine with weights fetched earlier, by smp or timm (both download into the
Hugging Face cache) or by hand. ``encoder_weights`` may name them as

- a **file**: ``.pth``, ``.pt``, ``.bin``, ``.ckpt`` (PyTorch, read with ``weights_only``) or ``.safetensors``;
- a **folder** holding one: a snapshot folder of the cache (``models--ORG--NAME/snapshots/<commit>/``), the
  repository's cache folder itself (``models--ORG--NAME``: its ``main``, else its newest snapshot), or what
  ``save_pretrained`` wrote (``model.safetensors`` + ``config.json``);
- ``hf-hub:ORG/NAME`` (timm's spelling): that repository in the local cache;
- a **weight name** of smp's (``imagenet``, ``ssl``, ...) or, for ``tu-`` encoders, ``imagenet`` (timm's
  default tag): the repository smp or timm would download (``smp-hub/resnet18.imagenet``,
  ``timm/resnet18.a1_in1k``), looked up in the local cache at the revision smp pins, else its ``main``.

The cache is the folder huggingface_hub uses: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``. It is read as a folder (the layout is documented and stable), so nothing here
can reach the network, whatever ``HF_HUB_OFFLINE`` says. A ``config.json`` beside the weights says the input
statistics they were trained with (smp: ``mean``/``std``; timm: ``pretrained_cfg``), and, for timm, the name
of the classifier a segmentation encoder has no place for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    import torch

HUB_PREFIX = "hf-hub:"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
# the file names smp, timm and transformers save weights under, in the order they are preferred
_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin", "model.pth", "model.pt")
CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class WeightsSource:
    """A weights file found offline, with what its ``config.json`` says (``{}`` without one).

    ``label`` names it in messages: the file, or the repository and the file.
    """

    file: Path
    label: str
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The per-channel (mean, std) of [0, 1] inputs the weights were trained with, when the config says."""
        for settings in (self.config, self.config.get("pretrained_cfg") or {}):
            mean, std = settings.get("mean"), settings.get("std")
            if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) > 0:
                return tuple(float(value) for value in mean), tuple(float(value) for value in std)
        return None

    @property
    def classifier(self) -> str | None:
        """The module name of the classifier (timm's ``pretrained_cfg.classifier``), which an encoder lacks."""
        name = (self.config.get("pretrained_cfg") or {}).get("classifier")
        return name if isinstance(name, str) else None


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub finds it (read at each call: tests set it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "huggingface" / "hub"


def repository_folder(repo_id: str) -> Path:
    """The cache folder of model repository ``ORG/NAME``: ``models--ORG--NAME``."""
    return hub_cache() / ("models--" + repo_id.replace("/", "--"))


def looks_like_path(text: str) -> bool:
    """Whether ``encoder_weights`` text names a file or folder rather than a weight name such as 'imagenet'."""
    return os.sep in text or "/" in text or text.endswith(WEIGHT_SUFFIXES) or Path(text).exists()


def from_path(path: Path, *, choices: str) -> WeightsSource:
    """The weights at ``path``: a file, a snapshot or save_pretrained folder, or a repository's cache folder."""
    if path.is_file():
        return WeightsSource(path, str(path), _config_beside(path))
    if not path.is_dir():
        raise PixelwiseError(f"encoder weights {path}: no such file or folder; {choices}")
    snapshot = _newest_snapshot(path) if (path / "snapshots").is_dir() else path
    file = _weights_file(snapshot) if snapshot is not None else None
    if file is None:
        raise PixelwiseError(
            f"encoder weights {path}: no weights file in this folder (looked for {', '.join(_WEIGHT_NAMES)} "
            f"or one file ending {', '.join(WEIGHT_SUFFIXES)}); give the file itself"
        )
    return WeightsSource(file, str(file), _config_beside(file))


def from_cache(repo_id: str, *, revision: str | None, choices: str, fetch_hint: str) -> WeightsSource:
    """The weights of ``repo_id`` in the local cache: at ``revision`` (a commit or a branch) if there, else its
    ``main``, else its newest snapshot. Missing: a PixelwiseError saying where it looked and how to fill it."""
    folder = repository_folder(repo_id)
    wanted = [name for name in (revision, "main") if name]
    snapshots = folder / "snapshots"
    for name in wanted:
        commit = name if (snapshots / name).is_dir() else _read_ref(folder, name)
        file = _weights_file(snapshots / commit) if commit else None
        if file is not None:
            return WeightsSource(file, f"{repo_id} ({file})", _config_beside(file))
    newest = _newest_snapshot(folder) if snapshots.is_dir() else None
    file = _weights_file(newest) if newest is not None else None
    if file is not None:
        return WeightsSource(file, f"{repo_id} ({file})", _config_beside(file))
    raise PixelwiseError(
        f"encoder weights {repo_id}: not in the Hugging Face cache {hub_cache()} (no download here); "
        f"{fetch_hint}, or {choices}"
    )


def read_tensors(source: WeightsSource | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a state dict, or a dict holding one under ``state_dict`` / ``model``."""
    import torch

    file = source.file if isinstance(source, WeightsSource) else Path(source)
    if not file.is_file():
        raise PixelwiseError(f"encoder weights {file}: no such file; give the path of a weights file")
    save_hint = "save one with torch.save(module.state_dict(), path) or safetensors.torch.save_file"
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(file, device="cpu"))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise PixelwiseError(
                f"encoder weights {file}: not a readable safetensors file ({error.__class__.__name__}); {save_hint}"
            ) from None
    try:
        # weights_only: a weights file must not be able to run code when it is opened
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises a zoo of types for truncated or foreign files (KeyError on junk)
        raise PixelwiseError(
            f"encoder weights {file}: not a readable PyTorch weights file ({error.__class__.__name__}); {save_hint}"
        ) from None
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise PixelwiseError(f"encoder weights {file}: expected a dict of tensors (a state dict); {save_hint}")
    return dict(loaded)


def _weights_file(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    for name in _WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = [path for path in sorted(folder.iterdir()) if path.is_file() and path.name.endswith(WEIGHT_SUFFIXES)]
    return found[0] if len(found) == 1 else None


def _read_ref(repository: Path, name: str) -> str | None:
    """The commit a branch or tag points to in a cached repository (``refs/<name>``), or None."""
    ref = repository / "refs" / name
    return ref.read_text().strip() if ref.is_file() else None


def _newest_snapshot(repository: Path) -> Path | None:
    """The repository's ``main`` snapshot, else the one written last (the cache keeps every commit fetched)."""
    main = _read_ref(repository, "main")
    if main and (repository / "snapshots" / main).is_dir():
        return repository / "snapshots" / main
    folders = [path for path in (repository / "snapshots").iterdir() if path.is_dir()]
    return max(folders, key=lambda path: path.stat().st_mtime) if folders else None


def _config_beside(file: Path) -> dict[str, Any]:
    """``config.json`` in the weights' folder as a dict; an unreadable one counts as none (it only adds hints)."""
    config = file.parent / CONFIG_NAME
    if not config.is_file():
        return {}
    try:
        loaded = json.loads(config.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
