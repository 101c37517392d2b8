"""Per-class anchors in the target's pre-head feature space, estimated from public images.

The feature-space adaptive attack against CALoR stops before the head (whose low-rank bottleneck
and tanh are the defense) and steers G(z) toward where the target's own features put class y.
"""

from __future__ import annotations

import torch

from pipeline.attacks.base import WhiteBoxTarget


@torch.no_grad()
def estimate_class_anchors(
    target: WhiteBoxTarget, public_images: torch.Tensor, classes: torch.Tensor, top_k: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean pre-head features of the ``top_k`` public images the target assigns most confidently to y.

    Images whose top-1 label is y rank first (by p_y); if fewer than ``top_k`` are labelled y the
    rest are the next-highest p_y — the count labelled y is returned so the report can show it.

    Returns:
        anchors (len(classes), d) and, per class, how many of the chosen images are labelled y.
    """
    feats, probs = [], []
    for chunk in public_images.split(batch_size):
        f = target.features(chunk)
        feats.append(f)
        probs.append(target.head(f).softmax(1))
    features, p = torch.cat(feats), torch.cat(probs)
    predicted = p.argmax(1)
    k = min(top_k, len(public_images))
    anchors, assigned = [], []
    for c in classes.tolist():
        key = p[:, c] + (predicted == c).float()  # labelled-y first, then by confidence
        chosen = torch.argsort(key, descending=True, stable=True)[:k]
        anchors.append(features[chosen].mean(0))
        assigned.append(int((predicted[chosen] == c).sum()))
    return torch.stack(anchors), torch.tensor(assigned)
