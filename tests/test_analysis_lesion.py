"""Lesion study: each unit replaced by its shortcut in turn (Veit et al. 2016)."""

import pytest
import torch

from resnetkit.analysis import accuracy, accuracy_without, lesion_study
from resnetkit.models import create_model


def _self_labelled(model, n_batches=2, size=16, seed=0):
    """Batches labelled with the model's own predictions: baseline accuracy 1, so any change shows."""
    gen = torch.Generator().manual_seed(seed)
    data = []
    model.eval()
    with torch.no_grad():
        for _ in range(n_batches):
            x = torch.randn(8, model.get_submodule(model.first_conv).in_channels, size, size, generator=gen)
            data.append((x, model(x).argmax(1)))
    model.train()
    return data


def _snapshot(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train()
    return out, {k: v.clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, x, snap):
    out, state = _snapshot(model, x)
    assert torch.equal(out, snap[0])
    for k, v in state.items():
        assert torch.equal(v, snap[1][k]), k
    assert all(not b._forward_hooks for b in model.blocks())


def test_lesion_of_resnet_reports_every_unit_and_restores_the_model():
    model = create_model("resnet20")
    data = _self_labelled(model)
    snap = _snapshot(model, data[0][0])
    report = lesion_study(model, data)
    assert report.baseline == 1.0 and report.residual
    assert [u.unit for u in report.units] == [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(3)]
    assert all(u.skipped is None and u.drop == pytest.approx(1.0 - u.accuracy) for u in report.units)
    assert any(u.drop > 0 for u in report.units)  # removing units does change predictions
    assert model.training
    _assert_unchanged(model, data[0][0], snap)


def test_lesion_of_zero_init_units_changes_nothing():
    model = create_model("resnet20", zero_init_residual=True)
    report = lesion_study(model, _self_labelled(model))
    assert report.baseline == 1.0
    assert [u.drop for u in report.units] == [0.0] * 9


def test_plain_twin_skips_units_that_reshape():
    model = create_model("plain20")
    report = lesion_study(model, _self_labelled(model))
    assert not report.residual
    skipped = {u.unit for u in report.units if u.skipped}
    assert skipped == {"layer2.0", "layer3.0"}
    assert all(u.accuracy is None and "shape" in u.skipped for u in report.units if u.skipped)
    assert all(u.accuracy is not None for u in report.units if not u.skipped)
    with pytest.raises(ValueError, match="cannot be removed"):
        accuracy_without(model, _self_labelled(model, n_batches=1), [3])  # layer2.0: 16 -> 32 channels
    assert all(not b._forward_hooks for b in model.blocks())


def test_model_is_restored_when_evaluation_fails():
    model = create_model("resnet20")
    data = _self_labelled(model)
    snap = _snapshot(model, data[0][0])

    class Broken:
        def __iter__(self):
            yield data[0]
            raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        accuracy_without(model, Broken(), [0, 4])
    _assert_unchanged(model, data[0][0], snap)


def test_removing_units_together_and_preact_units():
    model = create_model("preact_resnet110")
    data = _self_labelled(model, n_batches=1)
    assert accuracy(model, data) == 1.0
    assert accuracy_without(model, data, range(len(model.blocks()))) < 1.0


def test_generators_are_refused():
    model = create_model("resnet20")
    with pytest.raises(TypeError, match="more than once"):
        lesion_study(model, (b for b in _self_labelled(model)))
