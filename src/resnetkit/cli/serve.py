"""``resnetkit serve``: a trained model behind HTTP with a web page (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse

from ..runtime import INFER_PRECISIONS, is_reference
from ..serve.config import ServeConfig


def add_commands(sub: argparse._SubParsersAction) -> None:
    d = ServeConfig()  # the defaults live in the dataclass, once
    p = sub.add_parser("serve", help="an HTTP service (and web page) for a trained model, with dynamic batching")
    p.add_argument(
        "source",
        nargs="*",
        help="tag, checkpoint (.pt), run folder, .safetensors from resnetkit, or exported .onnx; several are "
        "served side by side, each by its name (NAME=SOURCE names one)",
    )
    p.add_argument(
        "--model-repository",
        metavar="DIR",
        help="serve every model of DIR, laid out as Triton's: DIR/NAME/VERSION/ holding one model file or a run "
        "folder (the highest VERSION is served)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--max-batch", type=int, default=d.max_batch, help="images the dynamic batcher runs together (1: off)"
    )
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms, help="how long a batch waits for more images")
    p.add_argument(
        "--max-upload-mb", type=float, default=d.max_upload_mb, help="larger request bodies are refused (413)"
    )
    p.add_argument("--max-images", type=int, default=d.max_images, help="images in one request")
    p.add_argument(
        "--max-image-pixels",
        type=int,
        default=d.max_image_pixels,
        metavar="N",
        help=f"refuse images larger than N pixels (decompression bombs; default {d.max_image_pixels / 1e6:g}M)",
    )
    p.add_argument(
        "--precision",
        default=d.precision,
        choices=INFER_PRECISIONS,
        help="the inference path, as predict's (int8 calibrates on the model's training images)",
    )
    p.add_argument(
        "--body-timeout", type=float, default=d.body_timeout_s, help="seconds a client may send no body bytes (408)"
    )
    p.add_argument("--max-connections", type=int, default=512, help="connections at once; more get 503")
    p.add_argument("--shutdown-timeout", type=float, default=30.0, help="seconds in-flight requests get on SIGTERM")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import torch

    from ..infer.openvino_model import openvino_available
    from ..models import ResNetBase

    if not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port}: must be 1-65535")
    if not args.source and not args.model_repository:
        raise ValueError("serve: name a SOURCE (or several), or --model-repository DIR")
    config = ServeConfig(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_upload_mb=args.max_upload_mb,
        max_images=args.max_images,
        max_image_pixels=args.max_image_pixels,
        body_timeout_s=args.body_timeout,
        precision=args.precision,
    )
    _check_port(args.host, args.port)  # before the model loads: a taken port is one line, not a traceback later
    from ..serve.repository import load_slots, repository_slots, source_slots

    slots = source_slots(args.source) + (repository_slots(args.model_repository) if args.model_repository else [])
    # A bad SOURCE is one line and exit 2 before the server starts; of several, one that fails is
    # reported and the others served.
    load_slots(slots, strict=len(slots) == 1)
    loaded = [s.model for s in slots if s.model is not None]
    if not is_reference(args.precision) and (
        openvino_available() or any(not isinstance(m, ResNetBase) for m in loaded)
    ):
        # The model runs on OpenVINO's (or ONNX Runtime's) own threads; PyTorch only normalizes
        # decoded images, and its thread pool would contend for the same cores.
        torch.set_num_threads(1)

    import uvicorn

    from ..serve.app import create_app
    from ..serve.framing import json_framing

    app = create_app(slots, config)
    uvicorn.run(
        app,
        http=json_framing(app.state.metrics),  # malformed framing: a JSON 400, counted as one
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
        timeout_keep_alive=5,  # idle keep-alive connections are closed
        limit_concurrency=args.max_connections,  # past it, a 503 at once rather than an ever longer queue
        timeout_graceful_shutdown=int(args.shutdown_timeout),  # SIGTERM: in-flight requests finish first
    )
    return 0


def _check_port(host: str, port: int) -> None:
    """Refuse a port that is in use (or an address this machine does not have) before any work."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as e:
        raise ValueError(
            f"--host {host} --port {port}: cannot listen there ({e.strerror}); choose another --port"
        ) from None
