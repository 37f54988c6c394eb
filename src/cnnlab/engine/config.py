"""Training configuration: one typed dataclass, loadable from YAML and ``key=value`` overrides.

    cfg = TrainConfig.from_sources(yaml_path="recipe.yaml", overrides=["lr=0.01", "epochs=5"])

Values are parsed by the field's type (never ``eval``); an unknown key or a value of the
wrong type is a ``CnnlabError`` naming the key and what was expected.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cnnlab.errors import CnnlabError


@dataclass
class TrainConfig:
    # Each field's trailing comment is its help text (`cnnlab train --help`, field_docs below) and
    # each "# --- GROUP: title" banner opens the group of the fields under it: keep both.
    # --- model: what to train
    task: str = "auto"                # classify | segment | detect | caption | auto (read from the data's layout)
    model: str = "lecture_cnn"        # a registered model name (cnnlab models)
    pretrained: bool = False          # start from ImageNet weights (transfer learning; models.pretrained)
    freeze_backbone: bool = False     # train only the classifier head (with pretrained)
    model_args: dict = field(default_factory=dict)  # extra builder kwargs, e.g. {"widths": [32, 64]}
    backbone: str = ""                # segment: the classifier under an FCN (resnet18, efficientnet_lite0...)
    # --- data: the images and how they are read
    data: str = "digits"              # a registered dataset name or a path on disk (cnnlab data)
    image_size: int = 0               # resize file-backed images to this side (0: dataset/model default)
    val_fraction: float = 0.1         # carved from train when the data has no val split
    skip_bad: bool = False            # skip unreadable image files (counted and reported)
    download: bool = False            # let torchvision download MNIST/Fashion-MNIST/CIFAR (internet)
    images: str = ""                  # detect, caption: the folder of the images a COCO-style annotation
                                      # file names (--data coco:instances.json --images train2017/)
    min_word_count: int = 1           # caption: training words seen fewer times become <unk>
    workers: int = 2                  # DataLoader workers for file-backed datasets
    # --- optimisation: the loss, the optimizer and its schedule
    epochs: int = 8                   # passes over the training split
    batch_size: int = 128             # images per step (per process under DDP)
    optimizer: str = "sgd"            # the optimizer (sgd: with Nesterov momentum)
    lr: float = 0.0                   # peak learning rate (0: the optimizer's default)
    momentum: float = 0.9             # SGD momentum (Nesterov)
    weight_decay: float = 5e-4        # L2 penalty on conv/linear weights (not on biases and norms)
    schedule: str = "onecycle"        # the learning-rate schedule over the run
    warmup_epochs: float = 1.0        # linear warm-up for the cosine schedule, in epochs
    lr_cycle: list = field(default_factory=lambda: [0.0, 0.25, 0.0])  # onecycle: [start, peak at, end]
                                      # (start and end as fractions of the peak lr, peak at as a fraction of the steps)
    label_smoothing: float = 0.0      # cross-entropy label smoothing
    attention_reg: float = 0.0        # caption: Show-Attend-and-Tell's doubly stochastic attention penalty
    class_weights: str = "none"       # segment: loss weights per class (median / inverse pixel frequency)
    lookahead: bool = False           # airbench's weight averaging over the last 70% of steps
    clip_grad: float = 0.0            # clip the gradients' global norm to this (0: no clipping)
    # --- augmentation: batched, on the training device
    flip: bool = False                # random horizontal flip (off for digits: a flipped 2 is no 2)
    translate: int = 0                # random translation of up to this many pixels (border mirrored)
    scale: float = 0.0                # segment: random zoom by up to 1+scale (and out to 1/(1+scale))
    # --- device: device, precision, speed and reproducibility
    device: str = "auto"              # auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps
    amp: str = "auto"                 # mixed precision (auto: bf16 on CUDA and on bf16 CPUs for inputs >= 16x16,
                                      # fp16 with a gradient scaler on CUDA GPUs without bf16)
    channels_last: bool = True        # NHWC memory format for conv nets
    compile: bool = False             # torch.compile the model (pays back on long runs)
    seed: int = 0                     # seeds weights, sampling and augmentation
    deterministic: bool = False       # bit-exact reruns and resumes: deterministic algorithms and a fixed
                                      # CPU thread count (else re-picked while training; slower)
    # --- output: the run folder
    out: str = ""                     # run folder: checkpoints, metrics, plots (empty: a new runs/TASK/NAME,
                                      # numbered when taken; its parent must exist; a run there is refused)
    exist_ok: bool = False            # train into an --out that holds a run, replacing its checkpoints and metrics
    plots: bool = True                # write PNG plots at the end
    tensorboard: bool = False         # also log to OUT/tensorboard: losses, lr, metrics, the figures

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_sources(cls, yaml_path: str | Path | None = None, overrides: list[str] | None = None, *,
                     recipe: dict | None = None, **kwargs) -> "TrainConfig":
        """Defaults < ``recipe`` values < YAML file < ``key=value`` overrides < keyword arguments."""
        values: dict = dict(recipe or {})
        if yaml_path:
            values.update(_read_yaml(recipe_path(yaml_path)))
        for item in overrides or []:
            if "=" not in item:
                raise CnnlabError(f"override {item!r}: expected key=value")
            key, raw = item.split("=", 1)
            values[key.strip()] = raw
        values.update({k: v for k, v in kwargs.items() if v is not None})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        parsed = {}
        for key, value in values.items():
            if key not in fields:
                raise CnnlabError(f"unknown config key {key!r}; known keys: {', '.join(fields)}")
            parsed[key] = _coerce(key, value, hints[key])
        cfg = cls(**parsed)
        cfg.check_ranges()
        return cfg

    def check_ranges(self) -> None:
        """Every numeric field within its meaningful range, every choice among its choices."""
        for key, (low, high) in RANGES.items():
            value = getattr(self, key)
            if not (low <= value <= high):  # NaN fails too
                raise CnnlabError(f"config key {key!r}: expected {_range_text(low, high)}, got {value!r}")
        for key, options in CHOICES.items():
            if getattr(self, key) not in options:
                raise CnnlabError(f"config key {key!r}: expected one of {', '.join(options)}, "
                                  f"got {getattr(self, key)!r}")

    def data_options(self) -> dict:
        """The dataset options the user changed (built-in sets refuse options they can't honour)."""
        base = TrainConfig()
        keys = ("skip_bad", "val_fraction", "download", "image_size", "images")
        return {k: getattr(self, k) for k in keys if getattr(self, k) != getattr(base, k)}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Closed ranges of the numeric fields (inclusive; inf: no upper bound).
INF = float("inf")
RANGES = {
    "epochs": (1, 100_000), "batch_size": (1, 1_000_000), "lr": (0.0, 1000.0), "momentum": (0.0, 0.999),
    "weight_decay": (0.0, 1.0), "warmup_epochs": (0.0, 100_000.0), "label_smoothing": (0.0, 0.99), "attention_reg": (0.0, 100.0), "clip_grad": (0.0, 1e6),
    "min_word_count": (1, 1_000_000), "translate": (0, 64), "scale": (0.0, 4.0), "workers": (0, 256),
    "seed": (0, 2**31 - 1), "val_fraction": (0.0, 0.9), "image_size": (0, 4096),
}
CHOICES = {
    "optimizer": ("sgd", "adamw"), "schedule": ("onecycle", "cosine", "constant"), "amp": ("auto", "bf16", "fp16", "off"),
    "class_weights": ("none", "median", "inverse"),
}


# ---------------------------------------------------------------------- field docs
@dataclass(frozen=True)
class FieldDoc:
    """What ``cnnlab train --help`` says of one config field: its group and help, from the source."""
    name: str
    group: str          # the banner's first word: model, data, optimisation, augmentation, device, output
    group_title: str    # the banner's text after the colon
    help: str           # the field's trailing comment (continued on indented comment lines)


@functools.lru_cache(maxsize=None)
def field_docs(cls: type = None) -> dict[str, FieldDoc]:
    """Each dataclass field's group and help, read from its source (the comments are the one source).

    A field's help is its trailing comment plus the comment-only lines right under it that are
    indented further; a group starts at a comment line ``# --- NAME: title`` at the field indent.
    Without the source (a frozen app), each field gets an empty help in the group "other"."""
    cls = cls or TrainConfig
    names = [f.name for f in dataclasses.fields(cls)]
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {n: FieldDoc(n, "other", "", "") for n in names}
    comments: dict[int, tuple[int, str]] = {}  # row -> (column, text) of its comment
    code_rows: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip())
        elif tok.type not in skip:
            code_rows.update(range(tok.start[0], tok.end[0] + 1))
    body = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)).body
    fields = {n.target.id: n for n in body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    docs, group, title, row = {}, "other", "", 0
    for name in names:
        node = fields[name]
        for r in range(row + 1, node.lineno):  # banners above this field
            col, text = comments.get(r, (-1, ""))
            if r not in code_rows and col == node.col_offset and text.startswith("---"):
                group, _, title = text.lstrip("- ").partition(":")
                group, title = group.strip(), title.strip()
        parts, row = [], node.end_lineno
        if row in comments:
            parts.append(comments[row][1])
        while row + 1 in comments and row + 1 not in code_rows and comments[row + 1][0] > node.col_offset:
            row += 1
            parts.append(comments[row][1])
        docs[name] = FieldDoc(name, group, title, " ".join(parts))
    return docs


def describe_field(name: str) -> str:
    """A field's help with its default, choices and range: ``peak learning rate (default 0.0; 0..1000.0)``."""
    doc = field_docs()[name]
    f = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    extra = [f"default {default!r}" if isinstance(default, str) else f"default {default}"]
    if name in CHOICES:
        extra.append("one of " + ", ".join(CHOICES[name]))
    if name in RANGES:
        extra.append(_range_text(*RANGES[name]))
    return f"{doc.help} ({'; '.join(extra)})"


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


def _range_text(low, high) -> str:
    return f"at least {low}" if high == INF else f"{low}..{high:,}" if isinstance(high, int) else f"{low}..{high}"


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
