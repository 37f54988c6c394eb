"""The HTTP service and its web page: a thin layer over ``cnnlab.api``.

    app = create_app(["runs/digits/best.pt"], pretrained=["efficientnet_lite0"])
    uvicorn.run(app, host="127.0.0.1", port=8000)      # or: cnnlab serve runs/digits/best.pt

Endpoints: ``POST /v1/predict`` (the task's own JSON), ``POST /v1/explain`` (feature maps,
filters, Grad-CAM as PNG data URLs), ``POST /v1/convolve`` (hand-made kernels), ``GET /v1/models``,
``GET /v1/kernels``, ``GET /healthz``; the page at ``/``; OpenAPI at ``/openapi.json`` and
``/docs`` (Swagger UI served from the fastapi-offline package: no CDN).

Models load once, in ``create_app``. Each served model has a lock: one request at a time runs it
(explain hooks the model's layers, so a concurrent forward would mix into its feature maps; and
PyTorch already spreads one forward over every core). Uploads are decoded and scaled down before
that lock is taken, a few at a time (``Limits.max_decodes``), so one large image neither holds a
model nor lets memory grow with the number of clients. Figures are drawn under one global lock, as
matplotlib's pyplot is not thread-safe. Errors are ``{"detail": "one line"}`` without server paths
or tracebacks: 404 unknown model, 408 body too slow, 413 too large, 415 not an image, 422 malformed,
500 a bug. Every GET route also answers HEAD.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import threading
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from cnnlab import api
from cnnlab._version import __version__
from cnnlab.errors import CnnlabError
from cnnlab.interpret import KERNELS, overlay, parse_kernel
from cnnlab.images import read_image, resize
from cnnlab.serve import render
from cnnlab.tasks.options import TASK_OPTIONS, base_type
from cnnlab.serve.uploads import (BodyLimit, HTTPError, Limits, Upload, client_name, decode_upload, save_upload,
                                  scrub)

STATIC = Path(__file__).parent / "static"
PLOT_LOCK = threading.Lock()  # matplotlib's pyplot keeps global state: one figure writer at a time
RUNTIMES = ("pytorch", "onnxruntime")
log = logging.getLogger("cnnlab.serve")


# ---------------------------------------------------------------------- served models
@dataclass
class Served:
    """One model the service answers for, with the lock that serialises its use."""

    name: str
    model: object  # LoadedModel, or OnnxModel for an exported .onnx
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
                 "low": f.metadata["low"], "high": f.metadata["high"]} for f in client_options(self.task)]

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
                "explain": self.explainable(), "attention": bool(getattr(getattr(self.model, "model", None), "attention", False))}

    def explainable(self) -> bool:
        return self.model.runtime == "pytorch" and self.task.explainable


def load_models(checkpoints: Sequence = (), pretrained: Sequence[str] = (), device: str = "auto",
                runtime: str = "pytorch") -> dict[str, Served]:
    """``NAME=PATH``, ``PATH`` (named after its run folder for best.pt/last.pt, else its stem), a
    ``LoadedModel``, or a pretrained registered model name -> {name: Served}.

    runtime: ``pytorch`` (eager fp32, channels_last) or ``onnxruntime``: each PyTorch classifier is
    exported to ONNX now, parity-checked (logits within 1e-4), and predicts through onnxruntime
    (the fastest exact CPU path in benchmarks/RESULTS.md); explain keeps the PyTorch model."""
    if runtime not in RUNTIMES:
        raise CnnlabError(f"--runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    served: dict[str, Served] = {}

    def add(name: str, model) -> None:
        unique, i = name, 2
        while unique in served:
            unique, i = f"{name}-{i}", i + 1
        served[unique] = Served(unique, model)

    for spec in checkpoints:
        if hasattr(spec, "task"):
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
            if s.model.runtime == "pytorch" and s.task.export_refusal is None:
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


# options that name files on the server, in any task: never set by a client
FILE_OPTIONS = {f.name for cls in TASK_OPTIONS.values() for f in dataclasses.fields(cls) if f.metadata["path"]}


def client_options(task) -> list[dataclasses.Field]:
    """The task's predict options a client may set: all but those naming files on the server."""
    return [f for f in dataclasses.fields(task.Options) if not f.metadata["path"]]


