"""Which task a dataset is for, read from its layout: ``--task`` may be left out, and a
``--task`` that contradicts the data is refused.

    find_task("../shared/data/bccd")      # Found("detect", "Pascal VOC (Annotations/*.xml)", ...)
    resolve_task("digits", "auto").task   # "classify"
    resolve_task("../shared/data/bccd", "classify")   # CnnlabError: ... use --task detect

A folder is tried as each task's data in turn: detection (VOC in any arrangement, COCO,
YOLO, Ultralytics YAML, box CSV), segmentation (CamVid/SegNet, VOC segmentation, images +
masks), captioning (captions files), then classification (IDX, CIFAR, class folders). Each
sniffer looks at names and at most one small file, so this is cheap on any folder.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import CnnlabError, clean, unknown_name

TASKS = ("classify", "segment", "detect", "caption")
AUTO = "auto"
NOUN = {"classify": "classification", "segment": "segmentation", "detect": "detection", "caption": "captioning"}


@dataclass(frozen=True)
class Found:
    """A dataset's task, and the layout (or built-in name) that says so."""

    task: str
    layout: str
    data: str
    on_disk: bool = True  # read from a layout on disk (False: a built-in name)

    def line(self) -> str:
        """The run's first line: ``detect: Pascal VOC (Annotations/*.xml) in DIR``."""
        return f"{self.task}: {self.layout} in {clean(self.data)}" if self.on_disk else \
            f"{self.task}: {self.layout}"


SNIFF_ORDER = ("detect", "segment", "caption", "classify")  # the order a folder is tried in
_SNIFFERS: dict[str, Callable[[Path], str | None]] = {}  # task -> its layout sniffer (formats/ registers them)


def register_layout(task: str):
    """Decorator: ``fn(path) -> layout name or None`` names ``task``'s data layout at ``path``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")

    def wrap(fn):
        _SNIFFERS[task] = fn
        return fn
    return wrap


def sniff(path: Path) -> list[Found]:
    """Every task the dataset at ``path`` can be read for, from its layout, in the order tried
    (a full Pascal VOC devkit is detection and segmentation data); empty when none matches."""
    from cnnlab import data  # noqa: F401  (importing the package registers the formats' sniffers)

    found = [Found(task, _SNIFFERS[task](path), str(path)) for task in SNIFF_ORDER]
    found = [f for f in found if f.layout]
    # class folders are any tree of images: another task's layout (VOC's JPEGImages/) is no class tree
    return [f for f in found if f.task != "classify"] or found


def find_tasks(spec: str | Path) -> list[Found]:
    """The tasks ``spec`` (a built-in name, ``NAME:PATH``, ``FORMAT:PATH`` or a path) serves, the
    one to train without ``--task`` first; empty when nothing is there to read (``load_dataset``
    then says what is missing)."""
    from cnnlab.data.registry import builtin_tasks, format_task

    key = str(spec)
    tasks = builtin_tasks(key)
    if tasks:  # a built-in set: classification first when it has that variant (shapes has all four)
        tasks = sorted(tasks, key=lambda t: t != "classify")
        return [Found(t, f"built-in dataset {key}", key, on_disk=False) for t in tasks]
    named, colon, root = key.partition(":")
    if colon and root and builtin_tasks(named):
        return [Found(builtin_tasks(named)[0], f"{named} layout", root)]
    if colon and root and format_task(named):
        return [Found(format_task(named), f"{named} annotations", root)]
    path = Path(key).expanduser()
    return sniff(path) if path.exists() else []


def find_task(spec: str | Path) -> Found | None:
    """The task ``spec`` is read for without ``--task`` (see ``find_tasks``), or None."""
    found = find_tasks(spec)
    return found[0] if found else None


def resolve_task(spec: str | Path, task: str) -> Found:
    """The task to train, evaluate or check ``spec`` for: read from the data for ``auto``;
    a given task is checked against the data's layout, and refused when they disagree."""
    if task != AUTO and task not in TASKS:
        raise CnnlabError(f"--task {task!r}: expected one of {', '.join((AUTO,) + TASKS)}")
    found = find_tasks(spec)
    if task == AUTO:
        if not found:
            if Path(str(spec)).expanduser().exists():
                raise CnnlabError(f"--data {clean(spec)}: no dataset layout found for any task; "
                                  f"`cnnlab data check --help` lists the layouts each task reads")
            from cnnlab.data.registry import list_datasets

            error = unknown_name("dataset", str(spec), list_datasets())  # before any folder is made
            raise CnnlabError(f"--data {clean(spec)}: no such file or folder, and {error}")
        return found[0]
    same = [f for f in found if f.task == task]
    if same:
        return same[0]
    if found and found[0].on_disk:
        raise CnnlabError(f"--task {task}: {clean(spec)} is a {NOUN[found[0].task]} dataset "
                          f"({found[0].layout}); use --task {found[0].task}, or leave --task out")
    return Found(task, "as given by --task", str(spec), False)


def refuse_other_task(spec: str | Path, task: str, what: str) -> None:
    """Evaluation or prediction of a ``task`` model on data laid out for other tasks only: refused."""
    found = find_tasks(spec)
    if found and found[0].on_disk and task not in {f.task for f in found}:
        raise CnnlabError(f"{clean(spec)} is a {NOUN[found[0].task]} dataset ({found[0].layout}); "
                          f"{what} is a {NOUN[task]} model")

