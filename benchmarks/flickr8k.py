"""Flickr8k captions of real photos: BLEU-4 on the official test photos against CPU training time.

    python benchmarks/flickr8k.py                          # the recipe (recipes/flickr8k.yaml), then the figures
    python benchmarks/flickr8k.py --epochs 4               # a short run: the whole schedule in 4 epochs
    python benchmarks/flickr8k.py --minutes 10             # the recipe, training stopped after ~10 minutes
    python benchmarks/flickr8k.py --data ~/Flickr8k_text --images ~/Flicker8k_Dataset   # your own copy

Trains Show-Attend-and-Tell over the frozen ImageNet-pretrained EfficientNet-Lite0 encoder
(its feature maps are computed once per photo and kept, so epochs run only the LSTM decoder)
on the train photos of the official split lists, keeps the epoch with the best dev (val)
BLEU-4, and scores it on the test photos: corpus BLEU-1..4 and CIDEr-D against all five human
references, for greedy decoding and beam search. ``train seconds`` sums the trainer's
training loops (the first epoch includes computing the encoder features of the training
photos); per-epoch validation is left out of it and shown in the wall time.

The FLOOR, printed in the same run: the training caption that scores the best corpus BLEU-4
against all training references when given to every training photo (out of a few hundred
sampled training captions), given to every test photo. A captioner that does not beat it
has learnt the language of the captions and nothing about the photos.

Writes ``<out>/test_captions.png``: 8 test photos, each with the generated caption (bold)
and one human reference. The bar: beam-3 BLEU-4 >= 0.15 within 30 minutes of training on
2 CPU cores.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

import torch

import cnnlab
from cnnlab.data.caption_text import PAD_ID, UNK_ID
from cnnlab.images import read_image
from cnnlab.tasks.caption_metrics import caption_metrics, constant_caption_bleu
from cnnlab.tasks.caption_plots import plot_captions

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "flickr8k.yaml"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "flickr8k"
BAR_BLEU4, BAR_SECONDS, BEAM = 0.15, 30 * 60.0, 3


class TimeUp(KeyboardInterrupt):
    """--minutes ran out: the trainer saves where it stands and best.pt is what was reached."""


def references(data) -> list[list[str]]:
    """The human captions of every image of a caption split, as (tokenised) strings."""
    return [[" ".join(data.classes[i] for i in row if i >= UNK_ID) for row in image if row[0] != PAD_ID]
            for image in data.labels.tolist()]


def decode_all(lm, images: torch.Tensor, beam: int, cache, batch: int = 64) -> tuple[list[str], float]:
    """Captions of all images (the encoder's features come from ``cache`` after the first pass)."""
    t0, out = time.perf_counter(), []
    for i in range(0, len(images), batch):
        beams = lm.task.generate(lm.model, images[i:i + batch].to(lm.device), beam=beam, cache=cache)
        out += [" ".join(b[0]["words"]) for b in beams]
    return out, time.perf_counter() - t0


def floor(train_refs: list[list[str]], test_refs: list[list[str]], candidates: int, seed: int = 0) -> tuple[str, float, dict]:
    """The best constant caption on train (among ``candidates`` sampled training captions): the
    caption, its training BLEU-4, and its test metrics."""
    pool = sorted({c for image in train_refs for c in image})
    sample = random.Random(seed).sample(pool, min(candidates, len(pool)))
    scores = constant_caption_bleu(sample, train_refs)
    best = max(range(len(sample)), key=scores.__getitem__)
    return sample[best], scores[best], caption_metrics([sample[best]] * len(test_refs), test_refs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, default=RECIPE)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Flickr8k folder (captions.txt or Flickr8k.token.txt, split lists)")
    p.add_argument("--images", default=None, help="the folder of the photos, when not beside the captions")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides (tuning)")
    p.add_argument("--epochs", type=int, default=None, help="train this many epochs (the schedule fits them)")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop training once the next epoch would pass this many minutes (keeps the best epoch so far)")
    p.add_argument("--out", type=Path, default=Path("runs/flickr8k"))
    p.add_argument("--floor-candidates", type=int, default=400, help="training captions tried as the constant caption")
    a = p.parse_args(argv)
    if not Path(a.data).exists():
        print(f"Flickr8k not found at {a.data}; pass --data PATH")
        return 2
    print(f"cnnlab {cnnlab.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    overrides = [f"data={a.data}", f"out={a.out}", "exist_ok=true", *a.set] + ([f"epochs={a.epochs}"] if a.epochs else []) \
        + ([f"images={a.images}"] if a.images else [])
    print(f"recipe {a.recipe.name} {' '.join(overrides)}" + (f"; at most {a.minutes:g} minutes" if a.minutes else ""))
    rows: list[dict] = []

    def on_epoch(row, model, task):
        rows.append(row)
        spent = sum(r["seconds"] for r in rows)
        print(f"  epoch {row['epoch']:3d}  {spent:7.1f} s  loss {row['train_loss']:.3f}  next-word acc "
              f"{row.get('train_acc', float('nan')):.3f}  {row['images_per_s']:6.1f} img/s  dev BLEU-4 "
              f"{row['val_bleu4']:.4f}  CIDEr-D {row['val_cider']:.3f}  load {os.getloadavg()[0]:.1f}", flush=True)
        per_epoch = sum(r["seconds"] for r in rows[1:]) / max(len(rows) - 1, 1) if len(rows) > 1 else row["seconds"]
        if a.minutes and spent + per_epoch > 60 * a.minutes:
            raise TimeUp

    t0 = time.perf_counter()
    run = cnnlab.train(config=a.recipe, overrides=overrides, on_epoch=on_epoch, log=None, plots=False)
    wall = time.perf_counter() - t0
    seconds = sum(r["seconds"] for r in rows)
    lm = cnnlab.load(a.out / "best.pt")
    cfg = lm.config
    size = lm.task.input_shape[1]
    opts = {**cfg.data_options(), "image_size": size}
    train = cnnlab.load_dataset(cfg.data, "train", task="caption", **opts)
    test = cnnlab.load_dataset(cfg.data, "test", task="caption", **opts)
    n_train = (len(train) // cfg.batch_size) * cfg.batch_size
    best = max(rows, key=lambda r: r["val_bleu4"])
    print(f"model {cfg.model} over {cfg.model_args.get('encoder')} (pretrained {cfg.pretrained}, frozen "
          f"{cfg.freeze_backbone}); vocabulary {len(lm.task.vocab)} words (min count {cfg.task_config.min_word_count}, train "
          f"captions); {size}x{size} photos")
    print(f"training: {len(rows)} epochs{' (stopped by --minutes)' if run.interrupted else ''}, {seconds:.1f} s "
          f"({seconds / 60:.1f} min), {n_train * len(rows) / seconds:.1f} images/s; {wall:.0f} s wall with "
          f"per-epoch dev evaluation; best dev BLEU-4 {best['val_bleu4']:.4f} at epoch {best['epoch']}")

    images = torch.stack([test[i][0] for i in range(len(test))])
    refs = references(test)
    print(f"test: {len(test)} photos, {sum(map(len, refs))} human references")
    print(f"{'decoding':<12}{'BLEU-1':>8}{'BLEU-2':>8}{'BLEU-3':>8}{'BLEU-4':>8}{'CIDEr-D':>9}{'ms/caption':>12}")
    cache = lm.task.new_cache()
    decode_all(lm, images, 1, cache)  # fills the encoder-feature cache: the rows below time the decoder
    results = {}
    for name, beam in (("greedy", 1), (f"beam {BEAM}", BEAM)):
        hyps, secs = decode_all(lm, images, beam, cache)
        m = results[name] = {**caption_metrics(hyps, refs), "hyps": hyps}
        print(f"{name:<12}{m['bleu1']:8.4f}{m['bleu2']:8.4f}{m['bleu3']:8.4f}{m['bleu4']:8.4f}{m['cider']:9.3f}"
              f"{1000 * secs / len(test):12.1f}")
    caption, train_bleu, f = floor(references(train), refs, a.floor_candidates)
    print(f"{'FLOOR':<12}{f['bleu1']:8.4f}{f['bleu2']:8.4f}{f['bleu3']:8.4f}{f['bleu4']:8.4f}{f['cider']:9.3f}"
          f"{'':>12}  one caption for every photo: {caption!r} (train BLEU-4 {train_bleu:.4f}, best of "
          f"{a.floor_candidates} training captions)")
    hyps = results[f"beam {BEAM}"]["hyps"]
    print(f"distinct beam-{BEAM} captions: {len(set(hyps))} of {len(hyps)}")
    for h, r in list(zip(hyps, refs))[:5]:
        print(f"  {h!r}  <- {r[0]!r}")

    shown = list(range(0, len(test), max(1, len(test) // 8)))[:8]
    photos = [read_image(test.files[i], channels=3) for i in shown]
    figure = plot_captions(photos, [hyps[i] for i in shown], [refs[i][0] for i in shown], a.out / "test_captions.png")
    print(f"figure: {figure}")
    b4, g4 = results[f"beam {BEAM}"]["bleu4"], results["greedy"]["bleu4"]
    ok = b4 >= BAR_BLEU4 and seconds <= BAR_SECONDS
    print(f"bar: beam-{BEAM} BLEU-4 {b4:.4f} >= {BAR_BLEU4} within {BAR_SECONDS / 60:.0f} min of training "
          f"({seconds / 60:.1f} min): {'PASS' if ok else 'FAIL'}; above the floor ({f['bleu4']:.4f}): "
          f"{'yes' if b4 > f['bleu4'] else 'NO'}; greedy {g4:.4f}; load average {os.getloadavg()[0]:.2f}")
    print(f"try: cnnlab predict {a.out / 'best.pt'} {test.files[0]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
