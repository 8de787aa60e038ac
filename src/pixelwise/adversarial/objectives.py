"""The losses of adversarial and semi-supervised segmentation (Hung et al., 2018), as pure functions on tensors.

Notation: ``S`` the segmenter (logits (N, K, H, W)), ``P = softmax(S(X))``, ``Y1`` the one-hot ground truth,
``D`` the discriminator (logits of "real" (N, 1, H, W)). Every pixel-wise mean is taken over the *valid*
pixels only (not ``ignore_index``); a batch without a single valid pixel gives a zero that still carries a
graph, so ``loss.backward()`` never fails and adds nothing.

The order per iteration (see ``train.trainer``): update S with D frozen (``frozen(discriminator)``), then update
D on ``P.detach()`` and ``Y1``, so that neither update moves the other network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.data.classes import IGNORE_INDEX


def one_hot(
    labels: torch.Tensor, num_classes: int, *, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label maps (N, H, W) int -> one-hot maps (N, K, H, W) float32 and the valid mask (N, H, W) bool.

    Pixels equal to ``ignore_index`` are all-zero in the one-hot map and False in the mask; any other value
    outside 0..K-1 is an error (it would be a silent wrong class otherwise).

    >>> maps, valid = one_hot(torch.tensor([[[0, 2, 255]]]), 3)
    >>> maps[0, :, 0].T.tolist(), valid.tolist()
    ([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], [[[True, True, False]]])
    """
    if labels.ndim != 3:
        raise ValueError(f"expected label maps of shape (N, H, W), got {tuple(labels.shape)}")
    if labels.is_floating_point():
        raise ValueError(f"expected integer labels, got {labels.dtype}")
    labels = labels.long()
    valid = labels != ignore_index
    if valid.any():
        low, high = int(labels[valid].min()), int(labels[valid].max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"labels range over {low}..{high} but there are {num_classes} classes (ignore_index {ignore_index})"
            )
    # ignored pixels first become class 0 so that F.one_hot accepts them, then are zeroed by the mask
    maps = F.one_hot(torch.where(valid, labels, 0), num_classes).permute(0, 3, 1, 2).to(torch.float32)
    return maps * valid.unsqueeze(1), valid


