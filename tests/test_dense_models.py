"""The dense registry: torchvision's keys, shapes and outputs; every model trains (every parameter
gets a gradient) and predicts; weights from a classifier start the backbone."""

import pytest
import torch
import torch.nn.functional as F

from reference import peer_dense_state_dicts
from resnetkit.models import create_model, list_models, model_options, model_task
from resnetkit.models.detection import DenseDetector
from resnetkit.models.segmentation import SegmentationModel

SEGMENTERS = list_models(task="segmentation")
DETECTORS = list_models(task="detection")
HEAVY = {n for n in SEGMENTERS + DETECTORS if "101" in n or "50" in n}
PEERS = peer_dense_state_dicts()


def _targets(n: int = 2):
    boxes = [torch.tensor([[2.0, 3.0, 20.0, 25.0], [15.0, 10.0, 30.0, 31.0]]), torch.zeros(0, 4)]
    labels = [torch.tensor([3, 5]), torch.zeros(0, dtype=torch.int64)]
    return [{"boxes": b, "labels": c} for b, c in zip(boxes[:n], labels[:n], strict=True)]


def test_registry_lists_dense_models_by_task():
    assert {"fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101"} <= set(SEGMENTERS)
    assert {"fcos_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet18_fpn", "fcos_plain18_fpn"} <= set(DETECTORS)
    assert {"deeplabv3_resnet18", "deeplabv3_plain20", "fcn_preact_resnet18"} <= set(SEGMENTERS)
    assert not set(SEGMENTERS + DETECTORS) & set(list_models())  # classifiers by default
    assert model_task("fcos_resnet50_fpn") == "detection" and model_task("resnet50") == "classification"
    assert "weights_backbone" in model_options("deeplabv3_resnet50") and "backbone_name" not in model_options(
        "fcos_resnet50_fpn"
    )


@pytest.mark.parametrize("name", sorted(PEERS))
def test_state_dict_identical_to_torchvision(name):
    peer = PEERS[name]
    with torch.device("meta"):
        model = create_model(name, num_classes=peer["num_classes"])
    mine = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]
    assert mine == peer["state_dict"]  # same keys, in the same order, with the same shapes and dtypes
    params = sum(v.numel() for k, v in model.state_dict().items() if v.is_floating_point() and "running_" not in k)
    assert params == peer["params"]


def _published_layout(sd: dict) -> dict:
    """torchvision's detection checkpoints: FrozenBatchNorm2d in the backbone, no step counters."""
    return {k: v for k, v in sd.items() if not (k.startswith("backbone.body.") and k.endswith("num_batches_tracked"))}


def test_published_detection_checkpoint_layout_loads_strictly_both_ways():
    donor = create_model("retinanet_resnet50_fpn", num_classes=91)
    published = _published_layout(donor.state_dict())
    assert len(published) == len(donor.state_dict()) - 53  # one counter per backbone BatchNorm
    fresh = create_model("retinanet_resnet50_fpn", num_classes=91)  # BatchNorm, as torchvision builds it
    fresh.load_state_dict(published, strict=True)
    frozen = create_model("retinanet_resnet50_fpn", num_classes=91, norm_layer="frozen_batchnorm")
    assert not any(k.endswith("num_batches_tracked") for k in frozen.state_dict() if k.startswith("backbone.body."))
    frozen.load_state_dict(published, strict=True)
    frozen.load_state_dict(donor.state_dict(), strict=True)  # and a freshly built model's layout


def _randomize_bn(model):
    g = torch.Generator().manual_seed(0)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
    return model


def test_frozen_and_trained_batchnorm_give_the_same_outputs():
    bn = _randomize_bn(create_model("fcos_resnet18_fpn", num_classes=11, min_size=64, max_size=64)).eval()
    frozen = create_model("fcos_resnet18_fpn", num_classes=11, min_size=64, max_size=64, norm_layer="frozen_batchnorm")
    frozen.load_state_dict(_published_layout(bn.state_dict()), strict=True)
    x = torch.rand(2, 3, 64, 64)
    a, b = bn.backbone(x), frozen.eval().backbone(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in SEGMENTERS if n not in HEAVY])
