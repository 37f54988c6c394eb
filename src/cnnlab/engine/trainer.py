"""The one training loop, for every task.

Per step: uint8 batch on the device -> task.training_step (augment, normalise, forward,
loss) under bf16 autocast -> backward -> optimizer and schedule step. Per epoch: evaluate
on val, log a metrics row, checkpoint ``last.pt`` and, when the score improves, ``best.pt``.
Everything random is a function of (seed, epoch, step), so ``--resume`` continues exactly.
What a run shows and records beside that (the progress line, TensorBoard, the train/eval guard,
yours) are callbacks (``callbacks.py``).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab._version import __version__
from cnnlab.data.check import FILES_TO_HASH, cross_split_duplicates, record_splits
from cnnlab.data.loader import Batches
from cnnlab.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cnnlab.engine.config import TrainConfig
from cnnlab.runtime.device import autocast, pick_device, use_bf16, use_fp16
from cnnlab.runtime.precision import Bf16Forward
from cnnlab.runtime.distributed import Dist, all_reduce_sum, barrier, init_distributed, shutdown
from cnnlab.runtime.threads import ThreadTuner, apply_thread_policy, requested_threads, thread_count_fixed
from cnnlab.engine.callbacks import Callback, Callbacks, EpochEnd
from cnnlab.engine.guards import TrainEvalGuard
from cnnlab.engine.memory_budget import bounded_model, check_training_size
from cnnlab.engine.ema import WeightEma
from cnnlab.engine.lookahead import Lookahead
from cnnlab.engine.metrics_log import MetricsLog
from cnnlab.engine.optim import build_optimizer, build_schedule
from cnnlab.engine.progress import ProgressBar
from cnnlab.engine.run_data import run_task, test_split, training_splits
from cnnlab.engine.run_folder import open_run_folder
from cnnlab.engine.tensorboard import TensorBoardLog
from cnnlab.errors import CnnlabError
from cnnlab.files import replacing, write_json
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
    task: object = None                           # the Task: renders ``best`` and ``test`` (tasks.base)


def step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63 - 1)


def fit(cfg: TrainConfig, *, data: dict | None = None, model: nn.Module | None = None,
        callbacks: Sequence[Callback] = (), resume: str | Path | None = None, log=print) -> RunResult:
    """Train for ``cfg`` and write its run folder; see ``cnnlab.train`` for the options.

    data: the splits as dataset objects, ``{"train": ..., "val": ...[, "test": ...]}`` (``cfg.data``
    then only names them, and checkpoints say they were given); by default read from ``cfg.data``.
    model: an ``nn.Module`` to train instead of building ``cfg.model``.
    callbacks: hooks into the loop (``engine/callbacks.py``), called on rank 0 after the progress
    line, the TensorBoard log and the train/eval guard. ``log=None`` trains silently (no lines,
    no progress bar).

        run = fit(TrainConfig(data="permuted digits", model="mlp"), data={"train": tr, "val": va})
    """
    apply_thread_policy()  # CNNLAB_THREADS, OpenMP's wait policy (runtime/threads.py)
    task, said = run_task(cfg, data)  # the data's layout decides a task left out, and checks a given one
    d, device_name = init_distributed(cfg.device)
    quiet = log is None or not d.main
    if said and not quiet:  # read here (api.train reads and says it first)
        log(said)
    cfg = dataclasses.replace(cfg, task=task)
    deterministic = torch.are_deterministic_algorithms_enabled()  # setup may turn it on for this run only
    threads = torch.get_num_threads()  # the run's ThreadTuner may change it
    try:
        board = [TensorBoardLog()] if cfg.tensorboard and d.main else []  # a missing package fails before any work
        hooks = Callbacks([*([] if quiet else [ProgressBar()]), *board, TrainEvalGuard(), *callbacks] if d.main else [])
        with ExitStack() as hold, _sigterm_as_interrupt():  # hold: the run folder's lock, released at the end
            run = setup(cfg, d, pick_device(device_name), resume, (lambda *a, **k: None) if quiet else log, hold,
                        data=data, model=model)
            run.callbacks = hooks
            hooks.on_run_start(run)
            try:
                for epoch in range(run.epoch, cfg.epochs):
                    stats, shown = train_epoch_or_back_off(run, epoch)
                    end_epoch(run, epoch, stats, shown)
            except KeyboardInterrupt:
                return interrupted(run)
            return finish(run)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
        shutdown(d)


# ---------------------------------------------------------------------- set-up
@dataclass
class Run:
    """One training run between its parts: what it trains, with what, and where it stands."""

    cfg: TrainConfig
    d: Dist
    device: torch.device
    log: object
    out: Path
    task: object
    model: nn.Module
    train_model: nn.Module  # the model as trained: under DDP and/or torch.compile
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    lookahead: Lookahead | None
    data: dict                 # split name -> dataset
    train_batches: Batches
    val_batches: Batches
    bf16: bool
    metrics_log: MetricsLog | None
    epoch: int = 0             # where the run stands: the epoch and the step within it
    step: int = 0
    best: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    skipped: int = 0
    t_start: float = field(default_factory=time.perf_counter)
    callbacks: Callbacks = field(default_factory=Callbacks)  # fit's: progress, TensorBoard, guard, the caller's
    cache: object = None       # the task's per-run cache (``Task.new_cache``: a frozen encoder's features)
    given: dict | None = None  # the data objects given to fit (None: read from cfg.data)
    given_model: bool = False  # the model was given to fit, not built from cfg.model
    fp16: bool = False         # fp16 autocast, the loss scaled by ``scaler`` (GPUs without bf16)
    scaler: torch.amp.GradScaler | None = None
    threads: ThreadTuner | None = None  # re-picks the CPU thread count while training (runtime/threads.py)
    backed_off: bool = False   # the loss turned non-finite once and the run went back with half the lr
    bf16_full: bool = False    # amp bf16-full: train_model runs the network in bf16 (runtime/precision.py)
    ema: WeightEma | None = None  # --ema: the average of the weights that validation and best.pt use

    @property
    def scored_model(self) -> nn.Module:
        """The weights validation scores and checkpoints call the model: the average, with --ema."""
        return self.ema.model if self.ema else self.model

    @property
    def steps(self) -> int:
        return self.train_batches.steps_per_epoch()


def setup(cfg: TrainConfig, d: Dist, device: torch.device, resume, log, hold: ExitStack | None = None, *,
          data: dict | None = None, model: nn.Module | None = None) -> Run:
    """Open the run folder, read the data (or take ``data``'s objects), build the task, the model
    (or take ``model``), optimizer and schedule; restore a checkpoint's state. ``hold`` gets the
    folder lock's release (without it, the process's end frees it)."""
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    ckpt = load_checkpoint(resume) if resume else None
    Task = task_class(cfg.task)
    given, given_model = data, model is not None
    if not given_model:
        model_info(cfg.model)  # an unknown name fails here, before any data is read
    out = _run_folder(cfg, d, resume, hold)
    cfg = dataclasses.replace(cfg, out=str(out))  # config.json and the checkpoints say where the run lives
    log(f"run folder: {out}")
    if d.main and ckpt:
        _bring_best(Path(resume), out)
    if not given_model:
        check_training_size(cfg, device)  # --image-size: refused before any image is decoded or cached
    data, skipped = training_splits(cfg, log, given)
    task = Task.from_state(ckpt["task"]) if ckpt else Task.from_data(cfg, data["train"])
    task = task.in_memory_format(cfg.channels_last)
    cfg, model = _model(task, cfg, device, model)
    train_batches = Batches(data["train"], cfg.batch_size, device, shuffle=True, seed=cfg.seed,
                            rank=d.rank, world=d.world, workers=cfg.workers, drop_last=True)
    steps = train_batches.steps_per_epoch()
    if steps == 0:
        raise CnnlabError(f"--batch-size {cfg.batch_size} is larger than the training split "
                          f"({len(data['train'])} images over {d.world} processes)")
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    bf16 = use_bf16(device, cfg.amp, min(task.input_shape[1:])) and task.autocast
    bf16_full = bf16 and cfg.amp == "bf16-full" and task.bf16_end_to_end
    if cfg.amp == "bf16-full" and not bf16_full:
        log(f"amp bf16-full: {task.name} trains {'with bf16 autocast' if bf16 else 'in fp32'} ("
            + ("bf16-full is for classify and segment)" if not task.bf16_end_to_end else f"no fast bf16 on this {device.type})"))
    run = Run(cfg, d, device, log, out, task, model, _train_model(model, cfg, d, device, bf16_full), optimizer,
              build_schedule(optimizer, cfg.schedule, cfg.epochs * steps,
                             max(int(cfg.warmup_epochs * steps), cfg.warmup_steps),
                             cfg.lr_cycle),
              Lookahead(model, cfg.epochs * steps) if cfg.lookahead else None, data, train_batches,
              Batches(data["val"], max(cfg.batch_size, 256), device, shuffle=False, rank=d.rank, world=d.world,
                      workers=cfg.workers),
              bf16, None, skipped=skipped, cache=task.new_cache(), given=given, given_model=given_model,
              bf16_full=bf16_full, ema=WeightEma(model, cfg.ema) if cfg.ema else None)
    run.fp16 = use_fp16(device, cfg.amp) and task.autocast
    run.scaler = torch.amp.GradScaler(device.type, enabled=run.fp16)
    run.threads = _thread_tuner(cfg, d, device)
    if ckpt:
        _restore(run, ckpt)
        log(f"resumed from {resume} at epoch {run.epoch + 1}, step {run.step}")
    if d.main:
        run.metrics_log = MetricsLog(out, run.history)
        write_json(out / "config.json", cfg.to_dict())
        record_splits(out, data)
        log(f"{cfg.task} {cfg.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on {cfg.data}: "
            f"{len(data['train'])} train, {len(data['val'])} val images; {device.type}"
            f"{', bf16 weights and activations' if run.bf16_full else ', bf16 autocast' if run.bf16 else ''}"
            f"{', fp16 autocast with loss scaling' if run.fp16 else ''}"
            f"{f', {d.world} processes' if d.enabled else ''}")
        if run.epoch >= cfg.epochs:
            log(f"{resume}: the run already finished its {cfg.epochs} epochs; nothing to train "
                f"(give --epochs N above {cfg.epochs} to train longer)")
    return run


def _model(task, cfg: TrainConfig, device: torch.device, model: nn.Module | None) -> tuple[TrainConfig, nn.Module]:
    """The model to train, on the device (channels_last when asked), and the config that names it:
    ``model`` as given to fit (named by its class), else ``cfg.model`` built once its memory was counted."""
    if model is None:
        model = bounded_model(task, cfg, "train", device, batch=cfg.batch_size, training=True)
    else:
        cfg = dataclasses.replace(cfg, model=type(model).__name__)  # what was trained, not a registered name
    model = model.to(device)
    return cfg, model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def _thread_tuner(cfg: TrainConfig, d: Dist, device: torch.device) -> ThreadTuner | None:
    """``CNNLAB_THREADS``'s count, set; else, on one CPU process, a tuner that re-picks the count
    while training (a count chosen by the user, or a deterministic run, keeps its count)."""
    if requested_threads():
        torch.set_num_threads(requested_threads())
    elif device.type == "cpu" and not d.enabled and not cfg.deterministic and not thread_count_fixed() \
            and torch.get_num_threads() > 1:
        return ThreadTuner(torch.get_num_threads())
    return None


def _train_model(model: nn.Module, cfg: TrainConfig, d: Dist, device: torch.device, bf16_full: bool) -> nn.Module:
    """The model as the loop calls it: run in bf16 end to end, wrapped for DDP, compiled, as asked."""
    if bf16_full:
        model = Bf16Forward(model)
    if d.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(model) if cfg.compile else model


def _restore(run: Run, ckpt: dict) -> None:
    run.model.load_state_dict(ckpt.get("trained_model") or ckpt["model"])
    if run.ema:
        run.ema.model.load_state_dict(ckpt["model"])
        run.ema.load_state_dict(ckpt.get("ema") or {"updates": 0})
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.schedule.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])
    run.epoch, run.step = ckpt["epoch"], ckpt["step"]
    run.best, run.history = ckpt.get("best", {}), list(ckpt.get("history", []))
    if run.lookahead:
        run.lookahead.load_state_dict(ckpt.get("lookahead"))
    if run.fp16 and ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])


def save(run: Run, path: Path, epoch: int, step: int) -> None:
    """A checkpoint of everything ``--resume`` needs to continue exactly at (epoch, step)."""
    save_checkpoint({**_state(run), "epoch": epoch, "step": step}, path)


def _state(run: Run) -> dict:
    """The run's state as a checkpoint holds it, at ``run.epoch``/``run.step``."""
    return {"model": run.scored_model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "trained_model": run.model.state_dict() if run.ema else None,  # --ema: what training goes on from
            "ema": run.ema.state_dict() if run.ema else None,
            "scheduler": run.schedule.state_dict(), "epoch": run.epoch, "step": run.step,
            "rng": rng_state(), "config": run.cfg.to_dict(), "task": run.task.state(),
            "lookahead": run.lookahead.state_dict() if run.lookahead else None,
            "scaler": run.scaler.state_dict() if run.fp16 else None,
            "model_name": run.cfg.model, "history": list(run.history), "best": dict(run.best),
            "version": __version__, "given": _given(run)}


