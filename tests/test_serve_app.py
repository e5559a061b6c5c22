"""The app in-process (Starlette's test client runs its lifespan): an exported ONNX file serves
predictions but no Grad-CAM, a failing model answers 500 without a traceback, the batcher batches."""

from __future__ import annotations

import asyncio
import time

import pytest
import torch
from fastapi.testclient import TestClient

from resnetkit.infer import export_model, load_source
from resnetkit.models import create_model
from resnetkit.serve import ServeConfig, create_app
from resnetkit.serve.batcher import Batcher
from serve_helpers import INPUTS


def ready(client: TestClient) -> TestClient:
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.05)
    return client


def test_an_onnx_file_serves_predictions_and_says_why_it_cannot_explain(tmp_path):
    path, _ = export_model(load_source("resnet20.fashion_mnist"), tmp_path / "r20.onnx")
    with TestClient(create_app(str(path))) as client:
        ready(client)
        files = [("file", (p.name, p.read_bytes(), "image/png")) for p in INPUTS[:3]]
        answer = client.post("/v1/predict", files=files)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
        assert "ONNX Runtime" in client.get("/v1/model").json()["inference"]["path"]
        refused = client.post("/v1/explain", files=files[:1])
        assert refused.status_code == 501 and "ONNX" in refused.json()["error"]


def test_a_failing_model_is_a_500_without_a_traceback():
    model = create_model("resnet20").eval()
    healthy = model.forward

    def forward(x):
        if len(x) == 2:  # the warm-up batches (32 and 1) pass; a batch of two fails
            raise RuntimeError("secret detail in /home/someone/model.py line 3")
        return healthy(x)

    model.forward = forward
    app = create_app("fresh", ServeConfig(precision="fp32", max_wait_ms=200), model=model)
    with TestClient(app, raise_server_exceptions=False) as client:
        ready(client)
        files = [("file", (p.name, p.read_bytes(), "image/png")) for p in INPUTS[:2]]
        answer = client.post("/v1/predict", files=files)
        assert answer.status_code == 500
        body = answer.json()
        assert body["error"] == "internal server error" and set(body) == {"error", "incident"}
        assert "secret" not in answer.text and "Traceback" not in answer.text
        assert client.post("/v1/predict", files=files[:1]).status_code == 200  # the batcher lives on


def test_readiness_waits_for_the_model(monkeypatch):
    import resnetkit.serve.app as app_module

    real = app_module.load_source

    def slow(source):
        time.sleep(1.0)
        return real(source)

    monkeypatch.setattr(app_module, "load_source", slow)
    with TestClient(create_app("resnet20.fashion_mnist")) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json() == {"status": "loading"}
        assert client.post("/v1/predict", content=b"x", headers={"content-type": "image/png"}).status_code == 503
        ready(client)


def test_the_batcher_gathers_concurrent_images_up_to_max_batch():
    sizes: list[int] = []

    def run(x):
        return x.flatten(1)[:, :2] * 2

    async def scenario():
        batcher = Batcher(run, max_batch=4, max_wait_s=0.05, on_batch=sizes.append)
        batcher.start()
        inputs = [torch.full((1, 1, 2, 2), float(i)) for i in range(10)]
        outs = await asyncio.gather(*(batcher(x) for x in inputs))
        await batcher.stop()
        return inputs, outs

    inputs, outs = asyncio.run(scenario())
    for x, out in zip(inputs, outs, strict=True):  # each request gets its own rows back
        assert torch.equal(out, x.flatten(1)[:, :2] * 2)
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("bad", [{"max_batch": 0}, {"max_upload_mb": 0}, {"max_wait_ms": -1}])
def test_config_is_checked(bad):
    with pytest.raises(ValueError, match="out of range"):
        ServeConfig(**bad)


def test_the_loaded_models_are_frozen_out_of_full_collections():
    """Full collections walked the whole heap (models, PyTorch, OpenVINO) about once a second
    under load, 140-160 ms each with the event loop stopped: the server's p99 at 32 connections
    was 5x its p50 (benchmarks/README.md). Once the models load, what is alive is frozen."""
    import gc

    gc.unfreeze()
    try:
        with TestClient(create_app("resnet20.fashion_mnist")) as client:
            ready(client)
            deadline = time.monotonic() + 30
            while gc.get_freeze_count() == 0:  # frozen after the last model's warm-up
                assert time.monotonic() < deadline, "nothing was frozen after the models loaded"
                time.sleep(0.05)
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # the test process's objects go back to the collector
