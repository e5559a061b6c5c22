"""``resnetkit serve``: a trained model behind HTTP (FastAPI on uvicorn), with a web page; all of
it, the OpenAPI page at ``/docs`` too, works without a network.

Routes: ``POST /v1/predict`` (multipart parts named ``file``, or one raw image body),
``POST /v1/explain`` (Grad-CAM overlay as PNG), ``GET /v1/model`` (the model card), ``GET /healthz``
(alive), ``GET /readyz`` (loaded and warmed up), ``GET /metrics`` (Prometheus), ``GET /`` (the
page), OpenAPI at ``/docs``. Every refusal is JSON ``{"error": ...}`` with a 4xx status that
names the problem; a 500 says only that it happened (the traceback goes to the server's log)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..artifacts import model_card, trained_tta_flip
from ..infer import Classifier, fast_path, input_spec, load_source, path_of
from ..infer.preprocess import InputSpec
from ..models import ResNetBase
from .batcher import Batcher
from .config import ServeConfig
from .decode import Decoded, HTTPError, Upload, decode
from .metrics import Metrics

log = logging.getLogger("resnetkit.serve")
RAW_TYPES = ("image/", "application/octet-stream")
INLINE_DECODE_BYTES = 64 * 1024


@dataclass
class Service:
    """What the routes share once the model is loaded."""

    source: str
    model: Classifier  # as loaded: Grad-CAM needs the PyTorch model's gradients
    runner: Classifier  # the fast path the batches run
    spec: InputSpec
    batcher: Batcher
    tta_flip: bool
    classes: list[str] | None

    @property
    def name(self) -> str:
        return str((self.model.model_cfg or {}).get("name") or self.source)


def create_app(source: str, config: ServeConfig | None = None, model: Classifier | None = None) -> FastAPI:
    """The app for ``source`` (a tag, checkpoint, run folder, ``.safetensors`` or ``.onnx``), or
    for ``model`` already loaded from it. The model loads (and its fast path is built and warmed
    up) in the background after start-up: ``/healthz`` answers at once, ``/readyz`` and the
    model routes once it is ready."""
    config = config or ServeConfig()
    metrics = Metrics()
    state: dict[str, Any] = {}

    async def load() -> None:
        try:
            state["service"] = await asyncio.get_running_loop().run_in_executor(
                None, _load, source, config, metrics, model
            )
            state["service"].batcher.start()
        except Exception as e:  # a model that cannot load leaves the server alive and not ready
            log.exception("could not load %s", source)
            state["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().create_task(load())
        yield
        await loading
        if "service" in state:
            await state["service"].batcher.stop()  # graceful: what is queued is answered first

    # fastapi-offline: FastAPI whose /docs serves Swagger UI's files itself, not from a CDN.
    app = FastAPIOffline(title="resnetkit", summary=f"{source}: image classification", lifespan=lifespan)
    app.add_middleware(
        BodyGuard,
        max_bytes=config.max_body_bytes,
        timeout_s=config.body_timeout_s,
        total_s=config.body_deadline_s,
    )
    app.add_middleware(Measure, metrics=metrics)

    def service() -> Service:
        if "service" not in state:
            why = f"the model could not be loaded: {state['error']}" if "error" in state else "the model is loading"
            raise HTTPError(503, why)
        svc: Service = state["service"]
        return svc

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s", incident, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal server error", "incident": incident}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8"))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if "service" not in state:
            return JSONResponse({"status": "error" if "error" in state else "loading"}, status_code=503)
        if not state["service"].batcher.running:
            return JSONResponse({"status": "error", "error": "the batcher stopped"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        if "service" in state:
            metrics.queue_depth.set(state["service"].batcher.depth)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model")
    async def model_info() -> dict[str, Any]:
        svc = service()
        card = model_card(svc.model)
        return {
            "name": svc.name,
            "source": svc.source,
            "num_classes": svc.model.num_classes,
            "classes": svc.classes,
            "input": {
                "channels": svc.spec.in_chans,
                "size": list(svc.spec.image_size),
                "mean": list(svc.spec.mean),
                "std": list(svc.spec.std),
            },
            "dataset": card.get("name"),
            "accuracy": card.get("test"),
            "tta_flip": svc.tta_flip,
            "inference": {
                "path": path_of(svc.runner),
                "precision": getattr(svc.runner, "precision", "fp32"),
                "max_batch": config.max_batch,
                "max_wait_ms": config.max_wait_ms,
            },
            "limits": {
                "max_upload_mb": config.max_upload_mb,
                "max_images": config.max_images,
                "max_image_pixels": config.max_image_pixels,
            },
        }

    @app.post("/v1/predict")
    async def predict(request: Request, top_k: int = Query(config.top_k, ge=1)) -> dict[str, Any]:
        start = time.perf_counter()
        svc = service()
        with svc.batcher.expecting():
            decoded = await _decoded(request, svc, config)
        logits = await _logits(svc, torch.stack([d.input for d in decoded]))
        metrics.images.inc(len(decoded))
        k = min(top_k, svc.model.num_classes)
        probs, classes = logits.softmax(1).topk(k, dim=1)
        predictions = [
            {
                "image": d.name,
                "top": [
                    {"class": c, "name": svc.classes[c] if svc.classes else None, "prob": p}
                    for c, p in zip(cs, ps, strict=True)
                ],
            }
            for d, cs, ps in zip(decoded, classes.tolist(), probs.tolist(), strict=True)
        ]
        return {
            "model": svc.name,
            "precision": getattr(svc.runner, "precision", "fp32"),
            "ms": 1000 * (time.perf_counter() - start),
            "predictions": predictions,
        }

    @app.post("/v1/explain", responses={200: {"content": {"image/png": {}}}})
    async def explain(request: Request, target: int | None = Query(None, alias="class", ge=0)) -> Response:
        svc = service()
        if not isinstance(svc.model, ResNetBase):
            raise HTTPError(
                501, "explain needs a PyTorch model (Grad-CAM takes gradients); this server runs an ONNX file"
            )
        if target is not None and target >= svc.model.num_classes:
            raise HTTPError(400, f"class {target} does not exist: the model predicts 0..{svc.model.num_classes - 1}")
        (image,) = await _decoded(request, svc, config, most=1)
        png, cls, score = await svc.batcher.call_in_model_thread(lambda: _explain(svc, image, target))
        name = svc.classes[cls] if svc.classes else str(cls)
        # Percent-encoded: header values are Latin-1, and a folder's class may be any text.
        headers = {"X-Class": str(cls), "X-Class-Name": urllib.parse.quote(name), "X-Score": f"{score:.6g}"}
        return Response(png, media_type="image/png", headers=headers)

    return app


def _load(source: str, config: ServeConfig, metrics: Metrics, model: Classifier | None) -> Service:
    model = model if model is not None else load_source(source)
    runner = fast_path(model, config.precision) if config.precision != "fp32" else model
    spec = input_spec(model)
    batcher = Batcher(_no_grad(runner), config.max_batch, config.max_wait_ms / 1000, metrics.batch_size.observe)
    warm = torch.zeros(config.max_batch, spec.in_chans, *spec.image_size)
    with torch.inference_mode():  # warmed up at the sizes it will meet: a full batch and one image
        runner(warm)
        runner(warm[:1])
    classes = (getattr(model, "pretrained_cfg", None) or {}).get("classes")
    log.info("serving %s: %s", source, path_of(runner))
    return Service(source, model, runner, spec, batcher, trained_tta_flip(model), classes)


def _no_grad(runner: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return runner(x).float()

    return run


async def _logits(svc: Service, inputs: torch.Tensor) -> torch.Tensor:
    """Logits as ``resnetkit predict`` gives them: with flip TTA where the model's training used it
    (the mirror images join the same batches)."""
    if not svc.tta_flip:
        return await svc.batcher(inputs)
    both = await svc.batcher(torch.cat([inputs, inputs.flip(-1)]))
    return (both[: len(inputs)] + both[len(inputs) :]) / 2


async def _decoded(request: Request, svc: Service, config: ServeConfig, most: int | None = None) -> list[Decoded]:
    uploads = await _uploads(request, most or config.max_images)
    loop = asyncio.get_running_loop()
    pixels = config.max_image_pixels

    async def one(upload: Upload) -> Decoded:
        # A small file decodes faster than a thread hand-off takes (and every hand-off contends
        # for the GIL with the loop): inline. A large one goes to a thread, so it never stalls the loop.
        if len(upload.data) <= INLINE_DECODE_BYTES:
            return decode(upload, svc.spec, pixels)
        return await loop.run_in_executor(None, decode, upload, svc.spec, pixels)

    return list(await asyncio.gather(*(one(u) for u in uploads)))


async def _uploads(request: Request, most: int) -> list[Upload]:
    try:
        return await _read_uploads(request, most)
    except ClientDisconnect:  # nobody is left to answer; no traceback in the log for it
        raise HTTPError(400, "the client disconnected before the body was read") from None


async def _read_uploads(request: Request, most: int) -> list[Upload]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            async with request.form(max_files=most, max_fields=most + 16) as form:
                files = [f for key, f in form.multi_items() if key == "file" and not isinstance(f, str)]
                uploads = [Upload(f.filename or f"file{i}", await f.read()) for i, f in enumerate(files)]
        except StarletteHTTPException as e:
            if "Too many files" in str(e.detail) or "Too many fields" in str(e.detail):
                raise HTTPError(413, f"more than {most} images in one request") from None
            raise HTTPError(400, f"malformed multipart body: {e.detail}") from None
        if not uploads:
            raise HTTPError(400, "no image: send multipart parts named 'file', or an image as the body")
    elif kind.startswith(RAW_TYPES):
        uploads = [Upload(request.headers.get("x-filename", "body"), await request.body())]
    else:
        raise HTTPError(
            415,
            f"unsupported media type {kind or '(none)'!r}: send multipart/form-data with parts named 'file', "
            "or an image body (image/png, image/jpeg, ...)",
        )
    if len(uploads) > most:
        raise HTTPError(413, f"{len(uploads)} images in one request, at most {most}")
    return uploads


def _explain(svc: Service, image: Decoded, target: int | None) -> tuple[bytes, int, float]:
    from PIL import Image

    from ..analysis.gradcam import grad_cam
    from ..analysis.overlay import heatmap_overlay

    assert isinstance(svc.model, ResNetBase)
    cam = grad_cam(svc.model, image.input[None], classes=target)
    buffer = io.BytesIO()
    Image.fromarray(heatmap_overlay(image.fitted, cam.heatmaps[0])).save(buffer, format="PNG")
    return buffer.getvalue(), cam.classes[0], cam.scores[0]


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
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
