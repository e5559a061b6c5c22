"""Worker for test_grad_checkpointing.py, launched by torchrun (2 gloo processes): activation
checkpointing under DDP gives the gradients DDP gives without it, and the engine's checkpointed
run (sync-BN, memory guard on) ends with the weights of the same run without checkpointing."""

import copy
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from resnetkit.models import create_model
from resnetkit.train import TrainConfig, fit


def ddp_gradients_match(reentrant: bool) -> float:
    """Largest difference between the all-reduced gradients with and without checkpointing."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=3, in_chans=1, drop_path_rate=0.3)
    twin = copy.deepcopy(model)
    twin.set_grad_checkpointing(True, reentrant=reentrant)
    rank = dist.get_rank()
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(rank))
    y = torch.tensor([0, 1, 2, rank])
    grads = []
    for m in (model, twin):
        ddp = DDP(m)
        torch.manual_seed(10 + rank)
        F.cross_entropy(ddp(x), y).backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    return max((grads[0][n] - grads[1][n]).abs().max().item() for n in grads[0])


def run(out: str, name: str, checkpointing: bool) -> dict:
    cfg = TrainConfig.from_dict(
        {
            "model": {"name": "resnet20", "overrides": {"drop_path_rate": 0.2}},
            "data": {"name": "digits", "batch_size": 32, "pad": 0, "flip": False},
            "optim": {"lr": 0.01},
            "max_steps": 2,
            "precision": "fp32",
            "channels_last": False,
            "sync_bn": True,
            "grad_checkpointing": checkpointing,
            "out": out,
            "run_name": name,
            "progress": False,
        }
    )
    return fit(cfg).model.state_dict()


def main(out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # held here, so both runs below share it
    diff = max(ddp_gradients_match(reentrant) for reentrant in (False, True))
    plain, ckpt = run(out, "plain", False), run(out, "ckpt", True)
    worst = max((plain[k].double() - ckpt[k].double()).abs().max().item() for k in plain)
    Path(out, f"rank{os.environ['RANK']}.json").write_text(json.dumps({"grad_diff": diff, "weight_diff": worst}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
