"""One skeleton for every family: forward_features runs stem, stages and (pre-activation) final
norm in the order ``trunk()`` declares, and the features-only backbone follows that same order."""

import pytest
import torch

from resnetkit.models import FeatureListNet, PreActResNet, ResNet, create_model

# One model per stem, block and family.
NAMES = ["resnet18", "resnet50d", "resnet50c", "resnet20", "plain20", "preact_resnet18", "preact_resnet164", "wrn16_4"]


@pytest.mark.parametrize("name", NAMES)
def test_the_backbone_returns_what_forward_features_computes(name):
    model = create_model(name).eval()
    size = 32 if model.feature_info[0]["reduction"] == 1 else 64
    x = torch.randn(2, 3, size, size)
    seen = {}
    hooks = [
        model.get_submodule(f["module"]).register_forward_hook(lambda m, i, o, k=f["module"]: seen.setdefault(k, o))
        for f in model.feature_info
    ]
    with torch.no_grad():
        features = model.forward_features(x)
        for h in hooks:
            h.remove()
        outs = FeatureListNet(model, out_indices=range(len(model.feature_info)))(x)
        logits = model(x)
    assert [o.shape[1] for o in outs] == model.feature_info.channels()
    for out, info in zip(outs, model.feature_info, strict=True):
        torch.testing.assert_close(out, seen[info["module"]], rtol=0, atol=0)
    torch.testing.assert_close(outs[-1], features, rtol=0, atol=0)
    torch.testing.assert_close(logits, model.forward_head(features), rtol=0, atol=0)


def test_the_order_is_declared_not_taken_from_registration():
    model = create_model("preact_resnet18")
    names = [name for name, _ in model.trunk()]
    assert names == ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "norm", "act"]
    # Registering another module after the stages changes nothing about the forward pass.
    model.extra = torch.nn.ReLU()
    assert [name for name, _ in model.trunk()] == names


def test_both_families_share_one_constructor_path():
    assert ResNet.__init__ is not PreActResNet.__init__
    assert ResNet.build is PreActResNet.build
    resnet, preact = create_model("resnet18"), create_model("preact_resnet18")
    assert [n for n, _ in resnet.trunk()][:4] == ["conv1", "bn1", "act1", "maxpool"]
    assert not hasattr(resnet, "norm") and isinstance(preact.norm, torch.nn.BatchNorm2d)
