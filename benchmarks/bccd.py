"""Detection on real photos: BCCD blood cells (Pascal VOC layout), Faster R-CNN's time-to-mAP.

    python benchmarks/bccd.py                              # the recipe (recipes/bccd.yaml), ~30 min
    python benchmarks/bccd.py --data PATH/TO/BCCD          # default: ../shared/data/bccd or $CNNLAB_DATA/bccd
    python benchmarks/bccd.py --quick                      # smoke run (< 3 min): 1 epoch on 40 images

Trains on ``train`` (205 photos), keeps the epoch with the best ``val`` mAP@[.5:.95] (87 photos;
``best.pt``), and scores it on ``test`` (72 photos) with COCO mAP (torchmetrics with pycocotools).
Every epoch it also prints test mAP, for the learning curve only (selection never sees test).
``seconds`` is cumulative training time with evaluation left out. The bar: test mAP@.5 >= 0.85
within 1,800 s of training on 2 CPU cores. Then per-image CPU latency (batch of one, after
warm-up) and a figure of test predictions beside the ground truth (``--figure``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

import cnnlab
from cnnlab.data.loader import Batches
from cnnlab.engine.config import TrainConfig
from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.runtime.distributed import Dist
from cnnlab.tasks.detect_plots import truth_and_prediction

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect_shapes import inference_ms  # noqa: E402  (one latency measurement for both benchmarks)

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "bccd.yaml"
BAR_MAP50, BAR_SECONDS = 0.85, 1800.0


def default_data() -> Path:
    for path in (Path(os.environ.get("CNNLAB_DATA", "~/.cache/cnnlab/data")).expanduser() / "bccd",
                 ROOT.parent / "shared" / "data" / "bccd"):
        if (path / "Annotations").is_dir():
            return path
    raise SystemExit("BCCD not found: pass --data PATH (a VOC folder with Annotations/, JPEGImages/, ImageSets/)")


def evaluate(model, task, data) -> dict:
    return task.evaluate(model, Batches(data, 8, next(model.parameters()).device, shuffle=False), Dist())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="the BCCD folder (VOC layout)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 epoch on 40 training photos")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides (tuning only)")
    p.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "bccd_test.jpg",
                   help="test predictions beside the ground truth")
    p.add_argument("--out", type=Path, help="keep the run folder here (default: a temporary folder)")
    a = p.parse_args(argv)
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f}")
    data = a.data or default_data()
    test = cnnlab.load_dataset(data, "test", task="detect")
    overrides = [f"data={data}", *a.set] + (["epochs=1"] if a.quick else [])
    cfg = TrainConfig.from_sources(RECIPE, overrides)
    print(f"recipe: {RECIPE.relative_to(ROOT)} {' '.join(overrides)}\n  {cfg.model} {cfg.model_args}, "
          f"pretrained {cfg.pretrained}, {cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr}, "
          f"{cfg.schedule}, flip {cfg.flip}")
    if a.quick:
        test = test.subset(torch.arange(16))
    curve, clock = [], [0.0]

    def on_epoch(row, model, task):
        clock[0] += row["seconds"]
        m = evaluate(model, task, test)
        curve.append({"epoch": row["epoch"], "seconds": clock[0], "images_per_s": row["images_per_s"],
                      "val_map": row.get("val_map"), "val_map50": row.get("val_map50"),
                      "test_map": m["map"], "test_map50": m["map50"]})
        print(f"  epoch {row['epoch']:3d}  {clock[0]:7.1f} s  val mAP {row.get('val_map', float('nan')):.4f} "
              f"mAP@.5 {row.get('val_map50', float('nan')):.4f}  |  test mAP {m['map']:.4f} mAP@.5 {m['map50']:.4f}"
              f"  ({row['images_per_s']:.2f} training images/s)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        out = str(a.out or tmp)
        if a.quick:
            overrides.append("val_fraction=0.1")
        run = cnnlab.train(config=RECIPE, overrides=[f"out={out}", "exist_ok=true", "plots=false", *overrides],
                           on_epoch=on_epoch,
                           log=lambda *x: None)
        lm = LoadedModel.from_checkpoint(Path(out) / "best.pt", "cpu")
        m = evaluate(lm.model, lm.task, test)
        best = max(curve, key=lambda r: r["val_map"] if r["val_map"] is not None else -1)
        seconds = curve[-1]["seconds"]
        print(f"\nFaster R-CNN, best val epoch {best['epoch']} of {len(curve)}: {seconds:.0f} s of training, "
              f"{sum(r['images_per_s'] for r in curve) / len(curve):.2f} training images/s")
        print(f"  test ({len(test)} photos): mAP@[.5:.95] {m['map']:.4f}  mAP@.5 {m['map50']:.4f}  mAP@.75 {m['map75']:.4f}")
        print("  per-class AP@[.5:.95]: " + ", ".join(f"{c} {ap:.3f}" for c, ap in m["per_class_ap"].items()))
        if "per_class_ap50" in m:
            print("  per-class AP@.5: " + ", ".join(f"{c} {ap:.3f}" for c, ap in m["per_class_ap50"].items()))
        print(f"  CPU latency per photo (batch 1, {torch.get_num_threads()} threads): "
              f"{inference_ms(Path(out) / 'best.pt', test.images, 'cpu', n=min(20, len(test) - 5)):.0f} ms")
        with torch.no_grad():
            lm.model.eval()
            preds = lm.model(lm.task.prepare(test.images[:6]))
        print(f"  figure: {truth_and_prediction(test.images[:6], test.targets[:6], preds, lm.task.classes, a.figure, names=test.files[:6])}")
        ok = m["map50"] >= BAR_MAP50 and seconds <= BAR_SECONDS
        print(f"  bar (test mAP@.5 >= {BAR_MAP50} within {BAR_SECONDS:.0f} s): {'met' if ok else 'NOT met'}")
        del run
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
