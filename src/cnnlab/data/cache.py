"""What cnnlab keeps in its cache folder (``$CNNLAB_CACHE``, default ``~/.cache/cnnlab``), and
emptying it: ``cnnlab cache`` lists, ``cnnlab cache clear`` deletes.

Only cnnlab's own files are touched, by name, so a cache folder pointed at a folder with other
files in it loses nothing else: decoded image folders (``folders/``), decoded segmentation
folders (``segment/``), the temporary files of an interrupted write beside them, and the traces
of internal errors (``crash-*.txt``). Downloaded datasets (``data/``) are listed but kept: they
cost a download to get back.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

KINDS = {  # (sub-folder or "", file-name pattern) -> what the files are
    ("folders", r"[0-9a-f]{24}(\.headers)?(\.pt(\.\w+\.tmp)?|\.tmp\d+)"): "decoded image folders",
    ("segment", r"[0-9a-f]{24}(\.pt|\.tmp\d+)"): "decoded segmentation folders",
    ("", r"crash-\d{8}-\d{6}-\d+\.txt"): "internal-error traces",
}
DOWNLOADS = "data"  # datasets downloaded here when $CNNLAB_DATA is not set (kept by `clear`)


def cache_root() -> Path:
    """``$CNNLAB_CACHE`` or ``~/.cache/cnnlab``."""
    return Path(os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab")


@dataclass
class CacheEntry:
    what: str
    folder: Path
    files: list[Path]
    bytes: int


def cache_contents(root: Path | None = None) -> list[CacheEntry]:
    """cnnlab's files in the cache folder, by kind, with their total size (downloads last)."""
    root = Path(root or cache_root())
    entries = []
    for (sub, pattern), what in KINDS.items():
        folder = root / sub if sub else root
        files = _matching(folder, re.compile(pattern))
        entries.append(CacheEntry(what, folder, files, sum(_size(f) for f in files)))
    downloads = root / DOWNLOADS
    files = [p for p in downloads.rglob("*") if p.is_file() and not p.is_symlink()] if downloads.is_dir() else []
    entries.append(CacheEntry("downloaded datasets (kept by `cnnlab cache clear`)", downloads, files,
                              sum(_size(f) for f in files)))
    return entries


def clear_cache(root: Path | None = None) -> tuple[int, int]:
    """Delete cnnlab's decoded sets, interrupted writes and traces; (files, bytes) deleted."""
    count = total = 0
    for entry in cache_contents(root)[:-1]:  # not the downloads
        for f in entry.files:
            size = _size(f)
            f.unlink(missing_ok=True)
            count, total = count + 1, total + size
    return count, total


def _matching(folder: Path, pattern: re.Pattern) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file() and not p.is_symlink())


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
