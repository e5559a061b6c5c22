"""Worker for test_grad_checkpointing.py, launched by torchrun (2 gloo processes): activation
checkpointing under DDP gives the gradients DDP gives without it (either variant), and the
engine's checkpointed runs end with the weights of the same runs without checkpointing: one with
sync-BN and the memory guard (the reentrant variant), one lp-ft with a frozen stem and gradient
accumulation (DDP then looks for unused parameters: the general variant)."""

import copy
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from resnetkit.models import Stage, create_model
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


def run(out: str, name: str, checkpointing: bool, lp_ft: bool = False) -> tuple[dict, set]:
    """The run's final weights and the checkpoint variants its stages trained with."""
    transfer = {
        "model": {"name": "resnet20", "weights": "resnet20.fashion_mnist", "overrides": {"drop_path_rate": 0.2}},
        "transfer": {"mode": "lp-ft", "freeze": "stem", "lp_fraction": 0.5},
        "grad_accum_steps": 2,
        "sync_bn": False,
        "max_steps": 4,
    }
    variants = set()

    def seen(step, info):
        variants.update(s.checkpoint_reentrant for s in info["model"].modules() if isinstance(s, Stage))

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
        | (transfer if lp_ft else {})
    )
    return fit(cfg, callbacks=[seen]).model.state_dict(), variants


def main(out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # held here, so both runs below share it
    diff = max(ddp_gradients_match(reentrant) for reentrant in (False, True))
    result = {"grad_diff": diff}
    for lp_ft in (False, True):
        (plain, _), (ckpt, variants) = run(out, f"plain{lp_ft}", False, lp_ft), run(out, f"ckpt{lp_ft}", True, lp_ft)
        worst = max((plain[k].double() - ckpt[k].double()).abs().max().item() for k in plain)
        result |= {f"weight_diff_lp_ft_{lp_ft}": worst, f"reentrant_lp_ft_{lp_ft}": sorted(variants)}
    Path(out, f"rank{os.environ['RANK']}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
