"""Activation checkpointing (``model.set_grad_checkpointing``, ``--grad-checkpointing``): the
gradients, outputs, BatchNorm statistics and RNG stream of a checkpointed step are those of the
plain step, bit for bit, with dropout and stochastic depth (the RNG is replayed), under bf16
autocast, on features_only backbones and dense models, with a frozen backbone in fine-tuning
(through the engine, EMA on) and under 2-process DDP with sync-BN."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnetkit import create_model
from resnetkit.models import Bottleneck, PreActBottleneck, PreActResNet, ResNet, set_grad_checkpointing
from resnetkit.models.stage import Stage, segment_length
from resnetkit.train import TrainConfig, fit


def _models():
    return {
        # post-activation basic blocks, option-A shortcuts, stochastic depth
        "resnet20": lambda: create_model("resnet20", num_classes=3, in_chans=1, drop_path_rate=0.3),
        # pre-activation bottlenecks with dropout inside the unit, stochastic depth and head dropout
        "preact": lambda: PreActResNet(
            PreActBottleneck, (2, 3, 2), num_classes=3, in_chans=1, dropout=0.3, drop_path_rate=0.3, drop_rate=0.2
        ),
        # ImageNet layout: stem with max-pool, projection shortcuts
        "bottleneck": lambda: ResNet(
            Bottleneck, (1, 2, 1, 1), num_classes=3, in_chans=1, channels=(8, 8, 16, 16), drop_path_rate=0.2
        ),
    }


def _step(model, x, loss_fn, autocast: bool):
    """Forward (counting the tensors autograd saves outside checkpointed segments) and backward."""
    saved = 0

    def pack(t):
        nonlocal saved
        saved += 1
        return t

    torch.manual_seed(1)
    saving = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    with saving, torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        out = model(x)
        loss = loss_fn(out)
    loss.backward()
    return {
        "loss": loss.detach(),
        "grads": {n: p.grad for n, p in model.named_parameters() if p.requires_grad},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "rng": torch.cuda.get_rng_state() if x.is_cuda else torch.get_rng_state(),
        "saved": saved,
    }


def _assert_same_step(model, x, loss_fn, autocast=False, grad_tol=0.0, reentrant=False):
    twin = copy.deepcopy(model)
    twin.set_grad_checkpointing(True, reentrant=reentrant)
    plain, ckpt = _step(model, x, loss_fn, autocast), _step(twin, x, loss_fn, autocast)
    assert torch.equal(plain["loss"], ckpt["loss"])
    for name, grad in plain["grads"].items():
        assert grad is not None, name
        tol = {"rtol": grad_tol, "atol": grad_tol}
        torch.testing.assert_close(ckpt["grads"][name], grad, **tol, msg=f"gradient of {name}")
    for name, buf in plain["buffers"].items():  # BatchNorm statistics updated once, not twice
        assert torch.equal(ckpt["buffers"][name], buf), name
    assert torch.equal(plain["rng"], ckpt["rng"])  # the recomputation's draws do not advance the stream
    assert ckpt["saved"] < plain["saved"] / 2  # the segments' activations were not kept
    return plain, ckpt


VARIANTS = pytest.mark.parametrize("reentrant", [False, True], ids=["general", "reentrant"])


@VARIANTS
@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", ["resnet20", "preact", "bottleneck"])
def test_gradients_equal_with_dropout_and_stochastic_depth(name, autocast, reentrant):
    torch.manual_seed(0)
    model = _models()[name]()
    # 32px keeps every stage's input at least 2x2: oneDNN 3.12's bf16 weight gradient of a 3x3
    # stride-2 conv over a 1x1 input (16+ channels, AVX-512 BF16 hosts) reads uninitialized memory,
    # with or without checkpointing
    x = torch.randn(3, 1, 32, 32)
    y = torch.tensor([0, 1, 2])
    _assert_same_step(model, x, lambda out: F.cross_entropy(out.float(), y), autocast, reentrant=reentrant)


@VARIANTS
def test_sync_batchnorm_which_insists_on_a_step_count(reentrant):
    """DDP on CUDA converts BatchNorm to nn.SyncBatchNorm, which asserts its step count exists
    (outside a process group it normalizes as BatchNorm does, so the CPU can run it)."""
    torch.manual_seed(0)
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(_models()["resnet20"]())
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    x, y = torch.randn(3, 1, 32, 32), torch.tensor([0, 1, 2])
    _assert_same_step(model, x, lambda out: F.cross_entropy(out.float(), y), reentrant=reentrant)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@VARIANTS
@pytest.mark.parametrize("name", ["resnet20", "preact"])
def test_gradients_equal_on_cuda_with_bf16(name, reentrant, monkeypatch):
    """The RNG replayed and BatchNorm left as one forward leaves it on CUDA too (its own generator).
    Gradients within 1e-5: the same cuDNN algorithms, but weight gradients may sum in any order."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    torch.manual_seed(0)
    model = _models()[name]().cuda()
    x = torch.randn(3, 1, 32, 32, device="cuda")
    y = torch.tensor([0, 1, 2], device="cuda")
    loss = lambda out: F.cross_entropy(out.float(), y)
    _assert_same_step(model, x, loss, autocast=True, grad_tol=1e-5, reentrant=reentrant)


