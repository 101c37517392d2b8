"""Classifiers with separate feature extractor and head (see ``base.Classifier``)."""

from pipeline.models.base import Classifier, HeadConfig, ModelConfig
from pipeline.models.config import ModelSection
from pipeline.models.heads import HeadActivation, LowRankHead, build_head
from pipeline.models.zoo import create_model, list_architectures

__all__ = [
    "Classifier", "HeadActivation", "HeadConfig", "ModelConfig", "ModelSection", "LowRankHead", "build_head",
    "create_model", "list_architectures",
]  # fmt: skip
