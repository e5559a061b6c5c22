"""``resnetkit serve``: a trained model behind HTTP (FastAPI on uvicorn), with a web page; all of
it, the OpenAPI page at ``/docs`` too, works without a network. Any task's model is served the
same way, through the seam its task implements (``serve.seam``): a classifier answers its top
classes, a segmenter a mask, a detector boxes.

Routes: ``POST /v1/predict`` (multipart parts named ``file``, or one raw image body),
``POST /v1/explain`` (Grad-CAM overlay as PNG, for classifiers), ``GET /v1/model`` (the model's
record), the same by name under ``/v1/models/{name}`` when several models are served, the Open
Inference Protocol under ``/v2`` (``serve.v2``), ``GET /healthz`` (alive), ``GET /readyz``
(loaded and warmed up), ``GET /metrics`` (Prometheus), ``GET /`` (the page), OpenAPI at ``/docs``.
Every refusal is JSON ``{"error": ...}`` with a 4xx status that names the problem; a 500 says only
that it happened (the traceback goes to the server's log)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..infer import Classifier, load_source, path_of
from ..models import ResNetBase
from ..tasks import PredictOptions, Prepared
from . import v2
from .config import ServeConfig
from .decode import HTTPError, Upload
from .guards import BodyGuard, Measure
from .memory import TRIM_PIXELS, freeze_loaded_objects, release_freed_memory
from .metrics import Metrics
from .seam import Service, Slot, load_service, served_name

log = logging.getLogger("resnetkit.serve")
T = TypeVar("T")

INLINE_DECODE_BYTES = 64 * 1024
# A v2 answer for this many image pixels or fewer (a dense one scales with them) is encoded on the
# event loop: a thread hand-off costs more than encoding it, as decoding a small file does.
INLINE_ENCODE_PIXELS = 256 * 256


def create_app(
    source: str | Sequence[Slot], config: ServeConfig | None = None, model: Classifier | None = None
) -> FastAPI:
    """The app for ``source`` (a tag, checkpoint, run folder, ``.safetensors`` or ``.onnx``), or
    for ``model`` already loaded from it; or for several models, each a ``Slot`` (its name, its
    source, perhaps its model loaded, or the error that kept it from loading). The models load
    (and their fast paths are built and warmed up) in the background after start-up, one after
    another, each behind its own batcher: ``/healthz`` answers at once, each model's routes once
    it is ready. A model that fails is reported (``/v2/models``, its routes' 503), the others served."""
    config = config or ServeConfig()
    metrics = Metrics()
    slots = [Slot(served_name(source), source, model=model)] if isinstance(source, str) else list(source)
    if not slots:
        raise ValueError("no model to serve")
    by_name = {s.name: s for s in slots}
    if len(by_name) != len(slots):
        raise ValueError(f"two models share a name: {', '.join(s.name for s in slots)}")
    default = slots[0]
    title = default.source if len(slots) == 1 else ", ".join(s.name for s in slots)

    def _load(slot: Slot) -> Service:
        loaded = slot.model if slot.model is not None else load_source(slot.source)
        return load_service(slot.source, config, metrics.batch_size.observe, loaded)

    async def load() -> None:
        for slot in slots:
            if slot.error is not None:
                continue
            try:
                slot.service = await asyncio.get_running_loop().run_in_executor(None, _load, slot)
                slot.service.batcher.start()
            except Exception as e:  # a model that cannot load leaves the server, and the others, alive
                log.exception("could not load %s", slot.source)
                slot.error = str(e).splitlines()[0] if str(e) else type(e).__name__
            finally:
                slot.model = None  # the service holds it now (or nothing does)
        freeze_loaded_objects()  # full collections then skip the loaded models and libraries

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().create_task(load())
        yield
        await loading
        for slot in slots:
            if slot.service is not None:
                await slot.service.batcher.stop()  # graceful: what is queued is answered first

    # fastapi-offline: FastAPI whose /docs serves Swagger UI's files itself, not from a CDN.
    app = FastAPIOffline(title="resnetkit", summary=f"{title}: trained resnetkit models", lifespan=lifespan)
    app.add_middleware(
        BodyGuard,
        max_bytes=config.max_body_bytes,
        timeout_s=config.body_timeout_s,
        total_s=config.body_deadline_s,
    )
    app.add_middleware(Measure, metrics=metrics)

    def slot_named(name: str, version: str | None = None) -> Slot:
        if name not in by_name:
            raise HTTPError(404, f"no model named {name!r}; this server has {', '.join(by_name)}")
        slot = by_name[name]
        if version is not None and version != slot.version:
            raise HTTPError(404, f"model {name!r} has no version {version!r}; version {slot.version} is served")
        return slot

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

    def server_ready() -> tuple[bool, str]:
        """Ready once every model has loaded or failed, and one at least is ready."""
        if any(s.state == "LOADING" for s in slots):
            return False, "loading"
        if not any(s.state == "READY" for s in slots):
            return False, "error"
        return True, "ready"

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready, status = server_ready()
        if not ready:
            errors = {s.name: s.reason for s in slots if s.reason}
            return JSONResponse({"status": status, **({"errors": errors} if errors else {})}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        metrics.queue_depth.set(sum(s.service.batcher.depth for s in slots if s.service is not None))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def model_info(slot: Slot) -> dict[str, Any]:
        svc = slot.get()
        card = svc.card
        return {
            "name": svc.name,
            "served_as": slot.name,
            "source": svc.source,
            "task": svc.task.name,
            "num_classes": svc.model.num_classes,
            "classes": svc.classes,
            "input": svc.inputs,
            "dataset": card.data,
            "accuracy": dict(card.results) if card.results is not None else None,
            "tta_flip": card.tta_flip,
            "tta_shift": card.tta_shift,
            "explain": svc.task.explainable and isinstance(svc.model, ResNetBase),
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

    async def predict(slot: Slot, request: Request, top_k: int, min_score: float) -> dict[str, Any]:
        start = time.perf_counter()
        svc = slot.get()
        with svc.batcher.expecting():
            prepared = await _decoded(request, svc, config)
        outputs = await svc.predict(prepared)
        metrics.images.inc(len(prepared))
        options = PredictOptions(top_k=top_k, min_score=min_score, mask=True)
        answer = {
            "model": svc.name,
            "task": svc.task.name,
            "precision": getattr(svc.runner, "precision", "fp32"),
            "ms": 1000 * (time.perf_counter() - start),
            "predictions": [svc.encode(o, p, options) for o, p in zip(outputs, prepared, strict=True)],
        }
        await _release(prepared)
        return answer

    async def explain(slot: Slot, request: Request, target: int | None) -> Response:
        svc = slot.get()
        if not svc.task.explainable:
            raise HTTPError(
                400, f"explain: a {svc.task.name} model has no explanation here (Grad-CAM follows a class score)"
            )
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

    top_k_query = Query(config.top_k, ge=1, description="classification: the classes answered")
    min_score_query = Query(0.3, ge=0, le=1, description="detection: the boxes answered score at least this")
    class_query = Query(None, alias="class", ge=0)

    @app.get("/v1/model")
    async def default_model_info() -> dict[str, Any]:
        """The first model's record (the only one, unless several are served)."""
        return model_info(default)

    @app.post("/v1/predict")
    async def default_predict(
        request: Request, top_k: int = top_k_query, min_score: float = min_score_query
    ) -> dict[str, Any]:
        return await predict(default, request, top_k, min_score)

    @app.post("/v1/explain", responses={200: {"content": {"image/png": {}}}})
    async def default_explain(request: Request, target: int | None = class_query) -> Response:
        return await explain(default, request, target)

    @app.get("/v1/models")
    async def v1_models() -> dict[str, Any]:
        return {"models": [s.index_entry() for s in slots]}

    @app.get("/v1/models/{name}")
    async def named_model_info(name: str) -> dict[str, Any]:
        return model_info(slot_named(name))

    @app.post("/v1/models/{name}/predict")
    async def named_predict(
        name: str, request: Request, top_k: int = top_k_query, min_score: float = min_score_query
    ) -> dict[str, Any]:
        return await predict(slot_named(name), request, top_k, min_score)

    @app.post("/v1/models/{name}/explain", responses={200: {"content": {"image/png": {}}}})
    async def named_explain(name: str, request: Request, target: int | None = class_query) -> Response:
        return await explain(slot_named(name), request, target)

    add_v2_routes(app, slots, slot_named, server_ready, config, metrics)
    app.state.metrics = metrics  # the server's framing errors are counted in it too (serve.framing)
    return app


def add_v2_routes(
    app: FastAPI,
    slots: list[Slot],
    slot_named: Callable[[str, str | None], Slot],
    server_ready: Callable[[], tuple[bool, str]],
    config: ServeConfig,
    metrics: Metrics,
) -> None:
    """The Open Inference Protocol's REST routes (``serve.v2``) on the same models and limits."""

    @app.get("/v2")
    async def v2_server() -> dict[str, Any]:
        return {"name": "resnetkit", "version": _version(), "extensions": v2.EXTENSIONS}

    @app.get("/v2/health/live")
    async def v2_live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def v2_ready() -> JSONResponse:
        # The protocol's health answers are 200 for true and a 4xx for false.
        ready, _ = server_ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 400)

    @app.get("/v2/models")
    async def v2_models() -> dict[str, Any]:
        return {"models": [s.index_entry() for s in slots]}

    @app.post("/v2/repository/index")
    async def v2_index() -> list[dict[str, Any]]:
        return [s.index_entry() for s in slots]

    async def metadata(name: str, version: str | None) -> dict[str, Any]:
        slot = slot_named(name, version)
        svc = slot.get()
        return v2.metadata(slot.name, slot.version, svc.task, svc.model)

    async def model_ready(name: str, version: str | None) -> JSONResponse:
        slot = slot_named(name, version)
        ready = slot.state == "READY"
        body: dict[str, Any] = {"name": slot.name, "version": slot.version, "ready": ready}
        if slot.reason:
            body["reason"] = slot.reason
        return JSONResponse(body, status_code=200 if ready else 400)

    async def infer(name: str, version: str | None, request: Request) -> Response:
        slot = slot_named(name, version)
        svc = slot.get()

        def parsed(body: bytes) -> tuple[v2.TensorRequest, list[Prepared]]:
            header, binary = v2.body_parts(
                body,
                request.headers.get("inference-header-content-length"),
                request.headers.get("content-encoding"),
                config.max_body_bytes,
            )
            req = v2.parse_request(
                header, binary, svc.task, svc.model, config.max_images, config.max_image_pixels, config.top_k
            )
            pixels = config.max_image_pixels
            return req, v2.prepared_items(req, svc.task, svc.model, lambda data, n: svc.decode(Upload(n, data), pixels))

        with svc.batcher.expecting():
            try:
                body = await request.body()
            except ClientDisconnect:
                raise HTTPError(400, "the client disconnected before the body was read") from None
            req, prepared = await _inline_if(len(body) <= INLINE_DECODE_BYTES, parsed, body)
            del body
        outputs = await svc.predict(prepared)
        metrics.images.inc(len(prepared))

        def encoded() -> tuple[bytes, int | None]:
            items = [
                svc.task.tensor_encode(o, p, svc.classes, req.options) for o, p in zip(outputs, prepared, strict=True)
            ]
            return v2.response(slot.name, slot.version, req, svc.task.tensor_outputs(svc.model), items)

        small = sum(p.size[0] * p.size[1] for p in prepared) <= INLINE_ENCODE_PIXELS
        content, header_length = await _inline_if(small, encoded)
        await _release(prepared)
        if header_length is None:
            return Response(content, media_type="application/json")
        headers = {"Inference-Header-Content-Length": str(header_length)}
        return Response(content, media_type="application/octet-stream", headers=headers)

    @app.get("/v2/models/{name}")
    async def v2_metadata(name: str) -> dict[str, Any]:
        return await metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}")
    async def v2_version_metadata(name: str, version: str) -> dict[str, Any]:
        return await metadata(name, version)

    @app.get("/v2/models/{name}/ready")
    async def v2_model_ready(name: str) -> JSONResponse:
        return await model_ready(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def v2_version_ready(name: str, version: str) -> JSONResponse:
        return await model_ready(name, version)

    @app.post("/v2/models/{name}/infer")
    async def v2_infer(name: str, request: Request) -> Response:
        return await infer(name, None, request)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def v2_version_infer(name: str, version: str, request: Request) -> Response:
        return await infer(name, version, request)


async def _release(prepared: list[Prepared]) -> None:
    """After a request that decoded large images, their freed buffers handed back to the system."""
    if sum(p.size[0] * p.size[1] for p in prepared) >= TRIM_PIXELS:
        prepared.clear()
        await asyncio.get_running_loop().run_in_executor(None, release_freed_memory)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("resnetkit")
    except PackageNotFoundError:
        return "unknown"


async def _decoded(request: Request, svc: Service, config: ServeConfig, most: int | None = None) -> list[Prepared]:
    uploads = await _uploads(request, most or config.max_images, svc.task.media_types)
    pixels = config.max_image_pixels

    async def one(upload: Upload) -> Prepared:
        return await _inline_if(len(upload.data) <= INLINE_DECODE_BYTES, svc.decode, upload, pixels)

    return list(await asyncio.gather(*(one(u) for u in uploads)))


async def _inline_if(small: bool, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: on the event loop when the work is ``small`` (a small file decodes faster
    than a thread hand-off takes, and every hand-off contends for the GIL with the loop), else on
    a thread, so a large one never stalls the loop."""
    if small:
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _uploads(request: Request, most: int, raw_types: tuple[str, ...]) -> list[Upload]:
    try:
        return await _read_uploads(request, most, raw_types)
    except ClientDisconnect:  # nobody is left to answer; no traceback in the log for it
        raise HTTPError(400, "the client disconnected before the body was read") from None


async def _read_uploads(request: Request, most: int, raw_types: tuple[str, ...]) -> list[Upload]:
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
    elif kind.startswith(raw_types):
        uploads = [Upload(request.headers.get("x-filename", "body"), await request.body())]
    else:
        raise HTTPError(
            415,
            f"unsupported media type {kind or '(none)'!r}: send multipart/form-data with parts named 'file', "
            f"or a body of one of {', '.join(raw_types)}",
        )
    if len(uploads) > most:
        raise HTTPError(413, f"{len(uploads)} images in one request, at most {most}")
    return uploads


def _explain(svc: Service, image: Prepared, target: int | None) -> tuple[bytes, int, float]:
    from PIL import Image

    from ..analysis.gradcam import grad_cam
    from ..analysis.overlay import heatmap_overlay

    assert isinstance(svc.model, ResNetBase)
    cam = grad_cam(svc.model, image.input[None], classes=target)
    buffer = io.BytesIO()
    Image.fromarray(heatmap_overlay(image.image, cam.heatmaps[0])).save(buffer, format="PNG")
    return buffer.getvalue(), cam.classes[0], cam.scores[0]