def task_options(served: Served, options: str, topk: int | None) -> dict:
    """The JSON object ``options`` (and ``topk``) checked against the task's typed options."""
    try:
        given = json.loads(options or "{}")
    except json.JSONDecodeError as e:
        raise HTTPError(422, f"options: not JSON ({e.msg}); expected an object such as {{\"topk\": 3}}") from None
    except RecursionError:  # the parser gives up at Python's recursion limit (~1000 levels)
        raise HTTPError(422, "options: nested too deeply; expected a flat object such as {\"topk\": 3}") from None
    if not isinstance(given, dict):
        raise HTTPError(422, "options: expected a JSON object such as {\"topk\": 3}")
    if topk is not None:
        given["topk"] = topk
    allowed = {f.name for f in client_options(served.task)}
    for key in given:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            why = ("file options are not available over HTTP" if key in FILE_OPTIONS
                   else f"unknown option for the {served.task.name} task (model {served.name!r})")
            raise HTTPError(422, f"options.{key}: {why}; known: {known}")
    try:
        served.task.options(given, style="json")
    except CnnlabError as e:
        raise HTTPError(422, scrub(str(e), {})) from None
    return given


# ---------------------------------------------------------------------- the app
def create_app(checkpoints: Sequence = (), pretrained: Sequence[str] = (), *, limits: Limits = Limits(),
               device: str = "auto", runtime: str = "pytorch") -> FastAPI:
    """The service for these models (see ``load_models``), loaded now, once."""
    from fastapi_offline import FastAPIOffline

    models = load_models(checkpoints, pretrained, device, runtime)
    default = next(iter(models))
    app = FastAPIOffline(title="cnnlab", version=__version__, redoc_url=None,
                         description="Predict, explain and convolve with the CNNs this service was started with.")
    app.state.models, app.state.limits = models, limits
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes, timeout=limits.body_timeout)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def pick(name: str | None) -> Served:
        served = models.get(name or default)
        if served is None:
            raise HTTPError(404, f"model {name!r} is not served here; models: {', '.join(models)}")
        return served

    decodes = threading.BoundedSemaphore(limits.max_decodes)

    def upload(file: UploadFile, max_side: int, channels: int | None = None) -> Upload:
        """The file read, decoded and scaled down, while no more than ``max_decodes`` others are."""
        with decodes:
            return decode_upload(file.file.read(), client_name(file.filename), limits, max_side, channels)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", summary="Liveness: ok and the served model names")
    def healthz() -> dict:
        return {"status": "ok", "version": __version__, "models": list(models)}

    @app.get("/v1/models", summary="The served models: task, classes, input shape, predict options")
    def list_served() -> list[dict]:
        return [m.info() for m in models.values()]

    @app.get("/v1/kernels", summary="The built-in hand-made kernels (the lecture's presets)")
    def kernels() -> dict[str, list[list[float]]]:
        return {name: k.tolist() for name, k in KERNELS.items()}

    @app.post("/v1/predict", summary="The task's prediction for one image (top-k, boxes, mask, caption)")
    def predict(file: Annotated[UploadFile, File(description="an image file")],
                model: Annotated[str | None, Form(description="a served model name (default: the first)")] = None,
                topk: Annotated[int | None, Form(ge=1, le=1000, description="classification: classes returned")] = None,
                options: Annotated[str, Form(description="task options as a JSON object, e.g. {\"topk\": 3}")] = "{}",
                ) -> dict:
        served = pick(model)
        opts = task_options(served, options, topk)
        up = upload(file, limits.max_image_side)
        with _request_folder() as tmp:
            path = save_upload(up, tmp)
            if "out" in {f.name for f in dataclasses.fields(served.task.Options)}:
                opts["out"] = str(tmp / "out")  # a task that writes figures writes them here
            with _client_errors({str(path): up.name, str(tmp): ""}, options_given=bool(opts)), served.lock:
                result = api.predict(served.predictor, [path], **opts)[0]
            if "error" in result:  # decoded once already; the task could still not read it
                raise HTTPError(415, scrub(result["error"], {str(path): up.name, str(tmp): ""}))
            if not _finite(result):  # never a 200 whose probabilities are null
                raise HTTPError(500, f"model {served.name!r} computed NaN or infinite scores for this image")
            return {"model": served.name, "task": served.task.name,
                    **render.jsonable(result, {str(path): up.name}, tmp), **_resized(up)}

    @app.post("/v1/explain", summary="Feature maps layer by layer, first-layer filters and a CAM, as PNGs")
    def explain(file: Annotated[UploadFile, File(description="an image file")],
                model: Annotated[str | None, Form()] = None,
                method: Annotated[str, Form(pattern="^(gradcam|gradcam\\+\\+|saliency)$")] = "gradcam",
                layer: Annotated[str | None, Form(description="CAM layer (default: the last conv layer)")] = None,
                target_class: Annotated[str | None, Form(description="class name or index (default: predicted)")] = None,
                ) -> dict:
        served = pick(model)
        if not served.explainable():
            raise HTTPError(422, f"model {served.name!r}: explain opens up PyTorch classifiers; this is a "
                                 f"{served.task.name} model run by "
                                 f"{served.model.runtime}")
        up = upload(file, limits.max_image_side)
        with _request_folder() as tmp:
            path = save_upload(up, tmp)
            with _client_errors({str(path): up.name, str(tmp): ""}), served.lock, PLOT_LOCK:
                r = api.explain(served.model, path, tmp / "explain", method=method, layer=layer or None,
                                target_class=target_class or None)
                rows = {row.name: row for row in api.layers(served.model)}
            image = read_image(path, channels=served.task.input_shape[0])
            return {**_explain_json(r, rows, image, served.name), **_resized(up)}

    def explainable(served: Served) -> Served:
        if not served.explainable():
            raise HTTPError(422, f"model {served.name!r}: the explainer opens up PyTorch classifiers; this is a "
                                 f"{served.task.name} model run by {served.model.runtime}")
        return served

    @app.get("/v1/architecture", summary="The model's layers: output volume, parameters, receptive field")
    def architecture(model: str | None = None) -> dict:
        served = explainable(pick(model))
        with served.lock:
            return served.architecture()

    @app.post("/v1/inspect", summary="What the model saw, its top-5, a Grad-CAM, and one conv layer's maps and kernels")
    def inspect(file: Annotated[UploadFile, File(description="an image file")],
                model: Annotated[str | None, Form()] = None,
                layer: Annotated[str | None, Form(description="a conv layer: its feature maps and kernels")] = None,
                cam_layer: Annotated[str | None, Form(description="CAM layer (default: the last conv layer)")] = None,
                target_class: Annotated[str | None, Form(description="class name or index (default: predicted)")] = None,
                method: Annotated[str, Form(pattern="^(gradcam|gradcam\\+\\+|saliency)$")] = "gradcam",
                max_maps: Annotated[int, Form(ge=1, le=256, description="feature maps returned, most active first")] = 32,
                ) -> dict:
        served = explainable(pick(model))
        up = upload(file, limits.max_image_side)
        with _client_errors({}), served.lock:
            arch = served.architecture()
            if layer and layer not in {r["name"] for r in arch["layers"] if r["conv"]}:
                known = ", ".join(c["name"] for c in arch["cam_layers"])
                raise HTTPError(422, f"layer {layer[:80]!r}: not a conv layer of {served.name!r}; conv layers: {known}")
            r = api.inspect(served.model, up.image, layer=layer or None, cam_layer=cam_layer or None,
                            target_class=target_class or None, method=method)
        return {"model": served.name, "image": up.name, **_resized(up), **_inspect_json(r, arch, layer, max_maps)}

    @app.post("/v1/convolve", summary="Slide hand-made kernels (names or matrices) over the image in grey")
    def convolve(file: Annotated[UploadFile, File(description="an image file")],
                 kernel: Annotated[list[str], Form(description="a kernel name or 'a,b,c;d,e,f;g,h,i'; repeat")] = ["edge"],  # noqa: B006
                 stride: Annotated[int, Form(ge=1, le=16)] = 1,
                 padding: Annotated[int | None, Form(ge=0, le=16, description="zeros per side (default: same size)")] = None,
                 ) -> dict:
        if len(kernel) > limits.max_kernels:
            raise HTTPError(422, f"kernel: {len(kernel)} kernels; at most {limits.max_kernels} per request")
        with _client_errors({}):
            for k in kernel:
                if max(parse_kernel(k).shape) > limits.max_kernel_side:
                    raise HTTPError(422, f"kernel {k[:40]!r}: larger than {limits.max_kernel_side}x"
                                         f"{limits.max_kernel_side}")
        up = upload(file, limits.max_convolve_side, channels=1)  # image: (1, h, w) uint8
        with _client_errors({}):
            r = api.convolve(up.image.numpy(), kernel, stride=stride, padding=padding, out=None)
        return {"image": up.name, "stride": r["stride"], "padding": r["padding"],
                "input": {"shape": list(r["input"].shape), "image": render.gray_png(r["input"], 0.0, 1.0),
                          "resized_from": up.resized["from"] if up.resized else None},
                "feature_maps": [{"kernel": m["kernel"], "weights": m["weights"].tolist(),
                                  "shape": list(m["size"]), "min": float(m["feature_map"].min()),
                                  "max": float(m["feature_map"].max()), "image": render.gray_png(m["feature_map"])}
                                 for m in r["feature_maps"]]}

    @app.post("/v1/mask", summary="Segmentation: each pixel's class id as a grey PNG at the image's size")
    def mask(file: Annotated[UploadFile, File(description="an image file")],
             model: Annotated[str | None, Form()] = None) -> dict:
        served = pick(model)
        up = upload(file, limits.max_image_side, channels=served.task.input_shape[0])  # (C, H, W) uint8
        with _client_errors({}), served.lock:
            scores = served.predictor.logits(resize(up.image, served.task.input_shape[1:])[None])
        if scores.dim() != 4:  # (1, K, h, w): a score per class per pixel, as predict's for segmentation
            raise HTTPError(422, f"model {served.name!r}: a mask needs a segmentation model; this is a "
                                 f"{served.task.name} model")
        scores = torch.nn.functional.interpolate(scores.float(), size=up.image.shape[-2:], mode="bilinear",
                                                 align_corners=False)  # back to the image's size, as predict does
        ids = scores[0].argmax(0).cpu()  # (H, W) class ids
        return {"model": served.name, "image": up.name, "size": list(ids.shape), "classes": list(served.task.classes),
                "colors": render.jsonable(served.task.colors), "mask": render.png_data_url(ids.to(torch.uint8)[None]),
                **_resized(up)}

    _answer_head(app)
    return app


