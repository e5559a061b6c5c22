"""Object detection: the detector's own losses (focal + box terms), and COCO mAP@[.5:.95] and
mAP@.5 computed by pycocotools, the reference implementation, so the figures mean what COCO's do."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from ..data.dense import BoxCollate
from ..models.detection import FCOSDetector
from .base import Autocast, Batch, PredictOptions, Prepared, Reduce, TensorSpec
from .dense import DenseNetwork, DenseTask
from .pictures import draw_boxes

Targets = list[dict[str, torch.Tensor]]


@dataclass
class DetectionResult:
    loss: float
    n: int
    map: float  # COCO AP averaged over IoU 0.50:0.95
    map50: float
    per_class_ap: dict[int, float]
    detections: int

    def scalars(self) -> dict[str, float]:
        return {"loss": self.loss, "map": self.map, "map50": self.map50}

    def as_dict(self, names: list[str] | None = None) -> dict[str, Any]:
        def name(c: int) -> str:
            return names[c] if names and c < len(names) else str(c)

        return {
            "map": self.map,
            "map50": self.map50,
            "loss": self.loss,
            "n": self.n,
            "detections": self.detections,
            "per_class_ap": {name(c): ap for c, ap in self.per_class_ap.items()},
        }


def coco_map(
    ground_truth: list[torch.Tensor], detections: list[torch.Tensor], num_classes: int, size: tuple[int, int]
) -> tuple[float, float, dict[int, float]]:
    """(mAP@[.5:.95], mAP@.5, AP per class) by pycocotools. ``ground_truth[i]``: ``[K, 5]`` rows
    (x1, y1, x2, y2, label) of image i; ``detections[i]``: ``[D, 6]`` (x1, y1, x2, y2, score, label)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b: torch.Tensor) -> list[float]:
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    images = [{"id": i, "height": size[0], "width": size[1]} for i in range(len(ground_truth))]
    annotations = [
        {
            "id": len(images) + k,
            "image_id": i,
            "bbox": xywh(row),
            "area": xywh(row)[2] * xywh(row)[3],
            "iscrowd": 0,
            "category_id": int(row[4]),
        }
        for k, (i, row) in enumerate((i, row) for i, rows in enumerate(ground_truth) for row in rows)
    ]
    results = [
        {"image_id": i, "bbox": xywh(row), "score": float(row[4]), "category_id": int(row[5])}
        for i, rows in enumerate(detections)
        for row in rows
    ]
    if not annotations or not results:
        return 0.0, 0.0, {}
    quiet = contextlib.redirect_stdout(io.StringIO())  # pycocotools prints its progress and tables
    with quiet:
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c} for c in range(1, num_classes)],
        }
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # precision: [IoU thresholds, recall points, classes, area ranges, max dets]; -1 where no GT.
    precision = ev.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for k, cat in enumerate(ev.params.catIds):
        p = precision[:, :, k]
        if (p > -1).any():
            per_class[int(cat)] = float(p[p > -1].mean())
    return max(float(ev.stats[0]), 0.0), max(float(ev.stats[1]), 0.0), per_class


def gather_rows(
    rows: dict[int, torch.Tensor], width: int, device: torch.device, reduce: Reduce | None
) -> list[torch.Tensor]:
    """Every process's rows per image id (ids 0..N-1, each held by one process) on every process,
    through sums alone: each fills the slots of its images in one zero tensor, and the sum is all."""
    total = torch.tensor(float(len(rows)), dtype=torch.float64, device=device)
    n = int(reduce(total)) if reduce is not None else len(rows)
    counts = torch.zeros(n, dtype=torch.float64, device=device)
    for i, r in rows.items():
        counts[i] = len(r)
    if reduce is not None:
        counts = reduce(counts)
    most = int(counts.max()) if n else 0
    buf = torch.zeros(n, most, width, dtype=torch.float64, device=device)
    for i, r in rows.items():
        buf[i, : len(r)] = r.to(device, torch.float64)
    if reduce is not None:
        buf = reduce(buf)
    return [buf[i, : int(counts[i])].float().cpu() for i in range(n)]


