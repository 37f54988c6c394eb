"""Mixed precision policy: bf16 where the hardware has it, fp16 with loss scaling on older GPUs."""
from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab import cli
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.errors import CnnlabError
from cnnlab.runtime import device as dev


@pytest.mark.parametrize("kind, bf16, policy, fp16", [
    ("cuda", False, "auto", True),     # a pre-Ampere GPU: fp16 with a gradient scaler
    ("cuda", True, "auto", False),     # bf16 needs no scaler
    ("cuda", True, "fp16", True),      # asked for
    ("cuda", False, "off", False),
    ("cpu", False, "auto", False),
    ("cpu", True, "auto", False),
])
def test_auto_takes_fp16_only_on_gpus_without_bf16(monkeypatch, kind, bf16, policy, fp16):
    monkeypatch.setattr(dev, "bf16_supported", lambda device: bf16)
    assert dev.use_fp16(torch.device(kind), policy) is fp16
    assert not (fp16 and dev.use_bf16(torch.device(kind), policy, 32))  # never both


def test_fp16_on_a_cpu_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(CnnlabError, match="amp fp16: fp16 autocast is for GPUs"):
        dev.use_fp16(torch.device("cpu"), "fp16")
    assert cli.main(["train", "--data", "digits", "--epochs", "1", "--amp", "fp16", "--out", str(tmp_path)]) == 2
    assert "amp fp16" in capsys.readouterr().err
    assert not (tmp_path / "last.pt").exists()


def test_the_fp16_path_trains_with_a_gradient_scaler_and_checkpoints_it(tmp_path, monkeypatch):
    """The GPU path run on the CPU (fp16 autocast and GradScaler work there too, slowly)."""
    import cnnlab.engine.trainer as trainer

    monkeypatch.setattr(trainer, "use_fp16", lambda device, policy: True)
    lines = []
    cnnlab.train(data="digits", epochs=1, batch_size=64, amp="off", workers=0, plots=False,
                 out=str(tmp_path), log=lines.append)
    assert any("fp16 autocast with loss scaling" in line for line in lines)
    # The scaler starts at 2**16 and counts the steps without an overflow (19 an epoch; this small model's
    # gradients never overflow): a resumed run counts on from the checkpoint's count, a new scaler from 0.
    scaler = load_checkpoint(tmp_path / "last.pt")["scaler"]
    assert (scaler["scale"], scaler["_growth_tracker"]) == (2.0 ** 16, 19)
    run = cnnlab.train(resume=tmp_path / "last.pt", epochs=2, log=lines.append)
    assert run.test["top1"] > 0.5
    assert load_checkpoint(tmp_path / "last.pt")["scaler"]["_growth_tracker"] == 2 * 19
