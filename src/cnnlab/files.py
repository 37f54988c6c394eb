"""Writing files: every file cnnlab writes goes through here.

A file is written to a temporary file in its own folder, then renamed over its name: a reader (or
a kill) never sees half a file, and a symbolic link planted at the name is replaced, never
followed to its target. A file written as it grows (``predictions.jsonl``) is opened as a new
file with ``O_EXCL | O_NOFOLLOW``. Folders: cnnlab creates the folder it was asked to write into,
never a missing chain of parents (``make_folder``); a file it was asked to write goes into a
folder that exists (``file_path``).

    with replacing("runs/a/metrics.csv", "w") as f:
        f.write(text)
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from cnnlab.errors import CnnlabError

_TEMPORARY = re.compile(r".+\.[A-Za-z0-9_]+\.tmp$")  # NAME.XXXXXXXX.tmp, as mkstemp names them below


# ---------------------------------------------------------------------- folders
def make_folder(path: str | Path, name: str | None = None, *, parents: bool = False) -> Path:
    """The folder ``path``, created when missing; its parent must exist unless ``parents``
    (cnnlab's own default places, such as ``runs/classify/digits``). ``name``: how the user gave
    it, for the error (``--out runs/a``)."""
    path = Path(path)
    said = name or str(path)
    if path.is_dir():
        return path
    if path.exists() or path.is_symlink():
        raise CnnlabError(f"{said}: a file is in the way; expected a folder")
    if not parents:
        _check_parent(path, said)
    try:
        path.mkdir(parents=parents, exist_ok=True)
    except NotADirectoryError:
        raise CnnlabError(f"{said}: a file is in the way of its folders") from None
    except PermissionError:
        raise CnnlabError(f"{said}: permission denied creating the folder") from None
    return path


def file_path(path: str | Path, name: str | None = None) -> Path:
    """``path`` as a file to write: not a folder, and its folder exists (cnnlab creates none for it)."""
    path = Path(path)
    said = name or str(path)
    if path.is_dir():
        raise CnnlabError(f"{said}: a folder; expected a file name such as {path / ('file' + (path.suffix or '.out'))}")
    _check_parent(path, said)
    return path


def _check_parent(path: Path, said: str) -> None:
    parent = path.parent
    if parent.is_dir():
        return
    if parent.exists():
        raise CnnlabError(f"{said}: {parent} is a file, not a folder")
    missing = parent
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    raise CnnlabError(f"{said}: the folder {missing} does not exist (cnnlab creates only the last folder "
                      f"of a path; create {parent} first)")


# ---------------------------------------------------------------------- whole files
@contextlib.contextmanager
def replacing(path: str | Path, mode: str = "wb", *, durable: bool = False):
    """A file object to write ``path``'s new content to; when the block ends without an error it
    replaces ``path`` (a link there is replaced, its target untouched), else it is deleted.
    The file's folder is created when its parent exists. ``durable``: fsync the bytes and the
    folder (checkpoints), so a power cut leaves the old file or the new one."""
    with replacing_path(path, durable=durable) as tmp:
        options = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(tmp, mode, **options) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())


@contextlib.contextmanager
def replacing_path(path: str | Path, *, durable: bool = False):
    """A temporary file name beside ``path`` for writers that take a name (ONNX, safetensors);
    renamed over ``path`` when the block ends without an error, else deleted."""
    path = Path(path)
    make_folder(path.parent)
    if path.is_dir():
        raise CnnlabError(f"{path}: a folder is in the way; expected a file")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # a normal file's permissions, not mkstemp's 0600
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)  # the rename replaces a link at ``path``, never its target
        if durable:
            _fsync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, *, durable: bool = False) -> Path:
    with replacing(path, "wb", durable=durable) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with replacing(path, "w") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | Path, value, **dumps_options) -> Path:
    return write_text(path, json.dumps(value, **{"indent": 2, **dumps_options}))


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files (``NAME.XXXXXXXX.tmp``) a killed writer left in ``folder``."""
    stale = sorted(p for p in Path(folder).glob("*.tmp") if _TEMPORARY.fullmatch(p.name) and not p.is_dir())
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


# ---------------------------------------------------------------------- growing files
def open_new(path: str | Path, *, replace: bool = False, name: str | None = None):
    """A new text file at ``path`` to write as results come (never through a link: ``O_EXCL |
    O_NOFOLLOW``). An existing ``path`` is an error, unless ``replace``: then it (or a link
    there, not its target) is removed first."""
    path = Path(path)
    said = name or str(path)
    if path.is_dir() and not path.is_symlink():
        raise CnnlabError(f"{said}: a folder is in the way; expected a file")
    if replace:
        path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    except FileExistsError:
        raise CnnlabError(f"{said}: already exists") from None
    return os.fdopen(fd, "w", encoding="utf-8")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name one file (a hard or symbolic link included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# ---------------------------------------------------------------------- helpers
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
