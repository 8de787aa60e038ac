"""The seam between the service and the model: loading, the backend's name, per-request options."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixelwise.data.builtin.quokka import QUOKKA_CLASSES
from pixelwise.errors import PixelwiseError
from pixelwise.serve.model import backend_name, load_predictor, with_options


def test_load_predictor_reads_the_checkpoint_and_sets_the_threads(checkpoint: Path) -> None:
    before = torch.get_num_threads()
    try:
        predictor = load_predictor(checkpoint, device="cpu", threads=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert predictor.classes == QUOKKA_CLASSES
    assert (predictor.in_channels, predictor.tile_size) == (3, 64)
    assert backend_name(predictor) == "torch"
    assert load_predictor(checkpoint, device="auto", threads=before, tile_size=128).tile_size == 128


def test_load_predictor_refuses_a_missing_gpu_and_a_missing_file(checkpoint: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(PixelwiseError, match="--device cuda: torch sees no CUDA GPU"):
            load_predictor(checkpoint, device="cuda", threads=torch.get_num_threads())
    with pytest.raises(PixelwiseError, match=r"nothing\.pt"):
        load_predictor(tmp_path / "nothing.pt", device="cpu", threads=torch.get_num_threads())


def test_with_options_copies_and_never_changes_the_shared_predictor(predictor) -> None:  # type: ignore[no-untyped-def]
    assert with_options(predictor) is predictor  # nothing asked: nothing copied
    variant = with_options(predictor, tile_size=32, overlap=0.0, tta=True)
    assert (variant.tile_size, variant.overlap, variant.tta) == (32, 0.0, True)
    assert (predictor.tile_size, predictor.overlap, predictor.tta) == (64, 0.5, False)
    assert variant.backend is predictor.backend  # the network is shared, not copied
