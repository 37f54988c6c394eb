"""GPU beside airbench: airbench94's own training and cnnlab's CIFAR-10 recipe on one GPU, same data.

    python benchmarks/gpu_airbench.py --out DIR                  # on a CUDA machine (~3-5 min on an H100)
    python benchmarks/gpu_airbench.py --data PATH --out DIR      # CIFAR-10 image-folder tree elsewhere
    python benchmarks/gpu_airbench.py --set compile=true         # cnnlab recipe overrides (tuning)
    python benchmarks/gpu_airbench.py --cpu-smoke                # both on the CPU, a few steps on a subset

Without CUDA (and without ``--cpu-smoke``) it prints one line saying it needs a GPU and exits 0.

**airbench94** is a transcription, in this file, of Keller Jordan's airbench94 as published on PyPI
(``airbench`` 0.1.8, ``airbench/lib_airbench94.py`` and ``airbench/utils.py``; MIT licence;
https://github.com/KellerJordan/cifar10-airbench): the same network (2x2 whitening conv initialised
from the patch covariance of 5,000 training images, then conv groups of 64/256/256 with max-pool,
BatchNorm and GELU, fp16 weights with fp32 BatchNorm, channels_last), the same data pipeline
(normalised fp16 images resident on the GPU, reflect-padded once, random 2-pixel translate per
epoch, alternate-epoch flipping), the same optimiser (Nesterov SGD in airbench's decoupled
parametrisation: lr 11.5 and weight decay 0.0153 per 1024 examples, momentum 0.85, BatchNorm biases
at 64x the lr; batch 1024; label smoothing 0.2; triangular schedule 0.2 -> 1 at 23% -> 0.07;
whitening bias trained for 3 epochs), lookahead every 5 steps, 9.9 epochs and test-time augmentation
(mirror + 1-pixel translates). Changes, none in the training arithmetic: the device is a parameter
(``--cpu-smoke`` runs it in fp32 on the CPU), the images come from the same uint8 tensors that
cnnlab's loader decodes (not torchvision's download), and each epoch's training seconds are returned
instead of printed. As in airbench's own ``main``, one warm-up run (one step) precedes the timed run.
Its timing, like airbench's, excludes evaluation and includes the whitening initialisation (in the
mean seconds per epoch, not in the median of epochs 2+); cnnlab's whitening initialisation runs in the
trainer's set-up and is not in its epoch seconds.

**cnnlab** trains ``recipes/cifar10.yaml`` through ``cnnlab.train`` on the same image-folder tree
(49,000 train / 1,000 val after the recipe's ``val_fraction``); its seconds are the trainer's
per-epoch training seconds (validation and checkpoints excluded). Scores: test top-1 of best.pt
single view (and with airbench's 6-view TTA at the last epoch). Before the timed run a one-epoch run
on 2,048 images warms the GPU (cuDNN autotuning, kernels).

Printed: seconds per epoch (mean over all epochs, and the median of epochs 2+), training images/s,
test accuracy, and the ratio cnnlab / airbench94 (goal: <= 1.5). ``--out DIR`` writes the same lines
to ``DIR/gpu_airbench.txt``.

Data on a device machine: ``../shared/data`` does not travel with the working tree. Copy the tree
into an ignored folder of the checkout (``echo /.data/ >> .git/info/exclude; mkdir -p .data;
cp -r ../shared/data/cifar10 .data/``: ~55 MB of JPEGs), carry ``.data`` and pass
``--data .data/cifar10``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from math import ceil
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "cifar10.yaml"
DATA_CANDIDATES = [ROOT.parent / "shared" / "data" / "cifar10", ROOT / ".data" / "cifar10",
                   ROOT / "shared" / "data" / "cifar10"]
GOAL_RATIO = 1.5

# =============================================================================================
# airbench94 (Keller Jordan, MIT): lib_airbench94.py + utils.py of the airbench 0.1.8 package
# =============================================================================================

HYP = {
    "opt": {
        "train_epochs": 9.9,
        "batch_size": 1024,
        "lr": 11.5,                 # learning rate per 1024 examples
        "momentum": 0.85,
        "weight_decay": 0.0153,     # weight decay per 1024 examples (decoupled from learning rate)
        "bias_scaler": 64.0,        # scales up learning rate (but not weight decay) for BatchNorm biases
        "label_smoothing": 0.2,
        "whiten_bias_epochs": 3,    # how many epochs to train the whitening layer bias before freezing
    },
    "aug": {"flip": True, "translate": 2},
    "net": {"widths": {"block1": 64, "block2": 256, "block3": 256}, "batchnorm_momentum": 0.6,
            "scaling_factor": 1 / 9, "tta_level": 2},
}
CIFAR_MEAN = torch.tensor((0.4914, 0.4822, 0.4465))
CIFAR_STD = torch.tensor((0.2470, 0.2435, 0.2616))


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class Mul(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


class BatchNorm(nn.BatchNorm2d):
    def __init__(self, num_features, momentum, eps=1e-12, weight=False, bias=True):
        super().__init__(num_features, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad = weight
        self.bias.requires_grad = bias


class Conv(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size=3, padding="same", bias=False):
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, padding=padding, bias=bias)

    def reset_parameters(self):
        super().reset_parameters()
        if self.bias is not None:
            self.bias.data.zero_()
        w = self.weight.data
        torch.nn.init.dirac_(w[:w.size(1)])


class ConvGroup(nn.Module):
    def __init__(self, channels_in, channels_out, batchnorm_momentum):
        super().__init__()
        self.conv1 = Conv(channels_in, channels_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(channels_out, batchnorm_momentum)
        self.conv2 = Conv(channels_out, channels_out)
        self.norm2 = BatchNorm(channels_out, batchnorm_momentum)
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


def make_net94(device, dtype, widths=HYP["net"]["widths"], batchnorm_momentum=HYP["net"]["batchnorm_momentum"]):
    whiten_kernel_size = 2
    whiten_width = 2 * 3 * whiten_kernel_size**2
    net = nn.Sequential(
        Conv(3, whiten_width, whiten_kernel_size, padding=0, bias=True),
        nn.GELU(),
        ConvGroup(whiten_width, widths["block1"], batchnorm_momentum),
        ConvGroup(widths["block1"], widths["block2"], batchnorm_momentum),
        ConvGroup(widths["block2"], widths["block3"], batchnorm_momentum),
        nn.MaxPool2d(3),
        Flatten(),
        nn.Linear(widths["block3"], 10, bias=False),
        Mul(HYP["net"]["scaling_factor"]),
    )
    net[0].weight.requires_grad = False
    net = net.to(device=device, dtype=dtype).to(memory_format=torch.channels_last)  # airbench: .half().cuda()
    for mod in net.modules():
        if isinstance(mod, BatchNorm):
            mod.float()
    return net


def batch_flip_lr(inputs):
    flip_mask = (torch.rand(len(inputs), device=inputs.device) < 0.5).view(-1, 1, 1, 1)
    return torch.where(flip_mask, inputs.flip(-1), inputs)


def batch_crop(images, crop_size):
    r = (images.size(-1) - crop_size) // 2
    shifts = torch.randint(-r, r + 1, size=(len(images), 2), device=images.device)
    images_out = torch.empty((len(images), 3, crop_size, crop_size), device=images.device, dtype=images.dtype)
    if r <= 2:
        for sy in range(-r, r + 1):
            for sx in range(-r, r + 1):
                mask = (shifts[:, 0] == sy) & (shifts[:, 1] == sx)
                images_out[mask] = images[mask, :, r + sy:r + sy + crop_size, r + sx:r + sx + crop_size]
    else:
        images_tmp = torch.empty((len(images), 3, crop_size, crop_size + 2 * r), device=images.device,
                                 dtype=images.dtype)
        for s in range(-r, r + 1):
            mask = shifts[:, 0] == s
            images_tmp[mask] = images[mask, :, r + s:r + s + crop_size, :]
        for s in range(-r, r + 1):
            mask = shifts[:, 1] == s
            images_out[mask] = images_tmp[mask, :, :, r + s:r + s + crop_size]
    return images_out


class CifarLoader:
    """airbench's loader over uint8 (N, 3, 32, 32) images and (N,) labels already in memory."""

    def __init__(self, images, labels, device, dtype, batch_size=500, aug=None, drop_last=None, shuffle=None,
                 altflip=False, train=True):
        self.epoch = 0
        self.images = (images.to(device).to(dtype) / 255).to(memory_format=torch.channels_last)  # (N, 3, 32, 32)
        self.labels = labels.to(device)
        self.mean, self.std = CIFAR_MEAN.to(device, dtype), CIFAR_STD.to(device, dtype)
        self.proc_images = {}
        self.aug = aug or {}
        self.batch_size = batch_size
        self.drop_last = train if drop_last is None else drop_last
        self.shuffle = train if shuffle is None else shuffle
        self.altflip = altflip

    def normalize(self, x):
        return (x - self.mean.view(1, 3, 1, 1)) / self.std.view(1, 3, 1, 1)

    def __len__(self):
        return len(self.images) // self.batch_size if self.drop_last else ceil(len(self.images) / self.batch_size)

    def __iter__(self):
        if self.epoch == 0:
            images = self.proc_images["norm"] = self.normalize(self.images)
            if self.aug.get("flip", False):
                images = self.proc_images["flip"] = batch_flip_lr(images)
            pad = self.aug.get("translate", 0)
            if pad > 0:
                self.proc_images["pad"] = F.pad(images, (pad,) * 4, "reflect")
        if self.aug.get("translate", 0) > 0:
            images = batch_crop(self.proc_images["pad"], self.images.shape[-2])
        elif self.aug.get("flip", False):
            images = self.proc_images["flip"]
        else:
            images = self.proc_images["norm"]
        if self.aug.get("flip", False):
            if self.altflip:
                if self.epoch % 2 == 1:
                    images = images.flip(-1)
            else:
                images = batch_flip_lr(images)
        self.epoch += 1
        indices = (torch.randperm if self.shuffle else torch.arange)(len(images), device=images.device)
        for i in range(len(self)):
            idxs = indices[i * self.batch_size:(i + 1) * self.batch_size]
            yield images[idxs], self.labels[idxs]


