"""Which versions produced a result or a checkpoint: recorded with it, never checked against."""

from __future__ import annotations

import platform
from importlib import metadata

# the libraries whose versions shape the numbers; torch's family only where a network was involved
_SCIENTIFIC = ("numpy", "scikit-image", "scikit-learn", "scipy")
_TORCH = ("torch", "torchvision", "segmentation-models-pytorch", "timm")


def library_versions(*, torch: bool = True) -> dict[str, str]:
    """pixelwise, Python and the libraries (``torch=False`` leaves out torch's family), read from the installed
    packages' metadata: nothing is imported, and a missing one reads ``"not installed"``.

    >>> versions = library_versions(torch=False)
    >>> list(versions)[:3], "torch" in versions
    (['pixelwise', 'python', 'numpy'], False)
    """
    found = {"pixelwise": _version("pixelwise"), "python": platform.python_version()}
    for name in (*_SCIENTIFIC, *(_TORCH if torch else ())):
        found[name] = _version(name)
    return found


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
