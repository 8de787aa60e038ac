"""What this machine's CPU can do, where it decides a precision: asked once, in one place.

bfloat16 pays off on a CPU only with bf16 instructions (x86 ``avx512_bf16`` or ``amx_bf16``). Without them
oneDNN takes slow paths for bf16 convolutions: on an AVX2 AMD EPYC, training under bf16 autocast measured
3.9-4.3x slower than float32. Other architectures count as without (not measured here).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_bf16() -> bool:
    """True when the CPU has bfloat16 instructions (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``)."""
    return bool(cpu_flags() & BF16_FLAGS)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype mixed precision pays off in on ``device``: float16 on CUDA, bfloat16 on a CPU with bf16
    instructions; None (stay in float32) on other CPUs, where bf16 runs slower than float32."""
    import torch

    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def cpu_flags(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (Linux's format); empty where there is no such file.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix="cpuinfo") as file:
    ...     _ = file.write("processor : 0\\nflags : fpu avx2 avx512_bf16\\n\\nprocessor : 1\\nflags : fpu\\n")
    ...     file.flush()
    ...     sorted(cpu_flags(file.name))
    ['avx2', 'avx512_bf16', 'fpu']
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()
