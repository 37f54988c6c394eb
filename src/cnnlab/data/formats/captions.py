"""Caption datasets on disk: the layouts users have for Flickr8k/30k and COCO.

    load_captions("~/data/flickr8k", "train")                        # Kaggle captions.txt + Images/
    load_captions("~/data/Flickr8k_text", "test", images="~/data/Flicker8k_Dataset")
    load_captions("~/data/flickr8k/dataset_flickr8k.json", "test")   # Karpathy split, images beside it
    load_captions("~/data/coco", "train")                            # annotations/captions_train2014.json

Layouts (a file, or a folder holding it directly or under ``annotations/``, ``Flickr8k_text/``):

* Kaggle CSV: ``captions.txt`` (or ``captions.csv``) with a header line ``image,caption`` and
  one ``image,caption`` row per caption (the csv module's quoting: captions may hold commas
  and quotes); Flickr30k's ``results.csv`` (``image_name| comment_number| comment``) too.
* Original Flickr8k/30k: ``Flickr8k.token.txt`` (``*.token.txt``, ``*.token``), lines of
  ``image.jpg#N<TAB>caption``.
  Both take their splits from the official lists ``Flickr_8k.{train,dev,test}Images.txt`` (in the
  folder, beside the captions file, or in ``splits/``): dev is our ``val`` split and images in no
  list are left out. Without lists, val is ``val_fraction`` of the images and there is no test.
* COCO: ``captions_<name>.json`` = ``{"images": [{"id", "file_name"}], "annotations":
  [{"image_id", "caption"}]}``, images in ``<name>/`` (or ``images/<name>/``) beside it; the
  split comes from the file name (train / val / test); with only a train file, val is
  ``val_fraction`` of it.
* Karpathy: ``dataset_*.json`` = ``{"images": [{"filename", "filepath"?, "split",
  "sentences": [{"raw" or "tokens"}]}]}``; ``restval`` counts as train.

Images are looked for in ``images`` when given (``--images DIR``), else beside the annotation
file or the folder given, directly or in ``Images/``, ``images/``, ``Flicker8k_Dataset/``,
``Flickr8k_Dataset/``, ``flickr30k_images/``.

Every split is read into one format: ``CaptionFiles``, decoded per item in DataLoader
workers, labels (N, R, L) ids into a word table over all of the source's captions.

Nothing is left out unsaid: images listed without captions, captioned images in no split list
and (with ``skip_bad``) listed images that are not on disk are counted in the split's ``report``
(and warned about); a split whose images are all missing is an error. Text files are read as
UTF-8 (``cnnlab.data.formats.text.read_utf8``), CSV strictly: a quote left open is an error with its line.

``caption_layout(path)`` names the caption layout at ``path`` (or None) without reading images.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cnnlab.data.base import FileImages
from cnnlab.data.caption_text import caption_grid, describe_captions, encode_references, tokenize, word_table
from cnnlab.data.formats.caption_flickr import CSV_CAPTION, CSV_IMAGE, is_token_line, read_csv, read_token_lines, split_lists
from cnnlab.data.formats.text import read_utf8
from cnnlab.data.layout import register_layout
from cnnlab.data.registry import register_path_loader
from cnnlab.errors import CnnlabError, MissingSplit

IMAGE_DIRS = ("", "images", "Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "flickr30k_images")
TEXT_DIRS = ("", "annotations", "Flickr8k_text", "captions")  # where a folder's caption files may sit
Record = tuple[Path, list[str], str | None]  # image file, captions, split (None: not given)
NOT_LISTED = ""  # a record's split when split lists exist and name none for its image
SHOW_NAMES = 3  # file names quoted in a report line before "and N more"
SNIFF_JSON_BYTES = 64 << 20  # a JSON file of another name is parsed to tell its layout up to this size


class CaptionFiles(FileImages):
    """A caption split read from image files; items are (uint8 (C, H, W), (R, L) ids).

    report: what reading the annotations left out, one line each (printed by ``cnnlab data info``
    and the trainer)."""

    def __init__(self, *args, report: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.report = list(report)

    @property
    def labels(self) -> Tensor:
        return torch.stack(self.labels_list)  # (N, R, L)

    def describe(self) -> dict:
        return describe_captions(self)

    def sample_grid(self, path, n: int = 16, seed: int = 0):
        return caption_grid(self, path, n, seed)


@register_path_loader("caption")
def load_captions(path: str | Path, split: str, seed: int = 0, *, image_size: int | None = None,
                  val_fraction: float = 0.1, skip_bad: bool = False, download: bool = False,
                  max_words: int = 0, images: str | Path | None = None) -> CaptionFiles:
    """Split ``split`` of the captions at ``path`` (an annotation file or a folder holding one).

    images: the folder holding the image files, when they are not beside the annotations;
    skip_bad leaves out entries whose image file is missing (counted in ``skipped``);
    image_size (default 224) is the side images are resized to; max_words truncates captions.
    """
    path = Path(path).expanduser()
    if download:
        raise CnnlabError(f"{path}: caption datasets are read from disk; download them yourself")
    folder = Path(images).expanduser() if images not in (None, "") else None
    if folder is not None and not folder.is_dir():
        raise CnnlabError(f"--images {folder}: no such folder (expected the folder holding the image files)")
    records = [r for f in annotation_files(path) for r in read_annotations(f, folder, root=path)]
    words = word_table(tokenize(c) for _, caps, _ in records for c in caps)
    report = _left_out(records, path)
    records = [r for r in records if r[1] and r[2] != NOT_LISTED]
    pool, carved = _pool(records, split, path)
    skipped = [str(f) for f, _, _ in pool if not f.is_file()]
    if skipped:
        report.append(_missing(skipped, len(pool), split, "train and val" if carved else split, path, folder,
                               skip_bad))
        warnings.warn(report[-1], stacklevel=2)
    chosen = [r for r in pool if r[0].is_file()]
    chosen = _carve(chosen, split, val_fraction, seed) if carved else chosen
    if not chosen:
        raise CnnlabError(f"{path}: the {split} split has no images")
    labels = encode_references([caps for _, caps, _ in chosen], words, max_words, source=str(path))
    size = image_size or 224
    data = CaptionFiles([f for f, _, _ in chosen], list(labels), words, (3, size, size),
                        name=f"{path.stem}/{split}", report=report)
    data.skipped = skipped
    return data


def _left_out(records: list[Record], path: Path) -> list[str]:
    """Report lines for the images the annotations name but that no split can hold (by the
    layout's own rules: Flickr8k's lists leave some photos out, so these are said, not warned)."""
    lines = []
    bare = [f.name for f, caps, _ in records if not caps]
    if bare:
        lines.append(f"{path}: {len(bare):,} listed images have no caption, left out: {_names(bare)}")
    unlisted = [f.name for f, _, s in records if s == NOT_LISTED]
    if unlisted:
        lines.append(f"{path}: {len(unlisted):,} captioned images are in no split list "
                     f"(Flickr_8k.*Images.txt), left out: {_names(unlisted)}")
    return lines


def _missing(missing: list[str], listed: int, split: str, scope: str, path: Path, folder: Path | None,
             skip_bad: bool) -> str:
    """The report line for images listed but not on disk; an error when all are, or without skip_bad."""
    hint = f"; are they in --images {folder}?" if folder else "; --images DIR names the folder that holds them"
    if len(missing) == listed:
        raise CnnlabError(f"{path}: the {split} split has no images: captions reference a missing image "
                          f"{missing[0]} (all {listed:,} missing{hint})")
    if not skip_bad:
        raise CnnlabError(f"{path}: captions reference a missing image {missing[0]} ({len(missing):,} of the "
                          f"{listed:,} images listed for {scope} missing; --skip-bad leaves them out{hint})")
    return (f"{path}: {len(missing):,} of the {listed:,} images listed for {scope} are not on disk, left out "
            f"(--skip-bad): {_names([Path(m).name for m in missing])}")


def _names(names: list[str]) -> str:
    more = f" and {len(names) - SHOW_NAMES:,} more" if len(names) > SHOW_NAMES else ""
    return ", ".join(names[:SHOW_NAMES]) + more


# ---------------------------------------------------------------------- finding the annotations
def annotation_files(path: Path) -> list[Path]:
    """The caption annotation files at ``path``: the file itself, or one layout's files in it
    (COCO ``captions_*.json``, Karpathy ``dataset_*.json``, Kaggle ``captions.txt``, ``*.token.txt``)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CnnlabError(f"{path}: no such file or folder")
    for folder in (path / d if d else path for d in TEXT_DIRS):
        if not folder.is_dir():
            continue
        for pattern in ("captions_*.json", "dataset_*.json"):
            found = sorted(folder.glob(pattern))
            if found:
                return found
        for name in ("captions.txt", "captions.csv", "results.csv"):
            if (folder / name).is_file():
                return [folder / name]
        tokens = sorted(f for p in ("*.token.txt", "*.token") for f in folder.glob(p) if "lemma" not in f.name)
        if tokens:
            return tokens[:1]
    raise CnnlabError(f"{path}: no caption annotations found; expected Kaggle captions.txt, Flickr8k.token.txt, "
                      f"COCO captions_*.json or Karpathy dataset_*.json, in the folder or in annotations/")


