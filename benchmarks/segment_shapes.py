"""Built-in shapes segmentation: mean IoU on held-out scenes against training time on this CPU.

    python benchmarks/segment_shapes.py                 # the recipe (recipes/segment-shapes.yaml)
    python benchmarks/segment_shapes.py --quick         # smoke run: one short epoch
    python benchmarks/segment_shapes.py --set epochs=4  # any config override

The bar: mIoU >= 0.90 on the 500 test scenes after <= 3 minutes of training on 2 CPU cores.
``train seconds`` sums the trainer's per-epoch training time (validation left out); training
images/s counts the images of the steps taken. Inference time is for one 480x360 RGB image
(CamVid's size) through the trained model, fp32 and bf16 autocast, median of repeated runs.
Prints the figures; writes nothing but the run folder (``--out``) and, with ``--figures``,
copies of its per-class IoU chart and prediction panels.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

import cnnlab
from cnnlab.runtime.device import autocast, bf16_supported

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "segment-shapes.yaml"
BAR_MIOU, BAR_SECONDS = 0.90, 180.0


def inference_seconds(lm, size: tuple[int, int] = (360, 480), repeats: int = 10) -> dict:
    """Median seconds for one (3, H, W) image through ``lm`` (fp32 and bf16 autocast)."""
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, 3, *size), dtype=torch.uint8, generator=g).to(lm.device)
    out = {}
    for name, amp in (("fp32", False), ("bf16", True)):
        if amp and not bf16_supported(lm.device):
            continue
        times = []
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            with torch.no_grad(), autocast(lm.device, amp):
                lm.task.logits(lm.model, image).argmax(1)
            if lm.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # two warm-up runs
                times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def run(recipe: Path, overrides: list[str], out: Path, log=print) -> dict:
    """Train the recipe; returns test metrics, train seconds, images/s and inference times."""
    rows = []

    def on_epoch(row, model, task):
        rows.append(row)
        log(f"  epoch {row['epoch']:3d}  {sum(r['seconds'] for r in rows):7.1f} s  val mIoU "
            f"{row['val_miou']:.4f}  pixel acc {row['val_pixel_acc']:.4f}")

    out.parent.mkdir(parents=True, exist_ok=True)
    result = cnnlab.train(config=recipe, overrides=[f"out={out}", "exist_ok=true", *overrides], on_epoch=on_epoch,
                          log=lambda *a: None)
    cfg = cnnlab.load(out / "best.pt").config
    steps = len(cnnlab.load_dataset(cfg.data, "train", seed=cfg.seed, task="segment")) // cfg.batch_size
    seconds = sum(r["seconds"] for r in rows)
    lm = cnnlab.load(out / "best.pt")
    return {"test": result.test or result.best, "train_seconds": seconds,
            "images_per_s": steps * cfg.batch_size * len(rows) / seconds, "epochs": len(rows),
            "inference_s": inference_seconds(lm), "plots": result.plots, "model": cfg.model,
            "model_args": cfg.model_args}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, default=RECIPE)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--quick", action="store_true", help="one short epoch (smoke run)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-segment-shapes"))
    p.add_argument("--figures", type=Path, help="copy per_class_iou.png and predictions.png here")
    a = p.parse_args(argv)
    overrides = (["epochs=1"] if a.quick else []) + a.set
    print(f"cnnlab {cnnlab.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}")
    print(f"recipe {a.recipe.relative_to(ROOT) if a.recipe.is_relative_to(ROOT) else a.recipe} {' '.join(overrides)}")
    r = run(a.recipe, overrides, a.out)
    t = r["test"]
    print(f"model {r['model']} {r['model_args']}")
    print(f"test mean IoU {t['miou']:.4f}  pixel accuracy {t['pixel_acc']:.4f}  class-average accuracy "
          f"{t['mean_class_acc']:.4f}  ({t['count']} scenes)")
    print("per-class IoU: " + "  ".join(f"{c} {v:.3f}" for c, v in t["per_class_iou"].items()))
    print(f"training: {r['epochs']} epochs, {r['train_seconds']:.1f} s, {r['images_per_s']:.0f} images/s (64x64)")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from utilisation import checkpoint_line  # GFLOP/image x images/s over the matmul peaks, measured now
    print(checkpoint_line(a.out / "best.pt", r["images_per_s"]))
    inf = r["inference_s"]
    print("inference, one 480x360 image: " + "  ".join(f"{k} {1000 * v:.1f} ms" for k, v in inf.items()))
    ok = t["miou"] >= BAR_MIOU and r["train_seconds"] <= BAR_SECONDS
    print(f"bar (mIoU >= {BAR_MIOU} within {BAR_SECONDS:.0f} s): {'PASS' if ok else 'FAIL'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if a.figures:
        a.figures.mkdir(parents=True, exist_ok=True)
        for name in ("per_class_iou.png", "predictions.png"):
            shutil.copy(a.out / name, a.figures / f"segment_shapes_{name}")
    return 0 if ok or a.quick else 1


if __name__ == "__main__":
    sys.exit(main())
