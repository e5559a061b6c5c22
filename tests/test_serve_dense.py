"""Segmentation and detection models served through the one seam: ``/v1/model`` says the task,
``/v1/predict`` answers a mask (a PNG of class indices) or boxes in the image's own pixels, the
same as ``resnetkit predict``; ``/v1/explain`` refuses with a reason; hostile uploads are refused."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dense_helpers import CLASSES, detector, scene, segmenter
from resnetkit.artifacts import load_model
from resnetkit.infer.predict import predict_files
from resnetkit.serve import ServeConfig, create_app
from resnetkit.tasks import PredictOptions


def ready(client: TestClient) -> None:
    for _ in range(600):
        if client.get("/readyz").status_code == 200:
            return
        import time

        time.sleep(0.1)
    raise AssertionError(client.get("/readyz").json())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dense-serve")
    return {"segmentation": segmenter(folder), "detection": detector(folder), "folder": folder}


def _client(source) -> TestClient:
    return TestClient(create_app(str(source), ServeConfig(max_batch=4, precision="fp32")))


def test_a_segmenter_is_served_a_mask_at_the_image_size(models):
    image = scene(models["folder"], (64, 96))
    with _client(models["segmentation"]) as client:
        ready(client)
        card = client.get("/v1/model").json()
        assert card["task"] == "segmentation" and card["classes"] == CLASSES and card["explain"] is False
        answer = client.post("/v1/predict", files=[("file", ("a.png", image.read_bytes(), "image/png"))])
        assert answer.status_code == 200, answer.text
        (prediction,) = answer.json()["predictions"]
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(prediction["mask"]))))
        assert mask.shape == (64, 96) and mask.max() < len(CLASSES)
        assert sum(prediction["classes"].values()) == pytest.approx(1.0)
        # The shares are the mask's: the same answer twice over.
        for c, name in enumerate(CLASSES):
            assert prediction["classes"].get(name, 0.0) == pytest.approx((mask == c).mean())
        refused = client.post("/v1/explain", files=[("file", ("a.png", image.read_bytes()))])
        assert refused.status_code == 400 and "segmentation" in refused.json()["error"]
    (expected,) = predict_files(load_model(models["segmentation"]), [image])
    assert expected["classes"] == pytest.approx(prediction["classes"])


def test_a_detector_is_served_boxes_in_the_image_pixels(models):
    image = scene(models["folder"], (64, 96), "wide.png")
    with _client(models["detection"]) as client:
        ready(client)
        assert client.get("/v1/model").json()["task"] == "detection"
        answer = client.post("/v1/predict?min_score=0.5", files=[("file", ("w.png", image.read_bytes()))])
        assert answer.status_code == 200, answer.text
        boxes = answer.json()["predictions"][0]["boxes"]
        assert boxes and all(b["score"] >= 0.5 and b["name"] == CLASSES[b["label"]] for b in boxes)
        assert all(0 <= x1 <= x2 <= 96 and 0 <= y1 <= y2 <= 64 for x1, y1, x2, y2 in (b["box"] for b in boxes))
        none = client.post("/v1/predict?min_score=1", files=[("file", ("w.png", image.read_bytes()))])
        assert none.json()["predictions"][0]["boxes"] == []
        assert (
            client.post(
                "/v1/predict?min_score=2", content=image.read_bytes(), headers={"content-type": "image/png"}
            ).status_code
            == 422
        )
        refused = client.post("/v1/explain", files=[("file", ("w.png", image.read_bytes()))])
        assert refused.status_code == 400 and "detection" in refused.json()["error"]
    (expected,) = predict_files(load_model(models["detection"]), [image], PredictOptions(min_score=0.5))
    assert [b["box"] for b in expected["boxes"]] == [b["box"] for b in boxes]


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_hostile_uploads_to_a_dense_model_are_refused_with_a_reason(models, task):
    big = io.BytesIO()
    Image.new("L", (5000, 5000)).save(big, format="PNG")
    with TestClient(
        create_app(str(models[task]), ServeConfig(max_batch=2, precision="fp32", max_image_pixels=1_000_000))
    ) as client:
        ready(client)
        cases = {
            "not an image": (b"\x89PNG not really", 400),
            "too many pixels": (big.getvalue(), 400),
            "empty": (b"", 400),
        }
        for what, (body, status) in cases.items():
            answer = client.post("/v1/predict", files=[("file", ("x.png", body, "image/png"))])
            assert answer.status_code == status, (what, answer.text)
            assert answer.json()["error"], what
        assert (
            client.post("/v1/predict", content=b"{}", headers={"content-type": "application/json"}).status_code == 415
        )
        assert client.get("/readyz").status_code == 200  # still serving
