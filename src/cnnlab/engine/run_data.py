"""A run's data: its splits read from ``cfg.data`` (a dataset name or a path), or given to ``fit``
as objects, and what reading them found, said once in the run's log.

    data, skipped = training_splits(cfg, log)                          # by name
    data, skipped = training_splits(cfg, log, {"train": tr, "val": va})  # objects
"""
from __future__ import annotations

import warnings

from cnnlab.data import load_dataset
from cnnlab.data.check import FILES_TO_HASH, cross_split_duplicates, split_findings
from cnnlab.data.layout import resolve_task
from cnnlab.errors import CnnlabError, MissingSplit

SPLITS = ("train", "val", "test")  # what a dict of data objects may hold (test optional)


def run_task(cfg, given: dict | None) -> tuple[str, str | None]:
    """The task to train and the line that says how it was read from the data's layout (None:
    nothing to say). Data objects have no layout: ``task`` auto is classification for
    class-labelled images (a label per image) and must be given for the other tasks."""
    if given is None:
        found = resolve_task(cfg.data, cfg.task)
        return found.task, found.line() if cfg.task != found.task and found.on_disk else None
    check_given(given)
    if cfg.task != "auto":
        return cfg.task, None  # an unknown name is refused with the task names (tasks.base.task_class)
    labels = getattr(given["train"], "labels", None)
    if getattr(labels, "ndim", None) != 1:
        raise CnnlabError("data: objects have no layout to read the task from: give the config's task "
                          "(segment, detect or caption; auto reads a class label per image as classify)")
    return "classify", None


def check_given(given) -> None:
    """``given`` is a dict of splits: train and val, optionally test, each a dataset object."""
    if not isinstance(given, dict) or not {"train", "val"} <= given.keys() or not given.keys() <= set(SPLITS):
        what = sorted(given) if isinstance(given, dict) else type(given).__name__
        raise CnnlabError(f"data: expected a dict of splits train, val (and optionally test), got {what}")
    for split, part in given.items():
        if not hasattr(part, "__len__"):
            raise CnnlabError(f"data[{split!r}]: expected a dataset (cnnlab.data), got {type(part).__name__}")


def training_splits(cfg, log, given: dict | None = None) -> tuple[dict, int]:
    """The train and val splits and how many unreadable files were left out; what reading them
    changed or found (empty classes, files left out, duplicates across splits) goes to ``log``."""
    with warnings.catch_warnings(record=True) as caught:  # said once, in the run's log, below
        warnings.simplefilter("always")
        data = {split: given[split] if given is not None else
                load_dataset(cfg.data, split, seed=cfg.seed, task=cfg.task, **cfg.data_options())
                for split in ("train", "val")}
    warned = list(dict.fromkeys(str(w.message) for w in caught))
    for line in warned:
        log(f"warning: {line}")  # what reading the data changed or left out
    skipped = sum(len(getattr(part, "skipped", [])) for part in data.values())
    for split, part in data.items():
        for line in getattr(part, "report", []):
            if line not in warned:
                log(line)  # what reading the data did as its layout says (negatives kept, void ignored)
        _, problems = split_findings(part, FILES_TO_HASH)  # empty classes, files left out, duplicates
        for line in problems:
            log(f"data check: {split}: {line}")
    for line in cross_split_duplicates(data, FILES_TO_HASH):
        log(f"data check: {line}")
    return data, skipped


def test_split(cfg, given: dict | None = None):
    """The test split, or None when the data has none (or an empty one); a test split that
    cannot be read is an error, not a missing one."""
    if given is not None:
        data = given.get("test")
    else:
        try:
            data = load_dataset(cfg.data, "test", seed=cfg.seed, task=cfg.task, **cfg.data_options())
        except MissingSplit:
            return None
    return data if data is not None and len(data) else None
