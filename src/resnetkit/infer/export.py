"""``resnetkit export``: a trained model as an ONNX file, a ``torch.export`` program (``.pt2``) or
TorchScript, checked against PyTorch on real images before it is kept.

The model is exported in eval mode with BatchNorm folded into the convolutions before it
(``torch.fx``'s conv-BN fusion: the pre-activation units' BN after an addition has no conv to fold
into and stays). The example batch has two images and the batch dimension is declared dynamic: an
example of one makes the exporter fix the batch at 1 (pytorch/pytorch#157621). Everything the file
needs to be used alone (model config, classes, channels, size, mean, std, flip TTA) is stored in it:
ONNX metadata, or the extra files of a ``.pt2`` or TorchScript archive."""

from __future__ import annotations

import copy
import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.fx.proxy import TraceError

from ..artifacts import ModelCard, atomic_write, model_card
from ..artifacts.cards import MAX_CLASSES, MAX_TTA_SHIFT
from ..models import FeatureListNet, ResNetBase
from ..models.weights import first_line
from ..tasks import task_of
from .dense_export import DenseNetwork

FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".ts"}
METADATA_KEY = "resnetkit"
INPUT, OUTPUT = "input", "logits"


class ExportError(ValueError):
    """The exported program does not reproduce the model; nothing was written."""


@dataclass(frozen=True)
class Parity:
    """How the exported program agrees with PyTorch fp32 on the same inputs."""

    images: int
    real: bool  # the model's own test images (else random inputs: the model records no dataset)
    top1_agreement: float
    max_abs_diff: float
    max_rel_diff: float  # max |a - b| / max |a|, the worst output
    engine: str
    classifier: bool = True  # False for a backbone: feature maps, no top-1 to agree on

    def line(self) -> str:
        what = "real test images" if self.real else "random inputs (the model records no dataset)"
        agreement = f"top-1 agreement {100 * self.top1_agreement:.2f}%, " if self.classifier else ""
        kind = "logit" if self.classifier else "output"
        return (
            f"parity on {self.images} {what}, {self.engine} against PyTorch fp32: {agreement}largest {kind} "
            f"difference {self.max_abs_diff:.3g} ({self.max_rel_diff:.3g} relative)"
        )


Exportable = ResNetBase | FeatureListNet | DenseNetwork


def output_names(model: Exportable) -> list[str]:
    """``logits`` for a classifier; ``feature0..N`` for a backbone, one per returned level; a dense
    network's raw outputs (``infer.dense_export``)."""
    if isinstance(model, DenseNetwork):
        return list(model.output_names)
    if isinstance(model, FeatureListNet):
        return [f"feature{i}" for i in model.out_indices]
    return [OUTPUT]


