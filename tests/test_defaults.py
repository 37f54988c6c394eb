"""Defaults that transfer: on a dataset on disk with no recipe and no model, `train` starts from the
task's real-data recipe adapted to the data (and says why); a loss that turns NaN sends the run
back once with half the learning rate; detection clips gradients so a many-class set trains."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab import cli
from cnnlab.engine.defaults import default_recipe, survey
from cnnlab.errors import CnnlabError
from cnnlab.tasks.classify import ClassifyTask


def class_folders(root: Path, side: int = 32, mode: str = "RGB", n: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        shape = (side, side, 3) if mode == "RGB" else (side, side)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def voc(root: Path, classes: int, n: int, side: int = 96) -> Path:
    """A VOC tree of ``n`` photos with 3 coloured boxes each, from ``classes`` classes."""
    rng = np.random.default_rng(0)
    for sub in ("Annotations", "JPEGImages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, objects = np.full((side, side, 3), 110, np.uint8), ""
        for _ in range(3):
            c = int(rng.integers(classes))
            x0, y0 = (int(v) for v in rng.integers(0, side - 40, 2))
            w, h = (int(v) for v in rng.integers(16, 40, 2))
            img[y0:y0 + h, x0:x0 + w] = ((37 * c) % 256, (91 * c) % 256, (53 * c + 80) % 256)
            objects += (f"<object><name>c{c}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                        f"<xmax>{x0 + w}</xmax><ymax>{y0 + h}</ymax></bndbox></object>")
        Image.fromarray(img).save(root / "JPEGImages" / f"{i:03d}.jpg", quality=92)
        (root / "Annotations" / f"{i:03d}.xml").write_text(
            f"<annotation><filename>{i:03d}.jpg</filename>{objects}</annotation>")
    return root


# ----------------------------------------------------------------------------- the recipe for the data
def test_detection_defaults_to_the_bccd_recipe_fitted_to_the_photos(tmp_path):
    data = voc(tmp_path / "boxes", classes=3, n=20, side=128)
    values, reasons = default_recipe("detect", str(data))
    assert values["model"] == "fasterrcnn" and values["pretrained"] is True
    assert values["model_args"]["backbone"] == "efficientnet_lite0"
    assert values["model_args"]["max_size"] == 128 and values["model_args"]["min_size"] == 96  # 512x384 x 0.25
    assert values["model_args"]["anchor_sizes"] == [[6], [12], [24], [48]]
    assert values["clip_grad"] == 10.0 and "data" not in values and "out" not in values
    assert reasons[0].startswith("no --config or --model: the bccd recipe") and "20 images" in reasons[0]
    assert values["epochs"] == 30 and any("30 epochs" in r for r in reasons)  # 14 training photos, 3x the recipe's 10


def test_what_the_user_gave_is_not_adapted_or_claimed(tmp_path):
    data = voc(tmp_path / "boxes", classes=3, n=20, side=128)
    values, reasons = default_recipe("detect", str(data), given={"epochs", "model_args"})
    assert values["epochs"] == 10 and values["model_args"]["max_size"] == 512
    assert not any("epochs" in r or "detector input" in r for r in reasons)


@pytest.mark.parametrize("mode, side, recipe, model", [("RGB", 32, "cifar10", "airbench"),
                                                       ("L", 28, "fashion-mnist", "airbench"),
                                                       ("RGB", 160, "photos", "efficientnet_lite0")])
def test_classification_picks_the_recipe_by_image_size(tmp_path, mode, side, recipe, model):
    data = class_folders(tmp_path / "cls", side, mode)
    assert survey(data).side == side and survey(data).channels == (1 if mode == "L" else 3)
    values, reasons = default_recipe("classify", str(data))
    assert values["model"] == model and f"the {recipe} recipe" in reasons[0]
    if recipe == "photos":
        assert values["pretrained"] and values["image_size"] == 160  # the photos' own size, not 224
    else:
        assert values["batch_size"] == 2 and values["lr"] < 0.01  # 16 images: batch 512 shrinks, lr with it


def test_built_in_sets_and_named_models_keep_the_lecture_defaults(tmp_path, capsys):
    data = class_folders(tmp_path / "cls")
    assert cli.main(["train", "--data", str(data), "--model", "lecture_cnn", "--epochs", "1", "--batch-size", "4", "--workers", "0",
                     "--no-plots", "--out", str(tmp_path / "r1")]) == 0
    out = capsys.readouterr().out
    assert "recipe" not in out and "classify lecture_cnn" in out
    assert cli.main(["train", "--data", "digits", "--epochs", "1", "--no-plots", "--out", str(tmp_path / "r2")]) == 0
    out = capsys.readouterr().out
    assert "recipe" not in out and "classify lecture_cnn" in out


def test_train_without_model_prints_the_recipe_and_its_reasons_first(tmp_path, capsys):
    data = class_folders(tmp_path / "cls")
    assert cli.main(["train", "--data", str(data), "--epochs", "1", "--workers", "0", "--no-plots",
                     "--out", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("classify: class folders") and lines[1].startswith("no --config or --model: the cifar10")
    assert any(line.startswith("batch 2 (the recipe's 512") for line in lines[2:4])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"] == "airbench"


# ----------------------------------------------------------------------------- stable on any dataset
@pytest.mark.slow
def test_the_detection_default_trains_a_many_class_set_that_diverged_without_clipping(tmp_path):
    data = voc(tmp_path / "many", classes=80, n=32)
    run = cnnlab.train(data=str(data), epochs=2, workers=0, plots=False, log=None, out=str(tmp_path / "run"))
    assert all(np.isfinite(row["train_loss"]) for row in run.history)  # before: "loss became nan ... lower --lr"
    saved = json.loads((Path(run.out) / "config.json").read_text())
    assert saved["clip_grad"] == 10.0 and saved["model"] == "fasterrcnn"


def _nan_once(monkeypatch, times: int):
    """ClassifyTask's loss is NaN at the 3rd step of an epoch (digits: 19 steps), ``times`` times."""
    real, calls = ClassifyTask.training_step, {"n": 0, "nan": 0}

    def step(self, model, batch, generator, **kwargs):
        losses, stats = real(self, model, batch, generator, **kwargs)
        calls["n"] += 1
        if calls["n"] % 20 == 3 and calls["nan"] < times:
            calls["nan"] += 1
            losses = {k: v * float("nan") for k, v in losses.items()}
        return losses, stats

    monkeypatch.setattr(ClassifyTask, "training_step", step)


