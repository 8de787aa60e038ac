"""Does D help? The pseudo-labels on training images whose labels are hidden, scored against those labels.

Hung et al.'s idea is that D's confidence ``σ(D(P_u))`` tells right from wrong predictions on unlabeled
images, so that ``L_semi`` learns from the right ones. On images whose labels ``labeled_fraction`` hid, that
can be checked directly, each epoch, on a fixed bounded sample of whole images (segmenter in eval mode):

- ``pseudo_trusted_fraction``: the share of pixels the run's rule trusts: ``L_semi``'s (D's ``σ > T_semi``,
  or the max softmax above ``T_semi`` for self-training), else FixMatch's (max softmax above
  ``fixmatch_threshold``), else, in a run with D, what D would trust, and in a supervised run FixMatch's;
- ``pseudo_accuracy_trusted`` / ``pseudo_accuracy_untrusted``: how often ``argmax P`` is the true class on
  the trusted and the other pixels (a rule worth following keeps the first well above the second);
- ``pseudo_auroc_discriminator`` / ``pseudo_auroc_softmax``: the area under the ROC curve of D's confidence,
  and of the max softmax, as a score for "this pixel's pseudo-label is right" (0.5: no better than chance).
  D adds something only if its AUROC beats the softmax's, which comes for free.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from pixelwise.data.transforms import PairedTransform
from pixelwise.train.data import Samples, same_size_batches
from pixelwise.train.networks import Networks


@torch.inference_mode()
def pseudo_label_quality(networks: Networks, samples: Samples, transform: PairedTransform) -> dict[str, float]:
    """The ``pseudo_*`` numbers above for ``samples`` (with their true masks) through ``transform``, judged by
    ``networks`` (the raw ones: ``Trainer.networks(raw=True)``; S is put in eval mode)."""
    from sklearn.metrics import roc_auc_score

    config, discriminator = networks.config, networks.discriminator
    trust_d = discriminator is not None and (
        (config.semi_weight > 0 and config.semi_trust == "discriminator")
        or (config.semi_weight == 0 and config.fixmatch_weight == 0)
    )
    threshold = (
        config.fixmatch_threshold if config.semi_weight == 0 and config.fixmatch_weight > 0 else config.semi_threshold
    )
    networks.segmenter.eval()
    correct: list[np.ndarray] = []
    softmax: list[np.ndarray] = []
    judged: list[np.ndarray] = []
    for batch in same_size_batches(samples, config.batch_size):
        pairs = [transform(sample.image, sample.mask) for sample in batch]
        images = networks.to_device(torch.stack([image for image, _ in pairs]))
        masks = torch.stack([mask for _, mask in pairs]).to(networks.device)
        valid = masks != networks.ignore_index
        probabilities = networks.segment(images).softmax(dim=1)
        correct.append((probabilities.argmax(dim=1) == masks)[valid].cpu().numpy())
        softmax.append(probabilities.amax(dim=1)[valid].cpu().numpy())
        if discriminator is not None:
            d_logits = networks.judge(networks.shown_to_d(probabilities, valid), images)
            judged.append(torch.sigmoid(d_logits[:, 0])[valid].cpu().numpy())
    right = np.concatenate(correct)
    scores = {"softmax": np.concatenate(softmax)}
    if judged:
        scores["discriminator"] = np.concatenate(judged)
    trusted = (scores["discriminator"] if trust_d else scores["softmax"]) > threshold
    result: dict[str, Any] = {
        "pseudo_trusted_fraction": float(trusted.mean()) if right.size else math.nan,
        "pseudo_accuracy_trusted": float(right[trusted].mean()) if trusted.any() else math.nan,
        "pseudo_accuracy_untrusted": float(right[~trusted].mean()) if (~trusted).any() else math.nan,
    }
    for name, score in scores.items():
        # the AUROC needs right and wrong pixels both; a perfect or a hopeless model has no ranking to judge
        both = 0 < right.sum() < right.size
        result[f"pseudo_auroc_{name}"] = float(roc_auc_score(right, score)) if both else math.nan
    return result
