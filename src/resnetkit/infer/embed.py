"""Penultimate features (``forward_head(..., pre_logits=True)``) of a dataset, for retrieval, other
models, or a k-nearest-neighbour evaluation of how far a backbone's features separate new classes
without any training (Wu et al. 2018 evaluate learnt features this way)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts import atomic_write, load_model
from ..data import ImageDataset, labelled_subset, parse_classes, select_classes
from ..models import ResNetBase
from ..runtime import resolve_device
from ..tasks import task_of


@dataclass
class Embeddings:
    """Features (N, D) float32 and labels (N,) of each split embedded, with the class names."""

    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """One ``.npz``: ``features_<split>``, ``labels_<split>``, ``classes``; written atomically."""
        arrays: dict[str, Any] = {"classes": np.array(self.classes)}
        for split in self.features:
            arrays[f"features_{split}"] = self.features[split]
            arrays[f"labels_{split}"] = self.labels[split]

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
                np.savez(f, **arrays)

        return atomic_write(path, write)


@torch.no_grad()
def embed_dataset(
    model: ResNetBase, ds: ImageDataset, batch_size: int = 512, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled penultimate features and labels of every image of ``ds``, in order (fp32, eval mode)."""
    was_training = model.training
    model.eval()
    feats, labels = [], []
    for x, y in task_of(model).eval_loader(ds, batch_size, torch.device(device)):
        feats.append(model.forward_head(model.forward_features(x.to(device)), pre_logits=True).float().cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def embed_source(
    source: str | os.PathLike[str],
    data: str,
    *,
    splits: tuple[str, ...] = ("train", "test"),
    data_dir: str | None = None,
    classes: str | None = None,
    labels_per_class: int | None = None,
    seed: int = 0,
    batch_size: int = 512,
    device: str = "auto",
) -> Embeddings:
    """Embed ``data``'s splits with ``source``'s backbone. Images are normalized with ``data``'s
    own statistics, as fine-tuning on it would; ``classes`` keeps some classes, and
    ``labels_per_class`` draws K training images of each (seeded), a few-label gallery for k-NN."""
    dev = resolve_device(device)
    model = load_model(source, device=dev)
    task = task_of(model)
    if not task.class_subsets and (classes is not None or labels_per_class is not None):
        raise ValueError(f"--classes and --labels-per-class: not for a {task.name} model")
    out = Embeddings({}, {}, [], {"source": str(source), "data": data, "seed": seed})
    for split in splits:
        ds = task.embedding_data(model, data, split, data_dir)
        if classes is not None:
            ds = select_classes(ds, parse_classes(classes, ds.classes))
        if labels_per_class is not None and split == "train":
            ds = labelled_subset(ds, labels_per_class, seed)
        out.features[split], out.labels[split] = embed_dataset(model, ds, batch_size, dev)
        out.classes = list(ds.classes)
    return out


def knn_predict(
    gallery: np.ndarray, gallery_labels: np.ndarray, queries: np.ndarray, k: int, num_classes: int
) -> np.ndarray:
    """Each query's class by a vote of its ``k`` nearest gallery features under cosine similarity,
    each vote weighted by that similarity (so a tie goes to the closer neighbours)."""
    g = torch.nn.functional.normalize(torch.from_numpy(gallery).float(), dim=1)
    labels = torch.from_numpy(gallery_labels).long()
    k = min(k, len(g))
    preds = []
    for chunk in torch.from_numpy(queries).float().split(1024):
        sim = torch.nn.functional.normalize(chunk, dim=1) @ g.T
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(chunk), num_classes).scatter_add_(1, labels[idx], top.clamp(min=0) + 1e-6)
        preds.append(votes.argmax(1))
    return torch.cat(preds).numpy()


def knn_accuracy(emb: Embeddings, k: int, gallery: str = "train", queries: str = "test") -> float:
    pred = knn_predict(emb.features[gallery], emb.labels[gallery], emb.features[queries], k, len(emb.classes))
    return float((pred == emb.labels[queries]).mean())