def get_patches(x, patch_shape):
    c, (h, w) = x.shape[1], patch_shape
    return x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).float()


def get_whitening_parameters(patches):
    n, c, h, w = patches.shape
    patches_flat = patches.view(n, -1)
    est_patch_covariance = (patches_flat.T @ patches_flat) / n
    eigenvalues, eigenvectors = torch.linalg.eigh(est_patch_covariance, UPLO="U")
    return eigenvalues.flip(0).view(-1, 1, 1, 1), eigenvectors.T.reshape(c * h * w, c, h, w).flip(0)


def init_whitening_conv(layer, train_set, eps=5e-4):
    patches = get_patches(train_set, patch_shape=layer.weight.data.shape[2:])
    eigenvalues, eigenvectors = get_whitening_parameters(patches)
    eigenvectors_scaled = eigenvectors / torch.sqrt(eigenvalues + eps)
    layer.weight.data[:] = torch.cat((eigenvectors_scaled, -eigenvectors_scaled))


class LookaheadState:
    def __init__(self, net):
        self.net_ema = {k: v.clone() for k, v in net.state_dict().items()}

    def update(self, net, decay):
        for ema_param, net_param in zip(self.net_ema.values(), net.state_dict().values()):
            if net_param.dtype in (torch.half, torch.float):
                ema_param.lerp_(net_param, 1 - decay)
                net_param.copy_(ema_param)


