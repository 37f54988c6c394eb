"""Pooling and invariance: the same CNN with four ways to downsample (or none), measured.

Variants of the lecture's CNN (three conv blocks, then global average pooling and FC layers):
2x2 max pooling, 2x2 average pooling, stride-2 convolutions, and no downsampling at all. Each
is trained with the same budget; the table gives parameters, forward compute (FLOPs counted
by ``torch.utils.flop_counter.FlopCounterMode``), accuracy, and an invariance score: how much
the penultimate features (the input of the last linear layer) and the predicted class change
when the test images are translated by 1, 2, ... pixels.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.experiments.runs import (DIRECTIONS, accuracy, load_splits, shift,
                                       train_model, training_seconds)
from cnnlab.experiments.tables import save_figure, write_table

VARIANTS = {  # label -> lecture_cnn builder arguments
    "max pool": {"pool": "max"},
    "avg pool": {"pool": "avg"},
    "strided conv": {"pool": "none", "stride": 2},
    "no downsampling": {"pool": "none"},
}
SHIFTS = (1, 2, 3, 4)  # pixels, each averaged over right, left, down and up
COLUMNS = [("variant", "downsampling", ""), ("parameters", "parameters", ",d"),
           ("mflops", "MFLOPs / image", ".2f"), ("test_acc", "test acc", ".2%"), ("train_s", "training s", ".1f"),
           ("feature_change_1", "feature change 1 px", ".3f"), ("feature_change_2", "feature change 2 px", ".3f"),
           ("prediction_change_1", "prediction change 1 px", ".2%"),
           ("prediction_change_2", "prediction change 2 px", ".2%")]


def run(data: str = "digits", epochs: int | None = None, batch_size: int | None = None,
        train_size: int | None = 12_000, test_size: int | None = 2_000, seed: int = 0,
        out: str | Path = "runs/experiments/pooling", log=print) -> dict:
    """Train the four variants on ``data`` and measure compute, accuracy and shift invariance.

    ``epochs``/``batch_size`` default to 10/64 on 8x8 digits and 3/128 on larger images.
    Writes ``pooling.json``, ``pooling.md`` and ``pooling.png`` to ``out``.
    """
    out = Path(out)
    splits = load_splits(data, train_size, test_size, seed)
    c, h, w = splits["train"].image_shape
    small = max(h, w) <= 16
    epochs = epochs or (10 if small else 3)
    batch_size = batch_size or (64 if small else 128)
    name = f"pooling/{Path(str(data)).name}"
    test = splits["test"]
    rows = []
    for label, args in VARIANTS.items():
        log(f"{label}: lecture_cnn {args}, {epochs} epochs of {len(splits['train'])} {h}x{w}x{c} images")
        run_, lm = train_model(name, splits, "lecture_cnn", args, out / "runs" / label.replace(" ", "-"),
                               epochs=epochs, batch_size=batch_size, seed=seed)
        row = {"variant": label, "model_args": args,
               "parameters": sum(p.numel() for p in lm.model.parameters()),
               "mflops": forward_flops(lm.model, (c, h, w)) / 1e6,
               "test_acc": accuracy(lm, test.images, test.labels), "train_s": training_seconds(run_)}
        for pixels in SHIFTS:
            change = invariance(lm, test.images, pixels)
            row[f"feature_change_{pixels}"] = change["feature_change"]
            row[f"prediction_change_{pixels}"] = change["prediction_change"]
        rows.append(row)
        log(f"  {row['mflops']:.2f} MFLOPs, test {row['test_acc']:.2%}, feature change 1/2 px "
            f"{row['feature_change_1']:.3f}/{row['feature_change_2']:.3f}, prediction change 1/2 px "
            f"{row['prediction_change_1']:.2%}/{row['prediction_change_2']:.2%}")
    notes = [f"data: {data}, {len(splits['train'])} train / {len(test)} test images of {h}x{w}x{c}; "
             f"lecture_cnn (widths 32-64-128, 3x3 convs, BatchNorm, global average pooling, FC 128), "
             f"{epochs} epochs, batch {batch_size}, the trainer's defaults, no augmentation, seed {seed}",
             "MFLOPs / image: forward pass of one image, counted by torch.utils.flop_counter.FlopCounterMode "
             "(2 FLOPs per multiply-add of convolutions and linear layers; pooling, BatchNorm and ReLU not counted)",
             "feature change k px: |f(shifted x) - f(x)| / |f(x)| for the penultimate features f (input of the "
             "last linear layer), mean over test images and over shifts right/left/down/up (zero fill)",
             "prediction change k px: fraction of test images whose predicted class changes under the shift",
             "training s: seconds in training steps only (the machine is shared: compare within a run)"]
    files = write_table(out, "pooling", rows, COLUMNS, f"Pooling, strides and invariance on {data}", notes,
                        extra={"data": str(data), "epochs": epochs, "batch_size": batch_size, "seed": seed,
                               "shifts": list(SHIFTS)})
    files["figure"] = _plot(rows, out / "pooling.png", data)
    return {"name": "pooling", "rows": rows, "files": files, "notes": notes}


def forward_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs of one forward pass on one (C, H, W) image, as FlopCounterMode counts them."""
    model = model.eval()
    x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


