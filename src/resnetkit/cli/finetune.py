"""``resnetkit finetune SOURCE --data DATA``: ``train`` from pretrained weights, with a new head,
frozen parts and learning rates per part (``TrainConfig.transfer``)."""

from __future__ import annotations

import argparse

from .train import _train, add_training_flags


def add_commands(sub) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a pretrained model on new data (transfer learning)",
        description="Train from SOURCE's weights with a new head for DATA's classes. The run folder, "
        "checkpoints and every training flag are train's; the transfer settings go in its config.",
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        nargs="?",
        help="a pretrained tag, a resnetkit checkpoint or run folder, or a torchvision/timm state_dict "
        "(.pth, .safetensors) with --model; not needed with --resume",
    )
    p.add_argument("--model", help="SOURCE's architecture, for a plain state_dict (e.g. resnet50)")
    p.add_argument(
        "--mode",
        choices=["finetune", "linear-probe", "lp-ft"],
        default="finetune",
        help="finetune: train what --freeze leaves; linear-probe: the head only; "
        "lp-ft: linear probing, then fine-tuning (Kumar et al. 2022) (default: finetune)",
    )
    p.add_argument(
        "--freeze",
        metavar="PART",
        help="none | stem | stage1 | stage2 | ... | backbone: stageK freezes the stem and stages 1..K",
    )
    p.add_argument("--head-lr", type=float, help="learning rate of the new head (default: --lr)")
    p.add_argument("--backbone-lr", type=float, help="learning rate of the pretrained parts (default: --lr)")
    p.add_argument(
        "--layer-decay", type=float, metavar="F", help="each stage below the last trains at F times the one above"
    )
    p.add_argument(
        "--lp-fraction", type=float, metavar="F", help="lp-ft: the share of the steps spent probing (default 0.5)"
    )
    p.add_argument(
        "--bn",
        choices=["frozen", "train", "eval"],
        help="BatchNorm statistics: frozen (default: frozen parts' stay fixed), train (all adapt), eval (none moves)",
    )
    add_training_flags(p)
    p.set_defaults(func=_finetune, weights=None)


def _finetune(args: argparse.Namespace) -> int:
    from ..artifacts import source_architecture, source_card
    from ..train.config import updates

    extra: dict = {}
    if not args.resume and args.source is None:
        raise ValueError("resnetkit finetune: give SOURCE, the weights to start from (or --resume RUN)")
    if not args.resume:
        name, options = source_architecture(args.source, args.model)
        extra = {"model": {"name": name, "overrides": options, "weights": str(args.source)}}
        card = source_card(args.source)
        if card is not None:  # a classifier family trained on sequences stays a sequence model
            extra["task"] = card.task
        extra = (
            updates(
                {
                    ("transfer", "mode"): args.mode,
                    ("transfer", "freeze"): args.freeze,
                    ("transfer", "head_lr"): args.head_lr,
                    ("transfer", "backbone_lr"): args.backbone_lr,
                    ("transfer", "layer_decay"): args.layer_decay,
                    ("transfer", "lp_fraction"): args.lp_fraction,
                    ("transfer", "bn"): args.bn,
                },
            )
            | extra
        )
        args.model, args.weights = name, str(args.source)
    return _train(args, extra)