def smooth_one_hot(
    maps: torch.Tensor, valid: torch.Tensor, *, amount: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Real maps softened at random per pixel, so that D cannot win by spotting exact zeros and ones.

    ``maps`` (N, K, H, W) one-hot and ``valid`` (N, H, W) from ``one_hot``. At each valid pixel the true class
    keeps ``1 - e`` and the other K - 1 classes share ``e`` equally, with ``e ~ U(0, amount)`` drawn per pixel;
    ignored pixels stay all-zero. ``amount = 0`` returns the maps unchanged. Columns still sum to one.

    >>> maps, valid = one_hot(torch.tensor([[[1]]]), 3)
    >>> smooth_one_hot(maps, valid, amount=0.0)[0, :, 0, 0].tolist()
    [0.0, 1.0, 0.0]
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must lie in [0, 1], got {amount}")
    if amount == 0.0:
        return maps
    num_classes = maps.shape[1]
    shape = (maps.shape[0], 1, *maps.shape[2:])
    spread = torch.rand(shape, generator=generator, device=maps.device, dtype=maps.dtype) * amount
    # one class alone has nowhere to move mass to: it stays one-hot
    others = spread / (num_classes - 1) if num_classes > 1 else torch.zeros_like(spread)
    softened = maps * (1.0 - spread) + (1.0 - maps) * others
    return softened * valid.unsqueeze(1).to(maps.dtype) if num_classes > 1 else maps


def zero_invalid(maps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Class maps (N, K, H, W) set to zero where ``valid`` (N, H, W) is False, as ``one_hot`` leaves ignored pixels.

    Real maps are all-zero at padding and ignored pixels while a softmax sums to one everywhere: D would tell
    them apart by that alone. Fed to D masked the same way, the two differ only where the labels are known.

    >>> zero_invalid(torch.full((1, 2, 1, 2), 0.5), torch.tensor([[[True, False]]]))[0, :, 0].tolist()
    [[0.5, 0.0], [0.5, 0.0]]
    """
    return maps * valid.unsqueeze(1).to(maps.dtype)


def _valid_mask(logits: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """The mask (N, 1, H, W) bool matching discriminator logits (N, 1, H, W); all True when ``valid`` is None."""
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"expected discriminator logits of shape (N, 1, H, W), got {tuple(logits.shape)}")
    if valid is None:
        return torch.ones_like(logits, dtype=torch.bool)
    mask = valid.unsqueeze(1) if valid.ndim == 3 else valid
    if mask.shape != logits.shape:
        raise ValueError(f"valid mask of shape {tuple(valid.shape)} does not match logits {tuple(logits.shape)}")
    return mask.to(torch.bool)


def _masked_bce(logits: torch.Tensor, target: float, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean binary cross-entropy of logits (N, 1, H, W) against a constant target, over the valid pixels."""
    mask = _valid_mask(logits, valid)
    losses = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none")
    count = mask.sum()
    if count == 0:
        return logits.sum() * 0.0
    return torch.where(mask, losses, 0.0).sum() / count


def discriminator_losses(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    fake_valid: torch.Tensor | None = None,
    real_label: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of ``L_D``: ``BCE(D(Y1), real_label)`` and ``BCE(D(P.detach()), 0)``, each a pixel mean.

    ``real_logits`` = D(one-hot ground truth) and ``fake_logits`` = D(detached prediction), both (N, 1, H, W)
    (the batches may differ in N: reals from their own labeled batch, fakes from labeled and unlabeled ones);
    ``valid`` (N, H, W) bool masks the reals, ``fake_valid`` the fakes (None: ``valid`` for both).
    ``real_label`` < 1 is one-sided label smoothing (Salimans et al., 2016): it keeps D from becoming
    over-confident on the exact zeros and ones of ``Y1``. Each half sits near log 2 = 0.69 while D guesses; the
    official code's maintainers read 0.2–0.5 as a working game, near 0 as D winning outright.
    """
    if not 0.0 <= real_label <= 1.0:
        raise ValueError(f"real_label must lie in [0, 1], got {real_label}")
    fake_valid = valid if fake_valid is None else fake_valid
    return _masked_bce(real_logits, real_label, valid), _masked_bce(fake_logits, 0.0, fake_valid)


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    fake_valid: torch.Tensor | None = None,
    real_label: float = 1.0,
) -> torch.Tensor:
    """``L_D = BCE(D(Y1), real_label) + BCE(D(P.detach()), 0)``: the sum of ``discriminator_losses``.

    >>> zero = torch.zeros(1, 1, 2, 2)
    >>> round(discriminator_loss(zero, zero).item(), 4)  # 2 · log 2
    1.3863
    """
    real, fake = discriminator_losses(real_logits, fake_logits, valid, fake_valid=fake_valid, real_label=real_label)
    return real + fake


def adversarial_loss(fake_logits: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``L_adv = BCE(D(P), 1)`` over the valid pixels: the segmenter's reward for fooling D. (N, 1, H, W) -> scalar.

    Call it with D frozen (gradients flow through D into P, never into D's parameters).

    >>> round(adversarial_loss(torch.zeros(1, 1, 1, 1)).item(), 4)  # log 2
    0.6931
    """
    return _masked_bce(fake_logits, 1.0, valid)


def confident_pixels(
    confidence: torch.Tensor, valid: torch.Tensor | None = None, *, threshold: float
) -> tuple[torch.Tensor, float]:
    """The valid pixels whose ``confidence`` (N, H, W) in [0, 1] exceeds ``threshold``, and their share.

    ``valid`` (N, H, W) bool (None: all pixels) leaves out padding and ignored pixels. Returns the mask
    (N, H, W) bool (a constant: no gradient) and the share of the valid pixels it keeps (0.0 when there are
    none): the trusted fraction, whether the confidence is D's (``trusted_pixels``) or the softmax's.

    >>> mask, share = confident_pixels(torch.tensor([[[0.99, 0.5, 0.99]]]), torch.tensor([[[True, True, False]]]), threshold=0.95)
    >>> mask.tolist(), share
    ([[[True, False, False]]], 0.5)
    """
    if confidence.ndim != 3:
        raise ValueError(f"expected a confidence map of shape (N, H, W), got {tuple(confidence.shape)}")
    valid_mask = _valid_mask(confidence.unsqueeze(1), valid)[:, 0]
    with torch.no_grad():
        trusted = (confidence > threshold) & valid_mask
    valid_count = int(valid_mask.sum())
    return trusted, int(trusted.sum()) / valid_count if valid_count else 0.0


def trusted_pixels(
    d_logits_u: torch.Tensor, valid: torch.Tensor | None = None, *, threshold: float
) -> tuple[torch.Tensor, float]:
    """The pixels whose prediction D takes for real, ``σ(D(P_u)) > threshold``, among the valid ones.

    ``d_logits_u`` (N, 1, H, W) are D's logits on the segmenter's softmax; otherwise as ``confident_pixels``
    (the share is the number logged as ``semi_fraction``).

    >>> mask, share = trusted_pixels(torch.tensor([[[[5.0, -5.0, 5.0]]]]), torch.tensor([[[True, True, False]]]), threshold=0.2)
    >>> mask.tolist(), share
    ([[[True, False, False]]], 0.5)
    """
    _valid_mask(d_logits_u, valid)  # checks the shape
    return confident_pixels(torch.sigmoid(d_logits_u.detach()[:, 0]), valid, threshold=threshold)


def pseudo_label_loss(logits_u: torch.Tensor, trusted: torch.Tensor) -> torch.Tensor:
    """``CE(S(X_u), argmax P_u)`` averaged over the ``trusted`` pixels (N, H, W) bool; labels and mask constant.

    A zero with a graph when no pixel is trusted.

    >>> logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 2.0]]]])      # (1, 2, 1, 2): pixel 0 says class 0, pixel 1 class 1
    >>> round(pseudo_label_loss(logits, torch.tensor([[[True, False]]])).item(), 4)   # log(1 + e^-2)
    0.1269
    """
    with torch.no_grad():
        pseudo_labels = logits_u.argmax(dim=1)
    count = int(trusted.sum())
    if count == 0:
        return logits_u.sum() * 0.0
    losses = F.cross_entropy(logits_u, pseudo_labels, reduction="none")
    return torch.where(trusted, losses, 0.0).sum() / count


def semi_supervised_loss(
    logits_u: torch.Tensor, d_logits_u: torch.Tensor, valid: torch.Tensor | None = None, *, threshold: float
) -> tuple[torch.Tensor, float]:
    """``L_semi = CE(S(X_u), argmax P_u)`` over the pixels D trusts (``trusted_pixels``); also their share.

    ``logits_u`` (N, K, H, W) are the segmenter's logits on unlabeled images, ``d_logits_u`` (N, 1, H, W) the
    discriminator's logits on their softmax, ``valid`` (N, H, W) bool the pixels that may count (None: all).
    The pseudo-labels and the confidence mask are constants (the gradient flows only through ``logits_u`` in
    the cross-entropy): the segmenter is taught to agree more with its own trusted predictions, not to move
    D's confidence. Returns ``(loss, trusted share of the valid pixels)``; the loss is a zero with a graph
    when no pixel is trusted.

    >>> logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 2.0]]]])      # (1, 2, 1, 2): pixel 0 says class 0, pixel 1 class 1
    >>> loss, share = semi_supervised_loss(logits, torch.tensor([[[[5.0, -5.0]]]]), threshold=0.2)
    >>> round(loss.item(), 4), share                               # only pixel 0 is trusted: log(1 + e^-2)
    (0.1269, 0.5)
    """
    if logits_u.ndim != 4:
        raise ValueError(f"expected segmenter logits of shape (N, K, H, W), got {tuple(logits_u.shape)}")
    if d_logits_u.shape != (logits_u.shape[0], 1, *logits_u.shape[2:]):
        raise ValueError(
            f"discriminator logits of shape {tuple(d_logits_u.shape)} do not match segmenter logits "
            f"{tuple(logits_u.shape)}; expected (N, 1, H, W)"
        )
    confident, fraction = trusted_pixels(d_logits_u, valid, threshold=threshold)
    return pseudo_label_loss(logits_u, confident), fraction


def discriminator_accuracy(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    fake_valid: torch.Tensor | None = None,
) -> tuple[float, float]:
    """For logging: the share of valid real pixels D calls real (logit > 0), and of fake pixels it calls fake.

    ``valid`` masks the reals, ``fake_valid`` the fakes (None: ``valid`` for both).

    Both near 1 means D wins outright (its gradient for S saturates); both near 0.5 means it is guessing.

    >>> discriminator_accuracy(torch.tensor([[[[1.0, -1.0]]]]), torch.tensor([[[[-1.0, -2.0]]]]))
    (0.5, 1.0)
    """
    real_mask = _valid_mask(real_logits, valid)
    fake_mask = _valid_mask(fake_logits, valid if fake_valid is None else fake_valid)
    with torch.no_grad():
        real_count = int(real_mask.sum())
        fake_count = int(fake_mask.sum())
        real_right = int(((real_logits > 0) & real_mask).sum())
        fake_right = int(((fake_logits <= 0) & fake_mask).sum())
    return (
        real_right / real_count if real_count else float("nan"),
        fake_right / fake_count if fake_count else float("nan"),
    )


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``module``'s parameters do not require gradients; their previous flags come back after.

    Used around the segmenter's update: gradients still flow *through* the discriminator into the
    prediction, but none is accumulated into the discriminator's parameters (their ``.grad`` stays as it was).
    """
    flags = [(parameter, parameter.requires_grad) for parameter in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield module
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
