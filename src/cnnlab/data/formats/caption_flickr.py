"""Flickr8k/30k's caption text files: the Kaggle CSV, ``Flickr8k.token.txt`` and the official split lists.

    captions = read_csv(path, read_utf8(path))             # {"1000268201_693b08cb0e.jpg": ["A child ...", ...]}
    captions = read_token_lines(path, read_utf8(path))     # from "image.jpg#N<TAB>caption" lines
    split_lists(path)                                      # {"1000268201_693b08cb0e.jpg": "train", ...}

Read strictly: a CSV quote left open (which would swallow the next rows into one caption), a
row without the header's fields, an empty caption or an image in two split lists is an error
naming the file and line (``cnnlab.data.formats.captions`` finds the files and builds the splits).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from cnnlab.data.caption_text import tokenize
from cnnlab.data.formats.text import read_utf8
from cnnlab.errors import CnnlabError

SPLIT_DIRS = ("", "splits", "Flickr8k_text")
SPLIT_LISTS = {"train": "train", "dev": "val", "val": "val", "test": "test"}  # Flickr_8k.<name>Images.txt
CSV_IMAGE = ("image", "image_name", "filename", "file_name")
CSV_CAPTION = ("caption", "comment", "sentence", "text")
CSV_LAYOUT = "a CSV with a header line 'image,caption' (Kaggle Flickr8k captions.txt layout)"
TOKEN_LAYOUT = "lines of 'image.jpg#N<TAB>caption' (Flickr8k.token.txt layout)"


def is_token_line(line: str) -> bool:
    key = line.split("\t", 1)[0] if "\t" in line else line.split(None, 1)[0] if line.strip() else ""
    name, hash_, n = key.rpartition("#")
    return bool(hash_ and name and n.strip().isdigit())


def read_token_lines(file: Path, text: str) -> dict[str, list[str]]:
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


def read_csv(file: Path, text: str) -> dict[str, list[str]]:
    """A captions CSV with a header (``image,caption``; ``|`` as the separator too) -> captions per image.

    Strict: a quote left open (which would swallow the next rows into one caption), a quoted
    caption spanning lines, a row without the header's fields or a field over the csv module's
    size limit is an error naming the line."""
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "|" if "|" in header_line and "," not in header_line else ","
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header = [h.strip().lower() for h in _csv_row(rows, file, 1) or []]
    image_col = next((header.index(h) for h in CSV_IMAGE if h in header), None)
    caption_col = next((header.index(h) for h in CSV_CAPTION if h in header), None)
    if image_col is None or caption_col is None:
        raise CnnlabError(f"{file}: expected {CSV_LAYOUT}, got the first line {header_line[:60]!r}")
    captions: dict[str, list[str]] = {}
    last = caption_col == len(header) - 1
    while True:
        n = rows.line_num + 1  # the line this row starts on
        row = _csv_row(rows, file, n)
        if row is None:
            break
        if rows.line_num > n:
            raise CnnlabError(f"{file}: line {n}: a quoted field runs on to line {rows.line_num} (a quote left "
                              f"open?); expected one row per line: quote captions as \"...\" with inner quotes doubled")
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


def _csv_row(rows, file: Path, n: int) -> list[str] | None:
    """The next row (None at the end); the csv module's complaints as one line naming line ``n``."""
    try:
        return next(rows, None)
    except csv.Error as e:
        if "field limit" in str(e):
            why = f"a field longer than the csv module's limit of {csv.field_size_limit():,} characters"
        elif "end of data" in str(e):
            why = "a quote opened here is never closed"
        else:
            why = f"malformed CSV ({e})"
        raise CnnlabError(f"{file}: line {n}: {why}; expected {CSV_LAYOUT}, captions quoted as \"...\" "
                          f"with inner quotes doubled") from None


def split_lists(file: Path, root: Path | None = None) -> dict[str, str]:
    """Image name -> split from the official lists (``Flickr_8k.trainImages.txt``, ``...dev...``,
    ``...test...``) beside ``file``, in ``root``, or in their ``splits/``; {} when there are none."""
    places = [file.parent] + ([root] if root is not None and root.is_dir() and root != file.parent else [])
    out: dict[str, str] = {}
    for where in places:
        lists = {lst.resolve(): (lst, split) for d in SPLIT_DIRS if (where / d).is_dir()
                 for name, split in SPLIT_LISTS.items() for lst in sorted((where / d).glob(f"*.{name}Images.txt"))}
        for lst, split in lists.values():
            for image in (line.strip() for line in read_utf8(lst).splitlines()):
                if image and out.get(image, split) != split:
                    raise CnnlabError(f"{lst}: {image} is also in the {out[image]} list; "
                                      f"expected disjoint train/dev/test lists")
                if image:
                    out[image] = split
        if out:
            return out  # the first place with lists holds them all
    return out
