"""Splits of a detection set: the data's own (files, folders or lists per split), or carved by seed.

Every reader returns a ``Part``: the records it read and how to carve them. ``choose`` picks
which of the data's own split sources to read for a split, ``carve`` makes the split:

* the data has the split (``train`` with ``val`` beside it, ``val``, ``test``): as it is;
* it has ``train`` but no ``val``: val is ``val_fraction`` of train (no test unless it has one);
* it has no splits at all: test is ``test_fraction`` (default: ``val_fraction``), val is
  ``val_fraction`` of all images, the rest is train, so ``eval --split test`` works on any set.

Carving is stratified by each image's most frequent class (images without boxes form their own
group) and deterministic by seed.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cnnlab.data.detection import Annotated
from cnnlab.data.registry import SPLITS
from cnnlab.errors import CnnlabError, MissingSplit

T = TypeVar("T")
# A split's folder or file-name word in exports: Roboflow names val "valid".
SPLIT_WORDS = {"train": ("train",), "val": ("valid", "val", "validation"), "test": ("test",)}
ALL = "all"  # the key of a set without splits
OWN, FROM_TRAIN = "", "val"  # Part.carve: the records are the split / val is carved from train


@dataclass
class Part:
    """What a reader found for one split: records, classes (labels 1..K), how to carve, what it said."""

    records: list[Annotated]
    classes: list[str]
    ids: dict                    # a record's category (id or name) -> label 1..K
    carve: str = OWN             # OWN, FROM_TRAIN or ALL
    notes: list[str] = field(default_factory=list)  # files left out or kept as negatives, counted


def split_word(name: str) -> str | None:
    """The split that a folder named ``name`` holds (``valid``: val), if any."""
    return next((s for s, words in SPLIT_WORDS.items() if name.lower() in words), None)


def split_folders(root) -> dict:
    """``{split: folder}`` of the split folders directly in ``root`` (train/, valid/ or val/, test/)."""
    found = {}
    for split, words in SPLIT_WORDS.items():
        for word in words:
            if (root / word).is_dir():
                found[split] = root / word
                break
    return found


def choose(sources: dict[str, T], split: str, where: str) -> tuple[T, str]:
    """(the source to read for ``split``, how to carve it) among the data's own ``sources``:
    ``{split: source}``, or ``{ALL: source}`` for data without splits."""
    if ALL in sources:
        return sources[ALL], ALL
    if split in sources and (split != "train" or "val" in sources):
        return sources[split], OWN
    if split != "test" and "train" in sources:
        return sources["train"], FROM_TRAIN
    have = ", ".join(s for s in SPLITS if s in sources) or "none"
    hint = "; evaluate with --split val" if split == "test" and "val" in sources else ""
    raise MissingSplit(f"--data {where}: has no {split} split (its splits: {have}){hint}")


def carve(records: list[Annotated], split: str, how: str, ids: dict, seed: int, val_fraction: float,
          test_fraction: float | None) -> list[Annotated]:
    """The records of ``split``: ``records`` themselves, or a seeded part of them, stratified by each
    image's most frequent label (``ids``: category -> label) and the same whatever order or folders a
    layout gives its images in (they are ordered by file name to be carved)."""
    from cnnlab.data.formats.class_folders import stratified_split

    if how == OWN:
        return records
    given, records = records, sorted(records, key=lambda r: (Path(r.file).name, r.file))
    n = len(records)
    n_test = _share(n, val_fraction if test_fraction is None else test_fraction) if how == ALL else 0
    n_val = _share(n - n_test, val_fraction) if n - n_test > 1 else 0
    groups = [Counter(ids.get(c, 0) for c in r.categories).most_common(1)[0][0] if r.categories else -1
              for r in records]
    parts = stratified_split(groups, n_val / n if n else 0.0, n_test / n if n else 0.0, seed)
    picked = {id(records[i]) for i in parts[split].tolist()}
    return [r for r in given if id(r) in picked]  # in the reader's order


def _share(n: int, fraction: float) -> int:
    """round(n * fraction), at least 1 when the fraction is not 0, leaving at least one image."""
    if not 0 <= fraction < 1:
        raise CnnlabError(f"val_fraction / test_fraction must be in [0, 1), got {fraction}")
    return min(n - 1, max(1, round(n * fraction))) if fraction > 0 and n > 1 else 0
