"""A non-finite loss is named for what caused it (issue 21): bad data in the batch is reported as
such, with where it was met; only a batch with finite inputs and targets is called a divergence."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from resnetkit.tasks import Classification, Detection, Segmentation
from resnetkit.train import TrainingDiverged
from resnetkit.train.hooks import NaNGuard


def _guard(task, x, y, loss=float("nan")):
    trainer = SimpleNamespace(
        task=task,
        batch=(x, y),
        loss=torch.tensor(loss),
        lr=0.1,
        ctx=SimpleNamespace(world_size=1),
        state=SimpleNamespace(step=7, epoch=0, batch_in_epoch=7),
        step_metrics=None,
    )
    guard = NaNGuard()
    guard.trainer = trainer
    return guard


@pytest.mark.parametrize(
    ("task", "x", "y", "says"),
    [
        (Classification(), torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]), "the inputs hold 1 NaN"),
        (
            Detection(),
            torch.zeros(1, 1, 8, 8),
            [{"boxes": torch.tensor([[0.0, 0.0, float("inf"), 4.0]]), "labels": torch.tensor([1])}],
            "the targets hold 1 NaN or infinite",
        ),
        (Segmentation(), torch.zeros(2, 1, 4, 4), torch.full((2, 4, 4), 255), "every pixel of the masks is the ignore"),
    ],
)
def test_bad_data_is_named_as_data(task, x, y, says):
    with pytest.raises(TrainingDiverged, match=says) as err:
        _guard(task, x, y).after_step()
    assert "step 7 (epoch 1, batch 7)" in str(err.value) and "not the learning rate" in str(err.value)


def test_a_finite_batch_is_a_divergence_with_the_learning_rate_advice():
    with pytest.raises(TrainingDiverged, match=r"finite inputs and targets: the training diverged.*Lower --lr"):
        _guard(Classification(), torch.ones(2, 3), torch.tensor([0, 1])).after_step()


def test_a_finite_loss_passes():
    _guard(Classification(), torch.ones(2, 3), torch.tensor([0, 1]), loss=0.5).after_step()


def test_a_batch_of_unlabelled_masks_adds_nothing_instead_of_nan():
    from resnetkit.tasks.segmentation import segmentation_loss

    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    outputs = {"out": logits, "aux": logits * 2}
    unlabelled = torch.full((2, 4, 4), 255)
    loss = segmentation_loss(outputs, unlabelled)
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None and not logits.grad.any()
    masks = torch.randint(0, 3, (2, 4, 4))
    masks[0, 0] = 255  # elsewhere the mean over labelled pixels, as F.cross_entropy's
    want = F.cross_entropy(logits, masks, ignore_index=255) + 0.5 * F.cross_entropy(2 * logits, masks, ignore_index=255)
    torch.testing.assert_close(segmentation_loss(outputs, masks), want)
