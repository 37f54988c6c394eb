"""The lecture's "X or X?" case study: hand-made X filters, then a CNN that learns its own.

    study = xo_case_study("runs/xo")     # feature maps, ReLU, max pool of the two 9x9 images
    print(study["report"])               # which filter fires where
    cnn = train_xo_cnn("runs/xo")        # a small CNN on the 28x28 xo data set
    cnn["test_top1"]                     # ~0.99+; its first-layer filters in xo_filters.png

Feature maps follow the slides (Brandon Rohrer's "How convolutional neural networks work"):
each value is the match between a 3x3 patch and a filter, the products of pixel and weight
averaged over the 9 weights, so 1.00 is a perfect match and -1.00 its exact opposite. There
is no padding (a "valid" convolution): a 9x9 image gives a 7x7 feature map, and 2x2 max
pooling with stride 2 keeps the half-windows at the edge (ceil mode), 7x7 -> 4x4.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cnnlab.data.builtin.xo import XO_CLEAN, XO_FILTERS, XO_SHIFTED  # noqa: E402
from cnnlab.engine.checkpoint import load_checkpoint  # noqa: E402
from cnnlab.engine.config import TrainConfig  # noqa: E402
from cnnlab.engine.trainer import fit  # noqa: E402
from cnnlab.figures import save_figure  # noqa: E402
from cnnlab.interpret.conv_numpy import conv2d_im2col, max_pool2d, relu  # noqa: E402

IMAGES = {"clean X": XO_CLEAN, "shifted X": XO_SHIFTED}
STRONG = 0.5  # a "strong" match: more than this (1.0 is perfect)

# ---------------------------------------------------------------------------------------
# Hand-made filters on the two 9x9 images
# ---------------------------------------------------------------------------------------


def xo_case_study(out_dir: str | Path) -> dict:
    """Feature maps, ReLU and 2x2 max pooling of the lecture's two X images and three filters.

    Writes ``out_dir/xo_case_study.png``. Returns ``{"images", "filters", "feature_maps",
    "relu", "pooled", "report", "figure"}``; the three map dicts are keyed
    ``[image name][filter name]`` -> (7, 7), (7, 7) and (4, 4) arrays in [-1, 1].
    """
    names = list(XO_FILTERS)
    weights = np.stack([XO_FILTERS[n] for n in names])[:, None] / 9  # (3, 1, 3, 3): mean of 9 products
    study = {"images": dict(IMAGES), "filters": dict(XO_FILTERS), "feature_maps": {}, "relu": {},
             "pooled": {}}
    for image_name, image in IMAGES.items():
        maps = conv2d_im2col(image[None, None], weights)[0]  # (3, 7, 7), no padding
        rectified = relu(maps)
        pooled = max_pool2d(rectified[None], 2, 2, ceil_mode=True)[0]  # (3, 4, 4)
        for key, values in (("feature_maps", maps), ("relu", rectified), ("pooled", pooled)):
            study[key][image_name] = dict(zip(names, values))
    study["report"] = _report(study)
    study["figure"] = str(_plot_case(study, Path(out_dir) / "xo_case_study.png"))
    return study


def _report(study: dict) -> str:
    lines = ['"X or X?": each 3x3 filter slides over each 9x9 image without padding; a value is the',
             "patch-filter match averaged over the 9 weights (1.00 perfect, -1.00 opposite).",
             "Positions are (row, column) in the 7x7 feature map; the patch centre in the image is",
             "one row and one column further.", ""]
    same = int((XO_CLEAN == XO_SHIFTED).sum())
    for image_name in IMAGES:
        lines.append(f"{image_name}:")
        for name, fmap in study["feature_maps"][image_name].items():
            perfect = _positions(np.isclose(fmap, 1.0))
            strong = _positions(fmap > STRONG)
            lines += [f"  {name}: max {fmap.max():.2f}", f"    1.00 at: {perfect or 'none'}",
                      f"    > {STRONG} at: {strong or 'none'}"]
        lines.append("")
    worst = min(fmap.max() for fmap in study["feature_maps"]["shifted X"].values())
    lines.append(f"Pixel by pixel the shifted X differs from the clean X in {81 - same} of 81 pixels, "
                 f"yet every filter still finds a patch matching at least {worst:.2f} in it:")
    lines.append("local features survive a shift and a deformation that whole-image matching does not.")
    return "\n".join(lines)


def _positions(mask: np.ndarray) -> str:
    return " ".join(f"({r},{c})" for r, c in zip(*np.nonzero(mask)))


def _plot_case(study: dict, path: Path) -> Path:
    """Row 0: the filters; per image: image + feature maps, after ReLU, after max pooling."""
    names = list(study["filters"])
    fig, axes = plt.subplots(7, 4, figsize=(9, 15.5), layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].text(0.5, 0.5, "filters", ha="center", va="center", fontsize=12)
    for col, name in enumerate(names, 1):
        _show(axes[0, col], study["filters"][name], name)
    for block, image_name in enumerate(IMAGES):
        row = 1 + 3 * block
        _show(axes[row, 0], study["images"][image_name], image_name, annotate=False)
        for stage, (key, label) in enumerate((("feature_maps", "feature map 7x7"), ("relu", "ReLU"),
                                              ("pooled", "2x2 max pool 4x4"))):
            for col, name in enumerate(names, 1):
                shown = _show(axes[row + stage, col], study[key][image_name][name],
                              f"{image_name}: {label}" if col == 1 else "", cmap="coolwarm")
    fig.colorbar(shown, ax=axes[1:, 1:], fraction=0.03, label="match (1 = perfect)")
    path = save_figure(fig, path, dpi=90)
    return path


def _show(ax, values: np.ndarray, title: str, cmap: str = "gray", annotate: bool = True):
    """A matrix as an image in [-1, 1], each value written in its cell."""
    shown = ax.imshow(values, cmap=cmap, vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.axis("on")
    if annotate:
        small = values.shape[0] <= 3
        for (r, c), v in np.ndenumerate(values):
            text = f"{v:g}" if small else f"{v:.2f}".replace("0.", ".", 1)  # -0.56 -> -.56
            color = ("black" if v > 0 else "white") if cmap == "gray" else "black"
            ax.text(c, r, text, ha="center", va="center", fontsize=9 if small else 6, color=color)
    ax.set_title(title, fontsize=9)
    return shown


# ---------------------------------------------------------------------------------------
# A CNN that learns its own filters on the 28x28 xo data set
# ---------------------------------------------------------------------------------------


def train_xo_cnn(out_dir: str | Path, epochs: int = 2, seed: int = 0,
                 widths: tuple[int, ...] = (8, 16, 32), log=None) -> dict:
    """Train ``lecture_cnn`` on ``xo`` with the real trainer; compare its 3x3 filters with the lecture's.

    A first conv of few 3x3 filters (``widths[0]``) keeps them readable; the third block grows
    the receptive field from 10 to 22 pixels, so the head sees whole strokes (two blocks stop
    near 98% test accuracy). fp32 (``amp="off"``): bf16 autocast is slower on images this small.
    ``log``: where the trainer's lines go (default: nowhere). Writes the run under
    ``out_dir/xo_cnn`` and ``out_dir/xo_filters.png``. Returns ``{"test_top1", "test_top1_error",
    "seconds", "run", "checkpoint", "figure", "learned_filters", "closest", "report"}``.
    """
    out = Path(out_dir)
    cfg = TrainConfig(data="xo", model="lecture_cnn", model_args={"widths": list(widths)},
                      epochs=epochs, batch_size=32, lr=0.1,  # 125 steps per epoch; SGD peak lr
                      amp="off", workers=0, seed=seed, out=str(out / "xo_cnn"), exist_ok=True)  # a rerun replaces it
    run = fit(cfg, log=log or (lambda *args, **kwargs: None))
    checkpoint = run.out / "best.pt"
    weight = load_checkpoint(checkpoint)["model"]["features.block1.conv.weight"]  # (F, 1, 3, 3)
    learned = weight[:, 0].float().numpy()  # (F, 3, 3)
    closest = [_closest(f) for f in learned]
    figure = _plot_filters(learned, closest, out / "xo_filters.png")
    report = [f"lecture_cnn (widths {'-'.join(map(str, widths))}) trained {epochs} epochs on xo in "
              f"{run.seconds:.0f} s: test accuracy {run.test['top1']:.2%} on {run.test['count']} held-out images",
              "its first-layer 3x3 filters, each beside the most similar hand-made X filter (cosine):",
              *(f"  learned {i}: {name} {sim:+.2f}" for i, (name, sim) in enumerate(closest))]
    return {"test_top1": run.test["top1"], "test_top1_error": run.test["top1_error"], "seconds": run.seconds,
            "run": str(run.out), "checkpoint": str(checkpoint), "figure": str(figure),
            "learned_filters": learned, "closest": closest, "report": "\n".join(report)}


def _closest(learned: np.ndarray) -> tuple[str, float]:
    """The hand-made X filter most like ``learned`` (cosine similarity) and that similarity."""
    sims = {name: float((learned * f).sum() / (np.linalg.norm(learned) * np.linalg.norm(f) + 1e-12))
            for name, f in XO_FILTERS.items()}
    name = max(sims, key=sims.get)
    return name, sims[name]


def _plot_filters(learned: np.ndarray, closest: list[tuple[str, float]], path: Path) -> Path:
    """The three hand-made filters on top, the learned first-layer filters below."""
    ncols = max(4, min(len(learned), 8))
    rows = 1 + -(-len(learned) // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(1.9 * ncols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, f) in zip(axes[0], XO_FILTERS.items()):
        _show(ax, f, f"hand-made\n{name}")
    for i, (f, (name, sim)) in enumerate(zip(learned, closest)):
        ax = axes[1 + i // ncols, i % ncols]
        scaled = f / (np.abs(f).max() + 1e-12)  # each filter scaled to [-1, 1] for display
        # (+ 0.0 below turns the -0.0 of rounding into 0)
        _show(ax, np.round(scaled, 1) + 0.0, f"learned {i}\n~{name} {sim:+.2f}")
    fig.suptitle("first-layer 3x3 filters: the lecture's (top) and learned on xo (below, scaled)")
    fig.tight_layout()
    path = save_figure(fig, path, dpi=100)
    return path
