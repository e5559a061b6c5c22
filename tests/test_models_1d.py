"""The one skeleton in 1-D: every registered family builds for sequences with ``spatial_dims=1``
(Conv1d, BatchNorm1d, 1-D pools, the same names and interface), the time-series ResNet of Wang et
al. 2017 has dl-4-tsc's parameter count, and the byte model reads texts."""

import pytest
import torch
from torch import nn

from resnetkit.models import FeatureListNet, create_model, list_models
from resnetkit.models.profile import count_macs, weighted_depth

# One model per stem, block, shortcut and family: trained a step for real.
NAMES = ["resnet18", "resnet50d", "resnet50c", "resnet20", "plain20", "preact_resnet18", "preact_resnet164", "wrn16_4"]
SEQUENCE = ["resnet_tsc", "plain_tsc", "resnet_text", "plain_text"]
TWO_D = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.InstanceNorm2d)


@pytest.mark.parametrize("name", [n for n in list_models() if n not in ("resnet1202", "preact_resnet1001")])
def test_every_family_builds_in_1d_with_the_same_keys(name):
    with torch.device("meta"):
        flat = create_model(name, spatial_dims=1, in_chans=6, num_classes=4)
        image = create_model(name, in_chans=6, num_classes=4)
    assert not [n for n, m in flat.named_modules() if isinstance(m, TWO_D)]
    assert any(isinstance(m, nn.Conv1d) for m in flat.modules())
    # The same checkpoint names, one rank lower: a 1-D net is the image net with 1-D layers.
    assert {k: v.ndim for k, v in flat.state_dict().items()} == {
        k: v.ndim - (v.ndim == 4) for k, v in image.state_dict().items()
    }
    assert flat.in_chans == 6 and flat.model_cfg["spatial_dims"] == 1


@pytest.mark.parametrize("name", NAMES + SEQUENCE)
def test_trains_a_step_in_1d_and_every_parameter_learns(name):
    torch.manual_seed(0)
    text = name.endswith("_text")
    model = create_model(name, num_classes=3) if name in SEQUENCE else create_model(name, spatial_dims=1, num_classes=3)
    model.train()
    x = torch.randint(0, 257, (4, 1, 64)) if text else torch.randn(4, model.in_chans, 64)
    y = torch.tensor([0, 1, 2, 0])
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    missing = [k for k, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    # The padding symbol's embedding row gets no gradient by design; everything else must.
    assert missing == []
    opt.step()
    assert all(not torch.equal(before[k], p) for k, p in model.named_parameters())


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "resnet_tsc", "resnet_text"])
def test_interface_in_1d(name):
    text = name == "resnet_text"
    model = (create_model(name) if name in SEQUENCE else create_model(name, spatial_dims=1, in_chans=6)).eval()
    x = torch.randint(0, 256, (2, 1, 96)) if text else torch.randn(2, model.in_chans, 96)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.ndim == 3 and features.shape[1] == model.num_features
        assert model.forward_head(features, pre_logits=True).shape == (2, model.num_features)
        options = {} if name in SEQUENCE else {"spatial_dims": 1, "in_chans": 6}
        backbone = create_model(name, features_only=True, **options)
        assert isinstance(backbone, FeatureListNet)
        outs = backbone(x)
    info = backbone.feature_info
    assert [o.shape[1] for o in outs] == info.channels()
    assert [o.shape[2] for o in outs] == [-(-96 // r) for r in info.reduction()]
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)
    assert len(model.blocks()) == sum(len(s) for s in model.stages())


def test_tsc_parameter_count_is_the_published_architecture():
    """One input channel, two classes, counted by hand from Wang et al. 2017 / dl-4-tsc: convs of
    8, 5, 3 steps with biases (Keras's Conv1D), BN scale and shift, the shortcut a 1x1 conv + BN
    where the width changes and a BN alone where it does not, a linear head on 128 features."""

    def conv(k, cin, cout):
        return k * cin * cout + cout

    def bn(c):
        return 2 * c  # trainable; the running statistics are buffers

    def unit(cin, cout):
        branch = conv(8, cin, cout) + conv(5, cout, cout) + conv(3, cout, cout) + 3 * bn(cout)
        shortcut = conv(1, cin, cout) + bn(cout) if cin != cout else bn(cout)
        return branch + shortcut

    expected = unit(1, 64) + unit(64, 128) + unit(128, 128) + 128 * 2 + 2
    model = create_model("resnet_tsc", in_chans=1, num_classes=2)
    assert sum(p.numel() for p in model.parameters()) == expected == 504_258
    plain = create_model("plain_tsc", in_chans=1, num_classes=2)
    shortcuts = conv(1, 1, 64) + bn(64) + conv(1, 64, 128) + bn(128) + bn(128)
    assert sum(p.numel() for p in plain.parameters()) == expected - shortcuts
    # The length is kept through the net: "same" padding, stride 1, as the paper's Fig. 1b.
    assert model.forward_features(torch.randn(1, 1, 33)).shape == (1, 128, 33)
    assert weighted_depth(model) == 10  # nine convs and the head (shortcut projections excluded)
    assert isinstance(model.layer3[0].downsample, nn.BatchNorm1d)


def test_tsc_pads_as_keras_same():
    """Keras's "same" for an even kernel puts the extra step after the input: a unit impulse at
    the start of the series reaches the first conv's output at steps 0..4 (kernel 8: 3 before, 4 after)."""
    model = create_model("resnet_tsc").eval()
    conv = model.layer1[0].conv1
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
        x = torch.zeros(1, 1, 12)
        x[0, 0, 0] = 1
        out = conv(nn.functional.pad(x, model.layer1[0].pads[0]))
    assert out.shape[-1] == 12
    assert out[0, 0].nonzero().flatten().tolist() == [0, 1, 2, 3]


def test_text_model_reads_bytes_and_ignores_padding_symbol():
    model = create_model("resnet_text", num_classes=3).eval()
    assert model.in_chans == 1 and model.embed.num_embeddings == 257 and model.embed.padding_idx == 256
    text = torch.tensor(list(b"residual nets read text"))[None, None]
    with torch.no_grad():
        logits = model(text)
        assert logits.shape == (1, 3)
        assert model.embed(torch.full((1, 1, 4), 256)).abs().sum() == 0
    assert count_macs(model, 128, in_chans=1) > 0
    with pytest.raises(ValueError, match="vocab_size"):
        create_model("resnet18", vocab_size=256)


def test_spatial_dims_is_checked():
    with pytest.raises(ValueError, match="spatial_dims=3"):
        create_model("resnet20", spatial_dims=3)