@register_layout("caption")
def caption_layout(path: Path) -> str | None:
    """A short name of the caption layout at ``path`` (a file, or a folder holding one as
    ``annotation_files`` finds it), None when it is not caption data. Cheap: names, the first
    line of a text file and, for a JSON file not named ``captions_*`` / ``dataset_*``, its
    structure; never raises."""
    try:
        files = [path] if path.is_file() else annotation_files(path) if path.is_dir() else []
        return _layout_of(files[0]) if files else None
    except (CnnlabError, OSError, ValueError, RecursionError):  # ValueError: JSON or text not decodable
        return None


def _layout_of(file: Path) -> str | None:
    name = file.name.lower()
    if file.suffix.lower() == ".json":
        if name.startswith("captions_"):
            return "COCO captions JSON"
        if name.startswith("dataset_"):
            return "Karpathy JSON"
        if file.stat().st_size > SNIFF_JSON_BYTES:
            return None
        data = json.loads(read_utf8(file))
        images = data.get("images") if isinstance(data, dict) else None
        anns = data.get("annotations") if isinstance(data, dict) else None
        if isinstance(anns, list) and anns and isinstance(anns[0], dict) and "caption" in anns[0]:
            return "COCO captions JSON"
        if isinstance(images, list) and images and isinstance(images[0], dict) and "sentences" in images[0]:
            return "Karpathy JSON"
        return None
    with open(file, encoding="utf-8-sig", errors="replace") as f:
        first = f.readline(4096)
    if is_token_line(first):
        return "Flickr8k.token.txt" if file.name == "Flickr8k.token.txt" else f"{file.name} (Flickr8k.token.txt layout)"
    header = [h.strip().lower() for h in first.replace("|", ",").split(",")]
    if any(h in header for h in CSV_IMAGE) and any(h in header for h in CSV_CAPTION):
        return f"{file.name} ({'Flickr30k' if '|' in first else 'Flickr8k'} CSV)"
    return None