@VARIANTS
def test_features_only_backbone(reentrant):
    torch.manual_seed(0)
    backbone = create_model("resnet20", in_chans=1, features_only=True, drop_path_rate=0.2)
    loss = lambda feats: sum(f.float().square().mean() for f in feats)
    _assert_same_step(backbone, torch.randn(2, 1, 12, 12), loss, grad_tol=_tol(reentrant), reentrant=reentrant)


def _tol(reentrant: bool) -> float:
    """Where a stage's output feeds a head as well as the next stage's first unit (twice: its
    convolution and shortcut), autograd sums those gradients in arrival order; the reentrant
    variant sums the unit's two inside its own backward first: another association, equal to
    rounding. The general variant is exact."""
    return 1e-5 if reentrant else 0.0


@VARIANTS
def test_segmentation_model_checkpoints_its_backbone(reentrant):
    torch.manual_seed(0)
    model = create_model("fcn_resnet20", num_classes=3, in_chans=1)
    masks = torch.randint(0, 3, (2, 16, 16))

    def loss(out):
        return F.cross_entropy(out["out"], masks) + 0.5 * F.cross_entropy(out["aux"], masks)

    _assert_same_step(model, torch.randn(2, 1, 16, 16), loss, grad_tol=_tol(reentrant), reentrant=reentrant)


