"""What the dense studies write: one row per run (results.csv), mean and spread per arm
(summary.csv), a picture of predictions on test scenes, and report.md, whose verdicts are
computed from the rows: an arm "wins" only when it is ahead on every seed (the same scenes)."""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..artifacts import atomic_write, atomic_write_text
from ..artifacts.loading import load_model
from ..data.dense import load_dense_dataset
from ..data.scenes import SceneSpec
from ..tasks import PredictOptions, get_task
from ..tasks.dense import DenseTask
from ..train.recipes import RECIPES
from .dense import METRICS, STUDIES, DenseBudget
from .transfer_report import write_csv

RESULT_KEYS = (
    "study",
    "task",
    "arm",
    "model",
    "seed",
    *METRICS,
    "steps",
    "seconds",
    "images_per_second",
    "run",
)


def metric_of(task: str) -> str:
    """The task's headline metric (the one that chooses best.pt)."""
    return get_task(task).monitor


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["study"], r["task"], r["arm"], r["model"]), []).append(r)
    out = []
    for (study, task, arm, model), runs in cells.items():
        values = [float(r[metric_of(task)]) for r in runs]
        out.append(
            {
                "study": study,
                "task": task,
                "arm": arm,
                "model": model,
                "metric": metric_of(task),
                "seeds": len(values),
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
                "minutes_per_run": statistics.fmean(float(r["seconds"]) for r in runs) / 60,
            }
        )
    return out


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Per study and task: which arm is ahead, by how much on average, and on how many seeds."""
    lines = []
    for study, cells in STUDIES.items():
        for task in dict.fromkeys(c.task for c in cells):
            arms = [c for c in cells if c.task == task]
            if len(arms) != 2:
                continue
            a, b = arms
            m = metric_of(task)
            by_seed = {
                arm.arm: {
                    r["seed"]: float(r[m])
                    for r in rows
                    if r["study"] == study and r["arm"] == arm.arm and r["task"] == task
                }
                for arm in (a, b)
            }
            seeds = sorted(set(by_seed[a.arm]) & set(by_seed[b.arm]))
            if not seeds:
                continue
            diffs = [by_seed[a.arm][s] - by_seed[b.arm][s] for s in seeds]
            ahead = sum(d > 0 for d in diffs)
            mean = statistics.fmean(diffs)
            name = get_task(task).labels[m]
            winner, loser = (a, b) if mean > 0 else (b, a)
            wins = ahead if mean > 0 else len(seeds) - ahead
            if mean == 0:
                verdict = f"{a.arm} and {b.arm} are tied"
            elif wins == len(seeds) and len(seeds) > 1:
                verdict = f"{winner.arm} ({winner.model}) is ahead on every seed"
            elif wins == len(seeds):
                verdict = f"{winner.arm} ({winner.model}) is ahead on the one seed run (too few to call)"
            else:
                verdict = f"no clear winner: {winner.arm} leads on average but on {wins} of {len(seeds)} seeds"
            lines.append(
                f"- **{study}, {task}**: {verdict}; {name} {100 * abs(mean):.1f} points apart on average "
                f"({winner.arm} vs {loser.arm}, {len(seeds)} paired seeds)."
            )
    return lines


@torch.no_grad()
def predictions_picture(
    rows: list[dict[str, Any]], path: Path, budget: DenseBudget, count: int = 4, min_score: float = 0.5
) -> Path:
    """Test scenes: the ground truth, then each seed-0 model's prediction (boxes scoring ``min_score`` or
    more), one row per model."""
    spec = SceneSpec(train_scenes=budget.train_scenes, test_scenes=budget.test_scenes)
    seen: dict[str, str] = {}
    for r in rows:
        if r["seed"] == 0:
            seen.setdefault(f"{r['model']} ({r['arm'] if r['arm'] != 'residual' else 'scratch'})", r["run"])
    strips = []
    for name in dict.fromkeys(r["task"] for r in rows):  # each task studied, in the rows' order
        task = get_task(name).from_options(scenes=spec)
        assert isinstance(task, DenseTask), f"{name} is not a dense task"
        runs = {k: v for k, v in seen.items() if f"/{name}/" in v}
        if not runs:
            continue
        scenes = load_dense_dataset("fashion-mnist-scenes", "test", None, False, spec, 0, task.target)
        names = list(scenes.classes)
        strips.append(("ground truth", [task.draw_truth(*scenes[i], names) for i in range(count)]))
        options = PredictOptions(min_score=min_score)
        for label, run in runs.items():
            model = load_model(run)
            pictures = []
            for i in range(count):
                prepared = task.prepare(scenes.images[i], f"scene {i}", model)
                (output,) = task.predict_batch(model, [prepared.input], options)
                pictures.append(task.draw(output, prepared, names, options))
            strips.append((label, pictures))
    return _grid(strips, path)


def _grid(strips: list[tuple[str, list[Image.Image]]], path: Path) -> Path:
    from PIL import ImageDraw

    scale, pad, caption = 2, 4, 16
    w, h = strips[0][1][0].size
    cols = len(strips[0][1])
    canvas = Image.new("RGB", (cols * (w * scale + pad) + pad, len(strips) * (h * scale + caption + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (label, pictures) in enumerate(strips):
        y = row * (h * scale + caption + pad)
        draw.text((pad, y + 2), label, fill="black")
        for col, picture in enumerate(pictures):
            big = picture.resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(big, (pad + col * (w * scale + pad), y + caption))
    atomic_write(path, lambda tmp: canvas.save(tmp, format="PNG"))
    return path


def report_text(
    rows: list[dict[str, Any]],
    summary: list[dict[str, Any]],
    budget: DenseBudget,
    command: str,
    pretrain: dict[str, Any] | None = None,
) -> str:
    runs = {r["run"]: float(r["seconds"]) for r in rows}  # a scratch run serves both studies: counted once
    total = sum(runs.values()) / 60
    lines = [
        "# Dense tasks on garment scenes: residual vs plain, pretrained vs scratch",
        "",
        f"Command: `{command}`",
        "",
        f"Scenes: {budget.train_scenes} training scenes (garments from Fashion-MNIST's training images), "
        f"{budget.test_scenes} test scenes (garments from its test images only); 128x128, 1-6 garments of "
        "16-64 pixels. Every run: "
        f"{budget.epochs} epochs of batch {budget.batch_size}, SGD with a cosine schedule (the recipes "
        f"scenes-segmentation, lr {_lr('segmentation')}, and scenes-detection, lr {_lr('detection')}), "
        f"on 2 CPU cores; {len(runs)} runs (the scratch runs serve both studies), {total:.1f} minutes of "
        f"training in all. Segmentation: DeepLabV3 (ASPP width {budget.head_channels}, auxiliary FCN "
        "head) on the CIFAR-style ResNet-20 and -56 and their plain twins (stride-4 maps of 32x32); "
        f"detection: FCOS over an FPN of width {budget.fpn_channels} on the ImageNet-style ResNet-18 "
        "and its plain twin. mIoU: mean over the 11 classes (background included) of the test pixels' "
        "IoU; mAP: COCO's AP@[.5:.95] by pycocotools.",
        "",
        "Pretrained backbones: segmentation starts from the shipped `resnet20.fashion_mnist`; "
        "detection from a ResNet-18 this study trains on Fashion-MNIST classification first"
        + (
            f" ({budget.pretrain_epochs} epochs of the fashion-mnist recipe: test top-1 "
            f"{100 * float(pretrain['test']['top1']):.2f}%, {float(pretrain['seconds']) / 60:.1f} min)"
            if pretrain
            else ""
        )
        + ", then, as torchvision starts a detector from weights, with frozen BatchNorm and its last "
        "3 layers trained.",
        "",
        "| study | task | arm | model | metric | seeds | mean | std | min | max | min/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['study']} | {s['task']} | {s['arm']} | {s['model']} | {s['metric']} | {s['seeds']} | "
            f"{100 * s['mean']:.2f} | {100 * s['std']:.2f} | {100 * s['min']:.2f} | {100 * s['max']:.2f} | "
            f"{s['minutes_per_run']:.1f} |"
        )
    lines += ["", "## Findings (computed from results.csv)", "", *verdicts(rows), ""]
    lines += ["![predictions on test scenes](predictions.png)", ""]
    return "\n".join(lines)


def _lr(task: str) -> float:
    return float(RECIPES[f"scenes-{task}"]["optim"]["lr"])


def write_results(
    rows: list[dict[str, Any]],
    out: str | os.PathLike[str],
    budget: DenseBudget,
    command: str,
    picture: bool = True,
    pretrain: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """The four files; ``pretrain`` is the summary of the study's ResNet-18 pretraining, if it ran."""
    out = Path(out)
    summary = summarize(rows)
    paths = {
        "results": write_csv(rows, out / "results.csv", RESULT_KEYS),
        "summary": write_csv(summary, out / "summary.csv"),
    }
    if picture:
        paths["predictions"] = predictions_picture(rows, out / "predictions.png", budget)
    paths["report"] = atomic_write_text(out / "report.md", report_text(rows, summary, budget, command, pretrain))
    return paths


__all__ = ["predictions_picture", "report_text", "summarize", "verdicts", "write_results"]
