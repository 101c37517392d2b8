"""Tiny, fast training data shared by tests (a separable 4-class toy task on 12×12 images)."""

import torch

from pipeline.data.parts import LabelledImages


def tiny_data(n_per_class: int = 16, classes: int = 4, seed: int = 0) -> LabelledImages:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = torch.randint(0, 40, (len(labels), 1, 12, 12), generator=g, dtype=torch.uint8)
    for c in range(classes):  # a bright bar whose row encodes the class
        images[labels == c, :, 3 * c : 3 * c + 3, 2:10] = 250
    return LabelledImages(images, labels)