def _given(run: Run) -> dict:
    """What was given to fit as objects rather than read or built by name: the data's splits (with
    their sizes; ``config.data`` is then the caller's label for them) and the model's class
    (``config.model``). Empty for a run of a named dataset and model."""
    return {**({"data": {split: len(part) for split, part in run.given.items()}} if run.given is not None else {}),
            **({"model": run.cfg.model} if run.given_model else {})}


# ---------------------------------------------------------------------- one epoch
class Diverged(Exception):
    """The training loss turned NaN or infinite."""


def train_epoch_or_back_off(run: Run, epoch: int) -> tuple[dict, dict]:
    """``train_epoch``; the first time the loss turns non-finite, the run goes back to where the
    epoch started with half the learning rate and says so. A second time, it stops."""
    start = None if run.backed_off else copy.deepcopy(_state(run))  # on the device: a copy, no transfer
    try:
        return train_epoch(run, epoch)
    except Diverged as e:
        if start is None:
            raise CnnlabError(f"{e}: lower --lr (now {run.optimizer.param_groups[0]['lr']:.3g}; the run already "
                              f"went back once with half the learning rate)") from None
        what = str(e)
    _restore(run, start)
    run.schedule.base_lrs = [lr / 2 for lr in run.schedule.base_lrs]
    for group in run.optimizer.param_groups:
        group["lr"] /= 2
    run.backed_off = True
    run.log(f"\n{what}: back to the start of epoch {epoch + 1} (step {run.step}) with half the learning rate "
            f"(peak now {run.schedule.base_lrs[0]:.3g})")
    return train_epoch_or_back_off(run, epoch)


