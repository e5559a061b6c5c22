"""PNG figures of each analysis, in the papers' conventions: plain nets dashed, ResNets solid, one
colour per depth (He et al. 2015, Figs. 6-7). Figures are built without pyplot, so no global
backend or open-figure state is touched; PNGs are rendered by Agg."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from .gradcam import GradCAM
from .gradients import GradientComparison
from .lesion import LesionReport
from .responses import ResponseProfile

_PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def line_style(residual: bool) -> dict:
    return {"linestyle": "-" if residual else "--", "linewidth": 1.6 if residual else 1.3}


class DepthColours:
    """A plain net and its ResNet twin have the same number of layers, hence the same colour."""

    def __init__(self):
        self._seen: dict[int, str] = {}

    def __call__(self, depth: int) -> str:
        return self._seen.setdefault(depth, _PALETTE[len(self._seen) % len(_PALETTE)])


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_gradients(comparison: GradientComparison, path: str | os.PathLike) -> Path:
    """Per-layer gradient norms (log scale) beside the input-gradient autocorrelation."""
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    norms_ax, corr_ax = fig.subplots(1, 2)
    colour = DepthColours()
    for m in comparison.models:
        c, style = colour(len(m.layers)), line_style(m.residual)
        norms_ax.plot(
            [g.depth for g in m.layers],
            [g.norm for g in m.layers],
            color=c,
            label=f"{m.model}{' (trained)' if m.trained else ''} (spread {m.spread:.3g}x)",
            **style,
        )
        corr_ax.plot(
            range(len(m.correlation.autocorrelation)),
            m.correlation.autocorrelation,
            color=c,
            label=f"{m.model} (lag 1: {m.correlation.lag1:.2f})",
            **style,
        )
    norms_ax.set(
        yscale="log",
        xlabel="conv layer (forward order)",
        ylabel="||dL/dW||  (L2, log scale)",
        title="Per-layer gradient norm, one backward pass",
    )
    corr_ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    corr_ax.set(
        xlabel="lag (points along the input line)",
        ylabel="autocorrelation of d(output)/d(input)",
        title="Gradient correlation (Balduzzi et al. 2017): ~0 = shattered",
        ylim=(-0.2, 1.02),
    )
    for ax in (norms_ax, corr_ax):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    p = comparison.probe
    trained = [m.trained for m in comparison.models]
    when = (
        "Trained, on a real batch"
        if all(trained)
        else "At initialization"
        if not any(trained)
        else "At initialization (random inputs) and trained (real batch)"
    )
    fig.suptitle(
        f"{when}, {'with' if comparison.norm else 'without'} BatchNorm "
        f"(seed {comparison.seed}, batch {p.batch_size}, {p.n_points}-point line); dashed = plain, solid = ResNet"
    )
    return save_figure(fig, path)


def plot_responses(profiles: Mapping[str, ResponseProfile], path: str | os.PathLike) -> Path:
    """He et al. 2015 Fig. 7: response std by unit (top) and sorted by magnitude (bottom)."""
    fig = Figure(figsize=(8, 7), layout="constrained")
    by_layer, by_size = fig.subplots(2, 1)
    colour = DepthColours()
    for label, prof in profiles.items():
        c, style = colour(len(prof.std)), line_style(prof.residual)
        by_layer.plot(range(1, len(prof.std) + 1), prof.std, color=c, label=label, **style)
        by_size.plot(range(1, len(prof.std) + 1), prof.sorted_std(), color=c, label=label, **style)
    by_layer.set(
        xlabel="unit index (original order)",
        ylabel="std of response",
        title="Layer responses (He et al. 2015, Fig. 7): std of each unit's branch output",
    )
    by_size.set(xlabel="unit index (sorted by magnitude)", ylabel="std of response")
    for ax in (by_layer, by_size):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_lesion(reports: Mapping[str, LesionReport], path: str | os.PathLike) -> Path:
    """Veit et al. 2016 Fig. 3: accuracy with each single unit removed, against each baseline."""
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.subplots()
    colour = DepthColours()
    skipped: list[tuple[int, str]] = []
    for label, rep in reports.items():
        c, style = colour(len(rep.units)), line_style(rep.residual)
        # NaN breaks the line at units that could not be removed: nothing was measured there.
        acc = [float("nan") if u.accuracy is None else u.accuracy for u in rep.units]
        ax.plot(
            [u.index for u in rep.units],
            acc,
            marker="o",
            markersize=3.5,
            color=c,
            label=f"{label} (baseline {rep.baseline:.3f})",
            **style,
        )
        ax.axhline(rep.baseline, color=c, linewidth=0.9, linestyle=":")
        skipped += [(u.index, c) for u in rep.units if u.skipped is not None]
    for i, (index, c) in enumerate(skipped):
        ax.plot(
            [index], [0.0], "x", color=c, markersize=8, label=None if i else "not removable (reshapes, no shortcut)"
        )
    ax.set(
        xlabel="removed unit (forward order)",
        ylabel="accuracy",
        ylim=(-0.03, 1.03),
        title="Lesion study: one unit replaced by its shortcut; dotted = intact model",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _displayable(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) of any range -> (H, W) or (H, W, 3) in [0, 1], min-max scaled for display."""
    img = image.detach().float().cpu()
    img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-12)
    return img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)