def _answer_head(app: FastAPI) -> None:
    """HEAD for every GET route, as HTTP asks (uvicorn sends the headers alone); kept out of the
    OpenAPI schema, where it would repeat each GET's operation."""
    for route in list(app.routes):
        if isinstance(route, APIRoute) and "GET" in route.methods:
            app.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)


def _finite(value) -> bool:
    """No NaN or infinity anywhere in a result (numbers, lists, dicts, tensors and arrays)."""
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return bool(torch.isfinite(value).all())
    return True


def _resized(upload: Upload) -> dict:
    """``{"resized": {"from": [H, W], "to": [h, w]}}`` for an image the service scaled down, else {}."""
    return {"resized": upload.resized} if upload.resized else {}


def _explain_json(r: dict, rows: dict, original, model: str) -> dict:
    """api.explain's result as JSON: the CAM overlay, a channel grid per layer, the figures."""
    image = render.fit(original)
    cam = {k: v for k, v in r["cam"].items() if k != "heatmap"}
    heat = r["cam"]["heatmap"]  # float (H, W) in [0, 1] at the image's own size
    layers = []
    for name, fmap in r["feature_maps"].items():
        grid, channels = render.channel_grid(fmap)
        row = rows.get(name)
        layers.append({"name": name, "shape": list(fmap.shape), "channels": channels, "image": grid,
                       "receptive_field": row.receptive_field if row else None, "jump": row.jump if row else None})
    return {"model": model, "image": Path(r["image"]).name, "prediction": r["prediction"],
            "cam": {**cam, "overlay": render.png_data_url(overlay(image, heat)),
                    "heatmap": render.colour_png(render.fit_map(heat), "jet")},
            "layers": layers,
            "figures": {k: render.file_data_url(Path(v)) for k, v in r["files"].items()}}


