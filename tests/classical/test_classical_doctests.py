"""The examples in the classical modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pixelwise.classical",
    "pixelwise.classical._common",
    "pixelwise.classical.threshold",
    "pixelwise.classical.edges",
    "pixelwise.classical.region",
    "pixelwise.classical.clustering",
    "pixelwise.classical.labeling",
    "pixelwise.cli.classical",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, extraglobs={"np": importlib.import_module("numpy")})
    assert attempted > 0 and failed == 0