def plot_gradcam(
    images: torch.Tensor,
    cam: GradCAM,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.45,
) -> Path:
    """Each image (1 or 3 channels) beside itself overlaid with its Grad-CAM map."""
    n = len(images)
    fig = Figure(figsize=(2.4 * n, 5.0), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        img = _displayable(images[i])
        cmap = "gray" if img.ndim == 2 else None
        axes[0, i].imshow(img.numpy(), cmap=cmap)
        axes[1, i].imshow(img.numpy(), cmap=cmap)
        heat = axes[1, i].imshow(cam.heatmaps[i].numpy(), cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
        cls = cam.classes[i]
        axes[0, i].set_title(
            f"{class_names[cls] if class_names else f'class {cls}'}\nlogit {cam.scores[i]:.2f}", fontsize=9
        )
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel(f"Grad-CAM @ {cam.layer}")
    fig.colorbar(heat, ax=axes[1, :].tolist(), shrink=0.8, label="class evidence")
    return save_figure(fig, path)


def plot_time_cam(
    series: torch.Tensor,
    cam: torch.Tensor,
    path: str | os.PathLike,
    title: str,
    text: bytes | None = None,
) -> Path:
    """A series (C, L) drawn with each step coloured by its class activation (Wang et al. 2017,
    Fig. 4: the curve in jet colours, red where the class is decided), one panel per channel; a
    text's map is drawn as bars under its characters."""
    from matplotlib.collections import LineCollection

    heat = cam.numpy()
    low, high = float(heat.min()), float(heat.max())
    norm_heat = (heat - low) / (high - low) if high > low else heat * 0
    if text is not None:
        fig = Figure(figsize=(min(2 + 0.12 * len(text), 24), 2.8), layout="constrained")
        ax = fig.subplots()
        ax.bar(range(len(text)), heat[: len(text)], color=_jet(norm_heat[: len(text)]))
        ax.set_xticks(range(len(text)), [chr(b) if 32 <= b < 127 else "·" for b in text], fontsize=7)
        ax.set_ylabel("class activation")
        ax.set_title(title, fontsize=9)
        return save_figure(fig, path)
    channels = int(series.shape[0])
    fig = Figure(figsize=(8, 1.6 + 1.4 * channels), layout="constrained")
    axes = fig.subplots(channels, 1, squeeze=False)[:, 0]
    t = torch.arange(series.shape[-1]).numpy()
    for c, ax in enumerate(axes):
        y = series[c].numpy()
        points = list(zip(t, y, strict=True))
        lines = LineCollection([points[j : j + 2] for j in range(len(points) - 1)], cmap="jet", linewidths=2.5)
        lines.set_array(norm_heat[:-1])
        lines.set_clim(0.0, 1.0)
        ax.add_collection(lines)
        ax.set_xlim(0, max(len(t) - 1, 1))
        ax.set_ylim(float(y.min()) - 0.1, float(y.max()) + 0.1)
        ax.set_ylabel(f"channel {c}" if channels > 1 else "value")
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel("step")
    fig.colorbar(lines, ax=list(axes), shrink=0.8, label="class activation (min to max)")
    return save_figure(fig, path)


def _jet(values):
    from matplotlib import colormaps

    return colormaps["jet"](values)