def train_epoch(run: Run, epoch: int) -> tuple[dict, dict]:
    """Train one epoch from ``run.step``: its statistics (kept on the device until a redraw reads
    them, so a step does not wait for the host), and the progress line's numbers at its end."""
    cfg, task, steps = run.cfg, run.task, run.steps
    run.train_model.train()
    if cfg.freeze_backbone:
        _freeze_norm_statistics(run.model)
    totals = torch.zeros(3, dtype=torch.float64, device=run.device)  # loss sum, correct, count
    has_acc, seen, t0 = True, 0, time.perf_counter()
    run.callbacks.on_epoch_start(run, epoch)
    first = run.step if epoch == run.epoch else 0
    for step, batch in enumerate(run.train_batches.epoch(epoch, first), start=first):
        if run.threads:
            run.threads()
        run.epoch, run.step = epoch, step
        seed = step_seed(cfg.seed, epoch, step)
        torch.manual_seed(seed)  # dropout etc.
        gen = torch.Generator(device=run.device).manual_seed(seed)  # augmentation
        with autocast(run.device, run.bf16 or run.fp16, fp16=run.fp16):
            losses, stats = task.training_step(run.train_model, batch, gen, cache=run.cache)
        loss = sum(losses.values())
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()  # unscaled and unchanged unless fp16
        if cfg.clip_grad:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_grad)
        run.scaler.step(run.optimizer)     # skipped when fp16 gradients overflowed
        run.scaler.update()
        run.schedule.step()
        if run.lookahead:
            run.lookahead.step(epoch * steps + step + 1)
        if run.ema:
            run.ema.update()
        has_acc = "correct" in stats
        totals += torch.stack([loss.detach().double() * stats["count"],
                               torch.as_tensor(stats.get("correct", 0), dtype=torch.float64, device=run.device),
                               torch.as_tensor(stats["count"], dtype=torch.float64, device=run.device)])
        seen += len(batch[0]) * run.d.world  # images (count may be pixels or tokens)
        run.callbacks.on_step_end(run, step, loss.detach(),
                                  lambda: _running(totals, has_acc, seen, t0, epoch, step, run))  # read when drawn
    run.step = steps
    if run.threads:
        run.threads.pause()
    if run.lookahead:
        run.lookahead.end_epoch()
    shown = _running(totals, has_acc, seen, t0, epoch, steps - 1, run)
    all_reduce_sum(totals, run.d)
    return {"train_loss": float(totals[0] / totals[2]), **({"train_acc": float(totals[1] / totals[2])} if has_acc
                                                           else {}),
            "seconds": time.perf_counter() - t0, "images_per_s": shown["img_s"]}, shown


