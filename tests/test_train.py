"""The trainer end to end on the built-in digits: learns, checkpoints, resumes exactly."""
import csv
import json

import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.errors import CnnlabError
from cnnlab.tasks.classify import ClassifyTask

FAST = dict(data="digits", batch_size=64, plots=False, workers=0)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits"
    return cnnlab.train(epochs=6, out=str(out), **{**FAST, "plots": True}), out


def test_training_learns_digits_and_leaves_a_run_folder(digits_run):
    result, out = digits_run
    assert result.test["top1"] > 0.93  # 8x8 digits; chance is 0.10
    assert result.test["top5"] >= result.test["top1"]
    for name in ("curves.png", "confusion_matrix.png", "predictions.png"):
        with Image.open(out / name) as figure:
            assert figure.format == "PNG" and min(figure.size) >= 200, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 6 and metrics["test"]["top1"] == result.test["top1"]
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [float(r["val_top1"]) for r in rows] == [e["val_top1"] for e in metrics["epochs"]]
    losses = [r["train_loss"] for r in metrics["epochs"]]
    assert losses[-1] < losses[0] / 2


def test_checkpoint_holds_everything_to_resume_and_loads_weights_only(digits_run):
    _, out = digits_run
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["step"]) == (6, 0)  # at the end of the 6th epoch
    assert state["version"] == cnnlab.__version__
    assert state["config"] == json.loads((out / "config.json").read_text()) and state["config"]["epochs"] == 6
    assert state["task"]["classes"] == [str(i) for i in range(10)] and state["task"]["input_shape"] == [1, 8, 8]
    assert state["history"] == json.loads((out / "metrics.json").read_text())["epochs"]
    # every trained tensor with its SGD momentum, the schedule 6 epochs x 19 steps along
    weights = {k: v for k, v in state["model"].items() if v.is_floating_point()}
    assert all(v.isfinite().all() for v in weights.values())
    params = [i for group in state["optimizer"]["param_groups"] for i in group["params"]]
    assert sorted(state["optimizer"]["state"]) == sorted(params)
    assert all(s["momentum_buffer"].isfinite().all() for s in state["optimizer"]["state"].values())
    assert state["scheduler"]["last_epoch"] == 6 * 19
    torch.Generator().set_state(state["rng"]["torch"])  # a real generator state
    best = torch.load(out / "best.pt", weights_only=True)  # no pickled code needed
    assert best["model"].keys() == state["model"].keys()


def test_evaluate_and_predict_agree_with_training(digits_run, tmp_path):
    result, out = digits_run
    m = cnnlab.evaluate(out / "best.pt")
    assert m["top1"] == pytest.approx(result.test["top1"], abs=1e-9)
    assert sum(m["confusion_matrix"][i][i] for i in range(10)) == round(m["top1"] * m["count"])
    # Predict a real test digit written as a PNG: the top class is right for most of them.
    data = cnnlab.load_dataset("digits", "test")
    paths = []
    for i in range(20):
        p = tmp_path / f"d{i}.png"
        Image.fromarray(data.images[i, 0].numpy()).save(p)
        paths.append(p)
    preds = cnnlab.predict(out / "best.pt", paths, topk=3)
    hits = sum(r["top"][0]["class"] == str(int(data.labels[i])) for i, r in enumerate(preds))
    assert hits >= 17
    for r in preds:  # the three most probable classes, most probable first, a part of the whole
        probs = [t["prob"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    everything = cnnlab.predict(out / "best.pt", paths[:3], topk=10)  # all ten classes: a distribution
    assert all(abs(sum(t["prob"] for t in r["top"]) - 1) < 1e-4 for r in everything)


def test_interrupt_saves_and_resume_continues_exactly(tmp_path, monkeypatch):
    # With airbench's schedule shape and lookahead: its average (set at step 20) must survive the stop.
    # deterministic: also keeps the thread count fixed (a re-picked count changes sums in the 8th digit).
    FAST = dict(globals()["FAST"], translate=1, lookahead=True, lr_cycle=[0.2, 0.3, 0.1], deterministic=True)
    straight = cnnlab.train(epochs=3, out=str(tmp_path / "a"), **FAST)
    calls = {"n": 0}
    original = ClassifyTask.training_step

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 25:  # in the middle of epoch 2 (19 steps an epoch)
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ClassifyTask, "training_step", interrupted)
    stopped = cnnlab.train(epochs=3, out=str(tmp_path / "b"), **FAST)
    assert stopped.interrupted
    saved = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (saved["epoch"], saved["step"]) == (1, 5)
    assert saved["lookahead"] is not None
    monkeypatch.setattr(ClassifyTask, "training_step", original)
    resumed = cnnlab.train(resume=tmp_path / "b" / "last.pt")
    a = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    assert resumed.best["top1"] == pytest.approx(straight.best["top1"])


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CnnlabError, match="bad.pt: not a readable cnnlab checkpoint"):
        cnnlab.evaluate(bad)
    with pytest.raises(CnnlabError, match="checkpoint not found"):
        cnnlab.evaluate(tmp_path / "missing.pt")
