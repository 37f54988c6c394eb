"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitives: ``model`` (state dict), ``optimizer``,
``scheduler``, ``epoch``, ``step`` (within the epoch, for a mid-epoch stop), ``rng``,
``config``, ``task`` (classes, normalisation, input shape), ``history``, ``best``, ``version``,
``given`` (what ``fit`` was given as objects: the data's split sizes, the model's class; else empty).
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from cnnlab.errors import CnnlabError, clean
from cnnlab.files import replacing


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` via a temp file + rename (``cnnlab.files``), so a crash never
    leaves half a file, and a link planted at ``path`` is replaced, not written through."""
    with replacing(path, "wb", durable=True) as f:  # the bytes are on disk before the name points at them
        torch.save(state, f)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a cnnlab checkpoint safely (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: checkpoint not found" if not path.exists() else
                          f"{path}: not a checkpoint file (expected a .pt file written by cnnlab train)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        blocked = re.search(r"GLOBAL ([\w.]+)", str(e))
        if not blocked:
            raise CnnlabError(f"{path}: not a readable cnnlab checkpoint, truncated or of another program "
                              f"(its pickle is not one torch.save writes)") from None
        # weights_only refused a Python object: say what, and that nothing ran
        raise CnnlabError(f"{path}: refused: the file holds a reference to {blocked.group(1)}; cnnlab reads "
                          f"only weights and plain data from checkpoints, so nothing in it was run") from None
    except Exception as e:  # truncated or foreign: torch.load's errors are of many types (even IndexError)
        why = "empty file" if path.stat().st_size == 0 else clean(e)[:120] or type(e).__name__
        raise CnnlabError(f"{path}: not a readable cnnlab checkpoint, truncated or of another program "
                          f"({why})") from None
    if not isinstance(state, dict) or not {"model", "task", "config"} <= state.keys() \
            or not isinstance(state["task"], dict) or "name" not in state["task"]:
        raise CnnlabError(f"{path}: not a cnnlab checkpoint (expected a dict with 'model', 'task' and 'config')")
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
