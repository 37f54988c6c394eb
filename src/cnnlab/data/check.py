"""``cnnlab data check``: read a dataset the way training will and report what could go wrong.

    report = check_dataset("../shared/data/bccd")     # task and layout found, per-split counts,
    report["status"]                                  # "clean" | "warnings" | "errors"

Per split: images, classes and their counts (images, boxes, pixels or captions), empty classes,
what the readers dropped, resized or remapped (their report lines and warnings), unreadable files,
and duplicates: the same pixels twice within a split, or the same image in two splits (a test
image that is also a training image makes the test score a lie). ``train`` runs the same checks
on the splits it reads.
"""
from __future__ import annotations

import hashlib
import warnings
from collections import defaultdict
from pathlib import Path

from cnnlab.data.info import describe
from cnnlab.data.layout import resolve_task
from cnnlab.data.registry import SPLITS, load_dataset
from cnnlab.errors import CnnlabError, MissingSplit, clean

SHOW = 3  # duplicate pairs named per finding


def check_dataset(spec: str, task: str = "auto", seed: int = 0, **opts) -> dict:
    """Every split of ``spec`` read as training reads it; ``status`` sums up the findings."""
    found = resolve_task(spec, task)
    report = {"data": str(spec), "task": found.task, "layout": found.layout, "splits": {},
              "warnings": [], "notes": [], "errors": []}
    loaded, seen, noted = {}, {}, {}  # each line -> the splits it was found in (said once for all of them)
    for split in SPLITS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                loaded[split] = load_dataset(spec, split, seed=seed, task=found.task, **opts)
            except MissingSplit as e:
                report["splits"][split] = {"absent": clean(e)}
                continue
            except CnnlabError as e:
                report["errors"].append(f"{split}: {clean(e)}")
                continue
        info, problems = split_findings(loaded[split])
        report["splits"][split] = info
        warned = [clean(w.message) for w in caught]  # what the reader changed or left out, and warned of
        for problem in dict.fromkeys(problems + warned):
            seen.setdefault(problem, []).append(split)
        for note in dict.fromkeys(clean(line) for line in getattr(loaded[split], "report", [])):
            if note not in warned:  # what the reader did as its layout says (void pixels ignored...)
                noted.setdefault(note, []).append(split)
    report["warnings"] += [f"{', '.join(splits)}: {problem}" for problem, splits in seen.items()]
    report["notes"] = [f"{', '.join(splits)}: {note}" for note, splits in noted.items()]
    report["warnings"] += cross_split_duplicates(loaded)
    report["status"] = "errors" if report["errors"] else "warnings" if report["warnings"] else "clean"
    return report


FILES_TO_HASH = 20_000  # train hashes a file-backed split's files only up to this many (data check: all)


def split_findings(dataset, hash_files: int | None = None) -> tuple[dict, list[str]]:
    """(counts for the report, the problems of one split): empty classes, unreadable files left
    out, images present twice (files hashed up to ``hash_files``). What the reader itself changed
    is in ``dataset.report`` (its lines worth a warning, it also warned)."""
    info = describe(dataset)
    info = {k: v for k, v in info.items() if k in ("count", "classes", "class_counts", "image_shape", "boxes",
                                                 "negatives", "references", "report", "skipped")}
    info["image_shape"] = list(info.get("image_shape", ()))
    problems = []
    empty = [name for name, n in info.get("class_counts", {}).items() if not n] if "references" not in info else []
    if empty:
        problems.append(f"{len(empty)} class(es) with nothing in this split: {clean(', '.join(empty[:10]))}")
    if info.get("skipped"):
        problems.append(f"{info['skipped']} unreadable file(s) left out (--skip-bad)")
    if hash_files is not None and getattr(dataset, "images", None) is None and len(dataset) > hash_files:
        return info, problems
    groups = [g for g in _groups(digests(dataset)).values() if len(g) > 1]
    if groups:
        names = image_names(dataset)
        pairs = "; ".join(" = ".join(names[i] for i in g[:2]) for g in groups[:SHOW])
        problems.append(f"{sum(len(g) - 1 for g in groups)} duplicate image(s) (same pixels): {clean(pairs)}")
    return info, problems


