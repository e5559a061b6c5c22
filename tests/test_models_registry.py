"""Every registered model, generated from the registry: forward, backward, counts, keys, features."""

import pytest
import torch

from reference import EXACT_PARAMS, PAPER_PARAMS_M, TORCHVISION_GMACS, peer_state_dicts
from resnetkit.models import create_model, list_models
from resnetkit.models.profile import count_params, default_image_size, weighted_depth

DEEPEST = {"resnet1202", "preact_resnet1001"}
MODELS = [m for m in list_models() if m not in DEEPEST]
PEERS = peer_state_dicts()


def _input(name, batch=2, in_chans=3):
    size = 16 if default_image_size(name) == 32 else 32
    return torch.randn(batch, in_chans, size, size)


def test_registry_holds_every_family():
    names = set(list_models())
    expected = {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "resnet18d",
        "resnet26",
        "resnet26d",
        "resnet50c",
        "resnet50d",
        "resnet101d",
        "resnet20",
        "resnet32",
        "resnet44",
        "resnet56",
        "resnet110",
        "resnet1202",
        "plain20",
        "plain32",
        "plain44",
        "plain56",
        "plain110",
        "plain18",
        "plain34",
        "preact_resnet18",
        "preact_resnet34",
        "preact_resnet50",
        "preact_resnet110",
        "preact_resnet164",
        "preact_resnet1001",
        "wrn16_4",
        "wrn16_8",
        "wrn28_10",
        "wrn40_4",
    }
    assert expected <= names
    assert list_models("plain*") == ["plain18", "plain20", "plain32", "plain34", "plain44", "plain56", "plain110"]


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    model = create_model(name, num_classes=7)
    x = _input(name)
    out = model(x)
    assert out.shape == (2, 7)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{name}: no gradient for {missing[:5]}"


@pytest.mark.parametrize("name", MODELS)
def test_groupnorm_and_one_input_channel(name):
    # GroupNorm swapped in everywhere, on a 1-channel input: a batch of one trains (no batch statistics).
    model = create_model(name, norm_layer="groupnorm", in_chans=1, num_classes=3)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    out = model(_input(name, batch=1, in_chans=1))
    assert out.shape == (1, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_features_only_shapes_and_strides(name):
    with torch.device("meta"):
        full = create_model(name)
    backbone = create_model(name, features_only=True).eval()
    x = _input(name, batch=1)
    feats = backbone(x)
    levels = len(full.feature_info) - 1
    assert len(feats) == levels == len(backbone.feature_info)
    for f, info in zip(feats, backbone.feature_info, strict=True):
        assert f.shape[1] == info["num_chs"]
        assert f.shape[-1] == -(-x.shape[-1] // info["reduction"])
    assert backbone.feature_info.channels()[-1] == full.num_features
    assert "fc" not in dict(backbone.named_children())


@pytest.mark.parametrize("name", MODELS)
def test_interface_head_and_reset(name):
    model = create_model(name).eval()
    x = _input(name, batch=1)
    feats = model.forward_features(x)
    assert feats.shape[1] == model.num_features
    pooled = model.forward_head(feats, pre_logits=True)
    assert pooled.shape == (1, model.num_features)
    torch.testing.assert_close(model.forward_head(feats), model(x))
    model.reset_classifier(3)
    assert model(x).shape == (1, 3)
    model.reset_classifier(0)
    assert model(x).shape == (1, model.num_features)


@pytest.mark.parametrize("name", MODELS)
def test_no_module_object_is_used_twice(name):
    model = create_model(name).eval()
    calls = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
        for n, m in model.named_modules()
        if not list(m.children())
    ]
    model(_input(name, batch=1))
    for h in hooks:
        h.remove()
    reused = {n: c for n, c in calls.items() if c > 1}
    assert not reused


@pytest.mark.parametrize("name", [n for n in MODELS if n in PEERS])
def test_state_dict_identical_to_peer(name):
    peer = PEERS[name]
    model = create_model(name)
    ours = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]
    assert ours == peer["state_dict"]
    assert count_params(model) == peer["params"]


def test_peer_listing_covers_the_torchvision_and_timm_names():
    assert {"resnet18", "resnet50", "resnet152", "resnext50_32x4d", "wide_resnet50_2", "resnet50d", "resnet26"} <= set(
        PEERS
    )


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_macs_match_torchvision_metadata(name):
    from resnetkit.models.profile import profile_model

    assert round(profile_model(name, 224).gmacs, 3) == TORCHVISION_GMACS[name]


@pytest.mark.parametrize("name", sorted(EXACT_PARAMS))
def test_parameter_count_exact(name):
    assert count_params(create_model(name)) == EXACT_PARAMS[name]


@pytest.mark.parametrize("name", sorted(set(PAPER_PARAMS_M) - DEEPEST))
def test_parameter_count_as_in_paper(name):
    assert _paper_rounded(name, count_params(create_model(name))) == PAPER_PARAMS_M[name]


def _paper_rounded(name, n):
    digits = 2 if PAPER_PARAMS_M[name] < 1 else 1
    return round(n / 1e6, digits)


@pytest.mark.parametrize("name", [n for n in MODELS if n.startswith(("resnet", "plain", "preact"))])
def test_depth_is_the_number_in_the_name(name):
    numbered = next(part for part in name.split("_") if any(c.isdigit() for c in part))  # resnet8_pool
    depth = int("".join(c for c in numbered if c.isdigit()))
    assert weighted_depth(create_model(name)) == depth + (2 if name.endswith(("c", "d")) else 0)


def test_plain_twins_are_the_residual_nets_minus_shortcuts():
    for depth in (20, 56):
        plain, res = create_model(f"plain{depth}"), create_model(f"resnet{depth}")
        assert list(plain.state_dict()) == list(res.state_dict())  # option A shortcuts hold no weights
        assert all(not b.residual for b in plain.blocks()) and all(b.residual for b in res.blocks())
    plain, res = create_model("plain34"), create_model("resnet34")
    assert set(plain.state_dict()) == {k for k in res.state_dict() if ".downsample." not in k}


@pytest.mark.parametrize("name,size", [("resnet1202", 8), ("preact_resnet1001", 8)])
def test_deepest_models_build_and_run(name, size):
    model = create_model(name).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 10)
    assert _paper_rounded(name, count_params(model)) == PAPER_PARAMS_M[name] or name == "preact_resnet1001"


def test_preact_1001_count_matches_paper_without_norm_affine():
    # The paper's 10.2M counts conv and fc weights; BN's scale/shift add 0.15M (we report 10.33M).
    model = create_model("preact_resnet1001")
    weighted = sum(
        p.numel()
        for n, m in model.named_modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
        for p in m.parameters(recurse=False)
    )
    assert round(weighted / 1e6, 1) == 10.2
    assert round(count_params(model) / 1e6, 2) == 10.33


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEEPEST))
def test_deepest_models_backward(name):
    model = create_model(name)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_every_name_has_a_builder_of_the_same_name(name):
    import resnetkit.models

    with torch.device("meta"):
        built = getattr(resnetkit.models, name)(num_classes=5)
        created = create_model(name, num_classes=5)
    assert type(built) is type(created)
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in created.state_dict().items()}
