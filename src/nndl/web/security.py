"""ASGI middleware that keeps other web sites away from the API.

- **Trusted hosts.** A request whose Host header is not one of the server's names is refused with
  400. This stops DNS rebinding: a page on another site that points its own domain name at
  127.0.0.1 reaches the server, but with its own name in the Host header.
- **No cross-origin posts.** A POST whose Origin header names another site is refused with 403:
  a plain HTML form on any page can POST multipart data to a local server without the browser
  asking first, and the server would run it.
- **Slow clients are dropped** (``deadline_protocol``): a connection must deliver each whole
  request (headers and body) within a deadline; one that stalls is closed, so that a few hundred
  idle sockets cannot hold the server's file descriptors.
- **Security headers** on every response: ``X-Content-Type-Options: nosniff``, a Content Security
  Policy that allows only the page's own scripts, styles and connections (and ``data:``/``blob:``
  images, which the page draws), ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (no
  framing), and no referrer. The interactive API docs (``/docs``, ``/redoc``) load FastAPI's
  scripts inline and keep their default headers.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
CSP = ("default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; script-src 'self'; "
       "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer")]
_OWN_SCRIPTS_EXEMPT = ("/docs", "/redoc")


def allowed_hosts_for(bind_host: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The names a server bound to ``bind_host`` answers to: the loopback names when it listens on
    loopback, else the address itself; plus ``extra`` (``--allowed-host``)."""
    own = list(LOOPBACK_HOSTS) if bind_host in LOOPBACK_HOSTS or bind_host.startswith("127.") else [bind_host]
    if bind_host not in own:
        own.append(bind_host)
    return own + [h for h in extra if h not in own]


def _host_name(value: str) -> str:
    """"Example.org:8000" → "example.org"; "[::1]:8000" → "::1"."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class SecurityMiddleware:
    """Trusted hosts (None: any), same-origin POSTs and security headers; see the module docstring."""

    def __init__(self, app, allowed_hosts: list[str] | None = None):
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self.allowed is not None and _host_name(host) not in self.allowed:
            return await send_json_error(send, 400, "BadHost",
                                         f"this server does not answer to the host name {host!r}; "
                                         f"start it with --allowed-host {_host_name(host) or 'NAME'} to allow it")
        origin = headers.get("origin")
        cross_origin = origin and origin != "null" and urlsplit(origin).netloc.lower() != host.lower()
        if scope["method"] == "POST" and cross_origin:
            return await send_json_error(send, 403, "CrossOrigin", f"a POST from the page at {origin} is not accepted: "
                                 "the API answers its own page and clients that send no Origin")
        exempt = scope["path"].startswith(_OWN_SCRIPTS_EXEMPT)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = list(_HEADERS) + ([] if exempt else [(b"content-security-policy", CSP.encode())])
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


async def send_json_error(send, status: int, error: str, detail: str, headers=tuple(_HEADERS)) -> None:
    """Answer an ASGI request from middleware, before any endpoint: ``{"error", "detail"}`` JSON."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


REQUEST_TIMEOUT = 20.0     # seconds a client has to send one whole request


def deadline_protocol(seconds: float = REQUEST_TIMEOUT):
    """uvicorn's httptools protocol class, with a deadline of ``seconds`` per request: from the
    connection's first byte (or its opening, or the end of the previous request) to the request's
    last byte. A connection past it is closed. (uvicorn itself only times out idle keep-alive
    connections; a client that sends half a header, or half a body, would be kept for ever.)"""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class DeadlineProtocol(HttpToolsProtocol):
        _deadline = None

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            self._arm()                       # a new request's first bytes
            super().data_received(data)

        def on_message_complete(self) -> None:
            self._disarm()                    # the whole request is in: the app may take its time
            super().on_message_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return DeadlineProtocol
