"""Shattered gradients: the input-gradient autocorrelation along a line of inputs."""

import pytest
import torch

from resnetkit.analysis import autocorrelation, gradient_correlation, input_gradients
from resnetkit.analysis.inputs import input_line
from resnetkit.models import create_model


def test_autocorrelation_tells_white_noise_from_brownian_noise():
    gen = torch.Generator().manual_seed(0)
    white = torch.randn(256, 50, generator=gen)
    brown = white.cumsum(0)
    w, b = autocorrelation(white, 8), autocorrelation(brown, 8)
    assert w[0] == b[0] == 1.0 and len(w) == 9
    assert all(abs(r) < 0.1 for r in w[1:])
    assert all(r > 0.7 for r in b[1:])


def test_autocorrelation_of_constant_gradients_is_an_error():
    with pytest.raises(ValueError, match="constant"):
        autocorrelation(torch.ones(8, 3), 2)


def test_input_line_spans_the_requested_fraction():
    a, b = torch.zeros(1, 2, 2), torch.ones(1, 2, 2)
    line = input_line(a, b, 5, span=0.5)
    assert line.shape == (5, 1, 2, 2)
    torch.testing.assert_close(line[:, 0, 0, 0], torch.tensor([0.0, 0.125, 0.25, 0.375, 0.5]))


def test_input_gradients_of_a_linear_model_are_its_weights():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3, bias=False))
    x = torch.randn(5, 1, 2, 2)
    w = model[1].weight.detach()
    torch.testing.assert_close(input_gradients(model, x, 1), w[1].view(1, 1, 2, 2).expand(5, 1, 2, 2))
    proj = torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(input_gradients(model, x, proj), (proj @ w).view(1, 1, 2, 2).expand(5, 1, 2, 2))


def test_plain56_gradients_shatter_and_resnet56_gradients_do_not():
    # 32 points over 1/8 of the way between two images: the spacing of the paper's 256 over all of it.
    kwargs = {"n_points": 32, "span": 1 / 8, "image_size": 16, "max_lag": 4, "seed": 0}
    torch.manual_seed(0)
    plain = gradient_correlation(create_model("plain56"), **kwargs)
    torch.manual_seed(0)
    res = gradient_correlation(create_model("resnet56"), **kwargs)
    # Measured: plain56 lag-1 ~ -0.05 (white noise), resnet56 ~ 0.74.
    assert abs(plain.lag1) < 0.2
    assert res.lag1 > 0.5
    assert res.lag1 > plain.lag1 + 0.4


def test_gradient_correlation_is_deterministic_and_leaves_the_model_alone():
    model = create_model("resnet20")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {"n_points": 8, "image_size": 16, "max_lag": 3, "seed": 1}
    a = gradient_correlation(model, **kwargs)
    assert a == gradient_correlation(model, **kwargs)
    assert a != gradient_correlation(model, **{**kwargs, "seed": 2})
    assert model.training and all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_given_endpoints_one_logit_and_running_statistics():
    model = create_model("resnet20", in_chans=1).eval()
    ends = (torch.zeros(1, 16, 16), torch.randn(1, 16, 16))
    corr = gradient_correlation(model, ends, n_points=6, max_lag=10, target=3, recalibrate_bn=False)
    assert len(corr.autocorrelation) == 6  # lags stop at n_points - 1
    assert not model.training
