"""Each task's own options, declared once: its training config (the fields only it reads) and its
prediction options, each a typed dataclass whose fields carry their help, group, choices and range.

``option(default, help, ...)`` is the one way a config or options field is declared (the shared
``TrainConfig`` of ``engine/config.py`` uses it too): ``cnnlab train --help``, the ``predict``
flags, the web page's option form and every check read that metadata. The CLI makes its
``predict`` flags from the options, the web page its form, and the Python API checks keyword
options against them; nothing else lists a task's options. ``out`` (a folder for figures) is None
by default: the API writes files only where asked (the CLI draws into ``predictions/`` unless
``--json``). This module imports no torch, so the command line can build its parser at once.

    parse_options(ClassifyOptions, {"topk": "3"})   # ClassifyOptions(topk=3)
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field

from cnnlab.errors import CnnlabError


def option(default, help: str, *, group: str | None = None, choices: tuple | None = None,
           range: tuple | None = None, path: bool = False):
    """A field with its default and what tools need to know of it: a help line, the ``train --help``
    group of a config field, its choices, an inclusive ``range`` ``(low, high)`` (None: open), and
    whether it names a file or folder on the machine that runs it (not offered over HTTP)."""
    meta = {"help": help, "group": group, "choices": tuple(choices) if choices else None,
            "range": tuple(range) if range else (None, None), "path": path}
    if isinstance(default, (list, dict)):  # a fresh copy for each instance
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def range_text(low, high) -> str:
    """``0..4,096``, ``0.0..0.999``, ``at least 1``."""
    if high is None:
        return f"at least {low}"
    return f"{low}..{high:,}" if isinstance(high, int) else f"{low}..{high}"


def field_default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


# ---------------------------------------------------------------------- training configs
CLASS_WEIGHTS = ("none", "median", "median-sqrt", "inverse")  # segmentation's loss weights per class (tasks/segment.py)


@dataclass(frozen=True)
class SegmentConfig:
    """What segmentation alone reads of a training config."""
    backbone: str = option("", "the classifier under an FCN (resnet18, efficientnet_lite0...)", group="model")
    class_weights: str = option("none", "loss weights per class (median / its square root / inverse pixel frequency)",
                                group="optimisation", choices=CLASS_WEIGHTS)
    ohem: float = option(0.0, "online hard example mining: average the loss over the pixels whose true class "
                         "has a probability below this (at least 1/16 of them); 0: every pixel", group="optimisation",
                         range=(0.0, 1.0))
    scale: float = option(0.0, "random zoom by up to 1+scale (and out to 1/(1+scale))", group="augmentation",
                          range=(0.0, 4.0))
    crop: float = option(1.0, "train on random windows of this fraction of each side (1: whole images); "
                         "val and predict see whole images", group="augmentation", range=(0.1, 1.0))


@dataclass(frozen=True)
class CaptionConfig:
    """What captioning alone reads of a training config."""
    min_word_count: int = option(1, "training words seen fewer times become <unk>", group="data",
                                 range=(1, 1_000_000))
    attention_reg: float = option(0.0, "Show-Attend-and-Tell's doubly stochastic attention penalty",
                                  group="optimisation", range=(0.0, 100.0))


# task name -> its training config; classification and detection read only the shared fields
TASK_CONFIGS = {"segment": SegmentConfig, "caption": CaptionConfig}


# ---------------------------------------------------------------------- predict options
@dataclass(frozen=True)
class ClassifyOptions:
    topk: int = option(5, "how many of the most probable classes to show per image", range=(1, None))


@dataclass(frozen=True)
class SegmentOptions:
    out: str | None = option(None, "folder for each image's colour mask and overlay", path=True)
    alpha: float = option(0.5, "mask opacity in the overlay", range=(0.0, 1.0))


@dataclass(frozen=True)
class DetectOptions:
    score_threshold: float = option(0.5, "keep boxes scoring at least this", range=(0.0, 1.0))
    nms_iou: float = option(0.5, "per-class non-maximum suppression overlap (IoU) threshold", range=(0.01, 1.0))
    show_proposals: bool = option(False, "draw the top region proposals beside the boxes")
    proposals: int = option(10, "how many proposals show_proposals draws", range=(1, 1000))
    out: str | None = option(None, "folder for the drawn images", path=True)


@dataclass(frozen=True)
class CaptionOptions:
    beam: int = option(5, "beam size (1: greedy decoding)", range=(1, 50))
    max_len: int | None = option(None, "most words (default: the longest training caption)", range=(1, 200))
    length_penalty: float | None = option(None, "GNMT length penalty alpha (default: the checkpoint's)",
                                          range=(0.0, 5.0))
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
    low, high = meta["range"]
    if (low is not None and value < low) or (high is not None and value > high):
        raise CnnlabError(f"{flag} {value}: expected {range_text(low, high)}")
    return value