@VARIANTS
def test_detector_checkpoints_its_backbone(reentrant):
    torch.manual_seed(0)
    model = create_model("fcos_resnet20_fpn", num_classes=3, in_chans=1, fpn_channels=8, min_size=32, max_size=32)
    images = torch.rand(2, 1, 32, 32)
    targets = [{"boxes": torch.tensor([[2.0, 3.0, 20.0, 25.0]]), "labels": torch.tensor([1])} for _ in range(2)]
    twin = copy.deepcopy(model)
    twin.set_grad_checkpointing(True, reentrant=reentrant)
    assert all(s.grad_checkpointing for s in twin.modules() if isinstance(s, Stage))
    grads = []
    for m in (model, twin):
        torch.manual_seed(1)
        sum(m(images, targets).values()).backward()
        grads.append({n: p.grad for n, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any(n.startswith("backbone.body.layer") for n in grads[0])
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=_tol(reentrant), atol=_tol(reentrant), msg=n)


def test_a_model_in_eval_mode_runs_plainly_so_autograd_grad_works():
    """Grad-CAM and the analyses take gradients of a model in eval mode with torch.autograd.grad,
    which the reentrant variant refuses: eval mode does not checkpoint."""
    model = create_model("resnet20", num_classes=3, in_chans=1).eval()
    model.set_grad_checkpointing(True, reentrant=True)
    x = torch.randn(2, 1, 12, 12, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert grad.shape == x.shape and grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match="reentrant"):  # what training mode would have done
        torch.autograd.grad(model.train()(x).sum(), x)


@VARIANTS
def test_frozen_stem_and_stage_get_no_gradient_and_the_rest_the_same(reentrant):
    """A frozen input to a segment (fine-tuning's frozen stem) still gives its weights gradients;
    a frozen segment on it runs plainly (the reentrant variant would find nothing to recompute)."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=3, in_chans=1)
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(("conv1", "bn1", "layer1")))
    y = torch.tensor([0, 2])
    loss = lambda out: F.cross_entropy(out, y)
    plain, _ = _assert_same_step(model, torch.randn(2, 1, 12, 12), loss, reentrant=reentrant)
    assert not any(n.startswith("layer1") for n in plain["grads"]) and "layer2.0.conv1.weight" in plain["grads"]


def test_segments_are_about_sqrt_of_a_stage_and_can_be_set_or_turned_off():
    # ceil(sqrt(n)): preact_resnet1001's 111-unit stages in 11-unit segments, ResNet-20's 3 units in 2
    assert [segment_length(n, None) for n in (1, 2, 3, 4, 5, 111, 200)] == [1, 2, 2, 2, 3, 11, 15]
    model = create_model("resnet20")
    model.set_grad_checkpointing(True, every=1)
    assert [s.grad_checkpointing for s in model.stages()] == [1, 1, 1]
    model.set_grad_checkpointing(False)
    assert [s.grad_checkpointing for s in model.stages()] == [0, 0, 0]
    with pytest.raises(ValueError, match="every=0"):
        model.set_grad_checkpointing(True, every=0)
    with pytest.raises(ValueError, match="no resnetkit stages"):
        set_grad_checkpointing(torch.nn.Linear(2, 2))
    # Keys unchanged: a Stage is an nn.Sequential; eval and tracing run the plain sequence.
    assert "layer1.0.conv1.weight" in model.state_dict()
    model.set_grad_checkpointing(True)
    traced = torch.jit.trace(model.eval(), torch.randn(1, 3, 32, 32))
    assert traced(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def _finetune_cfg(tmp_path, name: str, checkpointing: bool) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {"name": "resnet20", "weights": "resnet20.fashion_mnist", "overrides": {"drop_path_rate": 0.1}},
            "data": {"name": "digits", "batch_size": 32, "pad": 1, "flip": False},
            "optim": {"lr": 0.05},
            "transfer": {"mode": "finetune", "freeze": "stage1"},
            "max_steps": 3,
            "precision": "fp32",
            "channels_last": False,
            "ema_decay": 0.9,
            "grad_checkpointing": checkpointing,
            "memory_guard": checkpointing,  # the guard's probes leave no trace either
            "out": str(tmp_path),
            "run_name": name,
            "progress": False,
        }
    )


def test_finetune_with_frozen_backbone_and_ema_ends_as_without_checkpointing(tmp_path):
    plain = fit(_finetune_cfg(tmp_path, "plain", False))
    variants, trained = set(), []

    def seen(step, info):
        variants.update(s.checkpoint_reentrant for s in info["model"].modules() if isinstance(s, Stage))
        trained[:] = [info["model"]]

    ckpt = fit(_finetune_cfg(tmp_path, "ckpt", True), callbacks=[seen])
    assert all(s.grad_checkpointing for s in ckpt.model.modules() if isinstance(s, Stage))
    assert variants == {True}  # the trainer's choice without DDP or compile: the reentrant variant
    # ... for the run only: the trained model (handed back where there is no EMA) serves
    # torch.autograd.grad after it
    stages = [s for s in trained[0].modules() if isinstance(s, Stage)]
    assert stages and all(s.grad_checkpointing and not s.checkpoint_reentrant for s in stages)
    saved = {name: torch.load(tmp_path / name / "last.pt", weights_only=True) for name in ("plain", "ckpt")}
    for key in ("model", "ema"):
        for k, v in saved["plain"][key].items():
            assert torch.equal(saved["ckpt"][key][k], v), f"{key} {k}"
    assert not torch.equal(saved["plain"]["model"]["layer2.0.conv1.weight"], load_source()["layer2.0.conv1.weight"])
    assert torch.equal(saved["plain"]["model"]["layer1.0.conv1.weight"], load_source()["layer1.0.conv1.weight"])
    assert plain.steps == ckpt.steps == 3


def load_source():
    from resnetkit import load_model

    return load_model("resnet20.fashion_mnist").state_dict()


def test_cli_flags_set_the_config_keys():
    from resnetkit.cli import build_parser
    from resnetkit.cli.train import _train_config

    args = build_parser().parse_args(["train", "--model", "resnet20", "--grad-checkpointing", "--no-memory-guard"])
    cfg = _train_config(args)
    assert cfg.grad_checkpointing is True and cfg.memory_guard is False
    cfg = _train_config(build_parser().parse_args(["finetune", "resnet20.fashion_mnist", "--data", "digits"]))
    assert cfg.grad_checkpointing is False and cfg.memory_guard is True
    with pytest.raises(ValueError, match="grad_checkpointing"):
        TrainConfig.from_dict({"grad_checkpointing": "yes"})


@pytest.mark.slow
def test_under_two_process_ddp_with_sync_bn(tmp_path):
    worker = Path(__file__).parent / "ckpt_ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone", str(worker)]
    cmd.append(str(tmp_path))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result == {
            "grad_diff": 0.0,
            "weight_diff_lp_ft_False": 0.0,
            "reentrant_lp_ft_False": [True],  # the trainer's choice under DDP: the reentrant variant ...
            "weight_diff_lp_ft_True": 0.0,
            "reentrant_lp_ft_True": [False],  # ... but the general one where DDP looks for unused parameters
        }, rank