def read_annotations(file: Path, images: Path | None = None, root: Path | None = None) -> list[Record]:
    """One annotation file in any layout -> records (image file, captions, split).

    images: the image folder (None: found beside ``file`` or ``root``)."""
    if file.suffix.lower() == ".json":
        return _read_json(file, images)
    text = read_utf8(file)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if is_token_line(first):
        captions = read_token_lines(file, text)
    elif file.suffix.lower() in (".txt", ".csv") and first.lstrip().startswith(("{", "[")):
        return _read_json(file, images)
    else:
        captions = read_csv(file, text)
    splits = split_lists(file, root)
    folder = images or _image_folder(file, root, list(captions))
    records = []
    for name, caps in captions.items():
        split = splits.get(name, NOT_LISTED) if splits else None  # in no split list: counted, left out
        records.append((folder / name, caps, split))
    return records


def _image_folder(file: Path, root: Path | None, names: list[str]) -> Path:
    """The folder beside ``file`` (or in ``root``) that holds the first images named; else the first
    that exists (a missing image is then reported by name)."""
    bases = [file.parent] + ([root] if root is not None and root.is_dir() and root != file.parent else [])
    bases += [b.parent for b in list(bases) if b.name in TEXT_DIRS[1:]]
    folders = [b / d if d else b for b in bases for d in IMAGE_DIRS]
    probe = names[:5]
    for f in folders:
        if f.is_dir() and any((f / n).is_file() for n in probe):
            return f
    return next((f for f in folders if f.name in IMAGE_DIRS[1:] and f.is_dir()), file.parent)


