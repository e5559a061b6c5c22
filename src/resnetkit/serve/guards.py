"""The app's ASGI middleware: bounded request bodies (size, idle time, total time) and per-route
Prometheus metrics. Both sit below the routes, so every route, every task's included, has them."""

from __future__ import annotations

import asyncio
import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .decode import HTTPError
from .framing import MALFORMED
from .metrics import Metrics


class BodyGuard:
    """Refuses a body over ``max_bytes`` (413) from its Content-Length before reading it, or as
    soon as a chunked one passes the limit, and cuts off (408) a client that sends nothing for
    ``timeout_s`` or takes over ``total_s`` in all while the body is read. A response sent before
    the body was read whole closes the connection: otherwise the server would go on draining
    whatever the client still streams, with no limit and no deadline."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float, total_s: float):
        self.app, self.max_bytes, self.timeout_s, self.total_s = app, max_bytes, timeout_s, total_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _send_json(send, 400, "Content-Length is not a number")
                return
            if int(length) > self.max_bytes:
                await _send_json(send, 413, _too_large(int(length), self.max_bytes))
                return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_s
        seen = 0
        body_done = False

        async def guarded() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the body: waiting for a disconnect has no deadline
                return await receive()
            wait = min(self.timeout_s, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except asyncio.TimeoutError:
                raise HTTPError(408, f"the request body took too long (over {wait:.3g} s): request timed out") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise HTTPError(413, _too_large(seen, self.max_bytes))
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_done:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, guarded, closing)


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size:,} bytes or more, over the limit of {limit:,} (--max-upload-mb)"


async def _send_json(send: Send, status: int, message: str) -> None:
    body = JSONResponse({"error": message}).body
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Measure:
    """Counts each request by route and status and times it (route templates, never raw paths:
    a scanner's random URLs must not grow the metrics without bound)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "other"
            if scope.get(MALFORMED):  # the server answered its broken framing with a 400, not the app
                status = 400
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
