"""Box tables as CSV: one box per row, columns named in the header in any order.

    filename,width,height,class,xmin,ymin,xmax,ymax          (the TensorFlow Object Detection tutorials)
    000001.jpg,640,480,dog,48,240,195,371

    load_dataset("my_set", "test", task="detect")   # my_set/train_labels.csv, test_labels.csv + the images
    load_dataset("boxes.csv", "train", task="detect")  # one table: train/val/test carved by seed

Accepted header names (any case): the image ``filename``/``file``/``image``/``image_id``/``path``,
the class ``class``/``label``/``name``/``category``, the box ``xmin``/``x1``/``left``,
``ymin``/``y1``/``top``, ``xmax``/``x2``/``right``, ``ymax``/``y2``/``bottom`` in pixel edges,
and optionally the image's ``width``/``height`` (metadata: the image's own size is used). A row
with an empty class and box is an image without boxes (a negative).

Splits: ``<split>_labels.csv`` (``train``, ``val``/``valid``, ``test``; or ``<split>.csv``) beside
each other are the splits; a single table holds the whole set. Images are looked up by the
name in the row (a path relative to the CSV's folder, or a bare name, or a stem) beside the CSV,
in ``images/``, in ``<split>/`` and in ``images/<split>/``. Parsing is strict (Python's csv
module): a short row, a non-number or a missing class is an error naming the file and line.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from cnnlab.data.detection import MAX_BOXES_PER_IMAGE, Annotated, check_classes, few, too_many_boxes
from cnnlab.data.formats.box_images import ImageFinder
from cnnlab.data.formats.box_splits import ALL, SPLIT_WORDS, Part, choose
from cnnlab.data.formats.text import read_utf8
from cnnlab.errors import CnnlabError

COLUMNS = {  # role -> the header names that give it, preferred first
    "file": ("filename", "file_name", "file", "image", "image_id", "image_name", "path"),
    "class": ("class", "label", "name", "category", "class_name"),
    "xmin": ("xmin", "x1", "left", "x_min"), "ymin": ("ymin", "y1", "top", "y_min"),
    "xmax": ("xmax", "x2", "right", "x_max"), "ymax": ("ymax", "y2", "bottom", "y_max"),
    "width": ("width",), "height": ("height",),
}
REQUIRED = ("file", "class", "xmin", "ymin", "xmax", "ymax")
BOX = ("xmin", "ymin", "xmax", "ymax")
TABLE_NAMES = ("labels.csv", "annotations.csv", "boxes.csv")


# ---------------------------------------------------------------------------------------
# where the tables are
# ---------------------------------------------------------------------------------------


def csv_tables(path: Path) -> dict[str, Path]:
    """``{split: table}`` (or ``{ALL: table}``) of the box CSVs at ``path`` (a .csv or a folder); names only."""
    if path.is_file():
        folder, own = path.parent, path
    else:
        folder, own = path, None
    tables = {}
    for split, words in SPLIT_WORDS.items():
        for word in words:
            hit = next((folder / f"{word}{end}" for end in ("_labels.csv", ".csv") if (folder / f"{word}{end}").is_file()),
                       None)
            if hit is not None:
                tables[split] = hit
                break
    if own is not None and own not in tables.values():
        return {ALL: own}
    if tables or own is not None:
        return tables
    single = [folder / n for n in TABLE_NAMES if (folder / n).is_file()]
    return {ALL: single[0]} if single else {}


def header_roles(header: list[str]) -> dict[str, int]:
    """Role -> column index, for the header names this module accepts."""
    names = [h.strip().lower() for h in header]
    roles = {}
    for role, aliases in COLUMNS.items():
        hit = next((names.index(a) for a in aliases if a in names), None)
        if hit is not None:
            roles[role] = hit
    return roles


def is_box_header(line: str) -> bool:
    """Whether a CSV's first line names an image, a class and a box."""
    try:
        header = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return False
    return all(r in header_roles(header) for r in REQUIRED)


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------


