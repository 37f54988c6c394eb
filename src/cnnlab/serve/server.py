"""Serving the app with uvicorn: the listening socket, time limits for slow clients, a connection limit.

    with listen_socket("127.0.0.1", 8000) as sock:     # a port in use fails here, in one line
        make_server(app).run(sockets=[sock])
"""
from __future__ import annotations

import errno
import socket
from functools import partial

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from cnnlab.errors import CnnlabError


class HeaderTimeout(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers: a client that has not sent
    them all ``header_timeout`` seconds after connecting (or after the previous response) is
    disconnected. uvicorn alone waits for trickled headers forever ("slowloris")."""

    def __init__(self, *args, header_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout, self.header_timer = header_timeout, None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._start_header_timer()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the headers are in (or the request failed)
            self._stop_header_timer()

    def on_response_complete(self) -> None:
        self._start_header_timer()  # for the next request; a pipelined one stops it at once
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self.header_timer = self.loop.call_later(self.header_timeout, self.transport.close)

    def _stop_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, so that a port in use fails now, in one line, before any
    model loads (uvicorn listens on it later)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise CnnlabError(f"--host {host}: cannot listen there ({e.strerror or e})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts need no wait
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise CnnlabError(f"--port {port}: {host}:{port} is already in use; stop the service there "
                              f"or pick another --port") from None
        raise CnnlabError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None
    return sock


def make_server(app, *, timeout_keep_alive: float = 5, header_timeout: float = 10,
                limit_concurrency: int = 32, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for ``app`` that closes idle keep-alive connections after
    ``timeout_keep_alive`` s and connections whose headers have not all arrived after
    ``header_timeout`` s, and answers 503 while ``limit_concurrency`` connections or requests are open."""
    config = uvicorn.Config(app, http=partial(HeaderTimeout, header_timeout=header_timeout),
                            timeout_keep_alive=timeout_keep_alive, limit_concurrency=limit_concurrency,
                            log_level=log_level)
    return uvicorn.Server(config)
