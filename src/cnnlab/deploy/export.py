"""Export a classifier to ONNX or TorchScript, with its task inside and a parity check.

    loaded = LoadedModel.from_checkpoint("runs/digits/best.pt")
    export_model(loaded, Path("digits.onnx"))  # {"path", "max_abs_diff": 2e-06, "atol": 1e-4, ...}

The exported graph is the fp32 model on contiguous NCHW input of the task's normalised
images (``task.prepare``), batch axis dynamic. The task's state (name, classes, mean, std,
input shape) and the cnnlab version travel inside the file: ONNX ``metadata_props["cnnlab"]``,
TorchScript ``_extra_files["cnnlab.json"]``, both JSON. A file reaches ``out`` only after the
same inputs give the same logits (within ``atol``) through PyTorch and through the file.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnlab._version import __version__
from cnnlab.deploy.onnx_model import METADATA_KEY, inference_session
from cnnlab.errors import CnnlabError
from cnnlab.files import file_path, replacing_path

FORMATS = ("onnx", "torchscript")
EXTRA_FILE = "cnnlab.json"            # TorchScript _extra_files name
PARITY_BATCH = 8                      # batch size of the parity check (and 1, for the dynamic axis)


def export_model(loaded, out: str | Path, format: str = "onnx", atol: float = 1e-4,
                 samples: Tensor | None = None) -> dict:
    """Write ``loaded``'s fp32 model to ``out`` and check its logits against PyTorch.

    loaded: an exportable ``Predictor`` (a ``LoadedModel``); samples: optional uint8 (B, C, H, W)
    images added to the 8 random ones of the parity check. Raises ``CnnlabError`` when the
    largest absolute logit difference exceeds ``atol``; the file is then left as ``<out>.failed`` and ``out`` is not
    touched. TorchScript (``torch.jit.trace``) is deprecated in PyTorch: prefer ONNX. Its
    deprecation and tracer warnings are silenced here; the parity check at batch sizes 1 and 8
    is what tells whether the trace generalises.

    Returns ``{"path", "format", "max_abs_diff", "atol", "batch_sizes", "seconds"}``.
    """
    if format not in FORMATS:
        raise CnnlabError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    start = time.perf_counter()
    out = file_path(out)  # its folder exists: cnnlab creates none for a file it is asked to write
    model = copy.deepcopy(loaded.model).to("cpu", torch.float32, memory_format=torch.contiguous_format).eval()
    batches = _parity_batches(loaded.task, samples)
    metadata = json.dumps({"version": __version__, "model": loaded.name, "task": loaded.task.state()})
    with replacing_path(out) as tmp:  # renamed over ``out`` once the parity check passed
        write, runner = (_write_onnx, _onnx_runner) if format == "onnx" else (_write_torchscript, _torchscript_runner)
        write(model, batches[1], tmp, metadata)  # trace at batch 8: batch 1 would be specialised
        diff = max_abs_diff(model, runner(tmp), batches)
        if not diff <= atol:  # also catches NaN
            failed = out.with_name(out.name + ".failed")
            os.replace(tmp, failed)
            raise CnnlabError(f"{out}: {format} export differs from PyTorch by {diff:.3g} in the logits, above "
                              f"the bar atol={atol:g}; the file is kept as {failed} for inspection")
    return {"path": str(out), "format": format, "max_abs_diff": diff, "atol": atol,
            "batch_sizes": sorted({len(b) for b in batches}), "seconds": round(time.perf_counter() - start, 3)}


# ---------------------------------------------------------------------- parity
def _parity_batches(task, samples: Tensor | None) -> list[Tensor]:
    """Normalised fp32 NCHW batches: one image, 8 random images, then the samples by 8."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (PARITY_BATCH, *task.input_shape), generator=g, dtype=torch.uint8)
    if samples is not None:
        if samples.dtype != torch.uint8 or samples.shape[1:] != images.shape[1:]:
            raise CnnlabError(f"samples: expected uint8 (B, {', '.join(map(str, task.input_shape))}) images, "
                              f"got {samples.dtype} {tuple(samples.shape)}")
        images = torch.cat([images, samples.cpu()])
    x = task.prepare(images).contiguous()  # (N, C, H, W) float, NCHW
    return [x[:1], *x.split(PARITY_BATCH)]


@torch.no_grad()
def max_abs_diff(model: nn.Module, run: Callable[[Tensor], Tensor], batches: list[Tensor]) -> float:
    """The largest |PyTorch fp32 logit - exported logit| over ``batches``."""
    with torch.autocast("cpu", enabled=False):
        diffs = [(model(x).float() - run(x)).abs().max() for x in batches]
    return float(torch.stack(diffs).max())  # NaN anywhere gives NaN


# ---------------------------------------------------------------------- ONNX
def _write_onnx(model: nn.Module, example: Tensor, path: Path, metadata: str) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as e:
        raise CnnlabError(f"ONNX export needs onnx and onnxscript (pip install onnx onnxscript onnxruntime): {e}") from None
    batch = torch.export.Dim("batch")
    try:
        program = torch.onnx.export(model, (example,), dynamo=True, external_data=False, verbose=False,
                                    input_names=["images"], output_names=["logits"],
                                    dynamic_shapes=({0: batch},))
    except Exception as e:  # torch.export cannot trace some Python control flow: say so in one line
        raise CnnlabError(f"{path.name}: ONNX export failed ({str(e).splitlines()[0][:300]})") from None
    proto = program.model_proto
    proto.metadata_props.add(key=METADATA_KEY, value=metadata)
    onnx.save_model(proto, path)


def _onnx_runner(path: Path) -> Callable[[Tensor], Tensor]:
    session = inference_session(path)
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


# ---------------------------------------------------------------------- TorchScript
def _write_torchscript(model: nn.Module, example: Tensor, path: Path, metadata: str) -> None:
    with _jit_warnings_hidden():
        traced = torch.jit.trace(model, example)
        torch.jit.save(traced, str(path), _extra_files={EXTRA_FILE: metadata})


def _torchscript_runner(path: Path) -> Callable[[Tensor], Tensor]:
    with _jit_warnings_hidden():
        module = torch.jit.load(str(path), map_location="cpu")
    return lambda x: module(x).float()


@contextlib.contextmanager
def _jit_warnings_hidden():
    """Silence "`torch.jit.*` is deprecated" and tracer warnings: the parity check is the judge."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield
