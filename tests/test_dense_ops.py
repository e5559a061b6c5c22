"""The pure-PyTorch detection ops: NMS against a brute-force reference, anchor matching and FCOS
target assignment on hand-made boxes, box codings, losses, and the metrics (pycocotools mAP, mIoU)."""

import math

import pytest
import torch

from resnetkit.models.detection import (
    AnchorGenerator,
    BoxCoder,
    BoxLinearCoder,
    assign_targets,
    batched_nms,
    box_iou,
    generalized_box_iou,
    giou_loss,
    match_anchors,
    nms,
    sigmoid_focal_loss,
)
from resnetkit.models.detection.fcos import fcos_anchors
from resnetkit.models.detection.retinanet import retinanet_anchors
from resnetkit.tasks import SegmentationResult, coco_map
from resnetkit.tasks.detection import gather_rows


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _brute_nms(boxes, scores, threshold):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(_iou(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


def _random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 2
    return torch.cat([xy, xy + wh], dim=1), torch.rand(n, generator=g)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_matches_a_brute_force_reference(seed, threshold):
    boxes, scores = _random_boxes(120, seed)
    got = nms(boxes, scores, threshold).tolist()
    assert got == _brute_nms(boxes.tolist(), scores.tolist(), threshold)


def test_batched_nms_never_suppresses_across_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert batched_nms(boxes, scores, torch.tensor([1, 1, 2]), 0.5).tolist() == [0, 2]
    assert batched_nms(boxes[:0], scores[:0], torch.tensor([], dtype=torch.int64), 0.5).numel() == 0


def test_iou_and_giou_on_hand_made_boxes():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [20, 0, 30, 10]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 3, 0.0]]))
    # Disjoint boxes 10 apart: IoU 0, hull 30x10 with 200 covered -> GIoU = -1/3.
    torch.testing.assert_close(generalized_box_iou(a, b), torch.tensor([[1 / 3, -1 / 3]]))
    assert float(giou_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(giou_loss(a, b[1:])) == pytest.approx(4 / 3, rel=1e-5)


def test_box_codings_round_trip():
    anchors = torch.tensor([[0.0, 0, 32, 32], [16, 8, 48, 72]])
    boxes = torch.tensor([[2.0, 3, 30, 40], [10, 10, 60, 50]])
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    torch.testing.assert_close(coder.decode(coder.encode(boxes, anchors), anchors), boxes)
    linear = BoxLinearCoder()
    codes = linear.encode(boxes, anchors)
    # FCOS: distances from the anchor's centre (16, 16) to the sides, over the anchor's size 32.
    torch.testing.assert_close(codes[0], torch.tensor([14 / 32, 13 / 32, 14 / 32, 24 / 32]))
    torch.testing.assert_close(linear.decode(codes, anchors), boxes)


def test_anchors_are_laid_out_as_torchvision():
    gen = retinanet_anchors()
    assert gen.sizes[0] == (32, 40, 50) and gen.num_anchors_per_location() == [9] * 5
    # Ratio-major, then scale; centred on the location's corner; rounded.
    torch.testing.assert_close(
        gen.cell_anchors[0][:3], torch.tensor([[-23.0, -11, 23, 11], [-28, -14, 28, 14], [-35, -18, 35, 18]])
    )
    feats = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
    two = AnchorGenerator([(8,), (16,)], [(1.0,), (1.0,)])
    anchors = two((32, 32), feats)
    assert anchors.shape == (16 + 4, 4)
    torch.testing.assert_close(anchors[1], torch.tensor([4.0, -4, 12, 4]))  # row 0, column 1 at stride 8
    torch.testing.assert_close(anchors[16 + 3], torch.tensor([8.0, 8, 24, 24]))  # level 2, row 1, column 1


def test_anchor_matching_thresholds_and_low_quality_matches():
    iou = torch.tensor(
        [
            [0.70, 0.45, 0.10, 0.30, 0.00],  # box 0: anchor 0 is foreground, anchor 1 ignored
            [0.10, 0.20, 0.35, 0.30, 0.05],  # box 1: best anchor 2 has only 0.35
        ]
    )
    assert match_anchors(iou, 0.5, 0.4, allow_low_quality_matches=False).tolist() == [0, -2, -1, -1, -1]
    # With low-quality matches box 1 keeps its best anchor (2) rather than going unmatched.
    assert match_anchors(iou, 0.5, 0.4).tolist() == [0, -2, 1, -1, -1]
    assert match_anchors(torch.zeros(0, 3)).tolist() == [-1, -1, -1]


def test_fcos_assignment_on_hand_made_boxes():
    gen = fcos_anchors()
    feats = [torch.zeros(1, 1, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128)]
    anchors = gen((128, 128), feats)
    per_level = [f.shape[-1] ** 2 for f in feats]
    big = torch.tensor([[20.0, 20.0, 60.0, 60.0]])  # 40 px: level 0 (stride 8) only, its max reach < 64
    idx = assign_targets(anchors, per_level, big)
    pos = torch.where(idx == 0)[0]
    assert len(pos) > 0 and bool((pos < per_level[0]).all())
    centres = (anchors[pos, :2] + anchors[pos, 2:]) / 2
    assert bool(((centres > 20) & (centres < 60)).all())  # inside the box
    assert bool(((centres - 40).abs() < 1.5 * 8).all())  # and within 1.5 strides of its centre
    # Two boxes sharing a location: the smaller one takes it (the "ambiguous sample" rule).
    both = torch.tensor([[16.0, 16.0, 64.0, 64.0], [30.0, 30.0, 50.0, 50.0]])
    idx2 = assign_targets(anchors, per_level, both)
    centre = int(torch.where(((anchors[:, :2] + anchors[:, 2:]) / 2 == 40).all(1))[0][0])
    assert int(idx2[centre]) == 1
    huge = torch.tensor([[0.0, 0.0, 128.0, 128.0]])  # reach 64 from the centre: not level 0 any more
    assert bool((torch.where(assign_targets(anchors, per_level, huge) == 0)[0] >= per_level[0]).all())
    assert (assign_targets(anchors, per_level, torch.zeros(0, 4)) == -1).all()


def test_focal_loss_is_the_formula_of_the_paper():
    x, t = torch.tensor([0.3, -1.2]), torch.tensor([1.0, 0.0])
    p = torch.sigmoid(x)
    expected = -0.25 * (1 - p[0]) ** 2 * math.log(p[0]) - 0.75 * p[1] ** 2 * math.log(1 - p[1])
    assert float(sigmoid_focal_loss(x, t)) == pytest.approx(float(expected), rel=1e-5)


def test_coco_map_by_pycocotools_on_hand_made_detections():
    gt = [torch.tensor([[10.0, 10, 50, 50, 1], [60, 60, 100, 90, 2]]), torch.tensor([[0.0, 0, 30, 30, 1]])]
    perfect = [
        torch.tensor([[10.0, 10, 50, 50, 0.9, 1], [60, 60, 100, 90, 0.8, 2]]),
        torch.tensor([[0.0, 0, 30, 30, 0.7, 1]]),
    ]
    m, m50, per_class = coco_map(gt, perfect, 3, (128, 128))
    assert (
        m == pytest.approx(1.0)
        and m50 == pytest.approx(1.0)
        and per_class == {1: pytest.approx(1.0), 2: pytest.approx(1.0)}
    )
    shifted = [d.clone() for d in perfect]
    shifted[0][0, :4] = torch.tensor([14.0, 10, 54, 50])  # IoU 36/44 = 0.82: counted at .5, not above .8
    m, m50, _ = coco_map(gt, shifted, 3, (128, 128))
    assert m50 == pytest.approx(1.0) and m < 1.0
    wrong_class = [torch.cat([d[:, :5], 3 - d[:, 5:]], 1) for d in perfect]
    assert coco_map(gt, wrong_class, 3, (128, 128))[0] == pytest.approx(0.0)
    assert coco_map(gt, [torch.zeros(0, 6), torch.zeros(0, 6)], 3, (128, 128))[:2] == (0.0, 0.0)


def test_gather_rows_puts_every_process_rows_in_place():
    """Two processes simulated by two threads whose reduce is a real sum over both (a barrier each call)."""
    import threading

    shards = [{0: torch.tensor([[1.0, 2.0]]), 2: torch.zeros(0, 2)}, {1: torch.tensor([[3.0, 4.0], [5.0, 6.0]])}]
    barrier, slots = threading.Barrier(2), [None, None]
    results: list = [None, None]

    def run(rank):
        def all_reduce_sum(t):
            slots[rank] = t
            barrier.wait()
            total = slots[0] + slots[1]
            barrier.wait()
            return total

        results[rank] = gather_rows(shards[rank], 2, torch.device("cpu"), all_reduce_sum)

    threads = [threading.Thread(target=run, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for got in results:
        assert [g.tolist() for g in got] == [[[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]], []]


def test_miou_and_pixel_accuracy_from_a_confusion_matrix():
    confusion = torch.tensor([[8, 2, 0], [1, 3, 0], [0, 0, 0]])  # class 2 absent from labels and predictions
    r = SegmentationResult(loss=0.0, n=1, confusion=confusion)
    iou = r.iou.tolist()
    assert iou[0] == pytest.approx(8 / 11) and iou[1] == pytest.approx(3 / 6) and math.isnan(iou[2])
    assert r.miou == pytest.approx((8 / 11 + 3 / 6) / 2)
    assert r.pixel_acc == pytest.approx(11 / 14)
    assert r.as_dict(["bg", "a", "b"])["iou"]["b"] is None