def test_segmentation_shapes_and_every_parameter_gets_a_gradient(name):
    model = create_model(name, num_classes=5, in_chans=1, head_channels=16)
    out = model(torch.randn(2, 1, 32, 24))
    assert list(out) == ["out", "aux"]
    assert out["out"].shape == out["aux"].shape == (2, 5, 32, 24)  # at the input's size
    (out["out"].square().mean() + out["aux"].square().mean()).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 24))["out"].shape == (1, 5, 32, 24)


@pytest.mark.parametrize("name", [n for n in DETECTORS if n not in HEAVY])
def test_detection_losses_detections_and_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=11, in_chans=1, fpn_channels=8, min_size=32, max_size=32)
    images = torch.rand(2, 1, 32, 32)
    losses = model(images, _targets())
    expected = {"classification", "bbox_regression"} | ({"bbox_ctrness"} if name.startswith("fcos") else set())
    assert set(losses) == expected and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.eval()
    with torch.no_grad():
        found = model(list(images))
    assert len(found) == 2 and set(found[0]) == {"boxes", "scores", "labels"}
    levels = model.backbone(images)
    assert list(levels) == ["0", "1", "2", "p6", "p7"]
    heads = model.head(list(levels.values()))
    anchors = sum(f.shape[-2] * f.shape[-1] for f in levels.values()) * (1 if name.startswith("fcos") else 9)
    assert heads["cls_logits"].shape == (2, anchors, 11) and heads["bbox_regression"].shape == (2, anchors, 4)


def test_torchvision_models_run_end_to_end_on_a_small_image():
    seg = create_model("deeplabv3_resnet50", num_classes=21).eval()
    with torch.no_grad():
        out = seg(torch.randn(1, 3, 65, 97))
    assert out["out"].shape == (1, 21, 65, 97) and out["aux"].shape == (1, 21, 65, 97)
    det = create_model("retinanet_resnet50_fpn", num_classes=91, min_size=160, max_size=240)
    losses = det(torch.rand(1, 3, 120, 150), _targets(1)[:1])
    assert set(losses) == {"classification", "bbox_regression"}
    det.eval()
    with torch.no_grad():
        found = det([torch.rand(3, 120, 150)])[0]
    assert found["boxes"].shape[1] == 4 and len(found["boxes"]) <= 300
    if len(found["boxes"]):  # mapped back to the input's own size, not the resized one
        assert float(found["boxes"][:, 2].max()) <= 150 and float(found["boxes"][:, 3].max()) <= 120


def test_output_stride_8_dilates_the_last_two_stages_as_torchvision():
    model = create_model("fcn_resnet50", num_classes=21)
    assert model.backbone.layer3[0].conv2.dilation == (1, 1) and model.backbone.layer3[1].conv2.dilation == (2, 2)
    assert model.backbone.layer4[0].conv2.dilation == (2, 2) and model.backbone.layer4[1].conv2.dilation == (4, 4)
    assert model.backbone.layer4[0].downsample[0].stride == (1, 1)
    features = model.backbone(torch.randn(1, 3, 64, 64))
    assert features["out"].shape[-2:] == (8, 8) and features["aux"].shape[-2:] == (8, 8)


@torch.no_grad()
def test_fcn_head_matches_a_functional_restatement():
    model = _randomize_bn(create_model("fcn_resnet18", num_classes=4, aux_loss=False)).eval()
    x = torch.randn(2, 3, 40, 56)
    feature = model.backbone(x)["out"]
    sd = model.state_dict()
    y = F.conv2d(feature, sd["classifier.0.weight"], padding=1)
    y = F.batch_norm(
        y, sd["classifier.1.running_mean"], sd["classifier.1.running_var"], sd["classifier.1.weight"],
        sd["classifier.1.bias"], eps=1e-5,
    )  # fmt: skip
    y = F.conv2d(F.relu(y), sd["classifier.4.weight"], sd["classifier.4.bias"])
    expected = F.interpolate(y, size=(40, 56), mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x)["out"], expected)


