"""Utilisation: how close each recipe's training runs to the machine's matmul peak.

    python benchmarks/utilisation.py                          # every recipe in recipes/ whose data is here
    python benchmarks/utilisation.py --recipes cifar10 fashion-mnist --steps 20
    python benchmarks/utilisation.py --profile cifar10 bccd   # + torch.profiler's top 15 ops (self CPU time)
    python benchmarks/utilisation.py --recipes camvid --set compile=true   # a config key changed for every recipe

For each recipe: the model and data are built by the trainer's own set-up (``engine.trainer.setup``,
as ``cnnlab train --config recipes/NAME.yaml`` builds them), ``--warmup`` steps run untimed, then
``--steps`` steps are timed by the trainer's own epoch loop (``engine.trainer.train_epoch``, started
``--steps`` before the end of an epoch: the same batches, augmentation, autocast, optimizer,
schedule and lookahead as a real run; no validation). Then:

- **model GFLOP/image**: ``torch.utils.flop_counter.FlopCounterMode`` over one real training step
  (the task's ``training_step``: forward and loss, then backward) on a copy of the model, divided by
  the batch's images; a convolution's backward counts twice its forward (torch's own formula
  overcounts grouped and depthwise convolutions C-fold). It counts matmuls, convolutions and attention (what the peak measures);
  a sparse operand's product (the CPU RoIAlign's) counts only its stored entries; pooling,
  normalisation, element-wise ops and the optimizer are not counted.
- **achieved TFLOP/s** = GFLOP/image x training images/s.
- **% conv peak**: against the fastest of the recipe's own dense 3x3 convolutions (the shapes one
  training batch meets, forward + backward, bf16 weights and activations, channels-last, timed
  alone: ``conv_peak``): how far the recipe is from what its own layers could reach.
- **% of peak**: against the bf16 and fp32 matmul peaks (``matmul_peak``: large square matmuls,
  the fastest of ~2 s of timings at each of three sizes, all threads) measured in the same run, at its start and its end (the table takes the
  higher; the per-recipe lines printed during the run use the start's); the precision a recipe trains in (bf16 when the
  trainer takes bf16 autocast for it, else fp32) is listed first.

The caption recipe over a frozen encoder (flickr8k) computes the encoder's features for images it has
not seen (as in a first epoch); later epochs read them from the feature cache and do less work.
Recipes whose data is absent are skipped with the reason. Prints a table; ``--out DIR`` also writes it
(and the profile) to ``DIR/utilisation.txt``. Timings mean something only on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ORDER = ["fashion-mnist", "cifar10", "segment-shapes", "detect-shapes", "caption-shapes", "camvid", "bccd",
         "flickr8k"]


# ---------------------------------------------------------------------------------------------
# the three measurements
# ---------------------------------------------------------------------------------------------

def matmul_peak(dtype: torch.dtype, device: torch.device | str = "cpu", sizes: tuple[int, ...] | None = None,
                seconds: float = 2.0) -> float:
    """The machine's measured matmul peak in FLOP/s for ``dtype``: the fastest single timing of square
    (n, n) @ (n, n) matmuls on all of torch's threads, timed again and again for ``seconds`` at each
    size (n: 1024, 2048 and 4096 on a CPU; 8192 on a GPU). A shared machine's best moment needs
    seconds of trying: five matmuls moved 1.7x between two readings in one run."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    inner = 10 if cuda else 1  # matmuls per timing (a GPU matmul is too short to time alone)
    best = 0.0
    for n in sizes or ((8192,) if cuda else (1024, 2048, 4096)):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.matmul(a, b)  # warm-up (kernel selection, thread pool)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(inner):
                torch.matmul(a, b)
            if cuda:
                torch.cuda.synchronize(device)
            best = max(best, inner * 2 * n**3 / (time.perf_counter() - t0))
    return best


