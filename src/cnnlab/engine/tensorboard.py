"""Optional TensorBoard logging (``--tensorboard``): ``OUT/tensorboard`` gets the training loss every
``EVERY`` steps, the learning rate, every epoch's metrics, and at the end the run's figures
(confusion matrix, predictions, curves...) as images. metrics.csv/json stay the record.

    cnnlab train --data digits --tensorboard && tensorboard --logdir runs/classify/digits/tensorboard
"""
from __future__ import annotations

from pathlib import Path

from cnnlab.engine.callbacks import Callback, EpochEnd
from cnnlab.errors import CnnlabError

EVERY = 20  # steps between logged training losses (each costs one host sync)


class TensorBoardLog(Callback):
    """A ``SummaryWriter`` over ``OUT/tensorboard``, fed by the training loop's moments.

    Made before the run starts, so that a missing package fails before any work."""

    def __init__(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch's module needs the tensorboard package
            raise CnnlabError(f"--tensorboard needs the tensorboard package: pip install tensorboard ({e})") from e
        self.SummaryWriter = SummaryWriter
        self.writer = None

    def on_run_start(self, run) -> None:
        self.writer = self.SummaryWriter(log_dir=str(Path(run.out) / "tensorboard"))

    def on_step_end(self, run, step: int, loss, running) -> None:
        """The training loss and learning rate every ``EVERY`` global steps."""
        step = run.epoch * run.steps + step
        if step % EVERY == 0:
            self.writer.add_scalar("train/loss_step", float(loss), step)
            self.writer.add_scalar("train/lr", run.schedule.get_last_lr()[0], step)

    def on_epoch_end(self, run, end: EpochEnd) -> None:
        """The metrics row: ``train_*`` and ``val_*`` numbers, the lr and images/s, at its epoch."""
        row = end.row
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                group = "train" if key.startswith("train_") else "val" if key.startswith("val_") else "run"
                self.writer.add_scalar(f"{group}/{key.removeprefix(group + '_')}", value, row["epoch"])
        self.writer.flush()

    def on_run_end(self, run, result) -> None:
        """The run's PNG figures as images (confusion matrix, predictions, curves...); then closed."""
        import numpy as np
        from PIL import Image

        for path in result.plots:
            if str(path).lower().endswith(".png"):
                with Image.open(path) as im:
                    self.writer.add_image(f"figures/{Path(path).stem}", np.asarray(im.convert("RGB")),
                                          len(run.history), dataformats="HWC")
        self.writer.close()
