"""Small random-weight checkpoints of every task, for the web page's tests (built in seconds)."""
from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.engine.checkpoint import save_checkpoint
from cnnlab.engine.config import TrainConfig

TINY_CAPTIONER = {"encoder": "lecture_cnn", "encoder_args": {"widths": [8, 16]}, "embed_dim": 16, "hidden_dim": 32,
                  "attention_dim": 16}


def _save(folder: Path, name: str, task, cfg: TrainConfig, warm_bn: bool = False) -> Path:
    torch.manual_seed(0)
    model = task.build_model(cfg)
    if warm_bn:  # batch-norm statistics that are not 0/1
        with torch.no_grad():
            model.train()(task.prepare(torch.randint(0, 256, (16, *task.input_shape), dtype=torch.uint8)))
    return save_checkpoint({"model": model.eval().state_dict(), "task": task.state(),
                            "config": cfg.to_dict()}, folder / name / "best.pt")


def classifier(folder: Path, name: str, shape: tuple[int, int, int], mean, std) -> Path:
    from cnnlab.tasks.classify import ClassifyTask

    classes = [f"c{i}" for i in range(10)] if shape[0] == 3 else [str(i) for i in range(10)]
    return _save(folder, name, ClassifyTask(classes, mean, std, shape), TrainConfig(model="lecture_cnn", data="digits"),
                 warm_bn=True)


def detector(folder: Path, name: str = "boxes") -> Path:
    from cnnlab.tasks.detect import DetectTask

    return _save(folder, name, DetectTask(["circle", "square"], (3, 64, 64)),
                 TrainConfig(task="detect", model="fasterrcnn", data="shapes"))


def segmenter(folder: Path, name: str = "scenes") -> Path:
    from cnnlab.tasks.segment import SegmentTask

    task = SegmentTask(["background", "circle", "square"], [(0, 0, 0), (230, 80, 60), (60, 120, 230)],
                       [0.5] * 3, [0.25] * 3, (3, 32, 32))
    return _save(folder, name, task, TrainConfig(task="segment", model="unet", data="shapes",
                                                  model_args={"widths": [8, 16]}), warm_bn=True)


def captioner(folder: Path, name: str = "captions") -> Path:
    from cnnlab.tasks.caption import CaptionTask

    words = ["<pad>", "<start>", "<end>", "<unk>", "a", "red", "blue", "circle", "square", "and"]
    task = CaptionTask(words, words, [0.5] * 3, [0.25] * 3, (3, 32, 32), max_len=6, beam_size=2)
    return _save(folder, name, task, TrainConfig(task="caption", model="show_attend_tell", data="shapes",
                                                  model_args=TINY_CAPTIONER))
