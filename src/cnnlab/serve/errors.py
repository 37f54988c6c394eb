"""Errors as HTTP answers, each ``{"detail": "one line"}`` without server paths or tracebacks.

The client's fault is 4xx: an ``HTTPError`` the service raises (404 unknown model, 408, 413, 415,
422), a malformed request (422), and a ``CnnlabError`` (422: bad input, a bad option). Anything
else is a bug and a 500 whose details go to the server log.

    with client_errors({str(path): upload.name}):       # CnnlabError -> 422, paths renamed
        result = api.predict(model, [path])
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cnnlab.errors import CnnlabError
from cnnlab.serve.uploads import HTTPError, scrub

log = logging.getLogger("cnnlab.serve")


@contextmanager
def client_errors(names: dict[str, str] | None = None) -> Iterator[None]:
    """CnnlabError -> 422, with server paths replaced by their public ``names``."""
    try:
        yield
    except CnnlabError as e:
        raise HTTPError(422, scrub(str(e), names or {})) from None


def add_error_handlers(app: FastAPI) -> None:
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
