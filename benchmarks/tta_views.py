"""Each test-time-augmentation view's top-1, and their averages, from a run's final weights: on
the run's validation split (a run trained with ``data.val_size``) and on the test set, in bf16
autocast and in fp32. Says whether a view is worth averaging in, on images no choice was made on.

    python benchmarks/tta_views.py RUN

The views are the library's (``shift_x``, mirrors); the loaders are the run's own, rebuilt from its
``config.yaml`` (the same split, the same normalization). Nothing here is asserted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from resnetkit.artifacts.loading import load_model
from resnetkit.tasks.classification import shift_x
from resnetkit.train import TrainConfig
from resnetkit.train.distributed import DistContext
from resnetkit.train.engine import build_task
from resnetkit.train.loaders import build_loaders

VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "plain": lambda x: x,
    "flip": lambda x: x.flip(-1),
    "+1 px": lambda x: shift_x(x, 1),
    "-1 px": lambda x: shift_x(x, -1),
    "flip+1": lambda x: shift_x(x.flip(-1), 1),
    "flip-1": lambda x: shift_x(x.flip(-1), -1),
}


@torch.no_grad()
def accuracies(model: torch.nn.Module, loader, bf16: bool) -> dict[str, float]:
    logits: dict[str, list[torch.Tensor]] = {k: [] for k in VIEWS}
    labels = []
    for x, y in loader:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            for name, view in VIEWS.items():
                logits[name].append(model(view(x)).float())
        labels.append(y)
    y = torch.cat(labels)
    out = {k: torch.cat(v) for k, v in logits.items()}

    def top1(z: torch.Tensor) -> float:
        return round(100 * (z.argmax(1) == y).float().mean().item(), 2)

    return {
        **{k: top1(v) for k, v in out.items()},
        "plain+flip": top1(out["plain"] + out["flip"]),
        "all six": top1(sum(out.values())),  # type: ignore[arg-type]
        "all six, probabilities": top1(sum(v.softmax(1) for v in out.values())),  # type: ignore[arg-type]
    }


def main() -> None:
    run = sys.argv[1]
    cfg = TrainConfig.from_dict(yaml.safe_load(Path(run, "config.yaml").read_text()))
    loaders = build_loaders(cfg, DistContext(), torch.device("cpu"), build_task(cfg))
    model = load_model(f"{run}/last.pt").eval()
    splits = {"val": loaders.eval if loaders.eval_set == "val" else None, "test": loaders.test}
    for bf16 in (True, False):
        for split, loader in splits.items():
            if loader is not None:
                print(split, "bf16" if bf16 else "fp32", accuracies(model, loader, bf16), flush=True)


if __name__ == "__main__":
    main()
