"""Fully connected versus convolutional: the lecture's two arguments, measured.

1. Parameters: a fully connected first layer has one weight per pixel per unit; a conv layer
   has one small filter per output channel, whatever the image size.
2. Spatial structure: an MLP on flattened pixels does not know which pixels are neighbours.
   Scramble every image (train AND test) by one fixed pixel permutation and the MLP learns
   just as well (a permutation of its inputs is a permutation of its first-layer weights),
   while the CNN, whose 3x3 filters assume neighbours, drops. Shifting test images by 1, 2, 4
   pixels costs the MLP more than the CNN (shared filters slide with the content).

Both models train with the same trainer, data, epochs, batch size, optimizer and schedule.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnlab.experiments.runs import (load_splits, map_images, permute_pixels,
                                       pixel_permutation, shifted_accuracy, train_model, training_seconds,
                                       accuracy)
from cnnlab.experiments.tables import save_figure, write_table
from cnnlab.models import get_model

SHIFTS = (0, 1, 2, 4)             # pixels, each averaged over right, left, down and up
PHOTO = (3, 1080, 1080)           # the lecture's example input for the first-layer count
MODELS = {"MLP": "mlp", "CNN": "lecture_cnn"}
COLUMNS = [("model", "model", ""), ("parameters", "parameters", ",d"),
           ("first_layer_1080", "first layer @1080x1080x3", ",d"),
           ("test_acc", "test acc", ".2%"), ("train_s", "training s", ".1f"),
           ("shift_1", "shift 1 px", ".2%"), ("shift_2", "shift 2 px", ".2%"), ("shift_4", "shift 4 px", ".2%"),
           ("permuted_acc", "permuted pixels", ".2%")]


def run(data: str = "digits", epochs: int | None = None, batch_size: int | None = None,
        train_size: int | None = 12_000, test_size: int | None = 5_000, seed: int = 0,
        out: str | Path = "runs/experiments/fc-vs-cnn", log=print) -> dict:
    """Train an MLP and the lecture's CNN on ``data`` (plain and pixel-permuted) with one budget.

    ``epochs``/``batch_size`` default to 10/64 on 8x8 digits and 3/128 on larger images;
    ``train_size``/``test_size`` cap the splits (a seeded draw). Writes ``fc_vs_cnn.json``,
    ``fc_vs_cnn.md`` and ``fc_vs_cnn.png`` to ``out``; returns rows, files and the first-layer counts.
    """
    out = Path(out)
    splits = load_splits(data, train_size, test_size, seed)
    c, h, w = splits["train"].image_shape
    small = max(h, w) <= 16
    epochs = epochs or (10 if small else 3)
    batch_size = batch_size or (64 if small else 128)
    permutation = pixel_permutation((c, h, w), seed)
    scrambled = map_images(splits, lambda x: permute_pixels(x, permutation))
    tag = Path(str(data)).name
    datasets = {"plain": (f"fc-vs-cnn/{tag}", splits), "permuted": (f"fc-vs-cnn/{tag}/permuted", scrambled)}
    first = first_layer_parameters(PHOTO)
    test = splits["test"]
    rows = []
    for label, model in MODELS.items():
        args = {"image_size": [h, w]} if model == "mlp" else {}
        log(f"{label} ({model}): {epochs} epochs of {len(splits['train'])} {h}x{w}x{c} images, batch {batch_size}")
        runs = {}
        for condition, (name, parts) in datasets.items():
            runs[condition] = train_model(name, parts, model, args, out / "runs" / f"{model}-{condition}",
                                          epochs=epochs, batch_size=batch_size, seed=seed)
        (plain_run, lm), (_, lm_permuted) = runs["plain"], runs["permuted"]
        row = {"model": label, "registry_name": model,
               "parameters": sum(p.numel() for p in lm.model.parameters()),
               "first_layer_1080": first[label], "train_s": training_seconds(plain_run),
               "permuted_acc": accuracy(lm_permuted, scrambled["test"].images, test.labels)}
        for pixels in SHIFTS:
            row["test_acc" if pixels == 0 else f"shift_{pixels}"] = shifted_accuracy(lm, test.images, test.labels, pixels)
        rows.append(row)
        log(f"  test {row['test_acc']:.2%}, shifted 1/2/4 px {row['shift_1']:.2%}/{row['shift_2']:.2%}/"
            f"{row['shift_4']:.2%}, permuted pixels {row['permuted_acc']:.2%}")
    notes = [f"data: {data}, {len(splits['train'])} train / {len(test)} test images of {h}x{w}x{c}; "
             f"both models: {epochs} epochs, batch {batch_size}, SGD-Nesterov one-cycle (the trainer's "
             f"defaults), no augmentation, seed {seed}; accuracy of the best-val checkpoint",
             "shift k px: test images translated by k pixels (zero fill), mean over right/left/down/up",
             "permuted pixels: one fixed random permutation of the pixel positions (seed "
             f"{seed}) applied to train, val AND test; each model retrained on the scrambled images",
             "first layer @1080x1080x3: parameters (weights + biases) of the first layer of each model "
             "built for a 1080x1080 RGB input (counted from the layer, on the meta device)",
             "training s: seconds in training steps only (the machine is shared: compare within a run)"]
    files = write_table(out, "fc_vs_cnn", rows, COLUMNS, f"Fully connected vs convolutional on {data}",
                        notes, extra={"data": str(data), "epochs": epochs, "batch_size": batch_size,
                                      "seed": seed, "first_layer_1080x1080x3": first})
    files["figure"] = _plot(rows, first, test.images[0], permutation, out / "fc_vs_cnn.png", data)
    return {"name": "fc-vs-cnn", "rows": rows, "first_layer": first, "files": files, "notes": notes}


def first_layer_parameters(input_shape: tuple[int, int, int] = PHOTO, hidden: int = 256) -> dict[str, int]:
    """Parameters of the first layer of the MLP and of the CNN built for ``input_shape`` (C, H, W).

    Built on the meta device (no memory): the MLP's first layer for a 1080x1080x3 photo alone
    holds ~0.9 billion numbers.
    """
    c, h, w = input_shape
    with torch.device("meta"):
        models = {"MLP": get_model("mlp", in_channels=c, image_size=(h, w), hidden=(hidden, 128)),
                  "CNN": get_model("lecture_cnn", in_channels=c)}
    return {label: sum(p.numel() for p in _first_layer(m).parameters()) for label, m in models.items()}


def _first_layer(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))


def _plot(rows: list[dict], first: dict[str, int], example: torch.Tensor, permutation: torch.Tensor,
          path: Path, data: str) -> str:
    import matplotlib.pyplot as plt

    from cnnlab.experiments.runs import shift

    fig = plt.figure(figsize=(12, 3.8))
    grid = fig.add_gridspec(3, 3, width_ratios=[2.2, 1.6, 0.7])
    ax = fig.add_subplot(grid[:, 0])
    for row, color in zip(rows, ("tab:orange", "tab:blue")):
        ax.plot(SHIFTS, [row["test_acc" if s == 0 else f"shift_{s}"] for s in SHIFTS], "o-", color=color,
                label=f"{row['model']} ({row['parameters']:,} params)")
        ax.axhline(row["permuted_acc"], color=color, ls="--", lw=1, label=f"{row['model']}, pixels permuted")
    ax.set(xlabel="test images shifted by (pixels)", ylabel="test accuracy", xticks=SHIFTS,
           title=f"accuracy under shifts ({data})")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[:, 1])
    labels = list(first)
    bars = ax.bar(labels, [first[k] for k in labels], color=["tab:orange", "tab:blue"])
    ax.set_yscale("log")
    ax.bar_label(bars, labels=[f"{first[k]:,}" for k in labels], fontsize=8)
    ax.set(title="first-layer parameters\nfor a 1080x1080x3 input", ylabel="parameters (log scale)")
    img = example[None]  # (1, C, H, W)
    views = {"a test image": img, "shifted 2 px right": shift(img, 0, 2),
             "pixels permuted": permute_pixels(img, permutation)}
    for k, (title, view) in enumerate(views.items()):
        a = fig.add_subplot(grid[k, 2])
        v = view[0].permute(1, 2, 0).squeeze(-1).numpy()
        a.imshow(v, cmap="gray" if v.ndim == 2 else None, interpolation="nearest")
        a.set_title(title, fontsize=8)
        a.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)
