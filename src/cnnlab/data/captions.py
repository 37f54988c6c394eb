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
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cnnlab.data.base import FileImages
from cnnlab.data.caption_text import caption_grid, describe_captions, encode_references, tokenize, word_table
from cnnlab.data.registry import register_path_loader
from cnnlab.errors import CnnlabError

IMAGE_DIRS = ("", "images", "Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "flickr30k_images")
TEXT_DIRS = ("", "annotations", "Flickr8k_text", "captions")  # where a folder's caption files may sit
SPLIT_DIRS = ("", "splits", "Flickr8k_text")
SPLIT_LISTS = {"train": "train", "dev": "val", "val": "val", "test": "test"}  # Flickr_8k.<name>Images.txt
CSV_IMAGE = ("image", "image_name", "filename", "file_name")
CSV_CAPTION = ("caption", "comment", "sentence", "text")
CSV_LAYOUT = "a CSV with a header line 'image,caption' (Kaggle Flickr8k captions.txt layout)"
TOKEN_LAYOUT = "lines of 'image.jpg#N<TAB>caption' (Flickr8k.token.txt layout)"
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
    chosen = _split(records, split, val_fraction, seed, path)
    skipped = [str(f) for f, _, _ in chosen if not f.is_file()]
    if skipped and not skip_bad:
        hint = "" if folder else "; --images DIR names the folder that holds them"
        raise CnnlabError(f"{path}: captions reference a missing image {skipped[0]} "
                          f"({len(skipped)} missing; --skip-bad leaves them out{hint})")
    chosen = [r for r in chosen if r[0].is_file()]
    if not chosen:
        raise CnnlabError(f"{path}: the {split} split has no images")
    labels = encode_references([caps for _, caps, _ in chosen], words, max_words, source=str(path))
    size = image_size or 224
    data = CaptionFiles([f for f, _, _ in chosen], list(labels), words, (3, size, size),
                        name=f"{path.stem}/{split}")
    data.skipped = skipped
    return data


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


def read_annotations(file: Path, images: Path | None = None, root: Path | None = None) -> list[Record]:
    """One annotation file in any layout -> records (image file, captions, split).

    images: the image folder (None: found beside ``file`` or ``root``)."""
    if file.suffix.lower() == ".json":
        return _read_json(file, images)
    text = _read_text(file)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if _is_token_line(first):
        captions = _read_token_lines(file, text)
    elif file.suffix.lower() in (".txt", ".csv") and first.lstrip().startswith(("{", "[")):
        return _read_json(file, images)
    else:
        captions = _read_csv(file, text)
    splits = split_lists(file, root)
    folder = images or _image_folder(file, root, list(captions))
    records = []
    for name, caps in captions.items():
        split = splits.get(name) if splits else None
        if splits and split is None:
            continue  # in no split list: left out
        records.append((folder / name, caps, split))
    return records


def _read_text(file: Path) -> str:
    try:
        return file.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise CnnlabError(f"{file}: cannot read ({e.strerror or type(e).__name__})") from None
    except UnicodeDecodeError as e:
        raise CnnlabError(f"{file}: not UTF-8 text (byte {e.start}); expected {CSV_LAYOUT} or {TOKEN_LAYOUT}") from None


def _is_token_line(line: str) -> bool:
    key = line.split("\t", 1)[0] if "\t" in line else line.split(None, 1)[0] if line.strip() else ""
    name, hash_, n = key.rpartition("#")
    return bool(hash_ and name and n.strip().isdigit())


def _read_token_lines(file: Path, text: str) -> dict[str, list[str]]:
    """``image.jpg#N<TAB>caption`` lines -> captions per image name, in file order."""
    captions: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, _, caption = line.partition("\t") if "\t" in line else line.strip().partition(" ")
        name, hash_, number = key.strip().rpartition("#")
        if not (hash_ and name and number.isdigit()):
            raise CnnlabError(f"{file}: line {n}: expected {TOKEN_LAYOUT}, got {line[:60]!r}")
        if not tokenize(caption):
            raise CnnlabError(f"{file}: line {n}: empty caption for {name}")
        captions.setdefault(name, []).append(caption.strip())
    if not captions:
        raise CnnlabError(f"{file}: no captions; expected {TOKEN_LAYOUT}")
    return captions


def _read_csv(file: Path, text: str) -> dict[str, list[str]]:
    """A captions CSV with a header (``image,caption``; ``|`` as the separator too) -> captions per image."""
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "|" if "|" in header_line and "," not in header_line else ","
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in next(rows, [])]
    image_col = next((header.index(h) for h in CSV_IMAGE if h in header), None)
    caption_col = next((header.index(h) for h in CSV_CAPTION if h in header), None)
    if image_col is None or caption_col is None:
        raise CnnlabError(f"{file}: expected {CSV_LAYOUT}, got the first line {header_line[:60]!r}")
    captions: dict[str, list[str]] = {}
    last = caption_col == len(header) - 1
    for row in rows:
        n = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header) or (len(row) > len(header) and not last):
            raise CnnlabError(f"{file}: line {n}: {len(row)} fields where the header has {len(header)}; "
                              f"expected {CSV_LAYOUT} (quote captions that hold the separator)")
        name = row[image_col].strip()
        caption = delimiter.join(row[caption_col:]) if last else row[caption_col]  # unquoted commas
        if not name:
            raise CnnlabError(f"{file}: line {n}: no image name")
        if not tokenize(caption):
            raise CnnlabError(f"{file}: line {n}: empty caption for {name}")
        captions.setdefault(name, []).append(caption.strip())
    if not captions:
        raise CnnlabError(f"{file}: no captions below the header; expected {CSV_LAYOUT}")
    return captions


def split_lists(file: Path, root: Path | None = None) -> dict[str, str]:
    """Image name -> split from the official lists (``Flickr_8k.trainImages.txt``, ``...dev...``,
    ``...test...``) beside ``file``, in ``root``, or in their ``splits/``; {} when there are none."""
    places = [file.parent] + ([root] if root is not None and root.is_dir() and root != file.parent else [])
    out: dict[str, str] = {}
    for where in places:
        lists = {lst.resolve(): (lst, split) for d in SPLIT_DIRS if (where / d).is_dir()
                 for name, split in SPLIT_LISTS.items() for lst in sorted((where / d).glob(f"*.{name}Images.txt"))}
        for lst, split in lists.values():
            for image in (line.strip() for line in _read_text(lst).splitlines()):
                if image and out.get(image, split) != split:
                    raise CnnlabError(f"{lst}: {image} is also in the {out[image]} list; "
                                      f"expected disjoint train/dev/test lists")
                if image:
                    out[image] = split
        if out:
            return out  # the first place with lists holds them all
    return out


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
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
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
    return [(files[k], caps, split) for k, caps in captions.items() if caps]


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
