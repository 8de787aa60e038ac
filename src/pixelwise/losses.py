"""Segmentation losses: cross-entropy, Dice, focal and CE + Dice, all honouring ``ignore_index``.

Every loss takes logits (N, K, H, W) and integer targets (N, H, W) with values in 0..K-1 or
``ignore_index``, and returns a scalar. Ignored pixels contribute nothing: neither to the loss nor to the
normaliser. A batch with no valid pixel gives a zero that still has a gradient path, so a crop that
landed entirely on padding does not turn the loss into NaN.

Binary tasks are two-class problems here (softmax over K = 2), so they need no special mode.

``LOSS_NAMES`` is the one list of the names ``make_loss`` takes (``TrainConfig.loss`` offers them); torch is
imported inside the functions, so that the settings and the command line read the names without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pixelwise.data.classes import IGNORE_INDEX
from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    from torch import Tensor

LossFunction = Callable[["Tensor", "Tensor"], "Tensor"]

LOSS_NAMES = ("ce", "dice", "focal", "ce+dice")


def _check_shapes(logits: Tensor, target: Tensor) -> None:
    if logits.dim() != 4 or target.dim() != 3 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"expected logits (N, K, H, W) and target (N, H, W); got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[2:] != target.shape[1:]:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in H, W")


def _weight_tensor(class_weights: Sequence[float] | Tensor | None, like: Tensor, num_classes: int) -> Tensor | None:
    import torch

    if class_weights is None:
        return None
    weight = torch.as_tensor(class_weights, dtype=like.dtype, device=like.device)
    if weight.shape != (num_classes,):
        raise PixelwiseError(f"{weight.numel()} class weights for {num_classes} classes; give one weight per class")
    return weight


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Sequence[float] | Tensor | None = None,
) -> Tensor:
    """Per-pixel cross-entropy, mean over the valid pixels (weighted mean when class weights are given).

    logits (N, K, H, W), target (N, H, W) int -> scalar.

    >>> import torch
    >>> logits = torch.zeros(1, 2, 1, 2)
    >>> round(cross_entropy(logits, torch.tensor([[[0, 255]]])).item(), 4)   # log 2
    0.6931
    """
    import torch.nn.functional as F

    _check_shapes(logits, target)
    target = target.long()
    if not bool((target != ignore_index).any()):
        return logits.sum() * 0.0
    weight = _weight_tensor(class_weights, logits, logits.shape[1])
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Sequence[float] | Tensor | None = None,
    smooth: float = 1.0,
) -> Tensor:
    """Soft Dice loss over the batch: 1 - mean over classes of (2|P∩Y| + s) / (|P| + |Y| + s).

    logits (N, K, H, W), target (N, H, W) int -> scalar. P is the softmax, Y the one-hot target; sums run
    over the valid pixels of the whole batch. Ignored pixels are removed from both P and Y (smp's
    multiclass Dice got this wrong in several releases by letting them count as class 0). Every class takes
    part: the smoothing ``s`` makes a class absent from Y score (s) / (|P| + s), so predicting it where it
    is not is still penalised, and a class absent from both P and Y scores 1 instead of 0/0. Class weights
    give a weighted mean over classes.

    >>> import torch
    >>> logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])       # confidently predicts [0, 1]
    >>> round(dice_loss(logits, torch.tensor([[[0, 1]]]), smooth=0.0).item(), 3)
    0.0
    """
    import torch
    import torch.nn.functional as F

    _check_shapes(logits, target)
    num_classes = logits.shape[1]
    valid = target != ignore_index
    # the softmax runs in float32 even under autocast: sums over many pixels lose too much in bf16
    probabilities = logits.float().softmax(dim=1) * valid.unsqueeze(1)
    # ignored pixels get class 0 here only to make one_hot legal; the valid mask then zeroes them
    safe_target = torch.where(valid, target.long(), torch.zeros_like(target, dtype=torch.long))
    one_hot = F.one_hot(safe_target, num_classes).permute(0, 3, 1, 2).to(probabilities.dtype)
    one_hot = one_hot * valid.unsqueeze(1)
    dims = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(dims)
    cardinality = probabilities.sum(dims) + one_hot.sum(dims)
    dice = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(1e-7)
    weight = _weight_tensor(class_weights, dice, num_classes)
    if weight is None:
        return 1.0 - dice.mean()
    return 1.0 - (dice * weight).sum() / weight.sum()


def focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Sequence[float] | Tensor | None = None,
    gamma: float = 2.0,
) -> Tensor:
    """Focal loss (Lin et al. 2017): -w_y (1 - p_y)^γ log p_y, mean over the valid pixels.

    logits (N, K, H, W), target (N, H, W) int -> scalar. With class weights the mean is weighted like
    PyTorch's cross-entropy (divided by the sum of the pixels' weights), so γ = 0 gives exactly
    :func:`cross_entropy`.

    >>> import torch
    >>> logits = torch.zeros(1, 2, 1, 1)                               # p_y = 1/2
    >>> round(focal_loss(logits, torch.tensor([[[1]]]), gamma=2.0).item(), 4)   # 0.25 · log 2
    0.1733
    """
    import torch

    _check_shapes(logits, target)
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    safe_target = torch.where(valid, target.long(), torch.zeros_like(target, dtype=torch.long))
    log_probabilities = logits.float().log_softmax(dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    probabilities = log_probabilities.exp()
    loss = -((1.0 - probabilities) ** gamma) * log_probabilities
    weight = _weight_tensor(class_weights, log_probabilities, logits.shape[1])
    pixel_weight = valid.to(loss.dtype) if weight is None else weight[safe_target] * valid
    return (loss * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)


def make_loss(
    name: str,
    *,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Sequence[float] | None = None,
    dice_weight: float = 1.0,
    focal_gamma: float = 2.0,
) -> LossFunction:
    """The loss named ``ce``, ``dice``, ``focal`` or ``ce+dice`` as a function (logits, target) -> scalar.

    ``ce+dice`` is CE + ``dice_weight`` · Dice.

    >>> import torch
    >>> loss = make_loss("ce+dice", ignore_index=255)
    >>> loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)).shape
    torch.Size([])
    """
    weights = None if class_weights is None else tuple(float(value) for value in class_weights)

    def ce(logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(logits, target, ignore_index=ignore_index, class_weights=weights)

    def dice(logits: Tensor, target: Tensor) -> Tensor:
        return dice_loss(logits, target, ignore_index=ignore_index, class_weights=weights)

    def focal(logits: Tensor, target: Tensor) -> Tensor:
        return focal_loss(logits, target, ignore_index=ignore_index, class_weights=weights, gamma=focal_gamma)

    def ce_dice(logits: Tensor, target: Tensor) -> Tensor:
        return ce(logits, target) + dice_weight * dice(logits, target)

    losses: dict[str, LossFunction] = {"ce": ce, "dice": dice, "focal": focal, "ce+dice": ce_dice}
    if name not in losses:
        raise PixelwiseError(f"unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}")
    return losses[name]