def infer(model, loader, tta_level=0):
    def infer_basic(inputs, net):
        return net(inputs).clone()

    def infer_mirror(inputs, net):
        return 0.5 * net(inputs) + 0.5 * net(inputs.flip(-1))

    def infer_mirror_translate(inputs, net):
        logits = infer_mirror(inputs, net)
        padded_inputs = F.pad(inputs, (1,) * 4, "reflect")
        inputs_translate_list = [padded_inputs[:, :, 0:32, 0:32], padded_inputs[:, :, 2:34, 2:34]]
        logits_translate = torch.stack([infer_mirror(x, net) for x in inputs_translate_list]).mean(0)
        return 0.5 * logits + 0.5 * logits_translate

    model.eval()
    test_images = loader.normalize(loader.images)
    infer_fn = [infer_basic, infer_mirror, infer_mirror_translate][tta_level]
    with torch.no_grad():
        return torch.cat([infer_fn(inputs, model) for inputs in test_images.split(2000)])


def evaluate(model, loader, tta_level=0):
    return (infer(model, loader, tta_level).argmax(1) == loader.labels).float().mean().item()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train94(train_loader, test_loader, device, dtype, epochs=HYP["opt"]["train_epochs"], max_steps=None) -> dict:
    """airbench's ``train`` for airbench94 (its hyperparameters); ``max_steps`` stops early (warm-up,
    smoke). Returns per-epoch training seconds and the test accuracy (single view and TTA)."""
    o = HYP["opt"]
    train_loader.epoch = 0
    batch_size, momentum = train_loader.batch_size, o["momentum"]
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = o["lr"] / kilostep_scale  # un-decoupled learning rate for PyTorch SGD
    wd = o["weight_decay"] * batch_size / kilostep_scale
    lr_biases = lr * o["bias_scaler"]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=o["label_smoothing"], reduction="none")
    total_train_steps = ceil(len(train_loader) * epochs)

    model = make_net94(device, dtype)
    current_steps = 0
    norm_biases = [p for k, p in model.named_parameters() if "norm" in k and p.requires_grad]
    other_params = [p for k, p in model.named_parameters() if "norm" not in k and p.requires_grad]
    param_configs = [dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
                     dict(params=other_params, lr=lr, weight_decay=wd / lr)]
    optimizer = torch.optim.SGD(param_configs, momentum=momentum, nesterov=True)

    def triangle(steps, start=0, end=0, peak=0.5):
        xp = torch.tensor([0, int(peak * steps), steps])
        fp = torch.tensor([start, 1, end])
        x = torch.arange(1 + steps)
        m = (fp[1:] - fp[:-1]) / (xp[1:] - xp[:-1])
        b = fp[:-1] - (m * xp[:-1])
        indices = torch.sum(torch.ge(x[:, None], xp[None, :]), 1) - 1
        indices = torch.clamp(indices, 0, len(m) - 1)
        return m[indices] * x + b[indices]

    lr_schedule = triangle(total_train_steps, start=0.2, end=0.07, peak=0.23)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_schedule[i])
    alpha_schedule = 0.95**5 * (torch.arange(total_train_steps + 1) / total_train_steps) ** 3
    lookahead_state = LookaheadState(model)

    _sync(device)
    t0 = time.perf_counter()
    init_whitening_conv(model[0], train_loader.normalize(train_loader.images[:5000]))
    _sync(device)
    whiten_s = time.perf_counter() - t0

    epoch_seconds, done = [], False
    for epoch in range(ceil(epochs)):
        model[0].bias.requires_grad = epoch < o["whiten_bias_epochs"]
        _sync(device)
        t0 = time.perf_counter()
        model.train()
        for inputs, labels in train_loader:
            outputs = model(inputs)
            loss = loss_fn(outputs, labels).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            current_steps += 1
            if current_steps % 5 == 0:
                lookahead_state.update(model, decay=alpha_schedule[current_steps].item())
            if current_steps >= total_train_steps:
                lookahead_state.update(model, decay=1.0)
                done = True
                break
            if max_steps and current_steps >= max_steps:
                done = True
                break
        _sync(device)
        epoch_seconds.append(time.perf_counter() - t0)
        if done:
            break
    return {"epoch_seconds": epoch_seconds, "whiten_s": whiten_s, "steps": current_steps,
            "images": current_steps * batch_size, "epochs": current_steps / len(train_loader),
            "top1": evaluate(model, test_loader, 0), "tta": evaluate(model, test_loader, HYP["net"]["tta_level"])}


