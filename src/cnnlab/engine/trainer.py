"""The one training loop, for every task.

Per step: uint8 batch on the device -> task.training_step (augment, normalise, forward,
loss) under bf16 autocast -> backward -> optimizer and schedule step. Per epoch: evaluate
on val, log a metrics row, checkpoint ``last.pt`` and, when the score improves, ``best.pt``.
Everything random is a function of (seed, epoch, step), so ``--resume`` continues exactly.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab._version import __version__
from cnnlab.data import load_dataset
from cnnlab.data.loader import Batches
from cnnlab.engine.checkpoint import (load_checkpoint, remove_stale_temporaries, rng_state, save_checkpoint,
                                     set_rng_state)
from cnnlab.engine.config import TrainConfig
from cnnlab.runtime.device import autocast, pick_device, use_bf16
from cnnlab.runtime.distributed import Dist, all_reduce_sum, barrier, init_distributed, shutdown
from cnnlab.engine.guards import train_eval_accuracy, train_eval_warning
from cnnlab.engine.lookahead import Lookahead
from cnnlab.engine.metrics_log import MetricsLog
from cnnlab.engine.optim import build_optimizer, build_schedule
from cnnlab.engine.progress import Progress
from cnnlab.errors import CnnlabError
from cnnlab.models import model_info
from cnnlab.tasks.base import task_class


@dataclass
class RunResult:
    """What ``fit`` hands back: where the run lives and what it scored."""

    out: Path
    best: dict = field(default_factory=dict)      # val metrics of the best epoch
    test: dict | None = None                      # test metrics of best.pt, when there is a test split
    history: list[dict] = field(default_factory=list)
    interrupted: bool = False
    skipped: int = 0                              # unreadable files left out (--skip-bad)
    plots: list[str] = field(default_factory=list)
    seconds: float = 0.0
    train_eval: dict | None = None                # eval- vs train-mode accuracy on training images


def step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63 - 1)


def fit(cfg: TrainConfig, resume: str | Path | None = None, log=print, on_epoch=None) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data`` for ``cfg.task``; see ``cnnlab.train`` for the API.

    ``on_epoch(row, model, task)``, if given, runs on rank 0 after each epoch's checkpoint
    (benchmarks use it to measure test accuracy against training time).
    """
    d, device_name = init_distributed(cfg.device)
    try:
        return _fit(cfg, d, pick_device(device_name), resume, log if d.main else (lambda *a, **k: None),
                    on_epoch)
    finally:
        shutdown(d)


