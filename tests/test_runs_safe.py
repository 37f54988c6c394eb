"""Nothing lost, nothing written where it was not asked (issue 23).

Runs get their own numbered folder, an --out holding a run is refused, a live run's folder is
locked, SIGTERM saves like Ctrl-C, an export never replaces its checkpoint, and every file a
command writes replaces a link planted at its name instead of writing through it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cnnlab
from cnnlab import cli
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.errors import CnnlabError

FAST = dict(data="digits", epochs=1, batch_size=64, plots=False, workers=0, log=None)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("safe") / "digits"
    cnnlab.train(out=str(out), **FAST)
    return out


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def start_training(out: Path, *args: str) -> subprocess.Popen:
    """`cnnlab train` on digits for many small epochs in a child process (stopped by the test)."""
    return subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--data", "digits", "--epochs", "500",
                             "--batch-size", "16", "--workers", "0", "--no-plots", "--out", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "CNNLAB_THREADS": "1"})


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the PID names no process now
    return proc.pid


# ---------------------------------------------------------------------- 1. runs are never lost
def test_without_out_each_run_gets_a_new_numbered_folder_under_its_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = []
    first = cnnlab.train(**{**FAST, "log": lines.append})
    second = cnnlab.train(**FAST)
    assert first.out == Path("runs/classify/digits") and second.out == Path("runs/classify/digits2")
    assert lines[0] == "run folder: runs/classify/digits"  # the folder is said first
    for run in (first, second):
        assert (run.out / "best.pt").is_file()
        assert load_checkpoint(run.out / "last.pt")["config"]["out"] == str(run.out)  # where it lives


def test_an_out_holding_a_run_is_refused_unless_exist_ok_or_resume(digits_run, tmp_path):
    before = (digits_run / "metrics.json").read_bytes()
    with pytest.raises(CnnlabError, match=r"holds a run \(best.pt, last.pt, metrics.json\).*--exist-ok"):
        cnnlab.train(out=str(digits_run), **{**FAST, "data": "xo"})
    assert (digits_run / "metrics.json").read_bytes() == before
    assert load_checkpoint(digits_run / "last.pt")["config"]["data"] == "digits"
    copy = tmp_path / "copy"
    cnnlab.train(out=str(copy), **FAST)
    cnnlab.train(resume=copy / "last.pt", epochs=2, log=None)  # --resume continues it there
    assert load_checkpoint(copy / "last.pt")["epoch"] == 2
    cnnlab.train(out=str(copy), exist_ok=True, **{**FAST, "data": "xo"})  # --exist-ok replaces it
    assert load_checkpoint(copy / "last.pt")["config"]["data"] == "xo"


def test_out_creates_its_last_folder_only(tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", "digits", "--epochs", "1", "--out", tmp_path / "a" / "b"], capsys)
    assert code == 2 and f"the folder {tmp_path / 'a'} does not exist" in err
    assert not (tmp_path / "a").exists()


def test_a_second_run_into_a_live_runs_folder_is_refused_and_sigterm_saves_like_ctrl_c(tmp_path, capsys):
    out = tmp_path / "same"
    first = start_training(out)
    try:
        wait_for(out / "metrics.csv", first)  # an epoch done: training is under way
        assert (out / "run.lock").read_text().split()[0] == str(first.pid)
        code, _, err = run_cli(["train", "--data", "xo", "--epochs", "1", "--out", out], capsys)
        assert code == 2 and f"PID {first.pid}" in err
        assert len(err.strip().splitlines()) == 1
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130 and "interrupted: saved" in output
    assert not (out / "run.lock").exists()  # the lock goes with the run
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["data"] == "digits" and state["epoch"] < 500
    resumed = cnnlab.train(resume=out / "last.pt", epochs=state["epoch"] + 1, log=None)
    assert [row["epoch"] for row in resumed.history] == list(range(1, state["epoch"] + 2))


def test_a_killed_runs_lock_is_taken_over_and_a_live_one_refused(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "run.lock").write_text(f"{dead_pid()} {socket.gethostname()}\n")
    cnnlab.train(out=str(out), **FAST)
    assert (out / "best.pt").is_file() and not (out / "run.lock").exists()
    live = tmp_path / "live"
    live.mkdir()
    (live / "run.lock").write_text(f"{os.getppid()} {socket.gethostname()}\n")
    with pytest.raises(CnnlabError, match=f"in use by another cnnlab run \\(PID {os.getppid()}\\)"):
        cnnlab.train(out=str(live), **FAST)
    assert (live / "run.lock").read_text().startswith(str(os.getppid()))  # not taken from a live run


def test_the_sigterm_handler_is_fit_s_only_while_it_runs(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    during = []
    cnnlab.train(out=str(tmp_path / "r"), on_epoch=lambda *a: during.append(signal.getsignal(signal.SIGTERM)),
                 **FAST)
    assert during and during[0] is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_export_refuses_to_replace_its_own_checkpoint_by_any_name(digits_run, tmp_path, capsys):
    ckpt = digits_run / "last.pt"
    before = ckpt.read_bytes()
    hard, soft = tmp_path / "hard.pt", tmp_path / "soft.pt"
    os.link(ckpt, hard)
    soft.symlink_to(ckpt)
    for out in (ckpt, hard, soft):
        for fmt in ("safetensors", "torchscript"):
            code, _, err = run_cli(["export", ckpt, "--format", fmt, "--out", out], capsys)
            assert code == 2 and "the checkpoint being exported" in err, (out, fmt, err)
    assert ckpt.read_bytes() == before and soft.is_symlink()


def test_export_creates_no_folder(digits_run, tmp_path, capsys):
    code, _, err = run_cli(["export", digits_run / "best.pt", "--format", "safetensors",
                            "--out", tmp_path / "nonexistent_dir" / "x.safetensors"], capsys)
    assert code == 2 and f"the folder {tmp_path / 'nonexistent_dir'} does not exist" in err
    assert not (tmp_path / "nonexistent_dir").exists()


def test_predict_save_refuses_a_folder_with_predictions_unless_exist_ok(digits_run, tmp_path, capsys):
    cli.main(["samples", "--out", str(tmp_path), "digit.png"])
    image = tmp_path / "digit.png"
    saved = tmp_path / "saved"
    assert run_cli(["predict", digits_run / "best.pt", image, "--save", saved], capsys)[0] == 0
    first = (saved / "predictions.jsonl").read_text()
    code, _, err = run_cli(["predict", digits_run / "best.pt", image, image, "--save", saved], capsys)
    assert code == 2 and "holds predictions.jsonl" in err and "--exist-ok" in err
    assert (saved / "predictions.jsonl").read_text() == first
    assert run_cli(["predict", digits_run / "best.pt", image, image, "--save", saved, "--exist-ok"], capsys)[0] == 0
    assert len((saved / "predictions.jsonl").read_text().splitlines()) == 2  # replaced, not appended


# ---------------------------------------------------------------------- 2. writes go where asked
def plant(folder: Path, names, outside: Path) -> dict[Path, Path]:
    """A link at each name in ``folder`` to its own file in ``outside``; {link: target}."""
    folder.mkdir(exist_ok=True)
    outside.mkdir(exist_ok=True)
    links = {}
    for name in names:
        target = outside / f"target-of-{name}"
        target.write_text("not cnnlab's")
        (folder / name).symlink_to(target)
        links[folder / name] = target
    return links


def assert_untouched(links: dict[Path, Path]) -> None:
    for link, target in links.items():
        assert target.read_text() == "not cnnlab's", f"{link} was written through to {target}"
        assert link.is_file() and not link.is_symlink(), f"{link} was not written"


def test_train_replaces_links_planted_in_its_folder_never_their_targets(tmp_path, capsys):
    outside = tmp_path / "outside"
    run = tmp_path / "run"
    links = plant(run, ["config.json", "metrics.csv", "curves.png", "confusion_matrix.png", "predictions.png",
                        "top_losses.png", "most_confused.csv"], outside)
    assert run_cli(["train", "--data", "digits", "--epochs", "1", "--workers", "0", "--out", run], capsys)[0] == 0
    assert_untouched(links)
    again = plant(tmp_path / "again", ["best.pt", "last.pt", "metrics.json", "config.json"], outside)
    assert run_cli(["train", "--data", "digits", "--epochs", "1", "--workers", "0", "--no-plots", "--exist-ok",
                    "--out", tmp_path / "again"], capsys)[0] == 0
    assert_untouched(again)


def test_every_command_replaces_links_planted_at_its_files(digits_run, tmp_path, capsys):
    outside = tmp_path / "outside"
    ckpt = digits_run / "best.pt"
    here = tmp_path / "here"
    links = plant(here, ["digit.png", "fm.png", "grid.png", "m.safetensors", "m.onnx"], outside)
    assert run_cli(["samples", "--out", here, "digit.png"], capsys)[0] == 0
    assert run_cli(["convolve", here / "digit.png", "--out", here / "fm.png"], capsys)[0] == 0
    assert run_cli(["data", "info", "digits", "--grid", here / "grid.png"], capsys)[0] == 0
    assert run_cli(["export", ckpt, "--format", "safetensors", "--out", here / "m.safetensors"], capsys)[0] == 0
    assert run_cli(["export", ckpt, "--format", "onnx", "--out", here / "m.onnx"], capsys)[0] == 0
    links |= plant(tmp_path / "saved", ["predictions.jsonl"], outside)
    assert run_cli(["predict", ckpt, here / "digit.png", "--save", tmp_path / "saved", "--exist-ok"], capsys)[0] == 0
    links |= plant(tmp_path / "plots", ["confusion_matrix.png", "predictions.png", "top_losses.png",
                                        "most_confused.csv"], outside)
    assert run_cli(["eval", ckpt, "--plots", tmp_path / "plots"], capsys)[0] == 0
    assert_untouched(links)