def cpu_kind() -> str:
    """The CPU's model name and its bf16 units: AMX tiles, AVX-512 bf16, or none."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    units = "AMX (amx_bf16)" if "amx_bf16" in flags else "AVX-512 bf16, no AMX" if "avx512_bf16" in flags else \
        "no bf16 units"
    return f"{model}, {units}"


def conv3x3_shapes(model: torch.nn.Module, task, batch) -> list[tuple]:
    """(input shape, out channels, stride) of every dense 3x3 convolution one training step runs."""
    shapes = set()

    def hook(m, inputs, output):
        shapes.add((tuple(inputs[0].shape), m.out_channels, m.stride))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1]
    handles = [m.register_forward_hook(hook) for m in convs]
    try:
        task.training_step(copy.deepcopy(model), batch, torch.Generator(device=batch[0].device).manual_seed(0))
    finally:
        for h in handles:
            h.remove()
    return sorted(shapes)


def conv_peak(shapes: list[tuple], device: torch.device | str = "cpu", seconds: float = 0.5) -> float:
    """The fastest FLOP/s of a 3x3 convolution at any of ``shapes`` (forward + backward, bf16 weights
    and activations, channels-last): the best these layers reach alone. The four largest shapes."""
    best = 0.0
    largest = sorted(shapes, key=lambda s: -(s[0][0] * s[0][1] * s[1] * s[0][2] * s[0][3]))[:4]
    for (b, cin, h, w), cout, stride in largest:
        conv = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False).to(device, torch.bfloat16,
                                                                      memory_format=torch.channels_last)
        x = torch.randn(b, cin, h, w, device=device, dtype=torch.bfloat16).to(memory_format=torch.channels_last)
        x.requires_grad_()
        ho, wo = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
        flop = 3 * 2 * b * cin * cout * 9 * ho * wo  # forward, and the backward's two products
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            conv(x).sum().backward()
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            best = max(best, flop / (time.perf_counter() - t0))
    return best


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """A convolution's backward: the forward's FLOPs for the input gradient and again for the weight
    gradient. torch's own formula (``flop_counter.conv_backward_flop``) ignores ``groups`` in the weight
    gradient and counts a depthwise convolution's C-fold (EfficientNet-Lite0's FCN-8s: 53 instead of ~4
    training GFLOP/image)."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (bool(output_mask[0]) + bool(output_mask[1]))


def _mm_flop(a, b, *args, out_val=None, **kwargs) -> int:
    """A matrix product, counting only the stored entries of a sparse operand (the sparse RoIAlign's
    ``S @ F`` and its backward ``S^T @ grad``); torch's own formula counts them as dense."""
    if a.layout != torch.strided:
        return 2 * a._nnz() * b.shape[-1]
    if b.layout != torch.strided:
        return 2 * b._nnz() * a.shape[0]
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


_mm_flop._get_raw = True  # FlopCounterMode passes the tensors, not only their shapes


def flops_per_image(model: torch.nn.Module, task, batch, bf16: bool = False) -> float:
    """Training FLOPs per image (forward + backward) of one real ``task.training_step`` on ``batch``,
    counted by ``FlopCounterMode`` on a copy of ``model`` in train mode (the model is left untouched:
    no weights, gradients or BatchNorm statistics change). ``bf16``: under the trainer's autocast."""
    from cnnlab.runtime.device import autocast

    probe = copy.deepcopy(getattr(model, "_orig_mod", model)).train()  # not the compiled wrapper
    device = next(probe.parameters()).device
    gen = torch.Generator(device=device).manual_seed(0)
    counter = FlopCounterMode(display=False,
                              custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flop,
                                              torch.ops.aten.mm: _mm_flop})
    with counter:
        with autocast(device, bf16):
            losses, _ = task.training_step(probe, batch, gen)
        sum(losses.values()).backward()
    return counter.get_total_flops() / len(batch[0])


def report(name: str, gflop_per_image: float, images_per_s: float, peaks: dict, bf16: bool) -> str:
    """One line: model GFLOP/image, images/s, achieved TFLOP/s and the fraction of the bf16 and fp32
    matmul peaks (``peaks``: {"bf16": FLOP/s, "fp32": FLOP/s}), the training precision first."""
    achieved = gflop_per_image * 1e9 * images_per_s
    own, other = ("bf16", "fp32") if bf16 else ("fp32", "bf16")
    frac = {k: achieved / peaks[k] if peaks.get(k) else float("nan") for k in ("bf16", "fp32")}
    return (f"{name}: {gflop_per_image:.3f} training GFLOP/image x {images_per_s:,.{0 if images_per_s >= 10 else 2}f} images/s = "
            f"{achieved / 1e12:.3f} TFLOP/s; trains in {own}: {100 * frac[own]:.0f}% of the {own} matmul peak "
            f"({100 * frac[other]:.0f}% of {other})")


def measure_peaks(device: torch.device | str = "cpu") -> dict:
    """{"bf16": FLOP/s, "fp32": FLOP/s} of this machine (bf16 left out where the device lacks it)."""
    peaks = {"fp32": matmul_peak(torch.float32, device)}
    try:
        peaks["bf16"] = matmul_peak(torch.bfloat16, device)
    except RuntimeError:
        pass
    return peaks


