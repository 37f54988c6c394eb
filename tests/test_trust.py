"""Promises that must hold on data and usage nobody tuned for: resume, crashes, TTA, hostile files."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab import api
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.errors import CnnlabError

FAST = dict(data="digits", batch_size=64, plots=False, workers=0, log=lambda *a: None)


def epochs_logged(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trust") / "a"
    cnnlab.train(epochs=2, out=str(out), **FAST)
    return out


# ---------------------------------------------------------------------- resume
def test_resume_writes_beside_the_checkpoint_not_where_it_was_trained(digits_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(digits_run, copy)
    before = (digits_run / "metrics.csv").read_text()
    cnnlab.train(resume=copy / "last.pt", epochs=3, log=lambda *a: None)
    assert epochs_logged(copy) == [1, 2, 3]  # every epoch once, the resumed one added
    assert (digits_run / "metrics.csv").read_text() == before  # the original run is untouched


def test_resume_refuses_other_data_model_or_task(digits_run):
    for option in ({"data": "xo"}, {"model": "lenet5"}, {"task": "segment"}):
        key = next(iter(option))
        with pytest.raises(CnnlabError, match=f"--{key} .*--resume continues that run"):
            cnnlab.train(resume=digits_run / "last.pt", **option)


def test_resuming_a_finished_run_into_a_new_folder_completes_it(digits_run, tmp_path):
    lines = []
    run = cnnlab.train(resume=digits_run / "last.pt", out=str(tmp_path / "new"), log=lines.append)
    assert any("already finished its 2 epochs" in line for line in lines)
    assert (tmp_path / "new" / "best.pt").is_file() and run.test["count"] == 360


def test_a_killed_runs_temporaries_are_removed_and_checkpoints_are_ordinary_files(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    cnnlab.train(epochs=1, out=str(out), **FAST)
    assert not list(out.glob("*.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "last.pt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_out_that_is_a_file_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CnnlabError, match="a file is in the way"):
        cnnlab.train(epochs=1, out=str(blocker), **FAST)


# ---------------------------------------------------------------------- kill -9
def _start(out: Path, epochs: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--data", "digits", "--epochs", str(epochs),
                             "--batch-size", "64", "--workers", "0", "--no-plots", "--deterministic", "--out",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """SIGKILL ``proc`` once ``ready()``; whether it was still running then."""
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    return proc.wait() == -signal.SIGKILL


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_loadable_checkpoints_and_resume_matches(tmp_path):
    epochs = 12
    torch.set_num_threads(1)
    try:
        straight = cnnlab.train(epochs=epochs, out=str(tmp_path / "straight"), deterministic=True, **FAST)
        moments = {
            "during a checkpoint write": lambda out: bool(list(out.glob("*.pt.*.tmp"))),
            "after two epochs": lambda out: (out / "metrics.csv").is_file() and len(epochs_logged(out)) >= 2,
            "mid-epoch": lambda out: (out / "last.pt").is_file() and time.sleep(0.05) is None,
        }
        killed = {}
        for name, ready in moments.items():
            out = tmp_path / name.replace(" ", "-")
            killed[name] = _kill_when(_start(out, epochs), lambda: ready(out))
            for ckpt in out.glob("*.pt"):
                load_checkpoint(ckpt)  # every checkpoint still loads
            if not (out / "last.pt").is_file():
                continue  # killed before the first checkpoint: nothing to resume
            cnnlab.train(resume=out / "last.pt", log=lambda *a: None)
            assert epochs_logged(out) == list(range(1, epochs + 1)), name
            final = load_checkpoint(out / "last.pt")["model"]
            expected = load_checkpoint(straight.out / "last.pt")["model"]
            for key in expected:
                torch.testing.assert_close(final[key], expected[key], msg=f"{name}: {key}")
        assert killed["after two epochs"] and killed["mid-epoch"], killed  # the write itself is a race to catch
    finally:
        torch.set_num_threads(os.cpu_count() or 1)


# ---------------------------------------------------------------------- test-time augmentation
@pytest.mark.parametrize("data, options", [
    ("digits", {}),                                # no flip, no translate: TTA has no view to add
    pytest.param("xo", {"translate": 2}, marks=pytest.mark.slow),                    # shifts only: never the mirror
    pytest.param("shapes", {"flip": True, "translate": 2}, marks=pytest.mark.slow),  # both
])
def test_tta_never_lowers_accuracy_beyond_noise(tmp_path, data, options):
    run = cnnlab.train(data=data, epochs=2, batch_size=64, plots=False, workers=0, amp="off",
                       out=str(tmp_path / data), log=lambda *a: None, **options)
    plain = cnnlab.evaluate(run.out / "best.pt")
    for level in (1, 2):
        m = cnnlab.evaluate(run.out / "best.pt", tta=level)
        assert ("mirror" in m["tta_views"]) == options.get("flip", False)
        assert ("1-pixel shifts" in m["tta_views"]) == (level == 2 and options.get("translate", 0) > 0)
        assert m["top1"] >= plain["top1"] - 0.01, (level, m["tta_views"])


# ---------------------------------------------------------------------- predict on anything
def test_predict_takes_paths_pil_numpy_and_tensors_and_goes_on_past_bad_files(digits_run, tmp_path):
    digit = cnnlab.load_dataset("digits", "test").images[0]  # uint8 (1, 8, 8)
    path = tmp_path / "digit.png"
    Image.fromarray(digit[0].numpy()).save(path)
    (tmp_path / "bad.jpg").write_text("not an image")
    inputs = [path, Image.open(path), digit[0].numpy(), digit, str(tmp_path / "bad.jpg")]
    results = cnnlab.predict(digits_run / "best.pt", inputs, topk=2, batch_size=2)
    assert [r["image"] for r in results][:1] == [str(path)] and len(results) == 5
    probs = [r["top"][0]["prob"] for r in results[:4]]
    assert max(probs) - min(probs) < 1e-6  # the same picture, whatever form it came in
    assert "bad.jpg" in results[4]["error"] and "top" not in results[4]
    with pytest.raises(CnnlabError, match="--topk -3"):
        cnnlab.predict(digits_run / "best.pt", [path], topk=-3)


def test_predict_streams_in_batches(digits_run, tmp_path, monkeypatch):
    digit = cnnlab.load_dataset("digits", "test").images[0]
    lm = api.load(digits_run / "best.pt")
    sizes = []
    real = lm.task.predict
    monkeypatch.setattr(lm.task, "predict", lambda lm_, images, o: sizes.append(len(images)) or real(lm_, images, o))
    assert len(cnnlab.predict(lm, [digit] * 5, batch_size=2)) == 5
    assert sizes == [2, 2, 1]


def test_predict_and_explain_give_the_same_probability(digits_run, tmp_path):
    path = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 53), dtype=np.uint8)).save(path)  # resized on the way in
    p = cnnlab.predict(digits_run / "best.pt", [path], topk=1)[0]["top"][0]
    e = cnnlab.explain(digits_run / "best.pt", path, out=tmp_path / "x")["prediction"][0]
    assert p["class"] == e["class"] and abs(p["prob"] - e["prob"]) < 1e-5


# ---------------------------------------------------------------------- hostile checkpoints
class _Payload:
    """A pickle that would create ``marker`` when loaded with pickle's defaults."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("args", [
    ["eval", "{ckpt}"], ["predict", "{ckpt}", "{image}"], ["export", "{ckpt}"], ["explain", "{ckpt}", "{image}"],
    ["train", "--resume", "{ckpt}"], ["detect-faces", "{image}", "--checkpoint", "{ckpt}"],
])
def test_a_malicious_checkpoint_executes_nothing_in_any_command(tmp_path, capsys, args):
    from cnnlab.cli import main

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pt"
    torch.save({"model": _Payload(marker), "task": {"name": "classify"}, "config": {}}, ckpt)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    code = main([a.format(ckpt=ckpt, image=image) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and "evil.pt: refused" in err and "Traceback" not in err
    assert not marker.exists()


def test_a_file_failing_inside_a_dataloader_worker_is_one_clean_line(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = tmp_path / "photos" / split / cls
            folder.mkdir(parents=True)
            for i in range(6):  # mixed sizes: the file-backed path, decoded per batch in workers
                side = 20 + 4 * i
                Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    good = (tmp_path / "photos" / "train" / "a" / "0.png").read_bytes()
    (tmp_path / "photos" / "train" / "a" / "broken.png").write_bytes(good[: len(good) // 2])  # header fine, body cut
    with pytest.raises(CnnlabError) as e:
        cnnlab.train(data=str(tmp_path / "photos"), epochs=1, batch_size=4, workers=1, image_size=24, plots=False,
                     out=str(tmp_path / "run"), log=lambda *a: None)
    assert "broken.png" in str(e.value) and "Traceback" not in str(e.value) and "\n" not in str(e.value)


def test_the_train_eval_guard_speaks_when_batchnorm_statistics_do_not_fit(digits_run):
    from cnnlab.data.loader import Batches
    from cnnlab.engine.guards import train_eval_accuracy, train_eval_warning

    lm = api.load(digits_run / "best.pt")
    batches = Batches(cnnlab.load_dataset("digits", "train"), 64, lm.device, shuffle=True, seed=0)
    healthy = train_eval_accuracy(lm.task, lm.model, batches)
    assert train_eval_warning(healthy) is None and healthy["images"] == 256
    for m in lm.model.modules():  # statistics of other weights: what a large late step leaves behind
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean += 3 * m.running_var.sqrt()
    broken = train_eval_accuracy(lm.task, lm.model, batches)
    assert broken["eval_acc"] < broken["train_mode_acc"] - 0.05
    assert "BatchNorm running statistics do not fit" in train_eval_warning(broken)
