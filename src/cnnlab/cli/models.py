"""``cnnlab models``: the registered models with their sizes; ``models summary NAME``: layer by layer."""
from __future__ import annotations

import argparse

from cnnlab.cli.common import ints, json_text
from cnnlab.errors import CnnlabError


def add(sub) -> argparse.ArgumentParser:
    m = sub.add_parser("models", help="list models; `models summary NAME` for layer volumes and receptive fields")
    m.add_argument("action", nargs="?", choices=["list", "summary"], default="list")
    m.add_argument("name", nargs="?", help="model name (summary) or a pattern such as 'resnet*' (list)")
    m.add_argument("--input", help="input volume CxHxW, e.g. 3x224x224 (summary)")
    m.add_argument("--json", action="store_true")
    return m


def run(a) -> int:
    from cnnlab import api

    if a.action == "summary":
        if not a.name:
            raise CnnlabError("models summary: give a model NAME (see `cnnlab models`)")
        shape = tuple(ints(a.input, 3, "--input", "CxHxW, e.g. 3x224x224")) if a.input else None
        print(api.model_summary(a.name, shape))
        return 0
    rows = _rows(a.name or "*")
    if a.json:
        print(json_text([dict(zip(("name", "parameters", "input", "paper", "pretrained"), r)) for r in rows]))
        return 0
    print(f"{'model':<20}{'parameters':>13}  {'input':<10} {'pretrained':<10} paper")
    for name, n, size, paper, pre in rows:
        print(f"{name:<20}{n:>13,}  {size:<10} {pre:<10} {paper}")
    return 0


def _rows(pattern: str) -> list[tuple]:
    """(name, parameters, input size, paper, pretrained) of each model matching ``pattern``; the
    parameters counted on the meta device (no memory for the weights)."""
    import torch

    from cnnlab.models import get_model, list_models, model_info

    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        with torch.device("meta"):
            n = sum(p.numel() for p in get_model(name).parameters())
        rows.append((name, n, "x".join(map(str, info.input_size)), info.paper,
                     "yes" if info.pretrained else ""))
    return rows