def export_metadata(model: Exportable) -> dict[str, Any]:
    """What a user of the file needs: how to preprocess, what the outputs mean, how it was built."""
    card = model_card(model)
    meta: dict[str, Any] = {
        "format": 1,
        "model_cfg": model.model_cfg,
        "task": card.task,
        "card": card.to_dict(),  # the whole record: load it back with the file
        "dataset": card.dataset_facts(),  # the facts a reader needs, where readers of format 1 look
        "tta_flip": card.tta_flip,
        "tta_shift": card.tta_shift,
        "input": INPUT,
        "outputs": output_names(model),
        # 1 for a sequence model (its input [N, C, L], the length dynamic), 2 for images.
        "spatial_dims": 1 if any(isinstance(m, nn.Conv1d) for m in model.modules()) else 2,
    }
    if isinstance(model, FeatureListNet):
        meta["feature_info"] = list(model.feature_info)
    else:
        meta["num_classes"] = model.num_classes
    if isinstance(model, DenseNetwork):
        meta["post_processing"] = model.post_processing()
    return meta


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy with each BatchNorm that follows a convolution folded into it."""
    from torch.fx.experimental.optimization import fuse

    copied = copy.deepcopy(model).eval().float()
    try:
        return fuse(copied)
    except (TraceError, TypeError, RuntimeError):
        # A detector's head reads shapes in Python, which symbolic tracing cannot follow: it is
        # exported unfolded (the engines fold BatchNorm themselves when they compile the graph).
        return copied


def export_model(
    model: Exportable,
    path: str | os.PathLike[str],
    fmt: str = "onnx",
    opset: int = 18,
    inputs: torch.Tensor | None = None,
    rtol: float = 1e-4,
    real: bool = False,
) -> tuple[Path, Parity]:
    """Write ``model`` (a classifier, or a ``features_only`` backbone) to ``path`` as ``fmt``; the
    file appears only if it reproduces the model: every output within ``rtol`` of its largest value
    and, for a classifier, top-1 agreement 100%. Without ``inputs`` the check runs on
    ``parity_inputs(model)``; ``real`` says whether given ``inputs`` are real images."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    path = Path(path)
    if inputs is None:
        inputs, real = task_of(model).parity_inputs(model, 256)
    meta = export_metadata(model)
    folded = fold_batchnorm(model)
    example = _two(inputs)
    checked: list[Parity] = []

    def write(tmp: str) -> None:
        _WRITERS[fmt](folded, example, Path(tmp), meta, opset)
        parity = check_parity(model, Path(tmp), fmt, inputs, real)
        if parity.top1_agreement < 1.0 or parity.max_rel_diff > rtol:
            raise ExportError(f"{path}: not written, the export does not reproduce the model: {parity.line()}")
        checked.append(parity)

    # Written to a temp file, checked there, renamed only then (atomic_write removes it on failure).
    atomic_write(path, write)
    return path, checked[0]


def write_onnx(model: Exportable, path: str | os.PathLike[str], example: torch.Tensor, opset: int = 18) -> Path:
    """``model`` as an ONNX file with BatchNorm folded, a dynamic batch and resnetkit's metadata,
    unchecked: what the inference engines compile (``export_model`` is the checked export)."""
    example = _two(example)
    _write_onnx(fold_batchnorm(model), example, Path(path), export_metadata(model), opset)
    return Path(path)


def _two(inputs: torch.Tensor) -> torch.Tensor:
    """A batch of two: an example of one makes the exporter fix the batch at 1."""
    return inputs[:2] if len(inputs) >= 2 else inputs.repeat(2, *(1,) * (inputs.ndim - 1))


def input_axes(meta: dict[str, Any]) -> dict[int, str]:
    """The input's dynamic axes: the batch, and a sequence model's length (images keep the size
    they were trained at, which the engines compile for)."""
    one_d = int(meta.get("spatial_dims", 2)) == 1
    return {0: "batch", 2: "length"} if one_d else {0: "batch"}


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, meta: dict[str, Any], opset: int) -> None:
    import onnx

    names = meta["outputs"]
    # The TorchScript-based exporter: about 10x faster here than the dynamo one for the same graph
    # (ResNet-50 2 s against 11 s, ResNet-1202 50 s against 300 s), and a dynamic batch is declared.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice and shape-inference chatter
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT],
            output_names=names,
            dynamic_axes={INPUT: input_axes(meta), **{name: {0: "batch"} for name in names}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def _write_pt2(model: nn.Module, example: torch.Tensor, path: Path, meta: dict[str, Any], opset: int) -> None:
    axes = {
        axis: torch.export.Dim(name, min=1 if name == "batch" else 2, max=65536)
        for axis, name in input_axes(meta).items()
    }
    program = torch.export.export(model, (example,), dynamic_shapes=(axes,))
    torch.export.save(program, str(path), extra_files={METADATA_KEY: json.dumps(meta)})


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, meta: dict[str, Any], opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        traced = torch.jit.trace(model, example, strict=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_KEY: json.dumps(meta)})


_WRITERS = {"onnx": _write_onnx, "pt2": _write_pt2, "torchscript": _write_torchscript}


