"""--tensorboard: losses, lr, metrics per epoch and the run's figures, in OUT/tensorboard."""
from __future__ import annotations

import builtins

import pytest

import cnnlab
from cnnlab.errors import CnnlabError

FAST = dict(data="digits", batch_size=64, workers=0, log=None)


def test_a_run_logs_scalars_per_step_and_epoch_and_its_figures(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cnnlab.train(epochs=2, out=str(tmp_path), tensorboard=True, **FAST)
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss_step", "train/lr", "train/loss", "train/acc", "val/top1", "val/loss"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("val/top1")] == [1, 2]
    steps = [e.step for e in events.Scalars("train/loss_step")]
    assert steps[0] == 0 and len(steps) >= 2  # 20 steps an epoch of 1,258 digits at batch 64
    assert {"figures/confusion_matrix", "figures/curves"} <= set(tags["images"])


def test_without_the_package_it_fails_at_once_in_one_line(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(CnnlabError, match="pip install tensorboard"):
        cnnlab.train(epochs=1, out=str(tmp_path), tensorboard=True, **FAST)
    assert not (tmp_path / "last.pt").exists()
