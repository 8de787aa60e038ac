"""`pixelwise compare` options that need no training run."""

from __future__ import annotations

import pytest

from pixelwise.cli.compare import _time_per_network
from pixelwise.errors import PixelwiseError


def test_time_is_split_evenly_over_the_networks() -> None:
    assert _time_per_network("10m", ["otsu", "cnn", "adversarial"]) == "300s"
    assert _time_per_network("90s", None) == "45s"  # the default methods train two networks
    with pytest.raises(PixelwiseError, match="no network among the methods"):
        _time_per_network("10m", ["otsu"])
