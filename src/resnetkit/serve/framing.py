"""Malformed HTTP framing (a bad request line, an invalid chunk size, a broken header) answered as
every other refusal: ``{"error": ...}`` with a 400, and counted as a 400 in ``/metrics``. uvicorn
meets these before (or while) the app reads the request and answers them itself in plain text;
a request the app had begun was counted with whatever status the app then gave (issue 21: a 415)."""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .metrics import Metrics

MALFORMED = "resnetkit.malformed"  # set in a request's scope when its framing broke: Measure counts a 400


def json_framing(metrics: Metrics) -> type:
    """uvicorn's HTTP protocol (h11, or httptools where installed) whose framing errors answer JSON."""

    class JSONFramingProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def send_400_response(self, msg: str) -> None:
            cycle: Any = getattr(self, "cycle", None)
            in_flight = cycle is not None and not cycle.response_complete
            if in_flight:
                cycle.scope[MALFORMED] = True  # the app's own answer never reaches the client
                if cycle.response_started:  # too late for another status line
                    self.transport.close()
                    return
            else:
                metrics.requests.labels("malformed", "400").inc()
            body = json.dumps({"error": f"malformed HTTP request: {msg.rstrip('.')}"}).encode()
            head = (
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head + body)
            self.transport.close()

    return JSONFramingProtocol