def _fit(cfg: TrainConfig, d: Dist, device: torch.device, resume, log, on_epoch) -> RunResult:
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    ckpt = load_checkpoint(resume) if resume else None
    Task = task_class(cfg.task)
    model_info(cfg.model)  # an unknown name fails here, before any data is read
    out = _run_folder(cfg.out) if d.main else Path(cfg.out)
    if d.main and ckpt:
        _bring_best(Path(resume), out)
    opts = cfg.data_options()
    train_data = load_dataset(cfg.data, "train", seed=cfg.seed, task=cfg.task, **opts)
    val_data = load_dataset(cfg.data, "val", seed=cfg.seed, task=cfg.task, **opts)
    skipped = len(getattr(train_data, "skipped", [])) + len(getattr(val_data, "skipped", []))
    if skipped:
        log(f"skipped {skipped} unreadable image files (--skip-bad)")
    for line in getattr(train_data, "report", []) + getattr(val_data, "report", []):
        log(line)  # what the annotation checks of detection data changed

    task = Task.from_state(ckpt["task"]) if ckpt else Task.from_data(cfg, train_data)
    model = task.build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    task.channels_last = cfg.channels_last
    bf16 = use_bf16(device, cfg.amp, min(task.input_shape[1:])) and getattr(task, "autocast", True)

    train_batches = Batches(train_data, cfg.batch_size, device, shuffle=True, seed=cfg.seed,
                            rank=d.rank, world=d.world, workers=cfg.workers, drop_last=True)
    val_batches = Batches(val_data, max(cfg.batch_size, 256), device, shuffle=False,
                          rank=d.rank, world=d.world, workers=cfg.workers)
    steps = train_batches.steps_per_epoch()
    if steps == 0:
        raise CnnlabError(f"--batch-size {cfg.batch_size} is larger than the training split "
                          f"({len(train_data)} images over {d.world} processes)")
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    schedule = build_schedule(optimizer, cfg.schedule, cfg.epochs * steps, int(cfg.warmup_epochs * steps),
                              cfg.lr_cycle)
    lookahead = Lookahead(model, cfg.epochs * steps) if cfg.lookahead else None

    start_epoch, start_step, best, history = 0, 0, {}, []
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        start_epoch, start_step = ckpt["epoch"], ckpt["step"]
        best, history = ckpt.get("best", {}), list(ckpt.get("history", []))
        if lookahead:
            lookahead.load_state_dict(ckpt.get("lookahead"))
        log(f"resumed from {resume} at epoch {start_epoch + 1}, step {start_step}")

    train_model: nn.Module = model
    if d.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)

    def checkpoint(path: Path, epoch: int, step: int) -> None:
        save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": schedule.state_dict(), "epoch": epoch, "step": step,
                         "rng": rng_state(), "config": cfg.to_dict(), "task": task.state(),
                         "lookahead": lookahead.state_dict() if lookahead else None,
                         "model_name": cfg.model, "history": history, "best": best,
                         "version": __version__}, path)

    metrics_log = MetricsLog(out, history) if d.main else None
    if d.main:
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        n_params = sum(p.numel() for p in model.parameters())
        log(f"{cfg.task} {cfg.model} ({n_params:,} parameters) on {cfg.data}: {len(train_data)} train, "
            f"{len(val_data)} val images; {device.type}"
            f"{', bf16 autocast' if bf16 else ''}"
            f"{f', {d.world} processes' if d.enabled else ''}")
        if start_epoch >= cfg.epochs:
            log(f"{resume}: the run already finished its {cfg.epochs} epochs; nothing to train "
                f"(give --epochs N above {cfg.epochs} to train longer)")

    epoch, step = start_epoch, start_step
    try:
        for epoch in range(start_epoch, cfg.epochs):
            train_model.train()
            if cfg.freeze_backbone:
                _freeze_norm_statistics(model)
            progress = Progress(f"epoch {epoch + 1}/{cfg.epochs}", steps, enabled=d.main)
            totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
            has_acc = True  # tasks without a per-image accuracy (detection) leave "correct" out
            t0, seen = time.perf_counter(), 0
            first = start_step if epoch == start_epoch else 0
            for step, batch in enumerate(train_batches.epoch(epoch, first), start=first):
                seed = step_seed(cfg.seed, epoch, step)
                torch.manual_seed(seed)  # dropout etc.
                gen = torch.Generator(device=device).manual_seed(seed)  # augmentation
                with autocast(device, bf16):
                    losses, stats = task.training_step(train_model, batch, gen)
                loss = sum(losses.values())
                if not torch.isfinite(loss):
                    raise CnnlabError(f"loss became {loss.item()} at epoch {epoch + 1}, step {step}: "
                                      f"lower --lr (now {optimizer.param_groups[0]['lr']:.3g})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                if lookahead:
                    lookahead.step(epoch * steps + step + 1)
                n = stats["count"]
                has_acc = "correct" in stats
                totals += torch.tensor([loss.item() * n, float(stats.get("correct", 0)), n], dtype=torch.float64,
                                       device=device)
                seen += len(batch[0]) * d.world  # images (count may be pixels or tokens)
                acc = {"acc": totals[1].item() / totals[2].item()} if has_acc else {}
                progress.update(loss=totals[0].item() / totals[2].item(), **acc,
                                img_s=seen / (time.perf_counter() - t0))
            step = steps
            if lookahead:
                lookahead.end_epoch()
            train_seconds = time.perf_counter() - t0
            all_reduce_sum(totals, d)
            val = task.evaluate(model, val_batches, d)
            row = {"epoch": epoch + 1, "train_loss": totals[0].item() / totals[2].item(),
                   **({"train_acc": totals[1].item() / totals[2].item()} if has_acc else {}),
                   **{f"val_{k}": v for k, v in val.items() if isinstance(v, (int, float))},
                   "lr": schedule.get_last_lr()[0], "seconds": train_seconds,
                   "images_per_s": seen / train_seconds}
            history.append(row)
            improved = not best or val["score"] > best["score"]
            if improved:
                best = {k: v for k, v in val.items() if not isinstance(v, (dict, list))}
                best["epoch"] = epoch + 1
            progress.close(f"val {_short(val)}" + ("  *" if improved else ""))
            if d.main:
                metrics_log.append(row)
                checkpoint(out / "last.pt", epoch + 1, 0)
                if improved:
                    checkpoint(out / "best.pt", epoch + 1, 0)
                if on_epoch:
                    on_epoch(row, model, task)
            barrier(d)
            start_step = 0
    except KeyboardInterrupt:
        if d.main:
            done = step if step < steps else 0
            e = epoch if step < steps else epoch + 1
            checkpoint(out / "last.pt", e, done)
            log(f"\ninterrupted: saved {out / 'last.pt'}; continue with --resume {out / 'last.pt'}")
        return RunResult(out, best, None, history, interrupted=True, skipped=skipped,
                         seconds=time.perf_counter() - t_start)

    result = RunResult(out, best, None, history, skipped=skipped)
    if d.main:
        if (out / "best.pt").is_file():
            model.load_state_dict(load_checkpoint(out / "best.pt", device)["model"])
        test_data = _test_split(cfg, opts)
        final_data = test_data if test_data is not None else val_data
        batches = Batches(final_data, max(cfg.batch_size, 256), device, shuffle=False, workers=cfg.workers)
        final = task.evaluate(model, batches, Dist())
        result.test = final if test_data is not None else None
        probe = Batches(train_data, cfg.batch_size, device, shuffle=False, workers=cfg.workers)
        result.train_eval = train_eval_accuracy(task, model, probe)
        warning = train_eval_warning(result.train_eval)
        if warning:
            log(warning)
        if cfg.plots:
            result.plots = task.write_plots(out, history, model, final_data, final)
        metrics_log.write_summary(best, result.test)
    barrier(d)
    result.seconds = time.perf_counter() - t_start
    return result


def _run_folder(out: str) -> Path:
    """The run folder, created, writable, and without temporaries of a killed run."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CnnlabError(f"--out {out}: a file is in the way; expected a folder for the run")
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise CnnlabError(f"--out {out}: the folder is not writable")
    remove_stale_temporaries(path)
    return path


def _bring_best(resume: Path, out: Path) -> None:
    """Resuming into another folder: take the run's best.pt along, so the new folder is whole."""
    best = resume.parent / "best.pt"
    if best.is_file() and not (out / "best.pt").exists() and resume.parent.resolve() != out.resolve():
        shutil.copy2(best, out / "best.pt")


def _test_split(cfg, opts):
    """The data's test split, or None when it has none."""
    try:
        data = load_dataset(cfg.data, "test", seed=cfg.seed, task=cfg.task, **opts)
    except CnnlabError:
        return None
    return data if len(data) else None


def _freeze_norm_statistics(model: nn.Module) -> None:
    """Keep frozen batch-norm layers in eval mode: a frozen backbone keeps its running statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def _short(metrics: dict) -> str:
    keys = [k for k in ("loss", "top1", "top5", "miou", "map", "map50", "bleu4") if k in metrics]
    return " ".join(f"{k} {metrics[k]:.4f}" for k in keys if not math.isnan(metrics[k]))
