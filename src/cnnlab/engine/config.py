"""Training configuration: the shared fields in one typed dataclass, each task's own fields in its
config (``tasks/options.py``: ``SegmentConfig``, ``CaptionConfig``), one flat namespace of keys
for users, loadable from YAML and ``key=value`` overrides.

    cfg = TrainConfig.from_sources(yaml_path="recipe.yaml", overrides=["lr=0.01", "scale=0.5"])
    cfg.task_config          # SegmentConfig(backbone='', class_weights='none', scale=0.5) (task: segment)
    cfg.given                # the keys the user set, even to their default value

Every field is declared with ``option(default, help, group=, choices=, range=)``: ``cnnlab train
--help``, the checks and shell completion read that metadata, and each choice list is declared
once where it lives (the tasks' registry, ``runtime/device.py``, ``engine/optim.py``,
``tasks/options.py``). Values are parsed by the field's type (never ``eval``); an unknown key, a
key of another task, or a value of the wrong type or out of range is a ``CnnlabError`` naming it.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cnnlab.engine.optim import OPTIMIZERS, SCHEDULES
from cnnlab.errors import CnnlabError
from cnnlab.runtime.device import AMP_POLICIES
from cnnlab.tasks import TASKS
from cnnlab.tasks.options import TASK_CONFIGS, field_default, option, range_text

AUTO = "auto"  # the task: read from the data's layout
# `cnnlab train --help`'s groups, in order: name -> what its options decide
GROUPS = {"data": "the images and how they are read", "model": "what to train",
          "optimisation": "the loss, the optimizer and its schedule", "augmentation": "batched, on the training device",
          "device": "device, precision, speed and reproducibility", "output": "the run folder"}
DATA_OPTIONS = ("skip_bad", "val_fraction", "download", "image_size", "images")  # go to load_dataset


@dataclass
class TrainConfig:
    """The fields every task's training reads; the task's own fields are in ``task_config``."""
    # model: what to train
    task: str = option(AUTO, "the task (auto: read from the data's layout)", group="model",
                       choices=(AUTO, *TASKS))
    model: str = option("lecture_cnn", "a registered model name (cnnlab models)", group="model")
    pretrained: bool = option(False, "start from ImageNet weights (transfer learning; models.pretrained)",
                              group="model")
    freeze_backbone: bool = option(False, "train only the classifier head (with pretrained)", group="model")
    model_args: dict = option({}, 'extra builder kwargs, e.g. {"widths": [32, 64]}', group="model")
    # data: the images and how they are read
    data: str = option("digits", "a registered dataset name or a path on disk (cnnlab data)", group="data")
    image_size: int = option(0, "resize file-backed images to this side (0: dataset/model default)",
                             group="data", range=(0, 4096))
    val_fraction: float = option(0.1, "carved from train when the data has no val split", group="data",
                                 range=(0.0, 0.9))
    skip_bad: bool = option(False, "skip unreadable image files (counted and reported)", group="data")
    download: bool = option(False, "let torchvision download MNIST/Fashion-MNIST/CIFAR (internet)", group="data")
    images: str = option("", "detect, caption: the folder of the images a COCO-style annotation file names "
                         "(--data coco:instances.json --images train2017/)", group="data")
    workers: int = option(2, "DataLoader workers for file-backed datasets", group="data", range=(0, 256))
    # optimisation: the loss, the optimizer and its schedule
    epochs: int = option(8, "passes over the training split", group="optimisation", range=(1, 100_000))
    batch_size: int = option(128, "images per step (per process under DDP)", group="optimisation",
                             range=(1, 1_000_000))
    optimizer: str = option("sgd", "the optimizer (sgd: with Nesterov momentum)", group="optimisation",
                            choices=OPTIMIZERS)
    lr: float = option(0.0, "peak learning rate (0: the optimizer's default)", group="optimisation",
                       range=(0.0, 1000.0))
    momentum: float = option(0.9, "SGD momentum (Nesterov)", group="optimisation", range=(0.0, 0.999))
    weight_decay: float = option(5e-4, "L2 penalty on conv/linear weights (not on biases and norms)",
                                 group="optimisation", range=(0.0, 1.0))
    schedule: str = option("onecycle", "the learning-rate schedule over the run", group="optimisation",
                           choices=SCHEDULES)
    warmup_epochs: float = option(1.0, "linear warm-up for the cosine schedule, in epochs", group="optimisation",
                                  range=(0.0, 100_000.0))
    warmup_steps: int = option(0, "at least this many optimizer steps of warm-up (cosine) or climb to the peak "
                               "(onecycle), whatever the epochs hold; at most half the run", group="optimisation",
                               range=(0, 10_000_000))
    lr_cycle: list = option([0.0, 0.25, 0.0], "onecycle: [start, peak at, end] (start and end as fractions of "
                            "the peak lr, peak at as a fraction of the steps)", group="optimisation")
    label_smoothing: float = option(0.0, "cross-entropy label smoothing", group="optimisation", range=(0.0, 0.99))
    lookahead: bool = option(False, "airbench's weight averaging over the last 70% of steps", group="optimisation")
    ema: float = option(0.0, "validate and keep an exponential moving average of the weights with this decay "
                        "per step (e.g. 0.995; 0: off)", group="optimisation", range=(0.0, 0.99999))
    clip_grad: float = option(0.0, "clip the gradients' global norm to this (0: no clipping)", group="optimisation",
                              range=(0.0, 1e6))
    # augmentation: batched, on the training device
    flip: bool = option(False, "random horizontal flip (off for digits: a flipped 2 is no 2)", group="augmentation")
    translate: int = option(0, "random translation of up to this many pixels (border mirrored)",
                            group="augmentation", range=(0, 64))
    # device: device, precision, speed and reproducibility
    device: str = option("auto", "auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps", group="device")
    amp: str = option("auto", "mixed precision (auto: bf16 on CUDA and on bf16 CPUs for inputs >= 16x16, fp16 "
                      "with a gradient scaler on CUDA GPUs without bf16; bf16-full: bf16 weights and activations "
                      "end to end, fp32 master weights, for classify and segment)", group="device", choices=AMP_POLICIES)
    channels_last: bool = option(True, "NHWC memory format for conv nets", group="device")
    compile: bool = option(False, "torch.compile the model (pays back on long runs)", group="device")
    seed: int = option(0, "seeds weights, sampling and augmentation", group="device", range=(0, 2**31 - 1))
    deterministic: bool = option(False, "bit-exact reruns and resumes: deterministic algorithms and a fixed CPU "
                                 "thread count (else re-picked while training; slower)", group="device")
    # output: the run folder
    out: str = option("", "run folder: checkpoints, metrics, plots (empty: a new runs/TASK/NAME, numbered when "
                      "taken; its parent must exist; a run there is refused)", group="output")
    exist_ok: bool = option(False, "train into an --out that holds a run, replacing its checkpoints and metrics",
                            group="output")
    plots: bool = option(True, "write PNG plots at the end", group="output")
    tensorboard: bool = option(False, "also log to OUT/tensorboard: losses, lr, metrics, the figures",
                               group="output")
    # not keys of their own: the task's config (tasks/options.py; None for a task without fields of
    # its own; while the task is auto, the values given for it until the data decides the task),
    # and the keys the user set (from_sources), stored with the config
    task_config: object = None
    given: frozenset = field(default=frozenset(), compare=False)

    def __post_init__(self):
        self.given = frozenset(self.given)
        self.task_config = _task_config(self.task, self.task_config)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_sources(cls, yaml_path: str | Path | None = None, overrides: list[str] | None = None, *,
                     recipe: dict | None = None, saved: "TrainConfig | None" = None, **kwargs) -> "TrainConfig":
        """Defaults < ``recipe`` values < YAML file < ``key=value`` overrides < ``saved`` (a run to
        resume) < keyword arguments (None: not given). Every key these set is ``given``."""
        values: dict = dict(recipe or {})
        if yaml_path:
            values.update(_read_yaml(recipe_path(yaml_path)))
        for item in overrides or []:
            if "=" not in item:
                raise CnnlabError(f"override {item!r}: expected key=value")
            key, raw = item.split("=", 1)
            values[key.strip()] = raw
        given = set(values)
        if saved is not None:
            values.update(saved.values())
            given |= saved.given
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return cls._parse({**values, **kwargs}, given | set(kwargs))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A stored config (``to_dict``'s: a checkpoint's, config.json). The keys of other tasks,
        which older configs held for every task, are left out; without ``given``, none was."""
        values = dict(values)
        given = _coerce("given", values.pop("given", []), list)
        keys, task = config_keys(), values.get("task", AUTO)
        return cls._parse({k: v for k, v in values.items() if k not in keys or keys[k].task in (None, task)},
                          given)

    @classmethod
    def _parse(cls, values: dict, given) -> "TrainConfig":
        """The config of the flat ``values``: each key known, parsed by its type and checked, then
        split into the shared fields and the task's."""
        keys = config_keys()
        shared, own = {}, {}
        for name, value in values.items():
            if name not in keys:
                raise CnnlabError(f"unknown config key {name!r}; known keys: {', '.join(keys)}")
            (shared if keys[name].task is None else own)[name] = keys[name].parse(value)
        return cls(**shared, task_config=own or None, given=frozenset(given))

    def data_options(self) -> dict:
        """The dataset options the user set: given (at their default value too) or changed from
        the default (``TrainConfig(val_fraction=0.2)``); built-in sets refuse options they can't honour."""
        base = TrainConfig()
        return {k: getattr(self, k) for k in DATA_OPTIONS if k in self.given or getattr(self, k) != getattr(base, k)}

    def values(self) -> dict:
        """The flat key: value mapping users write: every shared key and the task's own."""
        own = self.task_config
        values = {k.name: getattr(self, k.name) for k in config_keys().values() if k.task is None}
        values.update(own if isinstance(own, dict) else dataclasses.asdict(own) if own is not None else {})
        return copy.deepcopy(values)

    def to_dict(self) -> dict:
        """What a checkpoint and config.json store: ``values()`` and the keys that were given."""
        return {**self.values(), "given": sorted(self.given)}


