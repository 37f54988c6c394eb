"""--ema: an exponential moving average of the weights, what validation, best.pt and a resume see."""
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.engine.ema import WeightEma
from cnnlab.tasks.classify import ClassifyTask

FAST = dict(data="digits", batch_size=64, plots=False, workers=0, deterministic=True)


def test_average_warms_up_then_moves_by_one_minus_decay():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = WeightEma(model, decay=0.9)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].num_batches_tracked.fill_(7)
    ema.update()  # warm-up: the average moves by 1 - (1 + 1) / (10 + 1) = 9/11 of the way
    torch.testing.assert_close(ema.model[0].weight, start + 9 / 11)
    assert int(ema.model[1].num_batches_tracked) == 7  # integer buffers are copied, not averaged
    ema.updates = 1000
    before = ema.model[0].weight.clone()
    ema.update()  # past the warm-up: 1 - decay of the way
    torch.testing.assert_close(ema.model[0].weight, before + 0.1 * (model[0].weight - before))
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_a_frozen_module_is_shared_not_copied():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    ema = WeightEma(model, decay=0.99)
    assert ema.model[0] is model[0] and ema.model[1] is not model[1]


def test_training_with_ema_scores_and_saves_the_average_and_resumes_from_the_weights(tmp_path, monkeypatch):
    straight = cnnlab.train(epochs=2, ema=0.98, out=str(tmp_path / "a"), **FAST)
    best = load_checkpoint(tmp_path / "a" / "best.pt")
    assert best["ema"]["updates"] == best["epoch"] * 19  # 19 steps an epoch
    differs = [k for k in best["model"] if best["model"][k].is_floating_point()
               and not torch.equal(best["model"][k], best["trained_model"][k])]
    assert differs  # the average is not the last step's weights
    scored = cnnlab.evaluate(tmp_path / "a" / "best.pt", split="val")
    assert scored["top1"] == pytest.approx(straight.best["top1"])  # best.pt holds the weights validation scored

    calls = {"n": 0}
    original = ClassifyTask.training_step

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 25:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ClassifyTask, "training_step", interrupted)
    assert cnnlab.train(epochs=2, ema=0.98, out=str(tmp_path / "b"), **FAST).interrupted
    monkeypatch.setattr(ClassifyTask, "training_step", original)
    cnnlab.train(resume=tmp_path / "b" / "last.pt")
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("model", "trained_model"):
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], rtol=0, atol=1e-6, msg=f"{key} {k}")
