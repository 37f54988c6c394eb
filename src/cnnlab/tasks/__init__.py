"""Tasks: classify, segment, detect, caption, each behind the one contract of ``tasks.base.Task``.

    from cnnlab.tasks import task_class
    Task = task_class("segment")          # the class; its module (and dependencies) load on first use

A task owns what is specific to one kind of prediction: its model for the data, the training
step, evaluation, prediction with typed options, plots, and how its results read in a terminal
and as JSON. The trainer, the API, the CLI and the service use only the contract.
"""
import importlib

# the task registry: task name -> "module:Class", imported on first use (a task's dependencies load
# only when used; the names alone, for choices and help, load no torch)
TASKS = {
    "classify": "cnnlab.tasks.classify:ClassifyTask",
    "detect": "cnnlab.tasks.detect:DetectTask",
    "segment": "cnnlab.tasks.segment:SegmentTask",
    "caption": "cnnlab.tasks.caption:CaptionTask",
}

_EXPORTS = {"Task": "base", "task_class": "base"}
__all__ = ["TASKS", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnnlab.tasks' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cnnlab.tasks.{_EXPORTS[name]}"), name)