def cross_split_duplicates(loaded: dict, hash_files: int | None = None) -> list[str]:
    """One line per pair of splits that share images (by pixels), with a few named."""
    keyed = {split: _groups(digests(data)) for split, data in loaded.items()
             if hash_files is None or getattr(data, "images", None) is not None or len(data) <= hash_files}
    lines = []
    splits = list(keyed)
    for a_i, a in enumerate(splits):
        for b in splits[a_i + 1:]:
            shared = sorted(set(keyed[a]) & set(keyed[b]))
            if shared:
                na, nb = image_names(loaded[a]), image_names(loaded[b])
                few = "; ".join(f"{na[keyed[a][d][0]]} = {nb[keyed[b][d][0]]}" for d in shared[:SHOW])
                lines.append(f"{len(shared)} image(s) of {b} are also in {a} (same pixels): {clean(few)}")
    return lines


def digests(dataset) -> list[str]:
    """A digest per image: of its decoded pixels when the split is in memory, else of its file."""
    images = getattr(dataset, "images", None)
    if images is not None:
        return [hashlib.blake2b(images[i].contiguous().numpy().tobytes(), digest_size=16).hexdigest()
                for i in range(len(images))]
    files = getattr(dataset, "files", None) or []
    out = []
    for f in files:
        with open(f, "rb") as fh:
            out.append(hashlib.file_digest(fh, "blake2b").hexdigest())
    return out


SPLITS_FILE = "splits.json"  # in a run folder: the files of each split the run read


def record_splits(folder, loaded: dict) -> None:
    """``folder/splits.json``: the files of each split (where the split knows its files), so a
    later evaluation can tell whether it reads the split the run was trained and tested with."""
    from cnnlab.files import write_json

    files = {split: [str(f) for f in getattr(data, "files", None) or []] for split, data in loaded.items()}
    if any(files.values()):
        write_json(Path(folder) / SPLITS_FILE, files)


def split_changes(folder, split: str, dataset) -> str | None:
    """A line saying how ``dataset``'s files differ from the split recorded in ``folder``
    (the data changed since training), or None when they match or nothing was recorded."""
    import json

    path = Path(folder) / SPLITS_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get(split)
    except (OSError, ValueError, AttributeError):
        return None
    now = [str(f) for f in getattr(dataset, "files", None) or []]
    if not recorded or not now or recorded == now:
        return None
    gone, new = set(recorded) - set(now), set(now) - set(recorded)
    return (f"the {split} split differs from the one the run recorded in {path} ({len(gone)} file(s) no longer "
            f"in it, {len(new)} new): the data changed since training, so these scores are not the run's")


def image_names(dataset) -> list[str]:
    """Each image's file name where the split knows it, else its index (``#12``)."""
    files = getattr(dataset, "files", None)
    return [str(f) for f in files] if files else [f"#{i}" for i in range(len(dataset))]


def _groups(keys: list[str]) -> dict[str, list[int]]:
    groups = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return groups


def report_lines(report: dict) -> list[str]:
    """The terminal form of ``check_dataset``'s report."""
    lines = [f"{report['task']}: {report['layout']}"]
    for split, info in report["splits"].items():
        if "absent" in info:
            lines.append(f"{split}: absent ({info['absent']})")
            continue
        counts = ", ".join(f"{clean(k)} {v}" for k, v in list(info.get("class_counts", {}).items())[:12])
        more = len(info.get("class_counts", {})) - 12
        if "references" in info:  # captions: the "classes" are the vocabulary
            lines.append(f"{split}: {info['count']} images, {info['references']} captions, "
                         f"{len(info['classes'])} words")
            continue
        boxes = f", {info['boxes']} boxes" if "boxes" in info else ""
        lines.append(f"{split}: {info['count']} images{boxes}, {len(info.get('classes', []))} classes: "
                     f"{counts}{f' and {more} more' if more > 0 else ''}")
    for kind in ("notes", "errors", "warnings"):
        if report[kind]:
            lines.append(f"{kind} ({len(report[kind])}):")
            lines += [f"  {line}" for line in report[kind]]
    lines.append(f"verdict: {report['status']}")
    return lines
