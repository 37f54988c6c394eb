"""Options generated from declarations elsewhere: ``train``'s from ``TrainConfig``, ``predict``'s
from the tasks' predict options (``tasks/options.py``). A new field is a new flag, with no edit here."""
from __future__ import annotations

import argparse
import dataclasses
import typing

from cnnlab.engine.config import CHOICES, TrainConfig, describe_field, field_docs
from cnnlab.tasks.options import TASK_OPTIONS, base_type

FIGURES = "predictions"  # where `predict` draws a task's figures unless --out says otherwise
PREDICT_OPTIONS = sorted({f.name for cls in TASK_OPTIONS.values() for f in dataclasses.fields(cls)})
GROUP_ORDER = ("data", "model", "optimisation", "augmentation", "device", "output")  # train --help


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
    """One --option per TrainConfig field, default None so that only given options override; help,
    groups, choices and ranges from the config (its field comments, CHOICES, RANGES)."""
    hints = typing.get_type_hints(TrainConfig)
    docs, groups = field_docs(), _config_groups(parser)
    for f in dataclasses.fields(TrainConfig):
        group = groups[docs[f.name].group]
        flag = "--" + f.name.replace("_", "-")
        typ = hints[f.name]
        text = describe_field(f.name).replace("%", "%%")
        if typ is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            # lists arrive as text ("[0.2, 0.23, 0.07]") for the config to parse as YAML; choices are
            # checked by the config (one error path for flags, --set and recipes)
            metavar = ("{" + ",".join(CHOICES[f.name]) + "}" if f.name in CHOICES
                       else "YAML" if typ in (dict, list) else f.name.upper())
            group.add_argument(flag, dest=f.name, type=typ if typ in (int, float, str) else str, default=None,
                               metavar=metavar, help=text)


def _config_groups(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """group name -> its argument group in ``parser``: GROUP_ORDER first, then any other by name."""
    docs = field_docs()
    groups = {}
    for name in sorted({d.group for d in docs.values()}, key=lambda g: (g not in GROUP_ORDER, GROUP_ORDER.index(g)
                                                                        if g in GROUP_ORDER else 0, g)):
        title = next(d.group_title for d in docs.values() if d.group == name)
        groups[name] = parser.add_argument_group(f"{name} ({title})" if title else name)
    return groups