def _task_config(task: str, held):
    """The config of ``task``'s own fields from ``held``: its config, or the values given for it (a
    dict; kept as they are while the task is auto or unknown); a key of another task is an error."""
    if task not in TASKS:
        return held
    cls = TASK_CONFIGS.get(task)
    if held is None or isinstance(held, dict):
        keys = config_keys()
        for name in held or {}:
            if cls is None or name not in {f.name for f in dataclasses.fields(cls)}:
                owner = keys[name].task if name in keys else None
                raise CnnlabError(f"config key {name!r} is for --task {owner}; this run's task is {task}"
                                  if owner else f"unknown config key {name!r}")
        return cls(**(held or {})) if cls else None
    if cls is None or not isinstance(held, cls):
        raise CnnlabError(f"task_config: task {task} takes {cls.__name__ if cls else 'none'}, "
                          f"got {type(held).__name__}")
    return held


# ---------------------------------------------------------------------- the flat keys
@dataclass(frozen=True)
class ConfigKey:
    """One key of the flat namespace users write (a flag, ``--set``, a recipe, ``train(**)``)."""
    name: str
    field: dataclasses.Field
    type: type
    task: str | None  # the task whose config holds it; None: the shared TrainConfig

    @property
    def group(self) -> str:
        return self.field.metadata["group"]

    @property
    def choices(self) -> tuple | None:
        return self.field.metadata["choices"]

    def parse(self, value):
        """``value`` (a YAML value or command-line text) as this key's type, checked."""
        value = _coerce(self.name, value, self.type)
        low, high = self.field.metadata["range"]
        if (low is not None and not low <= value) or (high is not None and not value <= high):  # NaN fails too
            raise CnnlabError(f"config key {self.name!r}: expected {range_text(low, high)}, got {value!r}")
        if self.choices and value not in self.choices:
            raise CnnlabError(f"config key {self.name!r}: expected one of {', '.join(self.choices)}, got {value!r}")
        return value

    def describe(self) -> str:
        """Its help with its default, choices and range: ``peak learning rate (default 0.0; 0.0..1000.0)``."""
        default = field_default(self.field)
        extra = [f"default {default!r}" if isinstance(default, str) else f"default {default}"]
        if self.choices:
            extra.append("one of " + ", ".join(self.choices))
        if self.field.metadata["range"] != (None, None):
            extra.append(range_text(*self.field.metadata["range"]))
        return f"{self.task + ': ' if self.task else ''}{self.field.metadata['help']} ({'; '.join(extra)})"


