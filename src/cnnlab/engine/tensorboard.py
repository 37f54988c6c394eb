"""Optional TensorBoard logging (``--tensorboard``): ``OUT/tensorboard`` gets the training loss every
``EVERY`` steps, the learning rate, every epoch's metrics, and at the end the run's figures
(confusion matrix, predictions, curves...) as images. metrics.csv/json stay the record.

    cnnlab train --data digits --tensorboard && tensorboard --logdir runs/classify/digits/tensorboard
"""
from __future__ import annotations

from pathlib import Path

from cnnlab.errors import CnnlabError

EVERY = 20  # steps between logged training losses (each costs one host sync)


class TensorBoardLog:
    """A ``SummaryWriter`` over ``out/tensorboard`` with the few calls the trainer makes."""

    def __init__(self, out: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch's module needs the tensorboard package
            raise CnnlabError(f"--tensorboard needs the tensorboard package: pip install tensorboard ({e})") from e
        self.folder = Path(out) / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def step(self, step: int, loss, lr: float) -> None:
        """The training loss and learning rate at global step ``step`` (every ``EVERY`` steps)."""
        if step % EVERY == 0:
            self.writer.add_scalar("train/loss_step", float(loss), step)
            self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, row: dict) -> None:
        """A metrics row: ``train_*`` and ``val_*`` numbers, the lr and images/s, at its epoch."""
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                group = "train" if key.startswith("train_") else "val" if key.startswith("val_") else "run"
                self.writer.add_scalar(f"{group}/{key.removeprefix(group + '_')}", value, row["epoch"])
        self.writer.flush()

    def figures(self, paths: list[str], epoch: int) -> None:
        """The run's PNG figures as images (confusion matrix, predictions, curves...)."""
        import numpy as np
        from PIL import Image

        for path in paths:
            if str(path).lower().endswith(".png"):
                with Image.open(path) as im:
                    self.writer.add_image(f"figures/{Path(path).stem}", np.asarray(im.convert("RGB")), epoch,
                                          dataformats="HWC")

    def close(self) -> None:
        self.writer.close()
