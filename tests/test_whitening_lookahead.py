"""Two tricks of the speed-runs, as options of the one engine: airbench's frozen patch-whitening
first conv (``stem_type="whiten"``) and Lookahead (``optim.lookahead_steps``)."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from resnetkit.artifacts import load_checkpoint
from resnetkit.models import PatchWhitening, create_model, fit_whitening
from resnetkit.train import TrainConfig, TrainingInterrupted, fit
from resnetkit.train.config import ConfigError
from resnetkit.train.hooks import Lookahead


def _smooth_images(n=64, size=12, seed=0):
    """Noise blurred by a 3x3 box: neighbouring pixels correlate, so raw patches are far from white."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, size + 2, size + 2, generator=g)
    return F.avg_pool2d(x, 3, stride=1) * 3


def test_fitted_filters_whiten_the_patches_they_were_fitted_on():
    images = _smooth_images()
    w = PatchWhitening(1, eps=1e-8)
    assert not w.fitted and torch.equal(w(images), torch.zeros(64, 18, 12, 12))
    raw = F.unfold(images, 3).transpose(1, 2).reshape(-1, 9)
    assert (raw.T @ raw / len(raw) - torch.eye(9)).abs().max() > 0.5  # correlated before
    w.fit(images)
    out = w(images)[:, :9, 1:-1, 1:-1].permute(0, 2, 3, 1).reshape(-1, 9)  # the unpadded positions
    torch.testing.assert_close(out.T @ out / len(out), torch.eye(9), atol=1e-3, rtol=0)
    assert torch.equal(w.weight[9:], -w.weight[:9])  # both signs, for the max-pool and ReLU after


def test_the_whiten_stem_is_frozen_saved_with_the_model_and_fitted_only_once():
    model = create_model("resnet8_pool", in_chans=1, num_classes=10, stem_type="whiten", channels=(16, 32, 64))
    assert isinstance(model.conv1, PatchWhitening) and model.in_chans == 1
    assert not [n for n, _ in model.named_parameters() if n.startswith("conv1.")]  # nothing to train there
    assert model.layer1[0].downsample[0].in_channels == 18  # the first unit projects its 18 channels
    images = _smooth_images(size=28)
    assert fit_whitening(model, iter([images[:40], images[40:]]), max_images=50)
    model(images).sum().backward()  # the stem's backward is never needed
    twin = create_model("resnet8_pool", in_chans=1, num_classes=10, stem_type="whiten", channels=(16, 32, 64))
    twin.load_state_dict(model.state_dict())
    assert torch.equal(twin.conv1.weight, model.conv1.weight)

    def never():
        raise AssertionError("a fitted stem reads no images")
        yield

    assert not fit_whitening(twin, never())
    with pytest.raises(ValueError, match="whitening: no training images"):
        fit_whitening(create_model("resnet8_pool", in_chans=1, stem_type="whiten"), iter([]))
    bad = images[:50].clone()
    bad[3, 0, 5, 5] = float("nan")
    fresh = create_model("resnet8_pool", in_chans=1, stem_type="whiten")
    with pytest.raises(ValueError, match="whitening: the training images hold NaN"):
        fit_whitening(fresh, iter([bad]))
    assert not fresh.conv1.fitted  # left unfitted, not NaN
    with pytest.raises(ValueError, match="stem_type='whiten' is for images"):
        create_model("resnet8_pool", in_chans=1, stem_type="whiten", spatial_dims=1)


def _reference(params, grads_at, steps, k, alpha, make_opt):
    """Lookahead as Zhang et al. (2019) write it (Alg. 1), with a sync at the last step too."""
    fast = [p.detach().clone().requires_grad_() for p in params]
    slow = [p.detach().clone() for p in params]
    opt = make_opt(fast)
    for t in range(1, steps + 1):
        for p, g in zip(fast, grads_at(fast), strict=True):
            p.grad = g
        opt.step()
        if t % k == 0 or t == steps:
            with torch.no_grad():
                for p, s in zip(fast, slow, strict=True):
                    s.add_(alpha * (p - s))
                    p.copy_(s)
    return fast


@pytest.mark.parametrize("make_opt", [lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), torch.optim.Adam])
def test_lookahead_matches_the_papers_algorithm(make_opt):
    torch.manual_seed(0)
    target = [torch.randn(5, 3), torch.randn(3)]
    start = [torch.zeros(5, 3), torch.zeros(3)]

    def grads_at(ps):
        return [2 * (p.detach() - t) ** 3 + 0.1 * p.detach() for p, t in zip(ps, target, strict=True)]

    params = [p.clone().requires_grad_() for p in start]
    opt = make_opt(params)
    trainer = SimpleNamespace(
        optimizer=opt,
        cfg=SimpleNamespace(optim=SimpleNamespace(lookahead_steps=3, lookahead_alpha=0.5)),
        state=SimpleNamespace(step=0),
        total_steps=11,
    )
    hook = Lookahead()
    hook.trainer = trainer
    hook.before_train()
    for step in range(1, 12):
        for p, g in zip(params, grads_at(params), strict=True):
            p.grad = g
        opt.step()
        trainer.state.step = step
        hook.after_step()
    expected = _reference(start, grads_at, 11, 3, 0.5, make_opt)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p, e, rtol=0, atol=0)
        assert torch.equal(opt.state[p][Lookahead.KEY], p)  # the last step synced them
    plain = [p.clone().requires_grad_() for p in start]
    _reference(plain, grads_at, 11, 10**9, 1.0, make_opt)  # alpha 1: no Lookahead at all
    assert not torch.equal(plain[0], params[0])


def _cfg(tmp_path, name):
    return TrainConfig.from_dict(
        {
            "model": {"name": "resnet8_pool", "overrides": {"stem_type": "whiten", "channels": [16, 32, 64]}},
            "data": {"name": "digits", "batch_size": 64, "eval_batch_size": 256, "flip": True},
            "optim": {"lr": 0.05, "lookahead_steps": 4},
            "schedule": {"name": "onecycle"},
            "max_steps": 30,
            "precision": "fp32",
            "out": str(tmp_path),
            "run_name": name,
            "progress": False,
            "channels_last": False,
        }
    )


def test_a_run_with_both_is_fitted_once_and_resumes_exactly(tmp_path, monkeypatch):
    fit(_cfg(tmp_path, "a"))

    def stop_at_17(step, _):  # not a multiple of k: the fast weights are 1 step past a sync
        if step == 17:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        fit(_cfg(tmp_path, "b"), callbacks=[stop_at_17])
    fits = []
    monkeypatch.setattr(PatchWhitening, "fit", lambda self, images: fits.append(images))
    fit(None, resume=tmp_path / "b")
    assert not fits  # the checkpoint's filters, not a second fit
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in "ab")
    assert a["model"]["conv1.weight"].abs().sum() > 0
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0, msg=k)
    # The slow weights are kept with the optimizer's state; step 30 is the run's last, so synced.
    slow = [s[Lookahead.KEY] for s in a["optimizer"]["state"].values()]
    assert len(slow) == len([k for k in a["model"] if "running" not in k and "num_batches" not in k]) - 1


@pytest.mark.parametrize(
    ("key", "value"), [("lookahead_steps", -1), ("lookahead_alpha", 0.0), ("lookahead_alpha", 1.5)]
)
def test_lookahead_settings_are_checked_when_read(key, value):
    with pytest.raises(ConfigError, match=f"optim.{key}"):
        TrainConfig.from_dict({"model": {"name": "resnet20"}, "optim": {key: value}})
