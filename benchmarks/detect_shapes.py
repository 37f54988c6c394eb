"""Detection on the built-in shapes scenes: Faster R-CNN's time-to-mAP, and the classic R-CNN beside it.

    python benchmarks/detect_shapes.py                 # the recipe (recipes/detect-shapes.yaml), ~10 min
    python benchmarks/detect_shapes.py --rcnn-epochs 2 # also the classic `rcnn` mode, for comparison
    python benchmarks/detect_shapes.py --quick         # smoke run (< 2 min): 1 epoch on 500 scenes

Trains on the 5,000 training scenes on this machine's CPU cores and scores every epoch on the
1,000 held-out test scenes (COCO mAP, torchmetrics with pycocotools); ``seconds`` is cumulative
training time with evaluation left out (the trainer's per-epoch ``row["seconds"]``). The bar:
mAP@.5 >= 0.95 and mAP@[.5:.95] >= 0.70 within 600 s of training on 2 CPU cores. Then per-image
inference time (batch of one, after warm-up), on the CPU and on CUDA when present.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

import cnnlab
from cnnlab.data.loader import Batches
from cnnlab.engine.config import TrainConfig
from cnnlab.runtime.distributed import Dist
from cnnlab.deploy.pytorch_model import LoadedModel

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "detect-shapes.yaml"
BAR_MAP50, BAR_MAP, BAR_SECONDS = 0.95, 0.70, 600.0


def train_curve(recipe: Path | None, overrides: list[str], test, out: str, log=print) -> list[dict]:
    """Train through ``cnnlab.train``; test mAP after each epoch: ``[{epoch, seconds, map, map50, img_s}]``."""
    curve, clock = [], [0.0]

    def on_epoch(row, model, task):
        clock[0] += row["seconds"]
        m = task.evaluate(model, Batches(test, 100, next(model.parameters()).device, shuffle=False), Dist())
        curve.append({"epoch": row["epoch"], "seconds": clock[0], "map": m["map"], "map50": m["map50"],
                      "map75": m["map75"], "images_per_s": row["images_per_s"], "per_class_ap": m["per_class_ap"]})
        log(f"  epoch {row['epoch']:3d}  {clock[0]:7.1f} s  test mAP@[.5:.95] {m['map']:.4f}  mAP@.5 {m['map50']:.4f}"
            f"  mAP@.75 {m['map75']:.4f}  ({row['images_per_s']:,.1f} training images/s)")

    cnnlab.train(config=recipe, overrides=[f"out={out}", "plots=false", *overrides], on_epoch=on_epoch,
                 log=lambda *a: None)
    return curve


def inference_ms(checkpoint: Path, images: torch.Tensor, device: str, n: int = 50) -> float:
    """Milliseconds per image, batch of one, after 5 warm-up images (model in eval mode, fp32)."""
    lm = LoadedModel.from_checkpoint(checkpoint, device)
    x = lm.task.prepare(images[: n + 5].to(lm.device))
    with torch.no_grad():
        for img in x[:5]:
            lm.model([img])
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for img in x[5:]:
            lm.model([img])
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t) / n


def report(name: str, curve: list[dict], checkpoint: Path, test) -> dict:
    last = curve[-1]
    print(f"\n{name}: {last['seconds']:.1f} s of training, {last['images_per_s']:.1f} training images/s")
    print(f"  test mAP@[.5:.95] {last['map']:.4f}  mAP@.5 {last['map50']:.4f}  mAP@.75 {last['map75']:.4f}")
    print("  per-class AP: " + ", ".join(f"{c} {ap:.3f}" for c, ap in last["per_class_ap"].items()))
    times = {"cpu": inference_ms(checkpoint, test.images, "cpu")}
    if torch.cuda.is_available():
        times["cuda"] = inference_ms(checkpoint, test.images, "cuda")
    print("  inference per image (batch 1): " + ", ".join(f"{d} {ms:.1f} ms" for d, ms in times.items()))
    return {**last, "inference_ms": times}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 epoch on 500 scenes")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides (tuning only)")
    p.add_argument("--rcnn-epochs", type=int, default=0, help="also train the classic rcnn mode this many epochs")
    a = p.parse_args(argv)
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f}")
    test = cnnlab.load_dataset("shapes", "test", task="detect")
    overrides = list(a.set) + (["epochs=1"] if a.quick else [])
    if a.quick:
        test = test.subset(torch.arange(200))
    cfg = TrainConfig.from_sources(RECIPE, overrides)
    print(f"recipe: {RECIPE.relative_to(ROOT)} {' '.join(overrides)}\n  {cfg.model} {cfg.model_args}, "
          f"{cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr}, {cfg.schedule}, flip {cfg.flip}")
    ok = True
    with tempfile.TemporaryDirectory() as out:
        curve = train_curve(RECIPE, overrides, test, out)
        result = report("Faster R-CNN", curve, Path(out) / "last.pt", test)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from utilisation import checkpoint_line  # GFLOP/image x images/s over the matmul peaks, measured now
        print("  " + checkpoint_line(Path(out) / "last.pt", result["images_per_s"]))
        ok = result["map50"] >= BAR_MAP50 and result["map"] >= BAR_MAP and result["seconds"] <= BAR_SECONDS
        print(f"  bar (mAP@.5 >= {BAR_MAP50}, mAP@[.5:.95] >= {BAR_MAP} within {BAR_SECONDS:.0f} s): "
              f"{'met' if ok else 'NOT met'}")
    if a.rcnn_epochs:
        with tempfile.TemporaryDirectory() as out:
            rc = ["task=detect", "data=shapes", "model=rcnn", f"epochs={a.rcnn_epochs}", "batch_size=32",
                  "lr=0.02", "flip=true", "val_fraction=0.1"]
            print(f"\nclassic R-CNN: {' '.join(rc)}")
            curve = train_curve(None, rc, test, out)
            report("classic R-CNN (sliding windows + colour contrast, warped 32x32 crops, lecture CNN)",
                   curve, Path(out) / "last.pt", test)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