@torch.no_grad()
def check_parity(model: nn.Module, path: Path, fmt: str, inputs: torch.Tensor, real: bool = True) -> Parity:
    """Run ``inputs`` through the file (ONNX Runtime for ONNX) and through ``model`` in fp32."""
    reference = _as_list(model.eval().float()(inputs.float()))
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = [torch.from_numpy(o) for o in session.run(None, {INPUT: inputs.float().numpy()})]
        engine = "ONNX Runtime"
    elif fmt == "pt2":
        got = _as_list(torch.export.load(str(path)).module()(inputs))
        engine = "torch.export program"
    else:
        got = _as_list(torch.jit.load(str(path))(inputs))
        engine = "TorchScript"
    if len(got) != len(reference):
        raise ExportError(f"{path}: {len(got)} outputs where the model gives {len(reference)}")
    diffs = [(g.float() - r).abs().max().item() for g, r in zip(got, reference, strict=True)]
    scales = [max(r.abs().max().item(), 1e-12) for r in reference]
    classifier = len(reference) == 1 and not isinstance(model, (FeatureListNet, DenseNetwork))
    agree = (got[0].argmax(1) == reference[0].argmax(1)).float().mean().item() if classifier else 1.0
    rel = max(d / s for d, s in zip(diffs, scales, strict=True))
    return Parity(len(inputs), real, agree, max(diffs), rel, engine, classifier)


