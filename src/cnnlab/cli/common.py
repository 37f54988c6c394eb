"""What several commands share: JSON output, checking a checkpoint's task, integer lists, image arguments."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from cnnlab.errors import CnnlabError


def json_text(value, indent: int | None = 2, **options) -> str:
    """JSON for every --json output and predictions.jsonl: NaN and infinities, which JSON does
    not have, become null (``allow_nan=False`` makes any that slip through an error, never bad JSON)."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False, **options)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def check_task(lm, task: str | None):
    """``lm``, after checking that its checkpoint was trained for ``--task`` (when given)."""
    if task and task != lm.task.name:
        raise CnnlabError(f"--task {task}: this checkpoint was trained for --task {lm.task.name}")
    return lm


def ints(text: str, n: int, option: str, form: str) -> list[int]:
    """``n`` integers from ``text`` ("1,2,3" or "1x2x3"), or an error naming ``option`` and its ``form``."""
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        raise CnnlabError(f"{option} {text!r}: expected {form} ({n} integers)")
    return values


def expand_images(items: list[str], task: str) -> list:
    """Files as given; folders (recursively) and globs to their image files; ``-``: an image on stdin.

    A folder laid out as a detection, segmentation or captioning dataset is refused for a model of
    another task, and a segmentation dataset always (its masks are no photos): `eval` scores a dataset."""
    images = []
    for item in items:
        path = Path(item)
        if item == "-":
            from cnnlab.images import read_image

            images.append(read_image(sys.stdin.buffer.read(), name="<stdin>"))
        elif path.is_dir():
            images += _folder_images(path, item, task)
        elif not path.exists() and any(ch in item for ch in "*?["):
            found = sorted(Path().glob(item)) if not path.is_absolute() else sorted(Path("/").glob(item[1:]))
            if not found:
                raise CnnlabError(f"{item}: no file matches this pattern")
            images += found
        else:
            images.append(path)
    return images


def _folder_images(path: Path, item: str, task: str) -> list[Path]:
    """The image files under the folder ``item``, unless it is laid out as another task's dataset."""
    from cnnlab.data.layout import find_task
    from cnnlab.images import IMAGE_SUFFIXES

    found = find_task(path)
    if found and found.task != "classify" and (found.task != task or found.task == "segment"):
        raise CnnlabError(f"{item}: a {found.task} dataset ({found.layout}); predict takes images: give "
                          f"its image folder, or score the dataset with `cnnlab eval CHECKPOINT --data {item}`")
    images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise CnnlabError(f"{item}: a folder with no image files ({', '.join(IMAGE_SUFFIXES)})")
    return images
