"""Labelled faces for OAENet: one label space, a generated set, real-dataset loaders,
a prepared (aligned and masked) cache and augmentation.

Every dataset yields :class:`Sample` ``(image, landmarks, label)``; a prepared
dataset yields :class:`MaskedSample` ``(image, landmarks, mask, label)``.
"""

from oaenet_helpers.data.augment import (
    FLIP_PERMUTATION,
    FaceAugment,
    class_weights,
    hflip,
    to_tensors,
    train_val_split,
    weighted_sampler,
)
from oaenet_helpers.data.datasets import (
    DatasetReport,
    FaceDataset,
    affectnet,
    ckplus,
    fer2013_csv,
    fer2013_folder,
    load_dataset,
    rafdb,
    seed_list,
)
from oaenet_helpers.data.labels import CLASS_NAMES, LabelError, class_names, to_canonical, to_native
from oaenet_helpers.data.prepare import PreparedDataset, prepare
from oaenet_helpers.data.sample import MaskedSample, Sample
from oaenet_helpers.data.synthetic import CLASS_ACTION_UNITS, SyntheticExpressions

__all__ = [
    "CLASS_ACTION_UNITS",
    "CLASS_NAMES",
    "FLIP_PERMUTATION",
    "DatasetReport",
    "FaceAugment",
    "FaceDataset",
    "LabelError",
    "MaskedSample",
    "PreparedDataset",
    "Sample",
    "SyntheticExpressions",
    "affectnet",
    "ckplus",
    "class_names",
    "class_weights",
    "fer2013_csv",
    "fer2013_folder",
    "hflip",
    "load_dataset",
    "prepare",
    "rafdb",
    "seed_list",
    "to_canonical",
    "to_native",
    "to_tensors",
    "train_val_split",
    "weighted_sampler",
]
