"""Datasets (IDX, CIFAR, image folders, digits), batched tensor augmentation and loaders."""

from .augment import AugmentConfig, augment_batch, random_crop, random_erasing, random_flip
from .catalog import DATASETS, DatasetInfo
from .cifar import load_cifar
from .digits import load_digits_split
from .download import download_url, file_checksum
from .errors import DatasetError
from .folder import FolderDataset, scan_image_folder
from .idx import load_idx_pair, load_mnist_split, read_idx
from .images import check_image, decode_image, find_bad_images, max_image_pixels, read_image, set_max_image_pixels
from .loader import InMemoryLoader, StreamingLoader, eval_loader, make_streaming_loader
from .memory import InMemoryDataset, compute_mean_std, sample_indices, split_indices
from .registry import ImageDataset, canonical_name, dataset_info, dataset_splits, load_dataset, sample_subset
from .sources import SOURCES, DatasetSource, locate_dataset
from .subsets import (
    balanced_indices,
    dataset_labels,
    labelled_subset,
    parse_classes,
    select_classes,
    subset_record,
)

__all__ = [
    "DATASETS",
    "SOURCES",
    "AugmentConfig",
    "DatasetError",
    "DatasetInfo",
    "DatasetSource",
    "FolderDataset",
    "ImageDataset",
    "InMemoryDataset",
    "InMemoryLoader",
    "StreamingLoader",
    "augment_batch",
    "balanced_indices",
    "canonical_name",
    "check_image",
    "compute_mean_std",
    "dataset_info",
    "dataset_labels",
    "dataset_splits",
    "decode_image",
    "download_url",
    "eval_loader",
    "file_checksum",
    "find_bad_images",
    "labelled_subset",
    "load_cifar",
    "load_dataset",
    "load_digits_split",
    "load_idx_pair",
    "load_mnist_split",
    "locate_dataset",
    "make_streaming_loader",
    "max_image_pixels",
    "parse_classes",
    "random_crop",
    "random_erasing",
    "random_flip",
    "read_idx",
    "read_image",
    "sample_indices",
    "sample_subset",
    "scan_image_folder",
    "select_classes",
    "set_max_image_pixels",
    "split_indices",
    "subset_record",
]