def read_csv_part(path: Path, split: str) -> Part:
    """The records of ``split`` of the CSV box set at ``path``: its table, classes from every table."""
    tables = csv_tables(path)
    if not tables:
        raise CnnlabError(f"--data csv:{path}: no box table found; expected train_labels.csv (and val_labels.csv, "
                          f"test_labels.csv) or one .csv with a header naming {', '.join(REQUIRED)}")
    table, how = choose(tables, split, str(path))
    rows = {t: read_table(t) for t in tables.values()}
    listing = table.parent / "classes.txt"
    if listing.is_file():
        classes = [ln.strip() for ln in read_utf8(listing, "class list").splitlines() if ln.strip()]
        where = str(listing)
    else:
        classes = sorted({c for table_rows in rows.values() for _, _, _, cats in table_rows.values() for c in cats})
        where = f"{table}: the class column"
    check_classes(classes, where)
    split_name = next((k for k, t in tables.items() if t == table), ALL)
    records, notes = _locate(table, rows[table], split_name)
    return Part(records, classes, {c: i + 1 for i, c in enumerate(classes)}, how, notes)


def read_table(table: Path) -> dict[str, tuple[int, int, list, list]]:
    """Image name -> (width, height, boxes, classes), in the order the rows give them."""
    text = read_utf8(table, "box table")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise CnnlabError(f"{table}: empty; expected a header line such as "
                              f"filename,width,height,class,xmin,ymin,xmax,ymax")
        roles = header_roles(header)
        missing = [r for r in REQUIRED if r not in roles]
        if missing:
            raise CnnlabError(f"{table}:1: no column for {', '.join(missing)} in the header {','.join(header)[:120]!r}; "
                              f"accepted names: " + "; ".join(f"{r}: {'/'.join(COLUMNS[r])}" for r in missing))
        images: dict[str, tuple[int, int, list, list]] = {}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise CnnlabError(f"{table}:{line}: {len(row)} fields, but the header names {len(header)}")
            name = row[roles["file"]].strip()
            if not name:
                raise CnnlabError(f"{table}:{line}: column {header[roles['file']]!r} is empty; expected the image file")
            w, h = (_whole(row, roles, k, header, table, line) for k in ("width", "height"))
            entry = images.setdefault(name, (w, h, [], []))
            cls = row[roles["class"]].strip()
            cells = [row[roles[k]].strip() for k in BOX]
            if not cls and not any(cells):
                continue  # an image without boxes
            if not cls:
                raise CnnlabError(f"{table}:{line}: column {header[roles['class']]!r} is empty; expected the class name")
            if len(entry[2]) >= MAX_BOXES_PER_IMAGE:
                raise too_many_boxes(f"{table}:{line}: {name}", len(entry[2]) + 1)
            entry[2].append([_number(c, header[roles[k]], table, line) for c, k in zip(cells, BOX)])
            entry[3].append(cls)
    except csv.Error as e:
        raise CnnlabError(f"{table}:{reader.line_num}: not valid CSV ({e})") from None
    if not images:
        raise CnnlabError(f"{table}: no rows under the header")
    return images


def _number(cell: str, column: str, table: Path, line: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise CnnlabError(f"{table}:{line}: column {column!r}: expected a number of pixels, got {cell[:30]!r}")
    return value


def _whole(row: list[str], roles: dict, key: str, header: list[str], table: Path, line: int) -> int:
    """The image's width or height from the row, 0 when the table has no such column or leaves it empty."""
    if key not in roles or not row[roles[key]].strip():
        return 0
    value = _number(row[roles[key]].strip(), header[roles[key]], table, line)
    if value < 1 or value != int(value):
        raise CnnlabError(f"{table}:{line}: column {header[roles[key]]!r}: expected a positive whole number of "
                          f"pixels, got {row[roles[key]].strip()[:30]!r}")
    return int(value)


def _locate(table: Path, rows: dict, split: str) -> tuple[list[Annotated], list[str]]:
    """Records of a table's images that exist; the note on the ones absent (all absent: an error)."""
    folder = table.parent
    subs = SPLIT_WORDS.get(split, ())
    finder = ImageFinder([folder, folder / "images"] + [folder / s for s in subs] +
                         [folder / "images" / s for s in subs])
    records, missing = [], []
    for name, (w, h, boxes, classes) in rows.items():
        image = finder.find(name)
        if image is None:
            missing.append(name)
            continue
        records.append(Annotated(str(image), w, h, boxes, classes, image_id=str(image)))
    if not missing:
        return records, []
    line = (f"{table}: {len(missing)} of {len(rows)} images not found in "
            f"{', '.join(str(f) for f in finder.folders) or folder}: {few(missing)}")
    if not records:
        raise CnnlabError(line)
    return records, [f"{line}; left out with their boxes"]