def _running(totals: torch.Tensor, has_acc: bool, seen: int, t0: float, epoch: int, step: int, run: Run) -> dict:
    """The progress line's numbers (one host sync); a non-finite loss stops the run here."""
    loss_sum, correct, count = totals.tolist()
    if not math.isfinite(loss_sum):
        raise Diverged(f"loss became {loss_sum / max(count, 1)} by epoch {epoch + 1}, step {step}")
    return {"loss": loss_sum / max(count, 1), **({"acc": correct / max(count, 1)} if has_acc else {}),
            "img_s": seen / max(time.perf_counter() - t0, 1e-9)}


def end_epoch(run: Run, epoch: int, stats: dict, shown: dict) -> None:
    """Validate, log a metrics row, checkpoint ``last.pt`` (and ``best.pt`` when the score improved);
    then the callbacks' ``on_epoch_end`` (``shown``: the progress line's training numbers)."""
    val = run.task.evaluate(run.scored_model, run.callbacks.on_validation(run, run.val_batches), run.d, cache=run.cache)
    row = {"epoch": epoch + 1, "train_loss": stats["train_loss"],
           **({"train_acc": stats["train_acc"]} if "train_acc" in stats else {}),
           **{f"val_{k}": v for k, v in val.items() if isinstance(v, (int, float))},
           "lr": run.schedule.get_last_lr()[0], "seconds": stats["seconds"], "images_per_s": stats["images_per_s"],
           "threads": torch.get_num_threads()}  # CPU threads at the epoch's end (the ThreadTuner's choice)
    run.history.append(row)
    improved = not run.best or val["score"] > run.best["score"]
    if improved:
        run.best = {**{k: v for k, v in val.items() if not isinstance(v, (dict, list))}, "epoch": epoch + 1}
    run.epoch, run.step = epoch + 1, 0
    if run.d.main:
        run.metrics_log.append(row)
        save(run, run.out / "last.pt", epoch + 1, 0)
        if improved:
            save(run, run.out / "best.pt", epoch + 1, 0)
    run.callbacks.on_epoch_end(run, EpochEnd(row, val, improved, shown))
    barrier(run.d)