def utilisation_line(name: str, model, task, data, batch_size: int, images_per_s: float, bf16: bool,
                     peaks: dict | None = None) -> str:
    """``report`` for a trained model and its training split (for the training benchmarks' summaries):
    counts the FLOPs on one batch of ``data`` and measures the peaks now unless given."""
    from cnnlab.data.loader import Batches

    device = next(model.parameters()).device
    batch = next(iter(Batches(data, batch_size, device, shuffle=True, seed=0, drop_last=True).epoch(0)))
    gflop = flops_per_image(model, task, batch, bf16) / 1e9
    return report(name, gflop, images_per_s, peaks or measure_peaks(device), bf16)


def checkpoint_line(checkpoint, images_per_s: float, name: str = "utilisation") -> str:
    """``utilisation_line`` for a run's checkpoint (its model, task, config and training split)."""
    import cnnlab
    from cnnlab.runtime.device import use_bf16

    lm = cnnlab.load(checkpoint)
    cfg = lm.config
    train = cnnlab.load_dataset(cfg.data, "train", seed=cfg.seed, task=cfg.task, **cfg.data_options())
    bf16 = use_bf16(lm.device, cfg.amp, min(lm.task.input_shape[1:])) and lm.task.autocast
    return utilisation_line(name, lm.model, lm.task, train, cfg.batch_size, images_per_s, bf16)


# ---------------------------------------------------------------------------------------------
# one recipe
# ---------------------------------------------------------------------------------------------

def recipe_data(cfg) -> str | None:
    """The data a recipe reads from the project root: a relative path made absolute; CamVid from
    ../shared/data when $CNNLAB_DATA has none. None: keep the recipe's."""
    data = cfg.data
    if cfg.data == "camvid" and not os.environ.get("CNNLAB_DATA") and (SHARED / "camvid").is_dir():
        return f"camvid:{SHARED / 'camvid'}"
    if data.startswith(("./", "../")):
        path = (ROOT / data).resolve()
        return str(path)
    return None


def bench(name: str, steps: int, warmup: int, peaks: dict, profile: bool = False, sets: tuple = ()) -> dict:
    """Train ``name``'s recipe for ``warmup`` + ``steps`` steps; its row of the table (or a skip)."""
    from cnnlab.engine.config import TrainConfig
    from cnnlab.engine.trainer import setup, train_epoch
    from cnnlab.errors import CnnlabError
    from cnnlab.runtime.device import pick_device
    from cnnlab.runtime.distributed import Dist

    recipe = ROOT / "recipes" / f"{name}.yaml"
    cfg = TrainConfig.from_sources(recipe)
    data = recipe_data(cfg)
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"out={out}", "plots=false", *([f"data={data}"] if data else []), *sets]
        cfg = TrainConfig.from_sources(recipe, overrides)
        if data and "://" not in data and not Path(data.split(":", 1)[-1]).exists():
            return {"recipe": name, "skip": f"data absent: {data}"}
        t0 = time.perf_counter()
        try:
            run = setup(cfg, Dist(), pick_device(cfg.device), None, lambda *a, **k: None)
        except (CnnlabError, FileNotFoundError) as e:
            return {"recipe": name, "skip": f"data absent or unreadable: {e}".splitlines()[0]}
        setup_s = time.perf_counter() - t0
        run.threads = None  # all threads throughout, as the peak is measured (no tuner probing rounds)
        per_epoch = run.steps
        n = min(steps, per_epoch)
        w = min(warmup, per_epoch)
        # the trainer's epoch loop, started n steps before the end of an epoch: exactly n steps
        run.epoch, run.step = 0, per_epoch - w
        if w:
            train_epoch(run, 0)
        run.epoch, run.step = 1, per_epoch - n
        stats, _ = train_epoch(run, 1)
        batch = next(iter(run.train_batches.epoch(2)))
        gflop = flops_per_image(run.model, run.task, batch, run.bf16) / 1e9
        conv = conv_peak(conv3x3_shapes(run.model, run.task, batch), run.device) if run.bf16 else 0.0
        table = None
        if profile:
            from torch.profiler import ProfilerActivity
            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if run.device.type == "cuda" else [])
            run.epoch, run.step = 2, per_epoch - min(5, per_epoch)
            with torch.profiler.profile(activities=activities) as prof:
                train_epoch(run, 2)
            table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    images_per_s = n * cfg.batch_size / stats["seconds"]
    return {"recipe": name, "task": cfg.task, "model": cfg.model, "batch": cfg.batch_size, "bf16": run.bf16,
            "bf16_full": run.bf16_full, "conv_peak": conv, "steps": n, "gflop": gflop, "images_per_s": images_per_s, "setup_s": setup_s,
            "line": report(name, gflop, images_per_s, peaks, run.bf16), "profile": table}


