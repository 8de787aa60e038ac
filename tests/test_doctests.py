"""Every docstring example in the package runs and shows what it says (pytest collects tests/ only)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import pixelwise

# __main__ runs the command line when imported
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(pixelwise.__path__, prefix="pixelwise.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_package_has_examples_to_run() -> None:
    finder = doctest.DocTestFinder()
    found = sum(len(test.examples) for name in MODULES for test in finder.find(importlib.import_module(name)))
    assert found > 40
