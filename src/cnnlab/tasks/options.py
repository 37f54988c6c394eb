"""Each task's prediction options: one typed dataclass per task, with defaults and help.

The CLI makes its ``predict`` flags from these fields, the web page its option form, and the
Python API checks keyword options against them; nothing else lists a task's options. ``out``
(a folder for figures) is None by default: the API writes files only where asked (the CLI draws
into ``predictions/`` unless ``--json``). This
module imports no torch, so the command line can build its parser at once.

    parse_options(ClassifyOptions, {"topk": "3"})   # ClassifyOptions(topk=3)
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from cnnlab.errors import CnnlabError


def option(default, help: str, *, low: float | None = None, high: float | None = None, path: bool = False):
    """A predict option: its default, a help line, an inclusive range, and whether it names a file
    or folder on the machine that runs the prediction (such options are not offered over HTTP)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "path": path})


@dataclass(frozen=True)
class ClassifyOptions:
    topk: int = option(5, "how many of the most probable classes to show per image", low=1)


@dataclass(frozen=True)
class SegmentOptions:
    out: str | None = option(None, "folder for each image's colour mask and overlay", path=True)
    alpha: float = option(0.5, "mask opacity in the overlay", low=0.0, high=1.0)


@dataclass(frozen=True)
class DetectOptions:
    score_threshold: float = option(0.5, "keep boxes scoring at least this", low=0.0, high=1.0)
    nms_iou: float = option(0.5, "per-class non-maximum suppression overlap (IoU) threshold", low=0.01, high=1.0)
    show_proposals: bool = option(False, "draw the top region proposals beside the boxes")
    proposals: int = option(10, "how many proposals show_proposals draws", low=1, high=1000)
    out: str | None = option(None, "folder for the drawn images", path=True)


@dataclass(frozen=True)
class CaptionOptions:
    beam: int = option(5, "beam size (1: greedy decoding)", low=1, high=50)
    max_len: int | None = option(None, "most words (default: the longest training caption)", low=1, high=200)
    length_penalty: float | None = option(None, "GNMT length penalty alpha (default: the checkpoint's)",
                                          low=0.0, high=5.0)
    attention: bool = option(False, "write the image under each word's attention map to out")
    out: str | None = option(None, "folder for the attention figures", path=True)


# task name -> its options: the CLI builds its predict flags from these, naming no task itself
TASK_OPTIONS = {"classify": ClassifyOptions, "segment": SegmentOptions, "detect": DetectOptions,
                "caption": CaptionOptions}


def base_type(typ) -> type:
    """``int`` for ``int | None``: the type a value must have when it is given."""
    if isinstance(typ, types.UnionType):
        return next(t for t in typ.__args__ if t is not type(None))
    return typ


def parse_options(cls, values: dict, task: str = "", style: str = "cli"):
    """``cls(**values)`` with every value checked: a known name, the field's type (numbers given
    as text are parsed), within its range. Errors name the option as the user wrote it:
    ``--score-threshold`` (``style="cli"``) or ``options.score_threshold`` (``style="json"``)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    parsed = {}
    for key, value in values.items():
        flag = "--" + key.replace("_", "-") if style == "cli" else f"options.{key}"
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise CnnlabError(f"{flag}: not an option of {task or cls.__name__} predictions (they take {known})")
        parsed[key] = _check(flag, value, hints[key], fields[key].metadata)
    return cls(**parsed)


def _check(flag: str, value, typ, meta):
    optional = isinstance(typ, types.UnionType) and type(None) in typ.__args__
    if value is None and optional:
        return None
    base = base_type(typ)
    if isinstance(value, str) and base in (int, float):
        try:
            value = base(value)
        except ValueError:
            raise CnnlabError(f"{flag} {value!r}: expected a {'whole number' if base is int else 'number'}") from None
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, base) or (base is not bool and isinstance(value, bool)):
        raise CnnlabError(f"{flag} {value!r}: expected {base.__name__}")
    low, high = meta.get("low"), meta.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f"at least {low}"
        raise CnnlabError(f"{flag} {value}: expected {span}")
    return value

