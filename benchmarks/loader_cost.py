"""What the in-memory loader costs: batches alone against loader + training step, in one run.

    python benchmarks/loader_cost.py [--recipe fashion-mnist] [--model resnet20] [--data NAME] [--steps 60]

Draws batches from the recipe's training loader (pad + crop, flip, random erasing: a whole batch
at a time on tensors), first alone, then feeding the recipe's own training step (precision,
channels_last), and prints the loader's share of a step. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
import torch.nn.functional as F

from resnetkit import create_model
from resnetkit.train import TrainConfig, recipe
from resnetkit.train.distributed import DistContext
from resnetkit.train.loaders import build_loaders
from resnetkit.train.precision import Precision


def batches(loader, n: int):
    return itertools.islice(itertools.cycle(loader), n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="fashion-mnist")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--data", help="dataset (default: the recipe's)")
    p.add_argument("--steps", type=int, default=60)
    a = p.parse_args()
    values = recipe(a.recipe, a.model)
    if a.data:
        values["data"] = {**values.get("data", {}), "name": a.data}
    cfg = TrainConfig.from_dict({**values, "progress": False})
    device = torch.device("cpu")
    data = build_loaders(cfg, DistContext(), device)
    data.train.set_epoch(0)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = create_model(a.model, in_chans=data.meta["in_chans"], num_classes=len(data.meta["classes"]))
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    prec = Precision(cfg.precision, device)

    def step(x, y):
        with prec.autocast():
            loss = F.cross_entropy(model(x.contiguous(memory_format=fmt)).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for x, y in batches(data.train, 5):  # warm-up
        step(x, y)
    start = time.perf_counter()
    for _ in batches(data.train, a.steps):  # the loader alone: gather, augment, normalize
        pass
    loader_s = time.perf_counter() - start
    start = time.perf_counter()
    for x, y in batches(data.train, a.steps):
        step(x, y)
    total_s = time.perf_counter() - start
    print(
        f"{a.model}, recipe {a.recipe}, batch {cfg.data.batch_size}, precision {prec.mode}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"  loader alone        {1000 * loader_s / a.steps:8.2f} ms/batch")
    print(f"  loader + step       {1000 * total_s / a.steps:8.2f} ms/batch")
    print(f"  loader's share      {100 * loader_s / total_s:8.2f} %")


if __name__ == "__main__":
    main()