# =============================================================================================
# the two runs
# =============================================================================================

def tensors(data_spec: str, split: str):
    """uint8 (N, 3, 32, 32) images and (N,) labels of a split, as cnnlab's loader decodes them."""
    import cnnlab

    data = cnnlab.load_dataset(data_spec, split, seed=0, **({"val_fraction": 0.0} if split == "train" else {}))
    return data.images, data.labels


def run_airbench(data_spec: str, device, smoke: bool, say) -> dict:
    dtype = torch.float16 if device.type == "cuda" else torch.float32  # airbench: fp16 on the GPU
    train_x, train_y = tensors(data_spec, "train")
    test_x, test_y = tensors(data_spec, "test")
    if smoke:  # a small random subset
        g = torch.Generator().manual_seed(0)
        pick, pick_test = torch.randperm(len(train_x), generator=g)[:256], torch.randperm(len(test_x), generator=g)[:200]
        train_x, train_y, test_x, test_y = train_x[pick], train_y[pick], test_x[pick_test], test_y[pick_test]
    batch = 128 if smoke else HYP["opt"]["batch_size"]
    train_loader = CifarLoader(train_x, train_y, device, dtype, batch_size=batch, aug=HYP["aug"], altflip=True)
    test_loader = CifarLoader(test_x, test_y, device, dtype, batch_size=2000, train=False)
    say(f"airbench94: {len(train_x):,} train, {len(test_x):,} test images; batch {batch}, {dtype}")
    train94(train_loader, test_loader, device, dtype, max_steps=1)  # airbench's warm-up run
    r = train94(train_loader, test_loader, device, dtype, epochs=2 if smoke else HYP["opt"]["train_epochs"],
                max_steps=3 if smoke else None)
    train_s = sum(r["epoch_seconds"]) + r["whiten_s"]
    r.update(name="airbench94", train_s=train_s, s_per_epoch=train_s / r["epochs"],
             steady=statistics.median(r["epoch_seconds"][1:-1] or r["epoch_seconds"]),
             images_per_s=r["images"] / sum(r["epoch_seconds"]))
    for i, s in enumerate(r["epoch_seconds"]):
        say(f"  airbench94 epoch {i + 1}: {s:.3f} s")
    return r


