"""Per-layer gradient norms at initialization and the plain-versus-residual comparison."""

import pytest
import torch
from torch import nn

from resnetkit.analysis import GradientProbe, compare_gradients, gradient_spread, layer_gradients
from resnetkit.models import create_model


def _init(name: str, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kwargs)


def test_plain56_gradient_spread_is_over_100x_resnet56_at_init_with_bn():
    # Measured (seed 0, 16 N(0,1) 32x32 images): plain56 ~6.7e3, resnet56 ~16.
    plain = gradient_spread(layer_gradients(_init("plain56"), batch_size=16, image_size=32, seed=0))
    res = gradient_spread(layer_gradients(_init("resnet56"), batch_size=16, image_size=32, seed=0))
    assert plain > 100 * res
    assert res < 50


def test_one_norm_per_conv_in_forward_order_including_projections():
    model = _init("resnet18")  # ImageNet layout, option-B projections in downsample.0
    grads = layer_gradients(model, batch_size=4, image_size=32)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert sorted(g.name for g in grads) == sorted(convs)
    assert [g.depth for g in grads] == list(range(len(convs)))
    names = [g.name for g in grads]
    assert names[0] == "conv1" and names[-1] == "layer4.1.conv2"
    assert names.index("layer2.0.conv2") < names.index("layer2.0.downsample.0") < names.index("layer2.1.conv1")
    assert all(g.norm > 0 for g in grads)


def test_layer_gradients_leave_the_model_untouched():
    model = _init("resnet20").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_gradients(model, batch_size=4, image_size=16)  # train-mode BN would update running stats
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_given_batch_is_used_and_labels_are_required():
    model = _init("resnet20")
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    a = layer_gradients(model, x, y)
    b = layer_gradients(model, x, torch.tensor([4, 5, 6, 7]))
    assert [g.norm for g in a] != [g.norm for g in b]
    with pytest.raises(ValueError, match="labels"):
        layer_gradients(model, x)


def test_gradient_spread():
    assert gradient_spread([2.0, 0.5, 1.0]) == 4.0
    assert gradient_spread([0.0, 1.0]) == float("inf")
    with pytest.raises(ValueError):
        gradient_spread([])


def test_compare_gradients_is_deterministic_and_keeps_the_global_rng():
    probe = GradientProbe(batch_size=4, image_size=16, n_points=8, max_lag=4)
    state = torch.random.get_rng_state()
    a = compare_gradients(("plain20", "resnet20"), seed=3, probe=probe)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = compare_gradients(("plain20", "resnet20"), seed=3, probe=probe)
    c = compare_gradients(("plain20", "resnet20"), seed=4, probe=probe)
    assert a == b
    assert a != c
    assert [m.residual for m in a.models] == [False, True]
    assert len(a.models[0].correlation.autocorrelation) == 5


def test_compare_without_norm_builds_norm_free_models():
    probe = GradientProbe(batch_size=4, image_size=16, n_points=8, max_lag=2)
    with_bn = compare_gradients(("resnet20",), norm=True, probe=probe).models[0]
    without = compare_gradients(("resnet20",), norm=False, probe=probe).models[0]
    # Same convs (same seed), so only the missing BN can change the gradients.
    assert [g.name for g in with_bn.layers] == [g.name for g in without.layers]
    assert with_bn.layers[0].norm != pytest.approx(without.layers[0].norm, rel=0.1)
