"""Layer responses: the std of each unit's residual-branch output (He et al. 2015, Fig. 7)."""

import pytest
import torch

from resnetkit.analysis import layer_responses
from resnetkit.models import create_model


@pytest.mark.parametrize("name", ["resnet20", "plain20", "preact_resnet110", "resnet18"])
def test_one_response_per_unit_in_forward_order(name):
    model = create_model(name)
    prof = layer_responses(model, torch.randn(4, 3, 16, 16))
    names = [n for n, m in model.named_modules() if m in set(model.blocks())]
    assert prof.units == names
    assert len(prof.std) == len(model.blocks())
    assert all(s > 0 for s in prof.std)
    assert prof.residual == (not name.startswith("plain"))
    assert model.training  # eval mode only while measuring


def test_response_is_the_std_of_the_branch_output():
    model = create_model("resnet20").eval()
    x = torch.randn(4, 3, 16, 16)
    # Recompute unit layer2.1's response by hand: BN2 output before the addition.
    with torch.no_grad():
        h = model.layer2[0](model.layer1(model.act1(model.bn1(model.conv1(x)))))
        u = model.layer2[1]
        expected = u.bn2(u.conv2(u.act1(u.bn1(u.conv1(h))))).std()
    prof = layer_responses(model, x)
    assert prof.std[prof.units.index("layer2.1")] == pytest.approx(float(expected), rel=1e-5)


def test_sorted_std_is_the_profile_largest_first():
    prof = layer_responses(create_model("resnet20"), torch.randn(4, 3, 16, 16))
    assert prof.sorted_std() == sorted(prof.std, reverse=True)
    assert prof.sorted_std() != prof.std  # the unsorted profile is not already in order


def test_zero_init_units_respond_with_zero():
    prof = layer_responses(create_model("resnet20", zero_init_residual=True), torch.randn(2, 3, 16, 16))
    assert prof.std == [0.0] * 9
