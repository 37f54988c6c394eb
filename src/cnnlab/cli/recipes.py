"""``cnnlab recipes``: the training recipes that ship with cnnlab (``train --config NAME``)."""
from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

from cnnlab.cli.common import json_text
from cnnlab.engine.config import recipe_info, recipe_names


def add(sub) -> argparse.ArgumentParser:
    rc = sub.add_parser("recipes", help="the training recipes that ship with cnnlab (`train --config NAME`)")
    rc.add_argument("--json", action="store_true", help="print the recipes as JSON")
    return rc


def run(a) -> int:
    rows = [recipe_info(name) for name in recipe_names()]
    if a.json:
        print(json_text(rows))
        return 0
    print(f"{'recipe':<16}{'task':<10}{'model':<18}data")
    for r in rows:
        print(f"{r['name']:<16}{r['task']:<10}{r['model']:<18}{r['data']}")
        print(textwrap.fill(r["about"], 100, initial_indent="    ", subsequent_indent="    "))
    if rows:
        folder = Path(rows[0]["path"]).parent
        shown = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)
        print(f"train one: cnnlab train --config NAME   (the files are in {shown})")
    return 0
