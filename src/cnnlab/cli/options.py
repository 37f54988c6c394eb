"""Options generated from declarations elsewhere: ``train``'s from the config keys (``TrainConfig``
and the tasks' configs), ``predict``'s from the tasks' predict options (``tasks/options.py``). A new
field is a new flag, with no edit here."""
from __future__ import annotations

import argparse
import dataclasses
import typing

from cnnlab.engine.config import GROUPS, config_keys
from cnnlab.tasks.options import TASK_OPTIONS, base_type

FIGURES = "predictions"  # where `predict` draws a task's figures unless --out says otherwise
PREDICT_OPTIONS = sorted({f.name for cls in TASK_OPTIONS.values() for f in dataclasses.fields(cls)})
GROUP_ORDER = tuple(GROUPS)  # train --help


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    """One --option per field of the tasks' predict options (tasks/options.py), default None so
    that only given options reach the task, which checks them against its own."""
    fields: dict[str, list] = {}  # name -> [(task, field, type)]
    for task, cls in TASK_OPTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            fields.setdefault(f.name, []).append((task, f, base_type(hints[f.name])))
    for name, takers in fields.items():
        flag, typ, default = "--" + name.replace("_", "-"), takers[0][2], takers[0][1].default
        default = f"{FIGURES}/, none with --json" if name == "out" else default
        helps = {f.metadata["help"] for _, f, _ in takers}
        text = (f"{', '.join(t for t, _, _ in takers)}: {helps.pop()}" if len(helps) == 1
                else "; ".join(f"{t}: {f.metadata['help']}" for t, f, _ in takers)) + f" (default {default})"
        if typ is bool:
            parser.add_argument(flag, dest=name, action="store_const", const=True, default=None, help=text)
        else:
            parser.add_argument(flag, dest=name, type=typ, default=None, help=text, metavar=name.upper())


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One --option per config key (the shared TrainConfig's and each task's own), default None so
    that only given options override; help, group, choices and range from each field's metadata."""
    groups = {name: parser.add_argument_group(f"{name} ({title})") for name, title in GROUPS.items()}
    for key in config_keys().values():
        group, flag, typ = groups[key.group], "--" + key.name.replace("_", "-"), key.type
        text = key.describe().replace("%", "%%")
        if typ is bool:
            group.add_argument(flag, dest=key.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            # lists arrive as text ("[0.2, 0.23, 0.07]") for the config to parse as YAML; choices are
            # checked by the config (one error path for flags, --set and recipes)
            metavar = ("{" + ",".join(key.choices) + "}" if key.choices
                       else "YAML" if typ in (dict, list) else key.name.upper())
            group.add_argument(flag, dest=key.name, type=typ if typ in (int, float, str) else str, default=None,
                               metavar=metavar, help=text)