@torch.no_grad()
def evaluate_detection(
    model: nn.Module,
    loader: Iterable[Batch],
    num_classes: int,
    device: torch.device | str = "cpu",
    autocast: Autocast | None = None,
    reduce: Reduce | None = None,
) -> DetectionResult:
    was_training = model.training
    model.eval()
    device = torch.device(device)
    loss_sum, gts, dets, size = 0.0, {}, {}, (0, 0)
    for x, targets in loader:
        x = x.to(device)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        with autocast() if autocast else contextlib.nullcontext():
            losses, found = cast(Any, model).run(x, targets, detect=True)
        loss_sum += float(sum(losses.values())) * len(targets)
        size = (int(x.shape[-2]), int(x.shape[-1]))
        for t, d in zip(targets, found, strict=True):
            i = int(t["image_id"])
            gts[i] = torch.cat([t["boxes"].float(), t["labels"][:, None].float()], dim=1)
            dets[i] = torch.cat([d["boxes"].float(), d["scores"][:, None].float(), d["labels"][:, None].float()], dim=1)
    stats = torch.tensor(
        [loss_sum, float(len(gts)), float(size[0]), float(size[1])], dtype=torch.float64, device=device
    )
    all_gt = gather_rows(gts, 5, device, reduce)
    all_dt = gather_rows(dets, 6, device, reduce)
    if reduce is not None:
        stats = reduce(stats)
    model.train(was_training)
    n = max(int(stats[1]), 1)
    height, width = size  # every scene has one size; pycocotools uses it only for its bookkeeping
    m, m50, per_class = coco_map(all_gt, all_dt, num_classes, (height, width))
    return DetectionResult(float(stats[0]) / n, int(stats[1]), m, m50, per_class, sum(len(d) for d in all_dt))


