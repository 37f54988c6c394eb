"""Weights in the ecosystem's format: a ``.safetensors`` file (weights only, no pickle) with the
run's config and task as metadata, so cnnlab rebuilds the model from it alone.

    cnnlab export runs/digits/best.pt --format safetensors     # runs/digits/best.safetensors
    cnnlab predict runs/digits/best.safetensors digit.png

The metadata key ``cnnlab`` holds JSON ``{"version", "model", "config", "task"}``; the tensors
are the model's state dict in fp32 (other tools read them with ``safetensors.torch.load_file``).
Every task exports this way: nothing is traced, and the file is read back and compared tensor by
tensor before it takes ``out``'s name.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from cnnlab._version import __version__
from cnnlab.deploy.checks import checked_task, load_weights_checked
from cnnlab.engine.config import TrainConfig
from cnnlab.engine.memory_budget import bounded_model
from cnnlab.errors import CnnlabError, clean
from cnnlab.files import file_path, replacing_path

METADATA_KEY = "cnnlab"


def _safetensors():
    try:
        import safetensors.torch
    except ImportError as e:
        raise CnnlabError(f"safetensors files need the safetensors package: pip install safetensors ({e})") from e
    return safetensors.torch


def save_weights(loaded, out: str | Path) -> dict:
    """Write ``loaded``'s weights to ``out`` and check them read back; ``{"path", "format",
    "max_abs_diff", "tensors"}``."""
    st = _safetensors()
    out = file_path(out)  # its folder exists: cnnlab creates none for a file it is asked to write
    tensors = {k: (v.float() if v.is_floating_point() else v).detach().cpu().contiguous().clone()
               for k, v in loaded.model.state_dict().items()}  # clones: shared storage is refused
    cfg = loaded.config.to_dict() if loaded.config is not None else {"model": loaded.name}
    meta = {METADATA_KEY: json.dumps({"version": __version__, "model": loaded.name, "config": cfg,
                                      "task": loaded.task.state()})}
    with replacing_path(out) as tmp:  # renamed over ``out`` once the weights read back the same
        st.save_file(tensors, str(tmp), metadata=meta)
        back = st.load_file(str(tmp))
        diff = max((float((back[k].double() - v.double()).abs().max()) if v.numel() else 0.0
                    for k, v in tensors.items() if v.is_floating_point()), default=0.0)
        if back.keys() != tensors.keys() or diff != 0.0:
            raise CnnlabError(f"{out}: the weights read back differ from the model's (max |difference| {diff:g})")
    return {"path": str(out), "format": "safetensors", "max_abs_diff": diff, "tensors": len(tensors)}


def load_weights(path: str | Path, device: torch.device):
    """(model, task, config) rebuilt from a cnnlab ``.safetensors`` file, the model on ``device``, in eval mode."""
    _safetensors()
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = (f.metadata() or {}).get(METADATA_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise CnnlabError(f"{path}: not a readable safetensors file ({type(e).__name__}: "
                          f"{(str(e).splitlines() or [''])[0]})") from None
    if meta is None:
        raise CnnlabError(f"{path}: a safetensors file without cnnlab's metadata (key {METADATA_KEY!r}); "
                          f"export it with `cnnlab export CHECKPOINT --format safetensors`")
    try:
        info = json.loads(meta)
        cfg = TrainConfig.from_dict({**info["config"], "pretrained": False})
        state = info["task"]
    except (ValueError, KeyError, TypeError) as e:
        raise CnnlabError(f"{clean(path)}: cnnlab metadata is damaged ({type(e).__name__}: {clean(e)[:120]})") from None
    task = checked_task(state, path)
    model = bounded_model(task, cfg, path, device)  # sizes from the metadata are counted before building
    load_weights_checked(model, tensors, path, cfg.model)
    return model.to(device).eval(), task, TrainConfig.from_dict(info["config"])
