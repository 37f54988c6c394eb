"""The page and what the service offers: ``/``, ``/healthz``, ``/v1/models``, ``/v1/kernels``."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from cnnlab._version import __version__
from cnnlab.interpret import KERNELS
from cnnlab.serve.dependencies import ServedModels

STATIC = Path(__file__).parent / "static"  # the web page (index.html and its scripts, styles)
router = APIRouter()


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/healthz", summary="Liveness: ok and the served model names")
def healthz(models: ServedModels) -> dict:
    return {"status": "ok", "version": __version__, "models": list(models)}


@router.get("/v1/models", summary="The served models: task, classes, input shape, predict options")
def list_served(models: ServedModels) -> list[dict]:
    return [m.info() for m in models.values()]


@router.get("/v1/kernels", summary="The built-in hand-made kernels (the lecture's presets)")
def kernels() -> dict[str, list[list[float]]]:
    return {name: k.tolist() for name, k in KERNELS.items()}
