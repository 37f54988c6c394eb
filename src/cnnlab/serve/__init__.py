"""The HTTP service and the web page (FastAPI): a thin layer over ``cnnlab.api``.

    from cnnlab.serve import create_app, run
    run(["runs/digits/best.pt"], port=8000)     # what `cnnlab serve runs/digits/best.pt` does

Needs the ``serve`` extra: ``pip install 'cnnlab[serve]'``.
"""
from __future__ import annotations

from collections.abc import Sequence

from cnnlab.errors import CnnlabError


def create_app(checkpoints: Sequence = (), pretrained: Sequence[str] = (), **kwargs):
    """The FastAPI app for these checkpoints / pretrained model names (see ``app.create_app``)."""
    try:
        import fastapi  # noqa: F401
        import fastapi_offline  # noqa: F401
        import python_multipart  # noqa: F401  (form uploads)
    except ImportError as e:
        raise CnnlabError(f"serve needs FastAPI: pip install 'cnnlab[serve]' ({e})") from None
    from cnnlab.serve.app import create_app as build

    return build(checkpoints, pretrained, **kwargs)


def run(checkpoints: Sequence = (), pretrained: Sequence[str] = (), host: str = "127.0.0.1",
        port: int = 8000, log_level: str = "info", **kwargs) -> None:
    """Load the models once, then answer HTTP on ``host:port`` (loopback by default) until Ctrl-C."""
    try:
        import uvicorn
    except ImportError as e:
        raise CnnlabError(f"serve needs uvicorn: pip install 'cnnlab[serve]' ({e})") from None
    app = create_app(checkpoints, pretrained, **kwargs)
    print(f"cnnlab: serving {', '.join(app.state.models)} at http://{host}:{port}/  (API docs: /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
