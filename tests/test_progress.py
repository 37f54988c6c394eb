"""Training progress: a bar with ETAs on a terminal, one plain line per epoch elsewhere."""
from __future__ import annotations

import io
import time

from cnnlab.engine.progress import Progress, run_eta


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeBatches:
    def steps_per_epoch(self) -> int:
        return 3

    def epoch(self, epoch: int):
        yield from ("a", "b", "c")


def test_a_terminal_gets_a_bar_with_the_runs_eta_then_the_epochs_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = Terminal()
    eta = run_eta([10.0, 12.0], epochs=5, epoch=2, started=time.perf_counter())
    p = Progress("epoch 3/5", 4, stream=out, run_eta=eta)
    for _ in range(4):
        p.update(lambda: {"loss": 0.5, "acc": 0.75, "img_s": 100.0})  # new numbers at least on the last step
        p.bar.refresh()  # drawn at once (tqdm draws at most every 0.1 s)
    assert list(p.validating(FakeBatches()).epoch(0)) == ["a", "b", "c"]
    p.close("val top1 0.9")
    text = out.getvalue()
    assert "%|" in text and "loss 0.5000 acc 0.7500 100 img/s" in text
    assert "run ETA 00:22" in text  # 2 epochs left after this one, 11 s each on average
    assert "epoch 3/5 validation" in text
    assert text.endswith("epoch 3/5: loss 0.5000 acc 0.7500 100 img/s  val top1 0.9\n")


def test_a_pipe_gets_one_plain_line_per_epoch_and_no_bar():
    out = io.StringIO()
    p = Progress("epoch 1/2", 3, stream=out)
    for _ in range(3):
        p.update(lambda: {"loss": 1.0})
    p.stats = {"loss": 1.0}
    batches = FakeBatches()
    assert p.validating(batches) is batches
    p.close("val x")
    assert out.getvalue() == "epoch 1/2: loss 1.0000  val x\n"


def test_the_first_epoch_extrapolates_and_later_ones_use_finished_epochs():
    started = time.perf_counter() - 10.0
    first = run_eta([], epochs=3, epoch=0, started=started)
    assert first(0.01) is None  # too early to say
    assert 45 < first(0.5) < 55  # 10 s for half an epoch, 2.5 epochs left
    assert run_eta([30.0], epochs=3, epoch=1, started=started)(0.0) == 60.0