@functools.lru_cache(maxsize=None)
def config_keys() -> dict[str, ConfigKey]:
    """Every key users may set, in ``--help``'s order: the shared fields, each group's followed by
    the tasks' own fields of that group."""
    keys: list[ConfigKey] = []
    for task, cls in [(None, TrainConfig), *TASK_CONFIGS.items()]:
        hints = typing.get_type_hints(cls)
        keys += [ConfigKey(f.name, f, hints[f.name], task) for f in dataclasses.fields(cls)
                 if "help" in f.metadata]  # not task_config, given: set through the keys
    shared, own = [k for k in keys if k.task is None], [k for k in keys if k.task]
    ordered = {}
    for i, key in enumerate(shared):
        ordered[key.name] = key
        if i + 1 == len(shared) or shared[i + 1].group != key.group:  # the group's last shared field
            ordered.update((k.name, k) for k in own if k.group == key.group)
    if len(ordered) != len(keys):
        raise TypeError("a config key is declared twice (or in a group of no shared field)")
    return ordered


# ---------------------------------------------------------------------- packaged recipes
RECIPES = Path(__file__).resolve().parents[1] / "recipes"  # src/cnnlab/recipes (package data)


def recipe_names() -> list[str]:
    """The names of the recipes that ship with cnnlab (``cnnlab recipes``)."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def recipe_values(spec: str | Path) -> dict:
    """The key: value mapping of a recipe (a packaged name or a YAML file)."""
    return _read_yaml(recipe_path(spec))


def recipe_path(spec: str | Path) -> Path:
    """The YAML file ``--config`` means: an existing path as given, else a packaged recipe's name
    (``fashion-mnist`` or ``fashion-mnist.yaml``); an unknown name lists the close matches."""
    path = Path(spec)
    if path.exists() or len(path.parts) != 1:  # a path (a missing one says so when it is read)
        return path
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if (RECIPES / f"{stem}.yaml").is_file():
        return RECIPES / f"{stem}.yaml"
    if path.suffix in (".yaml", ".yml"):
        return path  # a file name: "config file not found"
    from cnnlab.errors import unknown_name

    raise unknown_name("recipe (or config file)", str(spec), recipe_names())


def recipe_info(name: str) -> dict:
    """A packaged recipe's name, task, data, model, what it is and its bar (its first comment
    paragraph), and its path."""
    path = recipe_path(name)
    text = path.read_text(encoding="utf-8")
    values = _read_yaml(path)
    about = []  # the first comment paragraph: what the recipe trains and its bar
    for line in text.splitlines():
        if not line.startswith("#") or not line.lstrip("#").strip():
            break
        about.append(line.lstrip("#").strip())
    return {"name": path.stem, "task": values.get("task", TrainConfig.task),
            "data": str(values.get("data", "--data DIR")), "model": values.get("model", TrainConfig.model),
            "about": re.sub(r"\s*\([^()]*benchmarks/[^()]*\)", "", " ".join(about)), "path": str(path)}




def _read_yaml(path: Path) -> dict:
    """The key: value mapping of a YAML config file, or one CnnlabError naming the file.

    ``safe_load`` builds plain values only: a tag such as ``!!python/object/apply`` is an
    error, never a call."""
    from cnnlab.errors import clean  # (a local import: this function's edit stays within it)

    name = clean(path)
    try:
        values = yaml.safe_load(_config_bytes(path, name))  # bytes: PyYAML detects UTF-8/16
    except yaml.reader.ReaderError as e:
        raise CnnlabError(f"{name}: not a YAML text file (byte {e.position}: {clean(e.reason)})") from None
    except yaml.YAMLError as e:
        raise CnnlabError(f"{name}: not valid YAML ({clean(_yaml_problem(e))})") from None
    except RecursionError:
        raise CnnlabError(f"{name}: not valid YAML (nested too deeply)") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise CnnlabError(f"{name}: expected a mapping of key: value, got {type(values).__name__}")
    _check_value_count(values, name)
    return values


_MAX_CONFIG_BYTES = 1 << 20   # a config is a page of text
_MAX_CONFIG_VALUES = 10_000   # values in a config, counting each use of a YAML alias


def _config_bytes(path: Path, name: str) -> bytes:
    """The bytes of a regular file of at most _MAX_CONFIG_BYTES (a FIFO is never opened)."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise CnnlabError(f"{name}: is a folder, not a YAML config file")
        if not path.is_file():
            raise CnnlabError(f"{name}: not a regular file (a FIFO, socket or device)")
        if size > _MAX_CONFIG_BYTES:
            raise CnnlabError(f"{name}: {size:,} bytes, too large for a config file "
                              f"(limit {_MAX_CONFIG_BYTES:,})")
        return path.read_bytes()
    except FileNotFoundError:
        raise CnnlabError(f"{name}: config file not found") from None
    except OSError as e:  # permission denied, a symbolic-link loop...
        raise CnnlabError(f"{name}: cannot read the config file ({e.strerror or type(e).__name__})") from None