def _inspect_json(r: dict, arch: dict, layer: str | None, max_maps: int) -> dict:
    """api.inspect's result for the page: PNGs of the input as the model saw it, the CAM over it,
    and (with ``layer``) the most active feature maps, each with its kernel's weights."""
    seen = r["seen"]  # uint8 (C, h, w)
    cam = {k: v for k, v in r["cam"].items() if k != "heatmap"}
    out = {"seen": {"shape": list(seen.shape), "image": render.png_data_url(seen),
                    "normalised": render.denormalised_png(r["normalised"], r["mean"], r["std"]),
                    "mean": r["mean"], "std": r["std"],
                    "range": [float(r["normalised"].min()), float(r["normalised"].max())]},
           "prediction": r["prediction"],
           "cam": {**cam, "label": render.readable(cam["layer"]) if cam["layer"] != "input" else "input",
                   "overlay": render.png_data_url(overlay(seen, r["cam"]["heatmap"])),
                   "heatmap": render.gray_png(r["cam"]["heatmap"], 0.0, 1.0)}}  # 0..1 as grey, for the page to colour
    if layer:
        fmap, weights = r["feature_maps"], r["weights"]  # (C', h', w'), (C', C/groups, k, k)
        row = next(x for x in arch["layers"] if x["name"] == layer)
        order = fmap.mean((1, 2)).topk(min(max_maps, fmap.shape[0])).indices.tolist()
        maps = []
        for c in order:
            w = weights[c]  # (C/groups, k, k)
            maps.append({"channel": c, "min": float(fmap[c].min()), "max": float(fmap[c].max()),
                         "image": render.gray_png(fmap[c].numpy(), float(fmap[c].min()), float(fmap[c].max())),
                         "kernel_sum": w.sum(0).tolist(), "kernel_first": w[:3].tolist(),
                         "in_channels": int(w.shape[0])})
        out["layer"] = {"name": layer, "label": row["label"], "shape": list(fmap.shape), "type": row["type"],
                        "kernel": row["kernel"], "stride": row["stride"],
                        "receptive_field": row["receptive_field"], "jump": row["jump"], "maps": maps}
    return out


