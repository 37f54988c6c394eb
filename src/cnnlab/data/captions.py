"""Caption datasets on disk: COCO captions JSON and Karpathy-split JSON (Flickr8k/30k, COCO).

    load_captions("~/data/coco", "train")                  # annotations/captions_train2014.json + train2014/
    load_captions("~/data/flickr8k/dataset_flickr8k.json", "test")   # Karpathy split, images beside it

Layouts (a JSON file, or a folder holding it directly or under ``annotations/``):

* COCO: ``captions_<name>.json`` = ``{"images": [{"id", "file_name"}], "annotations":
  [{"image_id", "caption"}]}``, images in ``<name>/`` (or ``images/<name>/``) beside it; the
  split comes from the file name (train / val / test); with only a train file, val is
  ``val_fraction`` of it.
* Karpathy: ``dataset_*.json`` = ``{"images": [{"filename", "filepath"?, "split",
  "sentences": [{"raw" or "tokens"}]}]}``; ``restval`` counts as train; images in
  ``<filepath>/``, ``images/``, ``Images/`` or ``Flicker8k_Dataset/`` beside it.

Every split is read into one format: ``CaptionFiles``, decoded per item in DataLoader
workers, labels (N, R, L) ids into a word table over all of the source's captions.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cnnlab.data.base import FileImages
from cnnlab.data.caption_text import caption_grid, describe_captions, encode_references, tokenize, word_table
from cnnlab.data.registry import register_path_loader
from cnnlab.errors import CnnlabError

IMAGE_DIRS = ("", "images", "Images", "Flicker8k_Dataset", "Flickr8k_Dataset")
Record = tuple[Path, list[str], str | None]  # image file, captions, split (None: not given)


class CaptionFiles(FileImages):
    """A caption split read from image files; items are (uint8 (C, H, W), (R, L) ids)."""

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
                  max_words: int = 0) -> CaptionFiles:
    """Split ``split`` of the captions at ``path`` (a JSON file or a folder holding one).

    skip_bad leaves out entries whose image file is missing (counted in ``skipped``);
    image_size (default 224) is the side images are resized to; max_words truncates captions.
    """
    path = Path(path).expanduser()
    if download:
        raise CnnlabError(f"{path}: caption datasets are read from disk; download them yourself")
    records = [r for f in annotation_files(path) for r in read_annotations(f)]
    words = word_table(tokenize(c) for _, caps, _ in records for c in caps)
    chosen = _split(records, split, val_fraction, seed, path)
    skipped = [str(f) for f, _, _ in chosen if not f.is_file()]
    if skipped and not skip_bad:
        raise CnnlabError(f"{path}: captions reference a missing image {skipped[0]} "
                          f"({len(skipped)} missing; --skip-bad leaves them out)")
    chosen = [r for r in chosen if r[0].is_file()]
    if not chosen:
        raise CnnlabError(f"{path}: the {split} split has no images")
    labels = encode_references([caps for _, caps, _ in chosen], words, max_words, source=str(path))
    size = image_size or 224
    data = CaptionFiles([f for f, _, _ in chosen], list(labels), words, (3, size, size),
                        name=f"{path.stem}/{split}")
    data.skipped = skipped
    return data


def annotation_files(path: Path) -> list[Path]:
    """The caption JSON files at ``path``: the file itself, or those in it or in annotations/."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CnnlabError(f"{path}: no such file or folder")
    for folder in (path, path / "annotations"):
        found = sorted(folder.glob("captions_*.json")) or sorted(folder.glob("dataset_*.json"))
        if found:
            return found
    raise CnnlabError(f"{path}: no caption annotations found; expected COCO captions_*.json or "
                      f"Karpathy dataset_*.json, in the folder or in annotations/")


def read_annotations(file: Path) -> list[Record]:
    """One JSON file in either layout -> records (image file, captions, split)."""
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CnnlabError(f"{file}: not readable JSON ({e.__class__.__name__}: {str(e)[:120]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CnnlabError(f"{file}: expected a JSON object with an 'images' list (COCO captions "
                          f"or Karpathy split layout)")
    if "annotations" in data:
        return _read_coco(file, data)
    return _read_karpathy(file, data)


def _read_coco(file: Path, data: dict) -> list[Record]:
    name = file.stem.removeprefix("captions_")
    split = next((s for s in ("train", "val", "test") if name.startswith(s)), None)
    root = file.parent.parent if file.parent.name == "annotations" else file.parent
    folder = next((d for d in (root / name, root / "images" / name, root / "images", root) if d.is_dir()), root)
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
    return [(files[k], caps, split) for k, caps in captions.items() if caps]


def _read_karpathy(file: Path, data: dict) -> list[Record]:
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
        out.append((_karpathy_image(file.parent, im), caps, split))
    return out


def _karpathy_image(root: Path, im: dict) -> Path:
    candidates = [root / d / im.get("filepath", "") / im["filename"] for d in IMAGE_DIRS]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _split(records: list[Record], split: str, val_fraction: float, seed: int, path: Path) -> list[Record]:
    """The records of ``split``; without a val split in the files, val is carved from train."""
    given = {s for _, _, s in records}
    if split == "test" and "test" not in given:
        raise CnnlabError(f"{path}: no test split in the annotations")
    if split == "test" or "val" in given:
        return [r for r in records if r[2] == split]
    train = [r for r in records if r[2] in ("train", None)]
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = round(val_fraction * len(train))
    picked = order[:n_val] if split == "val" else order[n_val:]
    return [train[i] for i in sorted(picked.tolist())]
