"""The run folder: where a run writes, never silently reused, and locked while the run lives.

Without ``--out`` a run goes to ``runs/TASK/NAME`` (NAME: the data's stem), numbered when taken
(``digits``, ``digits2``, ...) as Ultralytics numbers ``train``, ``train2``. An ``--out`` that
already holds a run (``best.pt``, ``last.pt`` or ``metrics.json``) is refused unless the run
resumes there or ``exist_ok`` replaces it. While a run lives, ``OUT/run.lock`` holds its PID
(created with ``O_CREAT | O_EXCL``): a second run into the folder is refused with the holder's
PID, and the lock of a killed run (its PID no longer alive) is taken over.
"""
from __future__ import annotations

import itertools
import os
import re
import socket
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.files import make_folder, remove_temporaries

RUNS = Path("runs")                                 # where runs go without --out: runs/TASK/NAME
RUN_FILES = ("best.pt", "last.pt", "metrics.json")  # a folder holding one of these holds a run
REPLACED = (*RUN_FILES, "metrics.csv")              # what exist_ok removes before the new run starts
LOCK = "run.lock"


def run_name(data: str) -> str:
    """The default run name for ``data``: its stem (``digits``, ``bccd``, ``instances`` of
    ``coco:instances.json``), in file-name-safe characters; ``train`` when nothing is left."""
    stem = Path(str(data).rpartition(":")[2].rstrip("/\\") or str(data)).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-") or "train"


def new_run_folder(task: str, data: str, root: Path = RUNS) -> Path:
    """``root/TASK/NAME``, or ``NAME2``, ``NAME3``... when taken; created here (``mkdir`` claims a
    name atomically, so two runs started at once get two folders)."""
    base = make_folder(root / task, parents=True)
    name = run_name(data)
    for n in itertools.count(1):
        path = base / (name if n == 1 else f"{name}{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def open_run_folder(out: str, task: str, data: str, *, resume: bool = False,
                    exist_ok: bool = False) -> tuple[Path, RunLock]:
    """The run's folder, created and locked: ``out`` (its parent must exist), or a new
    ``runs/TASK/NAME`` when ``out`` is empty. The caller releases the lock when the run ends."""
    said = f"--out {out}"
    path = make_folder(out, said) if out else new_run_folder(task, data)
    if not os.access(path, os.W_OK):
        raise CnnlabError(f"{said if out else path}: the folder is not writable")
    lock = RunLock(path).acquire()
    try:
        held = [name for name in RUN_FILES if os.path.lexists(path / name)]
        if held and not resume and not exist_ok:
            raise CnnlabError(f"{said}: the folder holds a run ({', '.join(held)}); give --exist-ok to replace it, "
                              f"--resume {path / 'last.pt'} to continue it, or another --out")
        if held and not resume:  # exist_ok: the old run's checkpoints and metrics go, so no file mixes two runs
            for name in REPLACED:
                (path / name).unlink(missing_ok=True)
        remove_temporaries(path)  # what a killed run was writing
    except BaseException:
        lock.release()
        raise
    return path, lock


class RunLock:
    """``FOLDER/run.lock``: ``PID HOST`` of the run writing the folder."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK
        self.held = False

    def acquire(self) -> "RunLock":
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                pid, host = _holder(self.path)
                if pid and _alive(pid, host):
                    raise CnnlabError(f"{self.path.parent}: in use by another cnnlab run (PID {pid}"
                                      f"{'' if host == socket.gethostname() else ' on ' + host}); wait for it to end "
                                      f"or choose another --out (no such run? delete {self.path})") from None
                self.path.unlink(missing_ok=True)  # a killed run's lock (or not a lock at all): take it over
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            self.held = True
            return self
        raise CnnlabError(f"{self.path}: could not take the run folder's lock (other runs keep taking it)")

    def release(self) -> None:
        """Remove the lock if this process still holds it."""
        if self.held and _holder(self.path)[0] == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


def _holder(path: Path) -> tuple[int, str]:
    """(PID, host) written in a lock file; (0, "") when it cannot be read as one (a link is not)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            text = f.read(256).decode("ascii", "replace").split()
    except OSError:
        return 0, ""
    if not text or not text[0].isdigit():
        return 0, ""
    return int(text[0]), (text[1] if len(text) > 1 else socket.gethostname())


def _alive(pid: int, host: str) -> bool:
    """Whether process ``pid`` runs (a process on another machine is taken to run)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
