"""Accuracy of each inference precision on real data: the shipped Fashion-MNIST models' test
top-1 in fp32 (the model as it is), bf16 and int8 (``optimize_for_inference``), and each path's
top-1 agreement with fp32, on the full 10,000-image test set with the recipe's flip TTA.

    python benchmarks/precision_accuracy.py [--tags resnet20.fashion_mnist resnet56.fashion_mnist] [--json FILE]

int8 is calibrated on 256 images of the training split (``calibration_images``), never the test set.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from resnetkit import load_model
from resnetkit.artifacts import model_dataset, trained_tta_flip
from resnetkit.data import eval_loader
from resnetkit.infer import optimize_for_inference
from resnetkit.infer.quantize import calibration_images
from resnetkit.tasks import model_logits


@torch.inference_mode()
def predictions(model: torch.nn.Module, loader, tta: bool) -> tuple[torch.Tensor, torch.Tensor]:
    preds, labels = [], []
    for x, y in loader:
        preds.append(model_logits(model, x, tta).argmax(1))
        labels.append(y)
    return torch.cat(preds), torch.cat(labels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", nargs="+", default=["resnet20.fashion_mnist", "resnet56.fashion_mnist"])
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args()
    rows = []
    for tag in a.tags:
        model = load_model(tag)
        loader = eval_loader(model_dataset(model), 500)
        tta = trained_tta_flip(model)
        paths = {
            "fp32": model,
            "bf16": optimize_for_inference(model, "bf16"),
            "int8": optimize_for_inference(model, "int8", calibration_images(model)),
        }
        reference = None
        for precision, runner in paths.items():
            start = time.perf_counter()
            pred, labels = predictions(runner, loader, tta)
            reference = pred if reference is None else reference
            row = {
                "tag": tag,
                "precision": precision,
                "path": getattr(runner, "path", "PyTorch eager (the fp32 reference)"),
                "n": len(labels),
                "tta_flip": tta,
                "top1": (pred == labels).float().mean().item(),
                "agreement_with_fp32": (pred == reference).float().mean().item(),
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(
                f"{tag:<24} {precision:<5} top-1 {100 * row['top1']:6.2f}%  agreement with fp32 "
                f"{100 * row['agreement_with_fp32']:6.2f}%  ({row['seconds']:.0f} s; {row['path']})",
                flush=True,
            )
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