def _yaml_problem(e: yaml.YAMLError) -> str:
    """What PyYAML found wrong, and where, in one line."""
    problem = getattr(e, "problem", None) or type(e).__name__
    mark = getattr(e, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _check_value_count(values: dict, name: str) -> None:
    """Refuse more than _MAX_CONFIG_VALUES values counting each use of an alias: aliases that
    nest ("billion laughs") or refer to themselves would make any later walk endless."""
    todo, count = [values], 0
    while todo:
        value = todo.pop()
        count += 1
        if count > _MAX_CONFIG_VALUES:
            raise CnnlabError(f"{name}: more than {_MAX_CONFIG_VALUES:,} values once its aliases "
                              f"(*name) are expanded; self-referring or nested anchors (&name)?")
        if isinstance(value, dict):
            todo += [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple, set)):
            todo += value


def _coerce(key: str, value, typ):
    """Parse ``value`` (a YAML value or a command-line string) as ``typ``."""
    if isinstance(typ, types.UnionType):  # e.g. str | None: take the first non-None member
        typ = next(t for t in typ.__args__ if t is not type(None))
    expected = getattr(typ, "__name__", str(typ))
    if isinstance(value, str) and typ is not str:
        try:
            value = yaml.safe_load(value)  # "3" -> 3, "true" -> True, "{a: 1}" -> dict
        except yaml.YAMLError:
            raise CnnlabError(f"config key {key!r}: cannot parse {value!r} as {expected}") from None
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is float and isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads "2e-3" (no dot) as a string
        except ValueError:
            pass
    if typ is str and ((isinstance(value, (int, float)) and not isinstance(value, bool)) or isinstance(value, Path)):
        value = str(value)  # data=Path(...), images=Path(...) from Python
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise CnnlabError(f"config key {key!r}: expected {expected}, got {value!r}")
    return value
