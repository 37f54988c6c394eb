"""Inference fast paths against plain PyTorch eager fp32 NCHW, all in one process.

Fast paths: channels_last; channels_last + bf16 autocast; torch.compile (fp32, channels_last);
onnxruntime fp32 (a file written by ``cnnlab export``, parity-checked). Three measurements:

1. latency at 224x224, batch 1 and 32, ResNet-18 (random weights) and EfficientNet-Lite0
   (pretrained), as speed-ups over eager fp32 (compile time reported apart);
2. top-1 agreement with eager fp32 of pretrained EfficientNet-Lite0 on real photos (CIFAR-10
   test images upsampled to 224; bar >= 99%);
3. accuracy change of a fine-tuned classifier (lecture_cnn on digits; bar <= 0.5 points);
4. with ``--segment CHECKPOINT`` (a segmentation run, e.g. the camvid recipe's): milliseconds per
   480x360 frame, batch 1, through each PyTorch path (segmentation has no ONNX export yet; bar
   <= 100 ms on 2 CPU cores, issue 26).

    python benchmarks/inference.py --quick    # 100 images, few repeats, 3 training epochs
    python benchmarks/inference.py            # 1,000 images, 8 epochs: run on a quiet machine
    python benchmarks/inference.py --threads 1   # steadier ratios when other jobs share the cores
    python benchmarks/inference.py --segment runs/camvid/best.pt --only-segment   # road-scene frames alone
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

import cnnlab
from cnnlab.runtime.device import bf16_supported
from cnnlab.deploy.export import export_model
from cnnlab.deploy.pytorch_model import LoadedModel, imagenet_classes
from cnnlab.deploy.onnx_model import OnnxModel
from cnnlab.models import model_info
from cnnlab.tasks.classify import ClassifyTask

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"
BATCH_SIZES = (1, 32)
EVAL_BATCH = 32            # agreement/accuracy batches, padded: compiled graphs are shape-specialised
AGREEMENT_BAR = 0.99       # top-1 agreement with eager fp32, fraction of images
ACCURACY_BAR = 0.005       # |accuracy change| against eager fp32, fraction (0.5 points)
SEGMENT_FRAME_MS = 100.0   # a 480x360 road-scene frame, batch 1, 2 CPU cores (issue 26)


# ---------------------------------------------------------------------- fast paths
@dataclass
class FastPath:
    name: str
    run: Callable[[Tensor], Tensor]                 # normalised fp32 batch in `layout` -> fp32 logits
    layout: torch.memory_format = torch.contiguous_format
    first_call_s: dict = field(default_factory=dict)  # batch size -> seconds of the first call


def fast_paths(lm: LoadedModel, workdir: Path, onnx: bool = True) -> list[FastPath]:
    """Eager fp32 NCHW (the reference) and each fast path, over copies of ``lm.model``."""
    eager = copy.deepcopy(lm.model).to("cpu", torch.float32).eval()
    cl = copy.deepcopy(eager).to(memory_format=torch.channels_last)
    compiled = torch.compile(cl, dynamic=False)

    def bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return cl(x).float()

    last = torch.channels_last
    paths = [FastPath("eager fp32 NCHW", eager),
             FastPath("channels_last", cl, last),
             FastPath("channels_last + bf16", bf16, last),
             FastPath("torch.compile", compiled, last)]
    if not onnx:
        return paths
    exported = export_model(lm, workdir / f"{lm.name}.onnx")
    session = OnnxModel.from_file(exported["path"]).session
    name = session.get_inputs()[0].name
    return paths + [FastPath("onnxruntime fp32", lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0]))]


# ---------------------------------------------------------------------- measurements
def latency(paths: list[FastPath], x: Tensor, repeats: int) -> dict[str, float]:
    """Median seconds per call of each path on batch ``x``, measured round-robin."""
    inputs = {p.name: x.contiguous(memory_format=p.layout) for p in paths}
    for p in paths:
        t = time.perf_counter()
        p.run(inputs[p.name])  # the first call compiles / plans
        p.first_call_s[len(x)] = time.perf_counter() - t
        p.run(inputs[p.name])
    times = {p.name: [] for p in paths}
    for _ in range(repeats):  # round-robin: a load spike on a shared machine hits every path alike
        for p in paths:
            t = time.perf_counter()
            p.run(inputs[p.name])
            times[p.name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def all_logits(paths: list[FastPath], task, images: Tensor) -> dict[str, Tensor]:
    """Each path's fp32 logits (N, K) for uint8 ``images``, in padded batches of EVAL_BATCH."""
    out = {p.name: [] for p in paths}
    for chunk in images.split(EVAL_BATCH):
        n = len(chunk)
        pad = chunk[:1].expand(EVAL_BATCH - n, -1, -1, -1)
        x = task.prepare(torch.cat([chunk, pad])).contiguous()  # (EVAL_BATCH, C, H, W) NCHW
        for p in paths:
            out[p.name].append(p.run(x.contiguous(memory_format=p.layout))[:n])
    return {k: torch.cat(v) for k, v in out.items()}


