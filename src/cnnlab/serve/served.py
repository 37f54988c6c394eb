"""The models a service answers for, loaded once: each a ``Predictor`` with the lock that
serialises its use, its task's options as the page's form draws them, and its architecture.

    models = load_models(["runs/digits/best.pt"], runtime="onnxruntime")   # {"digits": Served}
"""
from __future__ import annotations

import dataclasses
import tempfile
import threading
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab import api
from cnnlab.errors import CnnlabError
from cnnlab.serve import render
from cnnlab.tasks.options import TASK_OPTIONS, base_type

RUNTIMES = ("pytorch", "onnxruntime")

# every task's option names (a form field so named is a predict option); those naming files on the
# server are never set by a client
OPTION_NAMES = {f.name for cls in TASK_OPTIONS.values() for f in dataclasses.fields(cls)}
FILE_OPTIONS = {f.name for cls in TASK_OPTIONS.values() for f in dataclasses.fields(cls) if f.metadata["path"]}


@dataclass
class Served:
    """One model the service answers for, with the lock that serialises its use."""

    name: str
    model: object  # a Predictor: LoadedModel, or OnnxModel for an exported .onnx
    fast: object | None = None  # an onnxruntime twin of a PyTorch classifier that predicts instead
    lock: threading.Lock = field(default_factory=threading.Lock)
    _architecture: dict | None = field(default=None, repr=False)

    @property
    def task(self):
        return self.model.task

    @property
    def predictor(self):
        return self.fast or self.model

    def options(self) -> dict:
        """The task's predict options and their defaults (``{"topk": 5}`` for classification)."""
        return {f.name: render.jsonable(f.default) for f in client_options(self.task)}

    def option_help(self) -> dict:
        """A help line per option, from the task's typed options (tasks/options.py)."""
        return {f.name: f.metadata["help"] for f in client_options(self.task)}

    def option_fields(self) -> list[dict]:
        """Each option as the page's form draws it: name, label, type, default, help and range."""
        hints = typing.get_type_hints(self.task.Options)
        return [{"name": f.name, "label": f.name.replace("_", " "), "type": base_type(hints[f.name]).__name__,
                 "default": render.jsonable(f.default), "help": f.metadata["help"],
                 "low": f.metadata["range"][0], "high": f.metadata["range"][1]} for f in client_options(self.task)]

    def architecture(self) -> dict:
        """Each layer (``api.layers``: output volume, parameters, receptive field) with a readable
        name, and the conv layers a CAM may be taken at; computed once (a forward pass)."""
        if self._architecture is None:
            from cnnlab.interpret import cam_layer, conv_layers

            convs = {n for n, _ in conv_layers(self.model.model)}
            rows = [{"name": r.name, "label": "input" if r.name == "input" else render.readable(r.name),
                     "type": r.type, "output": list(r.output), "params": r.params, "kernel": r.kernel,
                     "stride": r.stride, "receptive_field": r.receptive_field, "jump": r.jump,
                     "conv": r.name in convs} for r in api.layers(self.model)]
            self._architecture = {"model": self.name, "layers": rows,
                                  "cam_layers": [{"name": n, "label": render.readable(n)} for n in
                                                 dict.fromkeys(r["name"] for r in rows if r["conv"])],
                                  "cam_layer": cam_layer(self.model.model)}
            self._architecture["cam_layer_label"] = render.readable(self._architecture["cam_layer"])
        return self._architecture

    def info(self) -> dict:
        task = self.task
        return {"name": self.name, "task": task.name, "model": self.model.name,
                "source": Path(str(self.model.source)).name,
                "runtime": self.predictor.runtime,
                "input_shape": list(getattr(task, "input_shape", [])),
                "classes": list(getattr(task, "classes", [])), "options": self.options(),
                "option_help": self.option_help(), "option_fields": self.option_fields(),
                "colors": render.jsonable(getattr(task, "colors", None)),
                "explain": self.model.explainable,
                "attention": bool(getattr(getattr(self.model, "model", None), "attention", False))}


def client_options(task) -> list[dataclasses.Field]:
    """The task's predict options a client may set: all but those naming files on the server."""
    return [f for f in dataclasses.fields(task.Options) if not f.metadata["path"]]


def load_models(checkpoints: Sequence = (), pretrained: Sequence[str] = (), device: str = "auto",
                runtime: str = "pytorch") -> dict[str, Served]:
    """``NAME=PATH``, ``PATH`` (named after its run folder for best.pt/last.pt, else its stem), a
    loaded model (a ``Predictor``), or a pretrained registered model name -> {name: Served}.

    runtime: ``pytorch`` (eager fp32, channels_last) or ``onnxruntime``: each exportable PyTorch
    classifier is exported to ONNX now, parity-checked (logits within 1e-4), and predicts through
    onnxruntime (the fastest exact CPU path in benchmarks/RESULTS.md); explain keeps the PyTorch model."""
    from cnnlab.deploy.predictor import Predictor

    if runtime not in RUNTIMES:
        raise CnnlabError(f"--runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    served: dict[str, Served] = {}

    def add(name: str, model) -> None:
        unique, i = name, 2
        while unique in served:
            unique, i = f"{name}-{i}", i + 1
        served[unique] = Served(unique, model)

    for spec in checkpoints:
        if isinstance(spec, Predictor):
            add(spec.name, spec)
            continue
        name, sep, path = str(spec).partition("=")
        if not sep:
            name, path = _default_name(Path(name)), name
        add(name, api.load(path, device=device))
    for name in pretrained:
        add(name, api.load(model=name, pretrained=True, device=device))
    if not served:
        raise CnnlabError("serve: give at least one CHECKPOINT (or --model NAME --pretrained)")
    if runtime == "onnxruntime":
        for s in served.values():
            if s.model.exportable and s.task.export_refusal is None:
                s.fast = _onnx_twin(s.model)
    return served


def _onnx_twin(lm):
    """``lm`` exported to ONNX (parity-checked) and opened in onnxruntime; the session holds the
    model in memory, so the file goes when this returns."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-serve-") as tmp:
        return api.load(api.export(lm, out=Path(tmp) / "model.onnx")["path"])


def _default_name(path: Path) -> str:
    stem = path.name.removesuffix(".onnx").removesuffix(".safetensors").removesuffix(".pt")
    if stem in ("best", "last") and path.parent.name:
        return path.parent.name + ("" if stem == "best" else "-last")
    return stem