def table(rows: list[dict], peaks: dict) -> str:
    lines = ["| recipe | task, model | batch | trains in | steps | GFLOP/image | images/s | TFLOP/s | "
             "% own peak | % bf16 peak | % fp32 peak | conv peak GFLOP/s | % conv peak |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skip" in r:
            lines.append(f"| {r['recipe']} | skipped: {r['skip']} |" + "  |" * 11)
            continue
        achieved = r["gflop"] * 1e9 * r["images_per_s"]
        pct = {k: f"{100 * achieved / v:.0f}%" if v else "-" for k, v in peaks.items()}
        own = "bf16" if r["bf16"] else "fp32"
        trains_in = "bf16 end to end" if r["bf16_full"] else "bf16 autocast" if r["bf16"] else "fp32"
        conv = (f"{r['conv_peak'] / 1e9:,.0f} | {100 * achieved / r['conv_peak']:.0f}%" if r["conv_peak"]
                else "- | -")
        lines.append(f"| {r['recipe']} | {r['task']}, {r['model']} | {r['batch']} | {trains_in} | {r['steps']} | "
                     f"{r['gflop']:.3f} | {r['images_per_s']:,.{0 if r['images_per_s'] >= 10 else 2}f} | {achieved / 1e12:.3f} | {pct.get(own, '-')} | "
                     f"{pct.get('bf16', '-')} | {pct.get('fp32', '-')} | {conv} |")
    return "\n".join(lines)


def _conv_note(row: dict) -> str:
    if not row["conv_peak"]:
        return ""
    achieved = row["gflop"] * 1e9 * row["images_per_s"]
    return f"; {100 * achieved / row['conv_peak']:.0f}% of its own 3x3 convolutions' peak ({row['conv_peak'] / 1e9:,.0f} GFLOP/s)"


def recipes_here() -> list[str]:
    names = [p.stem for p in sorted((ROOT / "recipes").glob("*.yaml"))]
    return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]


def main(argv: list[str] | None = None) -> int:
    available = recipes_here()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", nargs="+", default=available, choices=available, metavar="NAME",
                   help=f"which recipes (default: all: {', '.join(available)})")
    p.add_argument("--steps", type=int, default=50, help="timed training steps per recipe (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before them (default 10)")
    p.add_argument("--profile", nargs="+", default=[], choices=available, metavar="NAME",
                   help="also profile 5 steps of these recipes: torch.profiler's top 15 ops by self CPU time")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="sets",
                   help="config keys changed for every recipe (compile=true, amp=bf16, ...), as cnnlab train --set")
    p.add_argument("--out", type=Path, help="also write the output to OUT/utilisation.txt")
    a = p.parse_args(argv)
    if a.steps < 1 or a.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    a.recipes += [name for name in a.profile if name not in a.recipes]
    from cnnlab.runtime.device import pick_device

    device = pick_device("auto")
    text: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        text.append(line)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    say(f"machine: {cpu_kind()}; {os.cpu_count()} CPUs; device {device}"
        f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}; torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads; load average {load:.2f}")
    say(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    peaks = measure_peaks(device)
    say("matmul peak: " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()))
    rows = []
    for name in a.recipes:
        row = bench(name, a.steps, a.warmup, peaks, profile=name in a.profile, sets=tuple(a.sets))
        say(f"  {row['recipe']}: skipped ({row['skip']})" if "skip" in row else
            f"  {row['line']}{_conv_note(row)} (set-up {row['setup_s']:.0f} s)")
        rows.append(row)
    peaks_end = measure_peaks(device)  # the machine may have changed under the run
    say("matmul peak at the end: " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks_end.items()))
    best = {k: max(v, peaks_end.get(k, 0.0)) for k, v in peaks.items()}
    say()
    say(f"Training utilisation ({a.steps} timed steps after {a.warmup} warm-up; % of the higher of the peaks "
        f"measured at the start and at the end: " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in best.items())
        + ")")
    say(table(rows, best))
    for r in rows:
        if r.get("profile"):
            say(f"\ntorch.profiler: {r['recipe']}, 5 training steps, top 15 ops by self CPU time")
            say(r["profile"])
    if hasattr(os, "getloadavg"):
        say(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "utilisation.txt").write_text("\n".join(text) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
