"""Two DDP processes on the CPU (gloo) match one process with the same global batch."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from cnnlab.engine.checkpoint import load_checkpoint

# No batch norm and no dropout: their per-process statistics and masks would differ by design.
ARGS = ["train", "--data", "digits", "--epochs", "2", "--amp", "off", "--no-plots", "--workers", "0",
        "--set", "model_args={batch_norm: false, dropout: 0.0}"]


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not installed")
def test_two_processes_match_one(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    _run([torchrun, "--nproc_per_node", "2", "--master_port", "29517", "-m", "cnnlab", *ARGS,
          "--batch-size", "32", "--out", str(tmp_path / "ddp")], tmp_path)
    _run([sys.executable, "-m", "cnnlab", *ARGS, "--batch-size", "64", "--out", str(tmp_path / "one")], tmp_path)
    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt")
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    for k in one["model"]:
        torch.testing.assert_close(ddp["model"][k], one["model"][k], rtol=1e-3, atol=1e-4, msg=k)
    assert ddp["best"]["top1"] == pytest.approx(one["best"]["top1"], abs=0.01)
    assert not (tmp_path / "ddp" / "metrics.json.tmp").exists()
