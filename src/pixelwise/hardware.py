"""What this machine's hardware computes fast: asked in one place, by prediction (``--precision``) and
training (``--amp``) alike.

bfloat16 pays off on a CPU only with bf16 instructions (x86 ``avx512_bf16`` or ``amx_bf16``). Without them
oneDNN takes slow reference paths for bf16 convolutions: on an AVX2 AMD EPYC, training under bf16 autocast
measured 3.9-4.3x slower than float32. Machines differ from session to session: detect, never assume. torch
is imported only by the functions that need it, so asking about the CPU costs nothing.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import TYPE_CHECKING, Literal

from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# x86 flags of CPUs that compute bf16 matrix products in hardware (Cooper Lake, Sapphire Rapids, Zen 4 ...);
# ARM's "bf16" is not one that PyTorch's oneDNN kernels use, so other architectures count as without
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_flags(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (Linux); empty where there is no such file.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix="cpuinfo") as file:
    ...     _ = file.write("processor : 0\\nflags : fpu avx2 avx512_bf16\\n\\nprocessor : 1\\nflags : fpu\\n")
    ...     file.flush()
    ...     sorted(cpu_flags(file.name))
    ['avx2', 'avx512_bf16', 'fpu']
    """
    try:
        with open(cpuinfo, errors="replace") as lines:
            for line in lines:
                if line.startswith(("flags", "Features")):  # x86 says flags, ARM says Features
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo).

    Where it does, bf16 autocast is the fastest way to run a network on the CPU; where it does not, bf16 is
    several times slower than fp32 and must not be chosen silently.
    """
    return bool(cpu_flags() & BF16_FLAGS)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype mixed-precision training pays off in on ``device``: float16 on CUDA, bfloat16 on a CPU with
    bf16 instructions; None (stay in float32) on other CPUs, where bf16 runs slower than float32."""
    import torch

    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def resolve_precision(precision: str, device: str) -> Precision:
    """The number format to run a network in on ``device`` (``cpu``, ``cuda``, ``cuda:N``).

    ``auto``: fp16 autocast on CUDA (tensor cores, as MONAI and nnU-Net predict), fp32 on the CPU (bf16
    moves logits by a few per cent: on a trained unet-small 99.92 % of labels stay, on random ResNet-34
    weights 97.7 %; so it is asked for, never implied). A format the device cannot run fast falls back to
    fp32 with a one-line warning: fp16 off CUDA, bf16 on a CPU without bf16 hardware (``cpu_has_bf16``).
    Results stay right; only the speed-up is not there.
    """
    if precision not in PRECISIONS:
        raise PixelwiseError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    on_cuda = device.startswith("cuda")
    if precision == "auto":
        return "fp16" if on_cuda else "fp32"
    if precision == "fp16" and not on_cuda:
        warnings.warn("fp16 needs a CUDA device; running fp32 on the CPU (bf16 is the CPU's half format)", stacklevel=2)
        return "fp32"
    if precision == "bf16" and not on_cuda and not cpu_has_bf16():
        warnings.warn(
            "this CPU has no bf16 hardware (no avx512_bf16 or amx_bf16 in /proc/cpuinfo), where bf16 runs "
            "several times slower than fp32; running fp32",
            stacklevel=2,
        )
        return "fp32"
    return precision  # type: ignore[return-value]  # checked against PRECISIONS above
