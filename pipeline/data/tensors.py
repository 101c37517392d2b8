"""uint8 image arrays -> float tensors; the one place that fixes the [0, 1] pixel scale."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.data.errors import DataError


def to_float_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Scale uint8 images to ``float32`` in [0, 1]; refuses other dtypes so nothing is scaled twice."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if tensor.dtype != torch.uint8:
        raise DataError(f"to_float_tensor expects uint8 images, got {tensor.dtype}")
    return tensor.to(torch.float32).div_(255.0)
