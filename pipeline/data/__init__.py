"""Data layer: real Fashion-MNIST or users' image folders, the model-inversion split, tensors."""

from pipeline.data.config import DataSection, ImageFolderSection, SplitSection
from pipeline.data.errors import ConfigError, DataError
from pipeline.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    fashion_mnist_files,
    load_fashion_mnist,
    locate_fashion_mnist,
)
from pipeline.data.idx import read_idx, write_idx
from pipeline.data.image_folder import ImageFolderData, load_image_folder
from pipeline.data.parts import LabelledImages, PublicImages, load_labelled, load_public
from pipeline.data.split import (
    PART_NAMES,
    MISplit,
    SplitPart,
    load_split_manifest,
    load_split_part,
    make_mi_split,
    save_split,
)
from pipeline.data.tensors import to_float_tensor

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "PART_NAMES",
    "ConfigError",
    "DataError",
    "DataSection",
    "ImageFolderData",
    "ImageFolderSection",
    "LabelledImages",
    "MISplit",
    "PublicImages",
    "SplitPart",
    "SplitSection",
    "fashion_mnist_files",
    "load_fashion_mnist",
    "load_image_folder",
    "load_labelled",
    "load_public",
    "load_split_manifest",
    "load_split_part",
    "locate_fashion_mnist",
    "make_mi_split",
    "read_idx",
    "save_split",
    "to_float_tensor",
    "write_idx",
]  # fmt: skip