# ---------------------------------------------------------------------- models and data
def resnet18() -> LoadedModel:
    """ResNet-18 with random weights (speed does not depend on them) and ImageNet's task."""
    info = model_info("resnet18")
    torch.manual_seed(0)
    task = ClassifyTask(imagenet_classes(), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], info.input_size)
    return LoadedModel(cnnlab.get_model("resnet18", num_classes=1000).eval(), task, torch.device("cpu"), "resnet18")


def cifar_images(root: Path, n: int) -> Tensor | None:
    """``n`` CIFAR-10 test images (uint8, 32x32) in a fixed random order; None without the folder."""
    if not root.is_dir():
        return None
    images = cnnlab.load_dataset(root, "test").images
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]]


def digits_classifier(checkpoint: str | None, epochs: int, workdir: Path) -> LoadedModel:
    """The given checkpoint, or lecture_cnn fine-tuned on digits for ``epochs``."""
    if checkpoint is None:
        run = cnnlab.train(data="digits", epochs=epochs, out=str(workdir / "digits"), plots=False,
                           workers=0, log=lambda *a, **k: None)
        checkpoint = run.out / "best.pt"
    return LoadedModel.from_checkpoint(checkpoint, "cpu")


# ---------------------------------------------------------------------- report
START = time.perf_counter()


def progress(msg: str) -> None:
    print(f"[{time.perf_counter() - START:5.0f} s] {msg}", file=sys.stderr, flush=True)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def latency_rows(model: str, paths: list[FastPath], ms: dict[int, dict[str, float]]) -> list[list]:
    rows = []
    for p in paths:
        row = [model, p.name]
        for b in BATCH_SIZES:
            t, base = ms[b][p.name], ms[b][paths[0].name]
            row += [f"{1e3 * t:.1f}", f"{base / t:.2f}x"]
        compile_s = [p.first_call_s[b] - ms[b][p.name] for b in BATCH_SIZES] if p.name == "torch.compile" else []
        rows.append(row + [" / ".join(f"{s:.1f}" for s in compile_s) or "-"])
    return rows


def agreement_rows(paths: list[FastPath], lm: LoadedModel, images: Tensor) -> list[list]:
    logits = all_logits(paths, lm.task, images)
    ref = logits[paths[0].name]
    confident = ref.softmax(1).amax(1) >= 0.5  # fp32 top-1 probability >= 0.5: not a near tie
    rows = []
    for p in paths[1:]:
        same = logits[p.name].argmax(1) == ref.argmax(1)
        agree, sure = float(same.float().mean()), float(same[confident].float().mean())
        diff = float((logits[p.name] - ref).abs().max())
        rows.append([p.name, len(images), f"{100 * agree:.1f}%", f"{100 * sure:.1f}% of {int(confident.sum())}",
                     f"{diff:.2g}", "pass" if agree >= AGREEMENT_BAR else "FAIL"])
    return rows


def accuracy_rows(paths: list[FastPath], lm: LoadedModel, test) -> list[list]:
    logits = all_logits(paths, lm.task, test.images)
    acc = {k: float((v.argmax(1) == test.labels).float().mean()) for k, v in logits.items()}
    rows = []
    for p in paths:
        change = acc[p.name] - acc[paths[0].name]
        rows.append([p.name, len(test), f"{100 * acc[p.name]:.2f}%", f"{100 * change:+.2f}",
                     "pass" if abs(change) <= ACCURACY_BAR else "FAIL"])
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 images, fewer repeats, 3 epochs")
    ap.add_argument("--cifar", type=Path, default=CIFAR, help="CIFAR-10 folder (skipped when absent)")
    ap.add_argument("--checkpoint", help="fine-tuned classifier to check (default: train digits here)")
    ap.add_argument("--segment", help="a segmentation checkpoint: time 480x360 frames through it")
    ap.add_argument("--only-segment", action="store_true", help="with --segment: only that table")
    ap.add_argument("--threads", type=int, help="intra-op threads for PyTorch and onnxruntime "
                    "(default: PyTorch's; 1 gives steadier ratios on a busy machine)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as tmp:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")  # cold: report a first compile
        report(a, Path(tmp))


