"""What of a dense model goes into an exported file: the network, and none of the steps whose
shapes depend on the data.

- Segmentation: normalized images ``[N, C, H, W]`` in, ``logits`` ``[N, classes, H, W]`` out
  (the head's output already upsampled to the input's size; the argmax is left to the caller).
- Detection: images in [0, 1] ``[N, C, H, W]`` (H and W divisible by 32, as the model's own
  transform pads them) in; the normalization, backbone, FPN and heads run in the graph, and the raw
  ``cls_logits`` ``[N, anchors, classes]``, ``bbox_regression`` ``[N, anchors, 4]`` (and FCOS's
  ``bbox_ctrness`` ``[N, anchors, 1]``) come out. Anchor decoding, the score threshold, top-k and
  NMS are not in the graph: their output size depends on the image, and they are cheap in
  Python (``model.postprocess`` applies them to these outputs)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.detection import FCOSDetector
from .dense import dense_task


class DenseNetwork(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: Any):
        super().__init__()
        task = dense_task(model)
        if task is None:
            raise ValueError("DenseNetwork wraps a segmentation or detection model")
        self.model = model
        self.task = task
        self.model_cfg = model.model_cfg
        self.pretrained_cfg = getattr(model, "pretrained_cfg", {})
        self.num_classes = model.num_classes
        self.in_chans = model.in_chans
        if task == "detection":
            mean, std = model.transform.image_mean, model.transform.image_std
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
            fcos = isinstance(model, FCOSDetector)
            self.output_names = ["cls_logits", "bbox_regression", *(["bbox_ctrness"] if fcos else [])]
        else:
            self.output_names = ["logits"]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.task == "segmentation":
            return self.model(x)["out"]
        features = list(self.model.backbone((x - self.mean) / self.std).values())
        outputs = self.model.head(features)
        return tuple(outputs[name] for name in self.output_names)

    def post_processing(self) -> str:
        if self.task == "segmentation":
            return "none: the graph ends with the logits upsampled to the input size; argmax per pixel gives the mask"
        return (
            "not included: decode the regression against the anchors, threshold the scores, keep the top "
            "candidates per level and run class-wise NMS (resnetkit: model.postprocess)"
        )


@torch.no_grad()
def dense_parity_inputs(network: DenseNetwork, count: int = 16) -> tuple[torch.Tensor, bool]:
    """Up to ``count`` of the model's own test scenes as the file takes them, and True; random
    inputs of its size, and False, when the model records no training scenes."""
    from ..data.dense import load_dense_dataset
    from ..data.scenes import SceneSpec

    meta = network.pretrained_cfg or {}
    config = (meta.get("training") or {}).get("config") or {}
    if config:
        scenes = dict((config.get("data") or {}).get("scenes", {}), test_scenes=count)
        ds = load_dense_dataset(meta.get("name", ""), "test", None, False, SceneSpec(**scenes), 0, "mask")
        x = ds.images[:count].float() / 255
        if network.task == "segmentation":
            x = (x - torch.tensor(ds.mean).view(1, -1, 1, 1)) / torch.tensor(ds.std).view(1, -1, 1, 1)
        return x, True
    size = meta.get("image_size") or [128, 128]
    gen = torch.Generator().manual_seed(0)
    return torch.rand(min(count, 4), network.in_chans, int(size[0]), int(size[1]), generator=gen), False
