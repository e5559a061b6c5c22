"""``resnetkit embed SOURCE DATA -o features.npz``: penultimate features, and a k-NN evaluation on them."""

from __future__ import annotations

import argparse


def add_commands(sub) -> None:
    p = sub.add_parser(
        "embed",
        help="penultimate features of a dataset (for retrieval, other models, k-NN)",
        description="Embed DATA's splits with SOURCE's backbone (pooled features before the head) into one "
        ".npz: features_<split> (N, D) float32, labels_<split>, classes. Images are normalized with "
        "DATA's own statistics.",
    )
    p.add_argument("source", metavar="SOURCE", help="pretrained tag, checkpoint, run folder or resnetkit .safetensors")
    p.add_argument("data", metavar="DATA", help="dataset name or image folder")
    p.add_argument("-o", "--out", required=True, help="the .npz file to write")
    p.add_argument("--data-dir")
    p.add_argument("--splits", default="train,test", help="comma-separated splits (default: train,test)")
    p.add_argument("--classes", help='these classes only, relabelled in this order: "5-9", "Bag,Shirt"')
    p.add_argument("--labels-per-class", type=int, metavar="K", help="embed K seeded training images per class")
    p.add_argument("--seed", type=int, default=0, help="the --labels-per-class draw (default: 0)")
    p.add_argument("--knn", type=int, metavar="K", help="also report k-NN top-1: test images against train features")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_embed)


def _embed(args: argparse.Namespace) -> int:
    from ..infer.embed import embed_source, knn_accuracy

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    if args.knn is not None and not {"train", "test"} <= set(splits):
        raise ValueError(f"--knn needs the train and test splits; --splits is {args.splits!r}")
    if args.knn is not None and args.knn < 1:
        raise ValueError(f"--knn {args.knn}: K must be at least 1")
    emb = embed_source(
        args.source,
        args.data,
        splits=splits,
        data_dir=args.data_dir,
        classes=args.classes,
        labels_per_class=args.labels_per_class,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
    )
    path = emb.save(args.out)
    for split in splits:
        n, d = emb.features[split].shape
        print(f"{split}: {n} images x {d} features")
    if args.knn is not None:
        top1 = knn_accuracy(emb, args.knn)
        print(f"k-NN (k={args.knn}, cosine) top-1 on test: {100 * top1:.2f}%")
    print(f"wrote {path}")
    return 0