def run_cnnlab(data_spec: str, device, smoke: bool, sets: list[str], say) -> dict:
    import cnnlab
    from cnnlab.data.loader import Batches
    from cnnlab.engine.config import TrainConfig
    from cnnlab.runtime.distributed import Dist

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fashion_mnist import register_subset

    register_subset("cifar10-gpu-warmup", data_spec, {"train": 2048, "val": 256, "test": 256})
    data = data_spec
    over = [f"device={device.type}", "plots=false", *sets]
    if smoke:
        register_subset("cifar10-gpu-smoke", data_spec, {"train": 256, "val": 128, "test": 200})
        data = "cifar10-gpu-smoke"
        over += ["batch_size=128", "epochs=2"]
    cfg = TrainConfig.from_sources(RECIPE, [f"data={data}", *over])
    test = cnnlab.load_dataset(cfg.data, "test", seed=cfg.seed, **cfg.data_options())
    test_batches = Batches(test, 1000, torch.device(device), shuffle=False)
    epochs, last = [], {}

    def on_epoch(row, model, task):
        epochs.append(row)
        say(f"  cnnlab epoch {row['epoch']}: {row['seconds']:.3f} s ({row['images_per_s']:,.0f} images/s)")
        if row["epoch"] == cfg.epochs:
            last["tta"] = task.evaluate(model, test_batches, Dist(), tta=2)["top1"]

    with tempfile.TemporaryDirectory() as out:
        if not smoke:  # warm-up: kernels, cuDNN autotuning
            cnnlab.train(config=RECIPE, overrides=["data=cifar10-gpu-warmup", "epochs=1", *over, f"out={out}/w"],
                         log=None)
        say(f"cnnlab: {RECIPE.relative_to(ROOT)} on {cfg.data}, batch {cfg.batch_size}, {cfg.epochs} epochs, "
            f"amp {cfg.amp}, channels_last {cfg.channels_last}, compile {cfg.compile}"
            + (f"; overrides {' '.join(sets)}" if sets else ""))
        r = cnnlab.train(config=RECIPE, overrides=[f"data={data}", *over, f"out={out}/run"], on_epoch=on_epoch,
                         log=None)
    seconds = [e["seconds"] for e in epochs]
    n_train = sum(e["images_per_s"] * e["seconds"] for e in epochs)
    top1 = (r.test if r.test is not None else r.best)["top1"]
    return {"name": "cnnlab", "epoch_seconds": seconds, "train_s": sum(seconds), "epochs": len(seconds),
            "s_per_epoch": sum(seconds) / len(seconds), "steady": statistics.median(seconds[1:] or seconds),
            "images_per_s": n_train / sum(seconds), "top1": top1, "tta": last.get("tta", float("nan"))}


