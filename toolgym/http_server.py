"""Run an ASGI app with uvicorn in a background thread: for tests, notebooks and benchmarks.

Both ToolGym servers (the retrieval server and the OpenAI-compatible model server) use this; the
`toolgym serve` commands run the same apps in the foreground.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from toolgym.extras import require

DISCONNECT_LOG_INTERVAL_S = 10.0

logger = logging.getLogger(__name__)


class DisconnectLog:
    """Client hang-ups mid-request, logged as one line at most every `interval_s` (the rest counted).

    A client that disconnects before its body arrives is routine under load (timeouts, cancelled
    jobs), not a server fault: it deserves neither a traceback nor a line per event.
    """

    def __init__(self, interval_s: float = DISCONNECT_LOG_INTERVAL_S):
        self.interval_s = interval_s
        self.total = 0
        self._unlogged = 0
        self._last_logged = float("-inf")
        self._lock = threading.Lock()

    def note(self, server: str, method: str, path: str) -> bool:
        """Count one disconnect; returns whether this one was logged."""
        with self._lock:
            self.total += 1
            self._unlogged += 1
            now = time.monotonic()
            if now - self._last_logged < self.interval_s:
                return False
            count, self._unlogged, self._last_logged = self._unlogged, 0, now
        logger.warning(
            "%s: client disconnected before its %s %s request was read (%d such disconnect(s) since the last message)",
            server,
            method,
            path,
            count,
        )
        return True


def quiet_client_disconnects(app: Any, server: str, log: DisconnectLog | None = None) -> DisconnectLog:
    """Answer `ClientDisconnect` in `app` (FastAPI/Starlette) with a rate-limited log line, not a traceback."""
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response

    log = log or DisconnectLog()

    async def on_disconnect(request: Any, exc: Exception) -> Response:
        log.note(server, request.method, request.url.path)
        return Response(status_code=499)  # nginx's "client closed request"; nobody is left to read it

    app.add_exception_handler(ClientDisconnect, on_disconnect)
    return log


@contextmanager
def running_app(app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve `app` until the block exits; yields ``http://host:port`` (port 0 picks a free port)."""
    uvicorn = require("uvicorn", "serve", "the HTTP servers")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it Nagle's algorithm and delayed ACKs add about
    # 40 ms to every loopback response (uvicorn sets it only on sockets it creates itself).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno, f"cannot bind {host}:{port} ({exc.strerror}); choose another port or 0 for a free one"
        ) from exc
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, access_log=False, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="toolgym-http-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the server did not start on {host}:{bound_port} within {startup_timeout_s} s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