@torch.no_grad()
def penultimate_features(lm: LoadedModel, images: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    """(features (N, D) entering the model's last linear layer, logits (N, K)) of uint8 images."""
    last = [m for m in lm.model.modules() if isinstance(m, nn.Linear)][-1]
    captured: list[Tensor] = []
    handle = last.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0].float().cpu()))
    try:
        logits = torch.cat([lm.logits(images[i:i + batch_size]).cpu() for i in range(0, len(images), batch_size)])
    finally:
        handle.remove()
    return torch.cat(captured), logits


def invariance(lm: LoadedModel, images: Tensor, pixels: int) -> dict[str, float]:
    """Mean relative change of the penultimate features and rate of changed predictions under shifts."""
    f0, y0 = penultimate_features(lm, images)
    norm = f0.norm(dim=1).clamp(min=1e-8)
    feature, prediction = [], []
    for dy, dx in DIRECTIONS:
        f, y = penultimate_features(lm, shift(images, dy * pixels, dx * pixels))
        feature.append(((f - f0).norm(dim=1) / norm).mean())
        prediction.append((y.argmax(1) != y0.argmax(1)).float().mean())
    return {"feature_change": float(torch.stack(feature).mean()),
            "prediction_change": float(torch.stack(prediction).mean())}


def _plot(rows: list[dict], path: Path, data: str) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for row in rows:
        axes[0].plot(SHIFTS, [row[f"feature_change_{s}"] for s in SHIFTS], "o-", label=row["variant"])
        axes[1].plot(SHIFTS, [row[f"prediction_change_{s}"] for s in SHIFTS], "o-", label=row["variant"])
    axes[0].set(xlabel="shift (pixels)", ylabel="relative change of penultimate features",
                title="feature change under translation", xticks=SHIFTS)
    axes[1].set(xlabel="shift (pixels)", ylabel="fraction of predictions that change",
                title="prediction change under translation", xticks=SHIFTS)
    axes[0].legend(fontsize=8)
    labels = [r["variant"] for r in rows]
    bars = axes[2].bar(labels, [r["mflops"] for r in rows], color="tab:gray")
    axes[2].bar_label(bars, labels=[f"{r['mflops']:.1f} MFLOPs\n{r['test_acc']:.1%} acc" for r in rows], fontsize=8)
    axes[2].set(ylabel="MFLOPs per image (forward)", title=f"compute and test accuracy ({data})")
    axes[2].tick_params(axis="x", labelsize=8)
    axes[2].margins(y=0.25)
    fig.tight_layout()
    return save_figure(fig, path)
