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
        port: int = 8000, log_level: str = "info", *, timeout_keep_alive: float = 5,
        header_timeout: float = 10, limit_concurrency: int = 32, **kwargs) -> None:
    """Load the models once, then answer HTTP on ``host:port`` (loopback by default) until Ctrl-C.

    Slow clients are cut off: an idle keep-alive connection after ``timeout_keep_alive`` seconds,
    one whose request headers have not all arrived after ``header_timeout`` s, a request body after
    ``limits.body_timeout`` s (408); beyond ``limit_concurrency`` open connections or requests, new
    requests get 503. A bad port, or one in use, is a ``CnnlabError`` before any model loads."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise CnnlabError(f"--port {port}: expected 1..65535")
    for option, value in {"timeout_keep_alive": timeout_keep_alive, "header_timeout": header_timeout,
                          "limit_concurrency": limit_concurrency}.items():
        if not value > 0:
            raise CnnlabError(f"{option} {value}: expected a number above 0")
    try:
        from cnnlab.serve.server import listen_socket, make_server
    except ImportError as e:
        raise CnnlabError(f"serve needs uvicorn: pip install 'cnnlab[serve]' ({e})") from None
    with listen_socket(host, port) as sock:
        app = create_app(checkpoints, pretrained, **kwargs)
        server = make_server(app, timeout_keep_alive=timeout_keep_alive, header_timeout=header_timeout,
                             limit_concurrency=limit_concurrency, log_level=log_level)
        print(f"cnnlab: serving {', '.join(app.state.models)} at http://{host}:{port}/  (API docs: /docs)", flush=True)
        server.run(sockets=[sock])
