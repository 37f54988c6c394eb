"""The images that box annotations name: found by file name, then by stem; their size read from the pixels.

    finder = ImageFinder([root / "JPEGImages"])
    finder.find("BloodImage_00000.jpg", "BloodImage_00000")   # the file, or None
    notes = use_image_sizes(records, "bccd (train)")           # the header's size wins over the annotation's

An annotation's own size (VOC ``<size>``, COCO ``width``/``height``, a CSV's ``width``/``height``)
is metadata; the image file is the truth. ``use_image_sizes`` reads each image's header (no
decode), puts its size in the record and counts the files whose annotation said otherwise, so
boxes are checked against the real image instead of being clipped or dropped by a wrong size.
"""
from __future__ import annotations

import os
from pathlib import Path

from cnnlab.data.detection import Annotated, few
from cnnlab.errors import CnnlabError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def image_names(folder: Path) -> list[str]:
    """The image file names directly in ``folder``, sorted (names only: nothing is opened)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if is_image(e.name) and e.is_file())
    except OSError:
        return []


class ImageFinder:
    """Finds an annotation's image in a list of folders: by its name, then by its stem (any suffix)."""

    def __init__(self, folders: list[Path]):
        self.folders = [f for f in folders if f.is_dir()]
        self._stems: dict[Path, dict[str, list[str]]] = {}

    def find(self, name: str, *stems: str) -> Path | None:
        """The file ``name`` (a relative path or a bare name) in the first folder holding it, else
        the one image whose stem is the name's stem or one of ``stems``; None when there is none.
        Two images with that stem and no exact name: a CnnlabError naming both."""
        for folder in self.folders:
            for candidate in (folder / name, folder / Path(name).name) if name else ():
                if candidate.is_file():
                    return candidate
        for stem in ((Path(name).stem,) if name else ()) + stems:
            for folder in self.folders:
                hits = self._by_stem(folder).get(stem, [])
                if len(hits) > 1:
                    raise CnnlabError(f"{folder}: {few(hits)} all have the stem {stem!r}; name the image "
                                      f"file ({name or stem}) exactly in its annotation")
                if hits:
                    return folder / hits[0]
        return None

    def _by_stem(self, folder: Path) -> dict[str, list[str]]:
        if folder not in self._stems:
            index: dict[str, list[str]] = {}
            for n in image_names(folder):
                index.setdefault(Path(n).stem, []).append(n)
            self._stems[folder] = index
        return self._stems[folder]


def use_image_sizes(records: list[Annotated], where: str, skip_bad: bool = False) -> list[str]:
    """Put each image's real (width, height), read from its header, in its record; the report line
    counting the files whose annotated size contradicts the image, if any.

    A record with width or height 0 had no size in its annotation. Unreadable images raise
    ImageError, or with ``skip_bad`` are left for the decoder to leave out and count."""
    from cnnlab.images import ImageError, peek_image

    differ = []
    for r in records:
        try:
            _, h, w = peek_image(r.file)
        except ImageError:
            if skip_bad:
                continue
            raise
        if r.width > 0 and r.height > 0 and (r.width, r.height) != (w, h):
            differ.append(f"{Path(r.file).name} (annotated {r.width}x{r.height}, image {w}x{h})")
        r.width, r.height = w, h
    if not differ:
        return []
    return [f"{where}: {len(differ)} annotations give a size that is not their image's; the image's own size "
            f"is used and their boxes are checked against it: {few(differ)}"]