# ---------------------------------------------------------------------- the end
def interrupted(run: Run) -> RunResult:
    """Ctrl-C: save where the run stands (mid-epoch too) so ``--resume`` picks up at that step."""
    if run.d.main:  # a finished epoch (stopped while validating) resumes at the next one
        done = run.step >= run.steps
        save(run, run.out / "last.pt", run.epoch + done, 0 if done else run.step)
        run.log(f"\ninterrupted: saved {run.out / 'last.pt'}; continue with --resume {run.out / 'last.pt'}")
    return RunResult(run.out, run.best, None, run.history, interrupted=True, skipped=run.skipped,
                     seconds=time.perf_counter() - run.t_start, task=run.task)


def finish(run: Run) -> RunResult:
    """best.pt on the test split (or val), the plots, the callbacks' ``on_run_end`` (the train/eval
    guard, TensorBoard's figures) and the metrics summary."""
    cfg, task, model = run.cfg, run.task, run.model
    result = RunResult(run.out, run.best, None, run.history, skipped=run.skipped, task=task)
    if run.d.main:
        if (run.out / "best.pt").is_file():
            model.load_state_dict(load_checkpoint(run.out / "best.pt", run.device)["model"])
        test_data = test_split(cfg, run.given)
        if test_data is not None:
            record_splits(run.out, {**run.data, "test": test_data})
            for line in cross_split_duplicates({"train": run.data["train"], "test": test_data}, FILES_TO_HASH):
                run.log(f"data check: {line}")
        final_data = test_data if test_data is not None else run.data["val"]
        batches = Batches(final_data, max(cfg.batch_size, 256), run.device, shuffle=False, workers=cfg.workers)
        final = task.evaluate(model, batches, Dist(), cache=run.cache)
        result.test = final if test_data is not None else None
        if cfg.plots:
            result.plots = task.write_plots(run.out, run.history, model, final_data, final)
        run.callbacks.on_run_end(run, result)
        run.metrics_log.write_summary(run.best, result.test)
    barrier(run.d)
    result.seconds = time.perf_counter() - run.t_start
    return result