def segment_frames(checkpoint: str, workdir: Path, repeats: int) -> None:
    """Milliseconds per 480x360 frame (batch 1) of a segmentation checkpoint through each path."""
    lm = LoadedModel.from_checkpoint(checkpoint, "cpu")
    progress(f"{checkpoint}: 480x360 frames")
    paths = fast_paths(lm, workdir, onnx=False)
    frame = torch.randint(0, 256, (1, lm.task.input_shape[0], 360, 480), dtype=torch.uint8)
    with torch.no_grad():
        ms = latency(paths, lm.task.prepare(frame), repeats)
    rows = []
    for p in paths:
        t = ms[p.name]
        rows.append([p.name, f"{1e3 * t:.1f}", f"{ms[paths[0].name] / t:.2f}x", f"{1 / t:.1f}",
                     "pass" if 1e3 * t <= SEGMENT_FRAME_MS else "over"])
    print(f"\n## Segmentation: one 480x360 frame ({checkpoint}: {lm.config.model} over "
          f"{lm.config.task_config.backbone or '-'}; bar <= {SEGMENT_FRAME_MS:.0f} ms)\n")
    print(table(["path", "ms per frame", "speed-up", "frames/s", "bar"], rows), flush=True)


def report(a: argparse.Namespace, workdir: Path) -> None:
    """Measure and print the tables; ``workdir`` holds the run, exports and compile cache."""
    n_images, repeats, epochs = (100, {1: 10, 32: 3}, 3) if a.quick else (1000, {1: 50, 32: 10}, 8)
    load = os.getloadavg()[0]
    print(f"# {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, bf16 native: "
          f"{bf16_supported(torch.device('cpu'))}, load average {load:.1f}"
          + ("  (busy machine: timings are noisy)" if load > 2 else ""), flush=True)
    if a.segment:
        segment_frames(a.segment, workdir, repeats[1])
        if a.only_segment:
            return
    progress("fine-tuned classifier")
    digits = digits_classifier(a.checkpoint, epochs, workdir)
    with torch.no_grad():
        effnet = LoadedModel.from_pretrained("efficientnet_lite0", "cpu")
        rows, agree = [], None
        for lm in (resnet18(), effnet):
            progress(f"{lm.name}: export to ONNX")
            paths = fast_paths(lm, workdir)
            progress(f"{lm.name}: latency (the first calls compile)")
            x = lm.task.prepare(torch.randint(0, 256, (max(BATCH_SIZES), *lm.task.input_shape), dtype=torch.uint8))
            rows += latency_rows(lm.name, paths, {b: latency(paths, x[:b], repeats[b]) for b in BATCH_SIZES})
            if lm is effnet and (images := cifar_images(a.cifar, n_images)) is not None:
                progress(f"{lm.name}: agreement on {len(images)} images")
                agree = agreement_rows(paths, lm, images)
        print("\n## Latency at 224x224 (median ms per batch; speed-up over eager fp32 NCHW)\n")
        print(table(["model", "path", "batch 1 ms", "speed-up", "batch 32 ms", "speed-up",
                     "compile s (b1 / b32)"], rows))
        print("\n## Top-1 agreement with eager fp32: pretrained EfficientNet-Lite0 on CIFAR-10 test images "
              f"upsampled to 224 (bar >= {100 * AGREEMENT_BAR:.0f}%)\n")
        print(table(["path", "images", "agreement", "where fp32 top-1 prob >= 0.5", "max abs logit diff", "bar"],
                    agree)
              if agree else f"skipped: no CIFAR-10 folder at {a.cifar}", flush=True)
        test = cnnlab.load_dataset(digits.config.data, "test", seed=digits.config.seed)
        progress("fine-tuned classifier: accuracy")
        rows = accuracy_rows(fast_paths(digits, workdir), digits, test)
    print(f"\n## Accuracy of a fine-tuned classifier ({digits.name} on {digits.config.data}, "
          f"{'given checkpoint' if a.checkpoint else f'{epochs} epochs'}; bar: change <= "
          f"{100 * ACCURACY_BAR:.1f} points)\n")
    print(table(["path", "test images", "top-1", "change (points)", "bar"], rows))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