def _as_list(out: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return [out] if isinstance(out, torch.Tensor) else list(out)


class OnnxClassifier(nn.Module):
    """An exported ONNX classifier run by ONNX Runtime, with the interface resnetkit's tools use
    (``pretrained_cfg``, ``num_classes``, ``in_chans``): ``predict`` and ``eval`` take it as they
    take a PyTorch model, preprocessing from the file's own metadata."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime's own errors for files that are not ONNX models
            raise ExportError(f"{self.path}: not an ONNX model ONNX Runtime can run ({first_line(e)})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise ExportError(
                f"{self.path}: an ONNX file without resnetkit's metadata; export it with resnetkit export"
            )
        self.meta = _metadata(raw, self.path)
        self.model_cfg: dict[str, Any] = self.meta["model_cfg"]
        self.num_classes = self.meta["num_classes"]
        # The whole record where the file has one; files of before it keep the data facts and TTA.
        record = self.meta.get("card") or {
            **self.meta.get("dataset", {}),
            "task": self.meta.get("task"),
            "training": {"config": {"tta_flip": self.meta["tta_flip"], "tta_shift": self.meta.get("tta_shift", 0)}},
        }
        self.card = ModelCard.from_dict(record, str(self.path))  # a dense network fails the signature check below
        self.pretrained_cfg = self.card.dataset_facts()
        self.in_chans = int(self.card.in_chans or self.model_cfg.get("in_chans", 3))
        if self.card.classes is not None and len(self.card.classes) != self.num_classes:
            raise ExportError(
                f"{self.path}: its metadata names {len(self.card.classes)} classes for {self.num_classes} outputs"
            )
        rank = 2 + int(self.meta.get("spatial_dims", 2))
        _check_signature(self.session, self.path, self.in_chans, self.num_classes, rank)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run([OUTPUT], {INPUT: x.detach().float().cpu().contiguous().numpy()})
        return torch.from_numpy(logits)


def exported_card(path: str | os.PathLike[str]) -> ModelCard:
    """The record an exported file carries (``.onnx`` metadata, or a ``.pt2`` / TorchScript
    archive's extra file), without loading the program."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        raw = props.get(METADATA_KEY)
    else:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == METADATA_KEY]
            raw = archive.read(names[0]).decode("utf-8") if names else None
    if raw is None:
        raise ExportError(f"{path}: no resnetkit metadata; export it with resnetkit export")
    meta = _metadata_object(raw, path)
    record = meta.get("card") or {**meta.get("dataset", {}), "task": meta.get("task")}
    return ModelCard.from_dict(record, str(path))


def _metadata_object(raw: str, path: Path) -> dict[str, Any]:
    """resnetkit's metadata as JSON: an object whose ``card`` and ``dataset`` are objects."""
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: its resnetkit metadata is not valid JSON ({e})") from None
    except RecursionError:
        raise ExportError(f"{path}: its resnetkit metadata is nested too deep") from None
    if not isinstance(meta, dict):
        raise ExportError(f"{path}: its resnetkit metadata is not an object")
    for key in ("dataset", "card"):
        if key in meta and not isinstance(meta[key], dict):
            raise ExportError(f"{path}: metadata field '{key}' is not an object")
    return meta


def _metadata(raw: str, path: Path) -> dict[str, Any]:
    """resnetkit's metadata of an ONNX classifier, checked as a schema: one line naming the file
    and the field for anything missing or of the wrong type."""
    meta = _metadata_object(raw, path)
    if "num_classes" not in meta:
        raise ExportError(f"{path}: a backbone's features, not a classifier; predict and eval need logits")
    n = meta["num_classes"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CLASSES:
        raise ExportError(f"{path}: metadata field 'num_classes' must be a whole number in 1-{MAX_CLASSES}, not {n!r}")
    if not isinstance(meta.get("model_cfg"), dict):
        raise ExportError(f"{path}: metadata field 'model_cfg' is missing or not an object")
    if meta.get("spatial_dims", 2) not in (1, 2) or isinstance(meta.get("spatial_dims"), bool):
        raise ExportError(f"{path}: metadata field 'spatial_dims' must be 1 or 2, not {meta.get('spatial_dims')!r}")
    if not isinstance(meta.get("tta_flip"), bool):
        raise ExportError(f"{path}: metadata field 'tta_flip' is missing or not true/false")
    shift = meta.get("tta_shift", 0)  # files of before it have none
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= MAX_TTA_SHIFT:
        raise ExportError(
            f"{path}: metadata field 'tta_shift' must be a whole number in 0-{MAX_TTA_SHIFT}, not {shift!r}"
        )
    return meta


def _check_signature(session: Any, path: Path, in_chans: int, num_classes: int, rank: int = 4) -> None:
    """A classifier's graph: one float input ``[N, C, H, W]`` (``[N, C, L]`` for a sequence model,
    ``rank`` 3) named as resnetkit exports it, and float logits ``[N, classes]``."""

    def fits(dim: Any, want: int) -> bool:  # a dynamic axis is a name (or None)
        return not isinstance(dim, int) or dim == want

    inputs, outputs = session.get_inputs(), {o.name: o for o in session.get_outputs()}
    if len(inputs) != 1 or inputs[0].name != INPUT:
        names = ", ".join(i.name for i in inputs)
        raise ExportError(f"{path}: inputs {names}; a resnetkit classifier takes one input named {INPUT!r}")
    x = inputs[0]
    if x.type != "tensor(float)" or len(x.shape) != rank or not fits(x.shape[1], in_chans):
        shape = "L" if rank == 3 else "H, W"
        raise ExportError(
            f"{path}: input {INPUT!r} is {x.type} {x.shape}; expected float [N, {in_chans}, {shape}] "
            "(the channels its metadata names)"
        )
    y = outputs.get(OUTPUT)
    if y is None:
        raise ExportError(f"{path}: no output named {OUTPUT!r} (outputs: {', '.join(outputs)})")
    if y.type != "tensor(float)" or len(y.shape) != 2 or not fits(y.shape[1], num_classes):
        raise ExportError(f"{path}: output {OUTPUT!r} is {y.type} {y.shape}; expected float logits [N, {num_classes}]")


def load_exported(path: str | os.PathLike[str]) -> OnnxClassifier:
    return OnnxClassifier(path)


__all__ = [
    "FORMATS",
    "ExportError",
    "OnnxClassifier",
    "Parity",
    "export_model",
    "exported_card",
    "fold_batchnorm",
    "load_exported",
    "write_onnx",
]
