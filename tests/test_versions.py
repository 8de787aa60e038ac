"""The versions recorded with results and checkpoints: read from package metadata, nothing imported."""

from __future__ import annotations

import platform
import subprocess
import sys

import numpy as np
import torch

from pixelwise.versions import library_versions


def test_versions_of_the_libraries_that_shape_the_numbers() -> None:
    versions = library_versions()
    assert versions["python"] == platform.python_version()
    assert versions["numpy"] == np.__version__
    assert versions["torch"] == torch.__version__.split("+")[0] or versions["torch"] == torch.__version__
    assert "torch" not in library_versions(torch=False) and "scikit-image" in library_versions(torch=False)


def test_reading_versions_imports_no_library() -> None:
    code = (
        "import sys; from pixelwise.versions import library_versions; library_versions(); "
        "print(sorted({'torch', 'numpy', 'skimage'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