def find_data(given: Path | None) -> Path | None:
    if given:
        return given if given.exists() else None
    return next((p for p in DATA_CANDIDATES if p.is_dir()), None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="CIFAR-10 image-folder tree (default: ../shared/data/cifar10, "
                                             "else .data/cifar10)")
    p.add_argument("--out", type=Path, help="also write the printed figures to OUT/gpu_airbench.txt")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="cnnlab recipe overrides (tuning)")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="run both on the CPU for a few steps on a small subset (exercises the code paths)")
    p.add_argument("--skip-airbench", action="store_true", help="cnnlab's run only")
    a = p.parse_args(argv)
    if not a.cpu_smoke and not torch.cuda.is_available():
        print("gpu_airbench.py needs a CUDA GPU (none found); nothing measured. "
              "--cpu-smoke exercises the code on the CPU.")
        return 0
    data = find_data(a.data)
    if data is None:
        print(f"gpu_airbench.py: no CIFAR-10 image-folder tree at {a.data or ' or '.join(map(str, DATA_CANDIDATES))}")
        return 1
    device = torch.device("cpu" if a.cpu_smoke else "cuda")
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    say(f"device: {device} ({gpu}); torch {torch.__version__}; data {data}"
        + ("; CPU SMOKE RUN (a few steps on a subset: timings and accuracies mean nothing)" if a.cpu_smoke else ""))
    say(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    rows = []
    if not a.skip_airbench:
        rows.append(run_airbench(str(data), device, a.cpu_smoke, say))
    rows.append(run_cnnlab(str(data), device, a.cpu_smoke, a.set, say))
    say()
    say("| run | epochs | training s | s/epoch (mean) | s/epoch (median, epochs 2+) | images/s | test top-1 | "
        "test top-1 TTA |")
    say("|---|---|---|---|---|---|---|---|")
    for r in rows:
        say(f"| {r['name']} | {r['epochs']:.2f} | {r['train_s']:.2f} | {r['s_per_epoch']:.3f} | {r['steady']:.3f} | "
            f"{r['images_per_s']:,.0f} | {100 * r['top1']:.2f}% | {100 * r['tta']:.2f}% |")
    if len(rows) == 2:
        ab, cl = rows
        ratio, steady = cl["s_per_epoch"] / ab["s_per_epoch"], cl["steady"] / ab["steady"]
        say(f"\ncnnlab / airbench94 seconds per epoch: {ratio:.2f}x (mean), {steady:.2f}x (steady epochs); "
            f"goal <= {GOAL_RATIO}x: {'MET' if ratio <= GOAL_RATIO else 'NOT MET'}"
            + (" (smoke run: not a measurement)" if a.cpu_smoke else ""))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "gpu_airbench.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
