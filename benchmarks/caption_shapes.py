"""Shapes captions: BLEU-4 on held-out scenes after at most 15 minutes of CPU training.

    python benchmarks/caption_shapes.py                 # the recipe, then test-set figures
    python benchmarks/caption_shapes.py --quick         # smoke run (< 1 min): 256 scenes, 1 epoch

Trains ``recipes/caption-shapes.yaml`` through ``cnnlab.train`` (10,000 training scenes),
then on the 1,000 held-out test scenes (their own seed stream) reports, for greedy decoding
and beam search: corpus BLEU-1..4 and CIDEr-D against all references, and the share of
captions that name every object correctly (``names_every_object``: each object named by its
shape word, every size/colour/count said true). Also training images/s and per-caption
inference time (batch of one, and batched). Bars: BLEU-4 >= 0.80 with training <= 900 s,
beam >= greedy. Prints; writes nothing but the run folder.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

import cnnlab
from cnnlab.data.builtin import caption_shapes
from cnnlab.data.builtin.caption_shapes import caption_scenes, names_every_object, split_scenes
from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.tasks.caption_metrics import caption_metrics

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "caption-shapes.yaml"
BAR_BLEU4, BAR_SECONDS = 0.80, 900.0


def decode_all(lm: LoadedModel, images: torch.Tensor, beam: int, batch: int = 250) -> tuple[list[str], float]:
    """Captions for all images, and the seconds they took."""
    t0, out = time.perf_counter(), []
    for i in range(0, len(images), batch):
        beams = lm.task.generate(lm.model, images[i:i + batch].to(lm.device), beam=beam)
        out += [" ".join(b[0]["words"]) for b in beams]
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(RECIPE))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides (tuning)")
    p.add_argument("--out", default="runs/bench-caption-shapes")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    overrides = list(a.set) + [f"out={a.out}", "exist_ok=true"]  # a rerun replaces its run
    if a.quick:
        caption_shapes.CAPTION_SPLIT_SIZES.update(train=256, val=64, test=64)
        overrides += ["epochs=1"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()}")

    t0 = time.perf_counter()
    run = cnnlab.train(config=a.recipe, overrides=overrides, plots=True)
    wall = time.perf_counter() - t0
    train_s = sum(r["seconds"] for r in run.history)
    ips = sum(r["images_per_s"] * r["seconds"] for r in run.history) / max(train_s, 1e-9)
    print(f"training: {len(run.history)} epochs, {train_s:.1f} s in the training loop "
          f"({ips:.0f} images/s), {wall:.1f} s wall with data generation and per-epoch validation")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from utilisation import checkpoint_line  # GFLOP/image x images/s over the matmul peaks, measured now
    print(checkpoint_line(run.out / "best.pt", ips))

    lm = cnnlab.load(run.out / "best.pt")
    size = lm.task.input_shape[1]
    seed = lm.config.seed
    scenes = split_scenes("test", seed, size)
    test = caption_scenes(scenes, "shapes-captions/test")
    refs = [s.captions for s in scenes]
    print(f"test: {len(scenes)} held-out scenes, {size}x{size}, {sum(map(len, refs))} references")
    print(f"{'decoding':<10}{'BLEU-1':>8}{'BLEU-2':>8}{'BLEU-3':>8}{'BLEU-4':>8}{'CIDEr-D':>9}"
          f"{'all objects named':>19}{'ms/caption':>12}")
    results = {}
    for name, beam in (("greedy", 1), (f"beam {a.beam}", a.beam)):
        hyps, seconds = decode_all(lm, test.images, beam)
        m = caption_metrics(hyps, refs)
        named = sum(names_every_object(h, s.objects) for h, s in zip(hyps, scenes)) / len(scenes)
        results[name] = m
        print(f"{name:<10}{m['bleu1']:8.4f}{m['bleu2']:8.4f}{m['bleu3']:8.4f}{m['bleu4']:8.4f}"
              f"{m['cider']:9.3f}{named:19.3f}{1000 * seconds / len(scenes):12.2f}")
    single = []
    for i in range(20):  # batch of one: the latency of `cnnlab predict` on one image
        t = time.perf_counter()
        lm.task.generate(lm.model, test.images[i:i + 1].to(lm.device), beam=a.beam)
        single.append(time.perf_counter() - t)
    print(f"one image at a time, beam {a.beam}: {1000 * sorted(single)[len(single) // 2]:.1f} ms/caption (median of 20)")
    for h, s in list(zip(hyps, scenes))[:5]:
        print(f"  {h!r}  <- {s.captions[0]!r}")
    beam_bleu, greedy_bleu = results[f"beam {a.beam}"]["bleu4"], results["greedy"]["bleu4"]
    print(f"bar: BLEU-4 {beam_bleu:.4f} >= {BAR_BLEU4} with {train_s:.0f} s <= {BAR_SECONDS:.0f} s of training: "
          f"{'PASS' if beam_bleu >= BAR_BLEU4 and train_s <= BAR_SECONDS else 'FAIL'}; "
          f"beam >= greedy ({beam_bleu:.4f} vs {greedy_bleu:.4f}): {'PASS' if beam_bleu >= greedy_bleu else 'FAIL'}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