def test_a_nan_loss_sends_the_run_back_once_with_half_the_learning_rate(tmp_path, monkeypatch):
    _nan_once(monkeypatch, times=1)
    lines = []
    run = cnnlab.train(data="digits", epochs=2, batch_size=64, lr=0.04, workers=0, plots=False, out=str(tmp_path / "r"),
                       log=lines.append)
    said = [line for line in lines if "half the learning rate" in line]
    assert len(said) == 1 and "loss became nan by epoch 1" in said[0] and "peak now 0.02" in said[0]
    assert len(run.history) == 2 and all(np.isfinite(r["train_loss"]) for r in run.history)
    assert max(r["lr"] for r in run.history) <= 0.02 + 1e-9


def test_a_second_nan_stops_the_run_and_says_it_already_went_back(tmp_path, monkeypatch):
    _nan_once(monkeypatch, times=2)
    with pytest.raises(CnnlabError, match="lower --lr .*already went back once with half the learning rate"):
        cnnlab.train(data="digits", epochs=2, batch_size=64, workers=0, plots=False, out=str(tmp_path / "r"), log=None)


@pytest.mark.parametrize("task", ["classify", "segment", "detect", "caption"])
def test_every_default_climbs_to_its_peak_over_at_least_100_steps(tmp_path, task):
    values, _ = default_recipe(task, str(tmp_path))
    assert values["warmup_steps"] == 100
    values, _ = default_recipe(task, str(tmp_path), given={"warmup_steps"})
    assert values["warmup_steps"] == 100  # the recipe's value; a given one replaces it in the config


def test_warmup_steps_lengthen_a_warmup_that_epochs_make_short(tmp_path):
    from cnnlab.engine.config import TrainConfig
    from cnnlab.engine.trainer import setup
    from cnnlab.runtime.distributed import Dist

    cfg = TrainConfig(task="classify", data="xo", epochs=2, schedule="cosine", warmup_epochs=0.1, warmup_steps=20,
                      out=str(tmp_path), plots=False)
    run = setup(cfg, Dist(), torch.device("cpu"), None, lambda *a, **k: None)
    f = run.schedule.lr_lambdas[0]
    assert run.steps * 0.1 < 20 and f(19) < 1.0 and f(20) == pytest.approx(1.0)
