"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitives: ``model`` (state dict), ``optimizer``,
``scheduler``, ``epoch``, ``step`` (within the epoch, for a mid-epoch stop), ``rng``,
``config``, ``task`` (classes, normalisation, input shape), ``history``, ``best``, ``version``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from cnnlab.errors import CnnlabError


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` via a temp file + rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a cnnlab checkpoint safely (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and why, in one line
        raise CnnlabError(f"{path}: not a readable cnnlab checkpoint ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state or "task" not in state:
        raise CnnlabError(f"{path}: not a cnnlab checkpoint (expected keys 'model' and 'task')")
    return state


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