# ---------------------------------------------------------------------- JSON layouts
def _read_json(file: Path, images: Path | None) -> list[Record]:
    text = read_utf8(file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CnnlabError(f"{file}: not readable JSON ({e.__class__.__name__}: {str(e)[:120]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CnnlabError(f"{file}: expected a JSON object with an 'images' list (COCO captions "
                          f"or Karpathy split layout)")
    if "annotations" in data:
        return _read_coco(file, data, images)
    return _read_karpathy(file, data, images)


def _read_coco(file: Path, data: dict, images: Path | None) -> list[Record]:
    name = file.stem.removeprefix("captions_")
    split = next((s for s in ("train", "val", "test") if name.startswith(s)), None)
    root = file.parent.parent if file.parent.name == "annotations" else file.parent
    folder = images or next((d for d in (root / name, root / "images" / name, root / "images", root)
                             if d.is_dir()), root)
    files, captions = {}, {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise CnnlabError(f"{file}: images[{i}]: expected an object with 'id' and 'file_name'")
        files[im["id"]] = folder / im["file_name"]
        captions[im["id"]] = []
    if not isinstance(data["annotations"], list):
        raise CnnlabError(f"{file}: 'annotations' must be a list")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not isinstance(ann.get("caption"), str) or "image_id" not in ann:
            raise CnnlabError(f"{file}: annotations[{i}]: expected an object with 'image_id' and 'caption'")
        if ann["image_id"] not in files:
            raise CnnlabError(f"{file}: annotations[{i}]: image_id {ann['image_id']!r} is not in 'images'")
        if not tokenize(ann["caption"]):
            raise CnnlabError(f"{file}: annotations[{i}]: empty caption {ann['caption']!r}")
        captions[ann["image_id"]].append(ann["caption"])
    return [(files[k], caps, split) for k, caps in captions.items()]  # without captions: counted, left out


def _read_karpathy(file: Path, data: dict, images: Path | None) -> list[Record]:
    out = []
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("filename"), str) \
                or not isinstance(im.get("sentences"), list):
            raise CnnlabError(f"{file}: images[{i}]: expected an object with 'filename' and 'sentences' "
                              f"(Karpathy layout) or a file with 'annotations' (COCO layout)")
        caps = []
        for j, s in enumerate(im["sentences"]):
            text = (s.get("raw") or " ".join(s.get("tokens", []))) if isinstance(s, dict) else None
            if not isinstance(text, str) or not tokenize(text):
                raise CnnlabError(f"{file}: images[{i}] ({im['filename']}): sentences[{j}] is empty")
            caps.append(text)
        if not caps:
            raise CnnlabError(f"{file}: images[{i}] ({im['filename']}): no sentences")
        split = {"restval": "train"}.get(im.get("split"), im.get("split"))
        if split not in ("train", "val", "test"):
            raise CnnlabError(f"{file}: images[{i}] ({im['filename']}): split {im.get('split')!r}, "
                              f"expected train, val, test or restval")
        out.append((_karpathy_image(file.parent, im, images), caps, split))
    return out


def _karpathy_image(root: Path, im: dict, images: Path | None) -> Path:
    sub = im.get("filepath", "") if isinstance(im.get("filepath"), str) else ""
    if images is not None:
        candidates = [images / sub / im["filename"], images / im["filename"]]
    else:
        candidates = [root / d / sub / im["filename"] for d in IMAGE_DIRS]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _pool(records: list[Record], split: str, path: Path) -> tuple[list[Record], bool]:
    """(the records ``split`` is drawn from, whether it is carved from them): its own records, or,
    without a val split in the files, train's (val is then ``val_fraction`` of them, by seed)."""
    given = {s for _, _, s in records}
    if split == "test" and "test" not in given:
        raise MissingSplit(f"{path}: no test split in the annotations")
    if split == "test" or "val" in given:
        return [r for r in records if r[2] == split], False
    return [r for r in records if r[2] in ("train", None)], True


def _carve(pool: list[Record], split: str, val_fraction: float, seed: int) -> list[Record]:
    """val (``val_fraction`` of the pool, by seed) or train (the rest)."""
    order = np.random.default_rng(seed).permutation(len(pool))
    n_val = round(val_fraction * len(pool))
    picked = order[:n_val] if split == "val" else order[n_val:]
    return [pool[i] for i in sorted(picked.tolist())]