# ---------------------------------------------------------------------- errors
@contextmanager
def _request_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cnnlab-serve-") as tmp:
        yield Path(tmp)


@contextmanager
def _client_errors(names: dict[str, str], options_given: bool = False) -> Iterator[None]:
    """CnnlabError -> 422 with server paths replaced by public names; with client options, also
    the ValueError/TypeError/RuntimeError a task raises for a value it cannot use."""
    try:
        yield
    except CnnlabError as e:
        raise HTTPError(422, scrub(str(e), names)) from None
    except (ValueError, TypeError, RuntimeError) as e:
        if not options_given:
            raise
        raise HTTPError(422, "options: the task could not use them (" + scrub(str(e), names) + ")") from None


def _add_error_handlers(app: FastAPI) -> None:
    def detail(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"detail": scrub(message)}, status_code=status, headers=headers)

    @app.exception_handler(HTTPError)
    async def client_error(request: Request, e: HTTPError) -> JSONResponse:
        return detail(e.status, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return detail(e.status_code, str(e.detail), e.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, e: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ()) if x != 'body')}: {err.get('msg', 'invalid')}"
                 for err in e.errors()]
        return detail(422, "; ".join(parts) or "malformed request")

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=e)
        return detail(500, "internal error while answering this request (details in the server log)")
