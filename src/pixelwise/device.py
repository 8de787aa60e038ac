"""The torch device a command runs on: one rule and one message for every command that takes ``--device``.

``auto`` is a CUDA GPU when torch sees one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` are what they
say. Anything else, or a GPU the machine does not have, is a PixelwiseError that says what there is.
torch is imported only when a GPU is asked about.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    import torch

DEVICES = "auto, cpu, cuda or cuda:N"
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(name: str) -> str:
    """``name`` if it names a device pixelwise runs on (auto, cpu, cuda, cuda:N), else a PixelwiseError;
    checked without torch, as a flag is read."""
    if not DEVICE_PATTERN.fullmatch(name.strip().lower()):
        raise PixelwiseError(f"--device {name}: not a device pixelwise runs on; give {DEVICES}")
    return name


def choose_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -> a torch device this machine has."""
    check_device_name(name)
    import torch

    text = name.strip().lower()
    if text == "cpu" or (text == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if text == "auto":
        return torch.device("cuda")
    if not torch.cuda.is_available():
        raise PixelwiseError(f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu or auto")
    index = int(text.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise PixelwiseError(
            f"--device {name}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
            f"(cuda:0 to cuda:{count - 1}); choose one of them"
        )
    return torch.device(text)
