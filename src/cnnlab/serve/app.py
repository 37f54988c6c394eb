"""The HTTP service and its web page: a thin layer over ``cnnlab.api``.

    app = create_app(["runs/digits/best.pt"], pretrained=["efficientnet_lite0"])
    uvicorn.run(app, host="127.0.0.1", port=8000)      # or: cnnlab serve runs/digits/best.pt

Endpoints: ``POST /v1/predict`` (the task's own JSON), ``POST /v1/explain`` (feature maps,
filters, Grad-CAM as PNG data URLs), ``POST /v1/network`` and ``/v1/unit`` (the network overview and
one unit's arithmetic), ``POST /v1/convolve`` (hand-made kernels), ``POST /v1/pixels`` and
``GET /v1/xo`` (the lecture's first slides), ``GET /v1/models``,
``GET /v1/kernels``, ``GET /healthz``; the page at ``/``; OpenAPI at ``/openapi.json`` and
``/docs`` (Swagger UI served from the fastapi-offline package: no CDN). Each group of routes is a
module-level router (``*_routes.py``); what they need comes through ``dependencies.py``.

Models load once, in ``create_app``. Each served model has a lock: one request at a time runs it
(explain hooks the model's layers, so a concurrent forward would mix into its feature maps; and
PyTorch already spreads one forward over every core). Uploads are decoded and scaled down before
that lock is taken, a few at a time (``Limits.max_decodes``), so one large image neither holds a
model nor lets memory grow with the number of clients. Figures are drawn under one global lock, as
matplotlib's pyplot is not thread-safe. Errors are ``{"detail": "one line"}`` without server paths
or tracebacks (``errors.py``): 404 unknown model, 408 body too slow, 413 too large, 415 not an
image, 422 malformed or a ``CnnlabError``, 500 anything else (a bug). Every GET route also answers HEAD.
"""
from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from cnnlab._version import __version__
from cnnlab.serve import (convolve_routes, explain_routes, info_routes, network_routes, predict_routes,
                          slides_routes)
from cnnlab.serve.errors import add_error_handlers
from cnnlab.serve.served import load_models
from cnnlab.serve.uploads import BodyLimit, Limits, Uploads

ROUTERS = (info_routes.router, predict_routes.router, explain_routes.router, network_routes.router,
           convolve_routes.router, slides_routes.router)


def create_app(checkpoints: Sequence = (), pretrained: Sequence[str] = (), *, limits: Limits = Limits(),
               device: str = "auto", runtime: str = "pytorch") -> FastAPI:
    """The service for these models (see ``served.load_models``), loaded now, once."""
    from fastapi_offline import FastAPIOffline

    models = load_models(checkpoints, pretrained, device, runtime)
    app = FastAPIOffline(title="cnnlab", version=__version__, redoc_url=None,
                         description="Predict, explain and convolve with the CNNs this service was started with.")
    app.state.models, app.state.uploads = models, Uploads(limits)
    add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes, timeout=limits.body_timeout)
    app.mount("/static", StaticFiles(directory=info_routes.STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
        _answer_head(app, router)
    return app


def _answer_head(app: FastAPI, router: APIRouter) -> None:
    """HEAD for every GET route of ``router``, as HTTP asks (uvicorn sends the headers alone); kept
    out of the OpenAPI schema, where it would repeat each GET's operation."""
    for route in router.routes:
        if isinstance(route, APIRoute) and "GET" in route.methods:
            app.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)
