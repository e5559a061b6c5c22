"""``resnetkit serve``: a trained model behind HTTP (FastAPI on uvicorn), with a web page; all of
it, the OpenAPI page at ``/docs`` too, works without a network. Any task's model is served the
same way, through the seam its task implements (``serve.seam``): a classifier answers its top
classes, a segmenter a mask, a detector boxes.

Routes: ``POST /v1/predict`` (multipart parts named ``file``, or one raw image body),
``POST /v1/explain`` (Grad-CAM overlay as PNG, for classifiers), ``GET /v1/model`` (the model's
record), ``GET /healthz`` (alive), ``GET /readyz`` (loaded and warmed up), ``GET /metrics``
(Prometheus), ``GET /`` (the page), OpenAPI at ``/docs``. Every refusal is JSON ``{"error": ...}``
with a 4xx status that names the problem; a 500 says only that it happened (the traceback goes to
the server's log)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

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
from .config import ServeConfig
from .decode import HTTPError, Upload
from .guards import BodyGuard, Measure
from .metrics import Metrics
from .seam import Service, load_service

log = logging.getLogger("resnetkit.serve")

INLINE_DECODE_BYTES = 64 * 1024


def create_app(source: str, config: ServeConfig | None = None, model: Classifier | None = None) -> FastAPI:
    """The app for ``source`` (a tag, checkpoint, run folder, ``.safetensors`` or ``.onnx``), or
    for ``model`` already loaded from it. The model loads (and its fast path is built and warmed
    up) in the background after start-up: ``/healthz`` answers at once, ``/readyz`` and the
    model routes once it is ready."""
    config = config or ServeConfig()
    metrics = Metrics()
    state: dict[str, Any] = {}

    def _load() -> Service:
        loaded = model if model is not None else load_source(source)
        return load_service(source, config, metrics.batch_size.observe, loaded)

    async def load() -> None:
        try:
            state["service"] = await asyncio.get_running_loop().run_in_executor(None, _load)
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
    app = FastAPIOffline(title="resnetkit", summary=f"{source}: a trained resnetkit model", lifespan=lifespan)
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
        card = svc.card
        return {
            "name": svc.name,
            "source": svc.source,
            "task": svc.task.name,
            "num_classes": svc.model.num_classes,
            "classes": svc.classes,
            "input": svc.inputs,
            "dataset": card.data,
            "accuracy": dict(card.results) if card.results is not None else None,
            "tta_flip": card.tta_flip,
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

    @app.post("/v1/predict")
    async def predict(
        request: Request,
        top_k: int = Query(config.top_k, ge=1, description="classification: the classes answered"),
        min_score: float = Query(0.3, ge=0, le=1, description="detection: the boxes answered score at least this"),
    ) -> dict[str, Any]:
        start = time.perf_counter()
        svc = service()
        with svc.batcher.expecting():
            prepared = await _decoded(request, svc, config)
        outputs = await svc.predict(prepared)
        metrics.images.inc(len(prepared))
        options = PredictOptions(top_k=top_k, min_score=min_score, mask=True)
        return {
            "model": svc.name,
            "task": svc.task.name,
            "precision": getattr(svc.runner, "precision", "fp32"),
            "ms": 1000 * (time.perf_counter() - start),
            "predictions": [svc.encode(o, p, options) for o, p in zip(outputs, prepared, strict=True)],
        }

    @app.post("/v1/explain", responses={200: {"content": {"image/png": {}}}})
    async def explain(request: Request, target: int | None = Query(None, alias="class", ge=0)) -> Response:
        svc = service()
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

    return app


async def _decoded(request: Request, svc: Service, config: ServeConfig, most: int | None = None) -> list[Prepared]:
    uploads = await _uploads(request, most or config.max_images, svc.task.media_types)
    loop = asyncio.get_running_loop()
    pixels = config.max_image_pixels

    async def one(upload: Upload) -> Prepared:
        # A small file decodes faster than a thread hand-off takes (and every hand-off contends
        # for the GIL with the loop): inline. A large one goes to a thread, so it never stalls the loop.
        if len(upload.data) <= INLINE_DECODE_BYTES:
            return svc.decode(upload, pixels)
        return await loop.run_in_executor(None, svc.decode, upload, pixels)

    return list(await asyncio.gather(*(one(u) for u in uploads)))


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
