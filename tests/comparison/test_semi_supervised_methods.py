"""The semi-supervised network methods of compare: fixmatch and self-training beside cnn, adversarial, semi."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelwise.comparison import build_methods, compare
from pixelwise.comparison.methods import NetworkMethod
from pixelwise.data.builtin import export_builtin
from pixelwise.errors import PixelwiseError


def test_each_network_method_has_its_own_terms_only() -> None:
    names = ["cnn", "adversarial", "semi", "fixmatch", "self-training"]
    methods = build_methods(names, train_options={"fixmatch_weight": 0.5, "epochs": 2})
    assert all(isinstance(method, NetworkMethod) for method in methods)
    configs = {method.name: method.config for method in methods if isinstance(method, NetworkMethod)}
    weights = {
        name: (config.adversarial_weight, config.semi_weight, config.fixmatch_weight)
        for name, config in configs.items()
    }
    assert weights == {
        "cnn": (0.0, 0.0, 0.0),
        "adversarial": (0.01, 0.0, 0.0),
        "semi": (0.01, 0.1, 0.0),
        "fixmatch": (0.0, 0.0, 0.5),  # the option given for every network lands on its own method only
        "self-training": (0.0, 0.1, 0.0),
    }
    assert configs["semi"].semi_trust == "discriminator" and configs["semi"].semi_threshold == 0.2
    assert configs["self-training"].semi_trust == "softmax" and configs["self-training"].semi_threshold == 0.95
    assert all(config.epochs == 2 for config in configs.values())
    families = {method.name: method.family for method in methods}
    assert families == {
        "cnn": "cnn",
        "adversarial": "adversarial",
        "semi": "adversarial",
        "fixmatch": "cnn",  # one network, no discriminator
        "self-training": "cnn",
    }


def test_fixmatch_is_compared_and_needs_unlabeled_images(tmp_path: Path) -> None:
    data = export_builtin("shapes", tmp_path / "shapes", size=32, count=8)
    budget = {"epochs": 1, "batch_size": 4, "crop_size": 32, "tile_size": 32}
    with pytest.raises(PixelwiseError, match="'fixmatch' needs unlabeled images"):
        compare(data, methods=["fixmatch"], out_dir=tmp_path / "none", train_options=budget, noise=[], progress=False)
    budget["labeled_fraction"] = 0.5
    results = compare(
        data, methods=["cnn", "fixmatch"], out_dir=tmp_path / "report", train_options=budget, noise=[], progress=False
    ).to_dict()
    cnn, fixmatch = results["methods"]
    assert cnn["name"] == "cnn" and fixmatch["family"] == "cnn" and "FixMatch" in fixmatch["description"]
    assert fixmatch["checkpoint"] == "models/fixmatch/best.pt"
    assert "fixmatch_weight" not in results["budget"] and results["budget"]["labeled_fraction"] == 0.5
