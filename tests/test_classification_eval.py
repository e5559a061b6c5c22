"""Flip TTA's report carries the unmirrored top-1 from the same forward passes."""

import torch

from resnetkit.models import create_model
from resnetkit.tasks import evaluate


def test_tta_report_holds_the_plain_top1_of_a_separate_plain_pass():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=4, in_chans=1).eval()
    batches = [(torch.randn(16, 1, 16, 16), torch.randint(0, 4, (16,))) for _ in range(3)]
    with_tta = evaluate(model, batches, 4, tta_flip=True)
    plain = evaluate(model, batches, 4, tta_flip=False)
    assert with_tta.plain_top1 == plain.top1 and plain.plain_top1 is None
    assert with_tta.as_dict()["plain_top1"] == plain.top1 and "plain_top1" not in plain.as_dict()
    # The mirrored view changes the logits, so the two top-1 figures are measured, not copied.
    flipped = evaluate(model, [(x.flip(-1), y) for x, y in batches], 4)
    assert flipped.top1 != plain.top1 or flipped.loss != plain.loss