@dataclass
class Detection(DenseTask):
    name: ClassVar[str] = "detection"
    train_metrics: ClassVar[tuple[str, ...]] = ("loss",)
    monitor: ClassVar[str] = "map"
    target: ClassVar[str] = "boxes"
    labels: ClassVar[dict[str, str]] = {"map": "mAP@[.5:.95]", "map50": "mAP@.5"}

    def collate(self, dataset: Any) -> Any:
        return BoxCollate()

    def model_defaults(self, meta: Any) -> dict[str, Any]:
        # The scenes are small: no resizing to torchvision's 800 pixels, and the model normalizes
        # with the dataset's statistics.
        side = max(meta["image_size"])
        return {"min_size": side, "max_size": side, "image_mean": meta["mean"], "image_std": meta["std"]}

    def make_batch(self, batch: Batch, device: torch.device) -> Batch:
        x, targets = batch
        return x.to(device, non_blocking=True), [{k: v.to(device) for k, v in t.items()} for t in targets]

    def forward(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> Any:
        return model(x, targets)  # in training mode: the loss dict

    def loss(self, outputs: dict[str, torch.Tensor], targets: Targets) -> torch.Tensor:
        return torch.stack(list(outputs.values())).sum()

    def step_stats(self, loss: torch.Tensor, outputs: Any, targets: Targets) -> torch.Tensor:
        return (loss.detach().double() * len(targets)).reshape(1)

    def evaluate(
        self,
        model: nn.Module,
        loader: Iterable[Batch],
        device: torch.device,
        autocast: Autocast | None = None,
        reduce: Reduce | None = None,
    ) -> DetectionResult:
        return evaluate_detection(model, loader, int(cast(Any, model).num_classes), device, autocast, reduce)

    # ---- A saved detector in use --------------------------------------------------------------------

    def predict_batch(self, model: Any, inputs: list[torch.Tensor], options: PredictOptions) -> list[dict]:
        """Boxes, scores and labels per input, in its pixels (the detector takes images of any size)."""
        return [{k: v.cpu() for k, v in found.items()} for found in model(list(inputs))]

    def encode(
        self, output: dict[str, torch.Tensor], prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> dict[str, Any]:
        boxes, labels, scores = self._kept(output, prepared, options)
        return {
            "boxes": [
                {
                    "box": [round(v, 1) for v in b],
                    "label": int(c),
                    "name": classes[int(c)] if classes and int(c) < len(classes) else str(int(c)),
                    "score": round(float(s), 4),
                }
                for b, c, s in zip(boxes.tolist(), labels.tolist(), scores.tolist(), strict=True)
            ]
        }

    def tensor_outputs(self, model: Any) -> list[TensorSpec]:
        return [
            TensorSpec("boxes", "FP32", (-1, 4)),
            TensorSpec("scores", "FP32", (-1,)),
            TensorSpec("labels", "INT64", (-1,), fill=-1),
            TensorSpec("names", "BYTES", (-1,), fill=b""),
        ]

    def tensor_encode(
        self, output: dict[str, torch.Tensor], prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> dict[str, Any]:
        boxes, labels, scores = self._kept(output, prepared, options)
        names = [(classes[c] if classes and c < len(classes) else str(c)).encode("utf-8") for c in labels.tolist()]
        return {
            "boxes": boxes.float().numpy().reshape(-1, 4),
            "scores": scores.float().numpy(),
            "labels": labels.numpy().astype(np.int64),
            "names": np.array(names, dtype=object),
        }

    def _kept(
        self, output: dict[str, torch.Tensor], prepared: Prepared, options: PredictOptions
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The boxes scoring ``min_score`` or more, in the image's own pixels."""
        keep = output["scores"] >= options.min_score
        height, width = prepared.input.shape[-2:]
        scale = torch.tensor([prepared.size[1] / width, prepared.size[0] / height] * 2)
        return output["boxes"][keep] * scale, output["labels"][keep], output["scores"][keep]

    def describe(self, record: Mapping[str, Any]) -> str:
        return ", ".join(f"{b['name']} {b['score']:.2f}" for b in record["boxes"]) or "nothing"

    def draw(
        self, output: dict[str, torch.Tensor], prepared: Prepared, classes: list[str] | None, options: PredictOptions
    ) -> Any:
        boxes, labels, scores = self._kept(output, prepared, options)
        return draw_boxes(prepared.image, boxes, labels, scores, classes)

    def draw_truth(self, image: torch.Tensor, target: dict[str, torch.Tensor], classes: list[str] | None) -> Any:
        """A scene's labelled boxes drawn as predicted ones are (without scores)."""
        return draw_boxes(image, target["boxes"], target["labels"], None, classes)

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        lines = [f"mAP@[.5:.95] {100 * report['map']:.2f}%   mAP@.5 {100 * report['map50']:.2f}%  (pycocotools)"]
        lines.append("per-class AP@[.5:.95]:")
        lines += [f"  {name:<14} {100 * ap:6.2f}%" for name, ap in report["per_class_ap"].items()]
        return lines

    def export_network(self, model: Any) -> DetectionNetwork:
        return DetectionNetwork(model)

    def parity_inputs(self, network: Any, count: int) -> tuple[torch.Tensor, bool]:
        return self.scene_inputs(network, count)


class DetectionNetwork(DenseNetwork):
    """Images in [0, 1] ``[N, C, H, W]`` (H and W divisible by 32, as the model's own transform pads
    them) in; the normalization, backbone, FPN and heads run in the graph, and the raw
    ``cls_logits`` ``[N, anchors, classes]``, ``bbox_regression`` ``[N, anchors, 4]`` (and FCOS's
    ``bbox_ctrness`` ``[N, anchors, 1]``) come out. Anchor decoding, the score threshold, top-k and
    NMS are not in the graph: their output size depends on the image, and they are cheap in
    Python (``model.postprocess`` applies them to these outputs)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: Any):
        super().__init__(model)
        mean, std = model.transform.image_mean, model.transform.image_std
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        fcos = isinstance(model, FCOSDetector)
        self.output_names = ["cls_logits", "bbox_regression", *(["bbox_ctrness"] if fcos else [])]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = list(self.model.backbone((x - self.mean) / self.std).values())
        outputs = self.model.head(features)
        return tuple(outputs[name] for name in self.output_names)

    def post_processing(self) -> str:
        return (
            "not included: decode the regression against the anchors, threshold the scores, keep the top "
            "candidates per level and run class-wise NMS (resnetkit: model.postprocess)"
        )
