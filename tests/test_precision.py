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


# ----------------------------------------------------------------------------- bf16 end to end
def test_bf16_forward_gives_fp32_logits_and_gradients_as_close_to_fp32_as_autocast():
    from cnnlab.models import get_model
    from cnnlab.runtime.precision import Bf16Forward

    torch.manual_seed(0)
    model = get_model("resnet20", num_classes=5)
    step = Bf16Forward(model)
    norms = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert norms and not norms & set(step.cast)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 5, (8,))

    def grads(forward):
        model.zero_grad()
        logits = forward(x)
        torch.nn.functional.cross_entropy(logits.float(), y).backward()
        return logits.dtype, {n: p.grad.clone() for n, p in model.named_parameters()}

    def autocast(x):
        with torch.autocast("cpu", torch.bfloat16):
            return model(x)

    _, exact = grads(model)
    _, mixed = grads(autocast)
    dtype, full = grads(step)
    assert dtype == torch.float32
    for n, p in model.named_parameters():
        assert p.dtype == torch.float32 and full[n].dtype == torch.float32, n
        cos = [float(torch.nn.functional.cosine_similarity(g[n].flatten(), exact[n].flatten(), 0)) for g in (full, mixed)]
        assert cos[0] > 0.9 and cos[0] > cos[1] - 0.02, f"{n}: cosine to fp32's gradient {cos[0]:.3f} (autocast {cos[1]:.3f})"


def test_bf16_forward_keeps_batchnorm_in_fp32():
    from cnnlab.runtime.precision import Bf16Forward

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    step = Bf16Forward(model)
    assert step.cast == ["0.weight", "0.bias"]
    step(torch.randn(2, 3, 8, 8)).sum().backward()
    assert model[1].running_mean.dtype == torch.float32 and model[1].running_mean.abs().sum() > 0
    assert model[1].weight.grad.dtype == torch.float32


@pytest.mark.skipif(not dev.bf16_supported(torch.device("cpu")), reason="this CPU has no fast bf16")
def test_amp_bf16_full_trains_and_checkpoints_fp32_weights(tmp_path):
    lines = []
    run = cnnlab.train(data="xo", epochs=1, amp="bf16-full", plots=False, out=str(tmp_path), log=lines.append)
    assert any("bf16 weights and activations" in line for line in lines)
    assert run.test["top1"] > 0.8
    state = load_checkpoint(tmp_path / "best.pt")["model"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_amp_bf16_full_says_what_it_falls_back_to(tmp_path, monkeypatch):
    import cnnlab.engine.trainer as trainer

    monkeypatch.setattr(trainer, "use_bf16", lambda device, policy, side: False)
    lines = []
    cnnlab.train(data="xo", epochs=1, amp="bf16-full", plots=False, out=str(tmp_path), log=lines.append)
    assert any("amp bf16-full: classify trains in fp32 (no fast bf16 on this cpu)" in line for line in lines)
