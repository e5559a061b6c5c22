"""The paper's knobs as keyword overrides: shortcuts, zero-init, stochastic depth, norms, dilation, channels."""

import pytest
import torch
from torch import nn

from resnetkit.models import DropPath, GroupNorm, PadShortcut, create_model
from resnetkit.models.profile import count_params


def test_shortcut_options_a_b_c():
    a, b, c = (create_model("resnet20", shortcut=s) for s in "ABC")
    assert count_params(a) == 269_722  # option A: no shortcut weights at all
    # B: two projections (16->32, 32->64); C: a projection on every one of the 9 units.
    assert count_params(b) - count_params(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert sum(b.downsample is not None for b in c.blocks()) == 9
    assert isinstance(a.layer2[0].downsample, PadShortcut)
    for m in (a, b, c):
        assert m(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    with pytest.raises(ValueError, match="shortcut='D'"):
        create_model("resnet20", shortcut="D")


def test_option_a_pads_zeros_and_subsamples():
    x = torch.randn(2, 16, 8, 8)
    y = PadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert y[:, 16:].abs().sum() == 0


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "preact_resnet110", "wrn16_4"])
def test_zero_init_residual_makes_every_unit_an_identity_of_its_shortcut(name):
    model = create_model(name, zero_init_residual=True).eval()
    for block in model.blocks():
        x = torch.randn(1, block.branch_out.weight.shape[0] if block.downsample is None else _in_chs(block), 8, 8)
        x = x.relu() if not name.startswith(("preact", "wrn")) else x
        torch.testing.assert_close(block(x), block.forward_shortcut(x) if block.downsample is not None else x)
        break


def _in_chs(block):
    return (block.conv1 if hasattr(block, "conv1") else block.bn1).in_channels


def test_zero_init_skips_plain_nets():
    model = create_model("plain20", zero_init_residual=True)
    assert all(b.bn2.weight.abs().sum() > 0 for b in model.blocks())


def test_drop_path_rates_decay_linearly_and_only_act_in_training():
    model = create_model("resnet20", drop_path_rate=0.2)
    rates = [b.drop_path.p if isinstance(b.drop_path, DropPath) else 0.0 for b in model.blocks()]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2) and rates == sorted(rates)
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model(x), model(x))
    dp = DropPath(0.5).train()
    out = dp(torch.ones(1000, 4))
    kept = out[:, 0] != 0
    assert 0.35 < kept.float().mean() < 0.65 and torch.allclose(out[kept], torch.full_like(out[kept], 2.0))


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "preact_resnet18", "wrn16_4"])
def test_groupnorm_swap(name):
    model = create_model(name, norm_layer="groupnorm")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    model(torch.randn(1, 3, 32, 32)).sum().backward()  # batch of 1 trains: no batch statistics
    custom = create_model(name, norm_layer=lambda c: nn.GroupNorm(4, c), act_layer=nn.SiLU)
    assert any(isinstance(m, nn.SiLU) for m in custom.modules())
    assert GroupNorm(16).num_groups == 16 and GroupNorm(256).num_groups == 32


@pytest.mark.parametrize("name", ["resnet18", "resnet20", "preact_resnet110", "resnet50d"])
def test_any_input_channels(name):
    for c in (1, 4):
        model = create_model(name, in_chans=c, num_classes=3)
        assert model(torch.randn(2, c, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet18d", "preact_resnet18"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_output_stride_via_dilation(name, output_stride):
    backbone = create_model(name, features_only=True, output_stride=output_stride).eval()
    feats = backbone(torch.randn(1, 3, 64, 64))
    assert backbone.feature_info.reduction() == [min(r, output_stride) for r in (4, 8, 16, 32)]
    assert [f.shape[-1] for f in feats] == [64 // r for r in backbone.feature_info.reduction()]
    full = create_model(name).state_dict()
    dilated = create_model(name, output_stride=output_stride).state_dict()
    assert {k: v.shape for k, v in full.items()} == {k: v.shape for k, v in dilated.items()}


def test_dilated_weights_see_the_same_centre():
    # With stride 1 + dilation, the dilated net's last map, subsampled, is not the strided one,
    # but both must come from the same weights and give finite, differently-sized outputs.
    sd = create_model("resnet18").state_dict()
    dil = create_model("resnet18", output_stride=8)
    dil.load_state_dict(sd)
    assert torch.isfinite(dil.eval()(torch.randn(1, 3, 64, 64))).all()


def test_bad_output_stride_is_a_clear_error():
    with pytest.raises(ValueError, match="output_stride=12"):
        create_model("resnet18", output_stride=12)


def test_cifar_stem_on_imagenet_layout():
    model = create_model("resnet18", stem_type="cifar", num_classes=10)
    assert model.feature_info.reduction() == [1, 1, 2, 4, 8]
    assert not hasattr(model, "maxpool")


def test_the_early_pool_stem_pools_before_the_norm_and_is_the_pool_stem_where_scales_are_positive():
    torch.manual_seed(0)
    late = create_model("resnet8_pool", in_chans=1).eval()
    early = create_model("resnet8_pool", in_chans=1, stem_type="pool_early").eval()
    assert early.stem_names == ("conv1", "maxpool", "bn1", "act1") and late.stem_names[-1] == "maxpool"
    assert early.feature_info.reduction() == [1, 2, 4, 8] and early.feature_info[0]["module"] == "conv1"
    with torch.no_grad():  # running statistics and affine terms that are not the identity
        for bn in (m for m in late.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
            bn.weight.uniform_(0.5, 2)
    early.load_state_dict(late.state_dict())  # the same parameters under the same names
    x = torch.randn(4, 1, 28, 28)
    # A max commutes with a positive scale and shift (BatchNorm in eval mode), and with ReLU.
    torch.testing.assert_close(early(x), late(x))
    with torch.no_grad():
        early.bn1.weight.neg_(), late.bn1.weight.neg_()  # negative scales: the max becomes a min
    assert not torch.allclose(early.forward_stem(x), late.forward_stem(x))
    assert not torch.allclose(early(x), late(x))


def test_unknown_override_and_model_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown option.*shortcutt"):
        create_model("resnet18", shortcutt="A")
    with pytest.raises(ValueError, match="did you mean"):
        create_model("resnet19")
    with pytest.raises(ValueError, match="out_indices"):
        create_model("resnet18", features_only=True, out_indices=(5,))
    with pytest.raises(ValueError, match="no pretrained weights"):
        create_model("resnet152", pretrained=True)


def test_out_indices_select_levels():
    backbone = create_model("resnet50", features_only=True, out_indices=(0, 2, -1)).eval()
    feats = backbone(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [64, 512, 2048]
    assert backbone.feature_info.reduction() == [2, 8, 32]
    short = create_model("resnet50", features_only=True, out_indices=(1,))
    assert "layer2" not in dict(short.named_children())
