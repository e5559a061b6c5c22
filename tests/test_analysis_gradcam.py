"""Grad-CAM on registered models."""

import pytest
import torch
import torch.nn.functional as F

from resnetkit.analysis import grad_cam
from resnetkit.models import create_model


@pytest.mark.parametrize(
    "name,chans,size",
    [
        ("resnet20", 1, 16),
        ("resnet20", 3, 32),
        ("resnet18", 3, 64),
        ("wrn16_4", 3, 16),
        ("preact_resnet18", 3, 64),
    ],
)
def test_maps_match_the_input_size_and_lie_in_unit_range(name, chans, size):
    model = create_model(name, in_chans=chans)
    images = torch.randn(3, chans, size, size)
    cam = grad_cam(model, images)
    assert cam.heatmaps.shape == (3, size, size)
    assert cam.heatmaps.min() >= 0 and cam.heatmaps.max() <= 1
    assert cam.layer == model.feature_info[-1]["module"]
    model.eval()
    with torch.no_grad():
        assert cam.classes == model(images).argmax(1).tolist()
    for m in model.modules():
        assert not m._forward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_each_nonzero_map_peaks_at_one():
    cam = grad_cam(create_model("resnet20"), torch.randn(4, 3, 32, 32))
    peaks = cam.heatmaps.flatten(1).amax(1)
    assert all(p == pytest.approx(1.0) or p == 0 for p in peaks.tolist())
    assert (peaks > 0).any()


def test_at_the_last_stage_grad_cam_is_relu_of_cam():
    # Before global pooling and a linear head, Grad-CAM reduces to CAM (Zhou et al. 2016):
    # relu(sum_k w_ck A_k), up to a positive scale (Selvaraju et al. 2017, §3.1).
    model = create_model("resnet20").eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(images)
        classes = model.forward_head(feats).argmin(1)  # least likely: a map with negative parts
        cam = torch.einsum("nk,nkhw->nhw", model.fc.weight[classes], feats).relu()
        assert (torch.einsum("nk,nkhw->nhw", model.fc.weight[classes], feats) < 0).any()
        cam = F.interpolate(cam[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
        cam = cam / cam.flatten(1).amax(1).view(-1, 1, 1)
    torch.testing.assert_close(grad_cam(model, images, classes=classes.tolist()).heatmaps, cam)


def test_map_covers_the_patch_that_drives_the_class():
    # At init, in eval mode, BN is an identity and no layer has a bias, so a black image with one
    # bright patch activates only the features within the receptive field (87 px for resnet20) of
    # the patch: every class score, and so the map, comes from there. On 128x128 the patches in
    # opposite corners have disjoint regions; a transposed, flipped or mixed-up map would miss.
    torch.manual_seed(0)
    model = create_model("resnet20")
    with torch.no_grad():
        model.fc.bias.zero_()
    images = torch.zeros(2, 3, 128, 128)
    images[0, :, 4:16, 108:124] = 2.0  # top right
    images[1, :, 110:122, 6:18] = 2.0  # bottom left
    cam = grad_cam(model, images)
    top_right, bottom_left = cam.heatmaps[0], cam.heatmaps[1]
    assert top_right.max() == 1.0 and bottom_left.max() == 1.0
    assert top_right[64:].sum() == 0 and top_right[:, :64].sum() == 0
    assert bottom_left[:64].sum() == 0 and bottom_left[:, 64:].sum() == 0


def test_target_layer_and_classes():
    model = create_model("resnet20")
    images = torch.randn(2, 3, 32, 32)
    one = grad_cam(model, images, target_layer="layer2", classes=7)
    assert one.layer == "layer2" and one.classes == [7, 7]
    per_image = grad_cam(model, images, classes=[1, 2])
    assert per_image.classes == [1, 2]
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert per_image.scores == pytest.approx([logits[0, 1].item(), logits[1, 2].item()], rel=1e-5)
    with pytest.raises(ValueError, match="3 classes for 2 images"):
        grad_cam(model, images, classes=[1, 2, 3])
    with pytest.raises(ValueError, match="no layer 'layer9'"):
        grad_cam(model, images, target_layer="layer9")


def test_works_with_frozen_weights():
    model = create_model("resnet20").requires_grad_(False)
    cam = grad_cam(model, torch.randn(2, 3, 16, 16))
    assert cam.heatmaps.max() > 0


def test_a_class_the_model_does_not_have_is_named():
    with pytest.raises(ValueError, match=r"class 12 does not exist: the model predicts classes 0..9"):
        grad_cam(create_model("resnet20"), torch.randn(1, 3, 16, 16), classes=12)