def _run_folder(cfg: TrainConfig, d: Dist, resume, hold: ExitStack | None) -> Path:
    """Rank 0 opens and locks the run folder (run_folder.py); the other processes get its path, or
    its error, from rank 0."""
    path, error = None, None
    if d.main:
        try:
            path, lock = open_run_folder(cfg.out, cfg.task, cfg.data, resume=bool(resume), exist_ok=cfg.exist_ok)
        except CnnlabError as e:
            if not d.enabled:
                raise
            error = str(e)
        else:
            if hold is not None:
                hold.callback(lock.release)
    if d.enabled:
        shared = [str(path) if path else None, error]
        torch.distributed.broadcast_object_list(shared, src=0)
        path, error = shared
        if error:
            raise CnnlabError(error)
    return Path(path)


def _bring_best(resume: Path, out: Path) -> None:
    """Resuming into another folder: take the run's best.pt along, so the new folder is whole."""
    best = resume.parent / "best.pt"
    if best.is_file() and not (out / "best.pt").is_file() and resume.parent.resolve() != out.resolve():
        with open(best, "rb") as source, replacing(out / "best.pt", durable=True) as copy:
            shutil.copyfileobj(source, copy)


@contextmanager
def _sigterm_as_interrupt():
    """While fit runs, SIGTERM (``kill``, a scheduler's stop) is Ctrl-C: the run saves where it
    stands and ends; the handler before is restored after (only the main thread can set one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def interrupt(signum, frame):
        if os.getpid() != owner:  # a forked worker (a decoding pool) being ended: end as SIGTERM ends
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _freeze_norm_statistics(model: nn.Module) -> None:
    """Keep frozen batch-norm layers in eval mode: a frozen backbone keeps its running statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()