@torch.no_grad()
def test_fpn_matches_a_functional_restatement():
    model = create_model("retinanet_resnet18_fpn", num_classes=3, fpn_channels=8).eval()
    x = torch.randn(1, 3, 96, 128)
    c = list(model.backbone.body(x).values())
    sd = {k.removeprefix("backbone.fpn."): v for k, v in model.state_dict().items() if k.startswith("backbone.fpn.")}
    lateral = [F.conv2d(f, sd[f"inner_blocks.{i}.0.weight"], sd[f"inner_blocks.{i}.0.bias"]) for i, f in enumerate(c)]
    top = [lateral[2]]
    for i in (1, 0):
        top.insert(0, lateral[i] + F.interpolate(top[0], size=lateral[i].shape[-2:], mode="nearest"))
    p = [
        F.conv2d(t, sd[f"layer_blocks.{i}.0.weight"], sd[f"layer_blocks.{i}.0.bias"], padding=1)
        for i, t in enumerate(top)
    ]
    p6 = F.conv2d(p[2], sd["extra_blocks.p6.weight"], sd["extra_blocks.p6.bias"], stride=2, padding=1)
    p7 = F.conv2d(F.relu(p6), sd["extra_blocks.p7.weight"], sd["extra_blocks.p7.bias"], stride=2, padding=1)
    got = list(model.backbone(x).values())
    for a, b in zip(got, [*p, p6, p7], strict=True):
        torch.testing.assert_close(a, b)


def test_heads_start_as_the_papers_say():
    det = create_model("retinanet_resnet18_fpn", num_classes=5)
    prior = torch.sigmoid(det.head.classification_head.cls_logits.bias)
    torch.testing.assert_close(prior, torch.full_like(prior, 0.01))  # RetinaNet §4.1: p = 0.01 everywhere
    assert float(det.head.regression_head.bbox_reg.weight.std()) == pytest.approx(0.01, rel=0.05)


def test_weights_backbone_starts_from_the_shipped_classifier():
    from resnetkit.models import create_model as build

    classifier = build("resnet20.fashion_mnist", pretrained=True)
    seg = build("deeplabv3_resnet20", num_classes=11, in_chans=1, weights_backbone="resnet20.fashion_mnist")
    torch.testing.assert_close(seg.backbone.layer3[2].conv2.weight, classifier.layer3[2].conv2.weight)
    assert "weights_backbone" not in seg.model_cfg  # a checkpoint rebuilds without the file
    det = build("fcos_resnet20_fpn", num_classes=11, in_chans=1, weights_backbone="resnet20.fashion_mnist")
    assert det.model_cfg["norm_layer"] == "frozen_batchnorm" and det.model_cfg["trainable_backbone_layers"] == 3
    frozen = [n for n, p in det.backbone.body.named_parameters() if not p.requires_grad]
    assert frozen == ["conv1.weight"]  # the stem stays; stages 1-3 train (the last 3 of 4 layers)
    with pytest.raises(ValueError, match="resnet20's, not resnet18's"):
        build("fcos_resnet18_fpn", weights_backbone="resnet20.fashion_mnist")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"weights_backbone": "resnet20.nope"}, "no such shipped weights"),
        ({"trainable_backbone_layers": 9}, "trainable_backbone_layers=9"),
        ({"image_mean": [0.5, 0.5]}, "image_mean has 2 values for 3 input channels"),
    ],
)
def test_bad_detector_options_say_what_is_wrong(options, message):
    with pytest.raises(ValueError, match=message):
        create_model("fcos_resnet20_fpn", **options)


def test_degenerate_target_boxes_are_refused_by_name():
    model = create_model("fcos_resnet18_fpn", num_classes=3, min_size=64, max_size=64, fpn_channels=8)
    bad = [{"boxes": torch.tensor([[10.0, 10.0, 10.0, 30.0]]), "labels": torch.tensor([1])}]
    with pytest.raises(ValueError, match=r"target 0: box 0 .* has no area"):
        model(torch.rand(1, 3, 64, 64), bad)
    with pytest.raises(ValueError, match="needs targets"):
        model(torch.rand(1, 3, 64, 64))


def test_types():
    assert isinstance(create_model("fcn_resnet18"), SegmentationModel)
    assert isinstance(create_model("fcos_resnet18_fpn"), DenseDetector)
    with pytest.raises(ValueError, match=r"a detection model; its backbone is model\.backbone"):
        create_model("fcos_resnet18_fpn", features_only=True)
