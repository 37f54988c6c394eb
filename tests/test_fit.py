"""fit(config, *, data, model, callbacks): objects in, hooks out, and checkpoints that say so."""
import pytest
from torch import nn

from cnnlab.data import list_datasets, load_dataset
from cnnlab.engine.callbacks import Callback
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.engine.trainer import fit
from cnnlab.errors import CnnlabError

FAST = dict(epochs=2, batch_size=64, workers=0, plots=False)


class Record(Callback):
    def __init__(self):
        self.seen, self.steps = [], 0

    def on_run_start(self, run):
        self.seen.append("start")

    def on_step_end(self, run, step, loss, running):
        self.steps += 1

    def on_epoch_end(self, run, end):
        self.seen.append((end.row["epoch"], end.improved, round(end.val["top1"], 4) == round(end.row["val_top1"], 4)))

    def on_run_end(self, run, result):
        self.seen.append(("end", result.train_eval is not None))  # after the guard, which comes first


def test_data_and_a_model_given_as_objects_train_and_the_checkpoint_says_so(tmp_path):
    splits = {s: load_dataset("digits", s) for s in ("train", "val", "test")}
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    record = Record()
    names = set(list_datasets())
    run = fit(TrainConfig(data="digits, as objects", out=str(tmp_path), **FAST), data=splits, model=model,
              callbacks=[record], log=None)
    steps = len(splits["train"]) // 64
    assert record.seen[0] == "start" and record.seen[-1] == ("end", True) and len(record.seen) == 4
    assert [(epoch, same) for epoch, _, same in record.seen[1:3]] == [(1, True), (2, True)]
    assert record.seen[1][1]  # the first epoch is the best so far
    assert record.steps == 2 * steps and run.test["top1"] > 0.5  # the given test split was scored
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["given"] == {"data": {s: len(d) for s, d in splits.items()}, "model": "Sequential"}
    assert saved["config"]["data"] == "digits, as objects" and saved["config"]["model"] == "Sequential"
    assert set(list_datasets()) == names  # nothing registered behind a name


def test_without_a_test_split_the_run_scores_val_and_bad_splits_are_refused(tmp_path):
    splits = {s: load_dataset("digits", s) for s in ("train", "val")}
    run = fit(TrainConfig(out=str(tmp_path / "a"), **FAST), data=splits, log=None)
    assert run.test is None and run.best["top1"] > 0.5
    assert load_checkpoint(tmp_path / "a" / "best.pt")["given"] == {"data": {"train": 1258, "val": 179}}
    with pytest.raises(CnnlabError, match="expected a dict of splits train, val"):
        fit(TrainConfig(out=str(tmp_path / "b"), **FAST), data={"train": splits["train"]}, log=None)
    masks = load_dataset("shapes", "val", task="segment")  # objects have no layout: the task is not guessed
    with pytest.raises(CnnlabError, match="give the config's task"):
        fit(TrainConfig(out=str(tmp_path / "c"), **FAST), data={"train": masks, "val": masks}, log=None)


def test_a_named_run_records_nothing_given(tmp_path):
    fit(TrainConfig(data="digits", out=str(tmp_path), **dict(FAST, epochs=1)), log=None)
    assert load_checkpoint(tmp_path / "last.pt")["given"] == {}
