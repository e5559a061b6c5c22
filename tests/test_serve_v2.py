"""The Open Inference Protocol (v2) of ``resnetkit serve``, driven by the real Triton client
(``tritonclient.http``) against a real server on 127.0.0.1: one server serves a classifier, a
segmenter, a detector and a sequence model side by side, and each answers what ``resnetkit
predict`` answers on the same inputs, in JSON and in binary tensor data; hostile requests get
the protocol's ``{"error": ...}`` with a 4xx; a model repository laid out as Triton's is served,
its broken model reported and not fatal."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
import signal
import socket
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from dense_helpers import detector, scene, segmenter
from resnetkit import create_model, export_weights
from resnetkit.cli import main
from resnetkit.infer import load_source
from resnetkit.tasks import task_of
from serve_helpers import INPUTS, Server

CLASSIFIER = "resnet20.fashion_mnist"


def sequence_model(folder):
    import torch

    torch.manual_seed(0)
    model = create_model("resnet_tsc", num_classes=2, in_chans=1).eval()
    meta = {"task": "sequence", "name": "toy", "classes": ["early", "late"], "in_chans": 1, "kind": "series"}
    return export_weights(model, folder / "series.safetensors", dataset={**meta, "max_length": 256})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("v2-models")
    return {
        "folder": folder,
        "segmenter": segmenter(folder),
        "detector": detector(folder),
        "series": sequence_model(folder),
    }


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    log = tmp_path_factory.mktemp("v2") / "server.log"
    sources = [CLASSIFIER, *(str(models[k]) for k in ("segmenter", "detector", "series"))]
    srv = Server(sources, "--max-images", "8", "--max-upload-mb", "1", "--precision", "fp32", log=log)
    yield srv
    assert srv.stop() in (0, -signal.SIGTERM), log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def client(server):
    c = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=60)
    yield c
    c.close()


def predicted(*args: str) -> list[dict]:
    """What ``resnetkit predict --json`` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["predict", *args, "--precision", "fp32", "--json"]) == 0
    return json.loads(out.getvalue())


def files_input(paths, binary: bool) -> triton.InferInput:
    data = np.array([p.read_bytes() for p in paths], dtype=np.object_)
    tensor = triton.InferInput("file", [len(paths)], "BYTES")
    if binary:
        tensor.set_data_from_numpy(data, binary_data=True)
    else:  # JSON BYTES are strings: a sequence model's JSON bodies
        tensor.set_data_from_numpy(data, binary_data=False)
    return tensor


def outputs(names, binary: bool) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(n, binary_data=binary) for n in names]


def test_live_ready_metadata_and_index(client, server):
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "resnetkit" and "binary_tensor_data" in meta["extensions"]
    index = httpx.get(f"{server.url}/v2/models").json()["models"]
    assert [(m["name"], m["state"]) for m in index] == [
        (CLASSIFIER, "READY"),
        ("segmenter", "READY"),
        ("detector", "READY"),
        ("series", "READY"),
    ]
    assert client.get_model_repository_index() == httpx.post(f"{server.url}/v2/repository/index").json()
    for name in (CLASSIFIER, "segmenter", "detector", "series"):
        assert client.is_model_ready(name) and client.is_model_ready(name, "1")
        assert not client.is_model_ready(name, "2")
    card = client.get_model_metadata(CLASSIFIER)
    assert card["versions"] == ["1"] and card["platform"] == "resnetkit_classification"
    assert {i["name"]: (i["datatype"], i["shape"]) for i in card["inputs"]} == {
        "input": ("FP32", [-1, 1, 28, 28]),
        "file": ("BYTES", [-1]),
    }
    assert [o["name"] for o in card["outputs"]] == [
        "logits",
        "probabilities",
        "top_classes",
        "top_probabilities",
        "top_names",
    ]
    assert client.get_model_metadata(CLASSIFIER, "1") == card
    dense = client.get_model_metadata("segmenter")
    assert dense["inputs"][0]["shape"] == [-1, 1, -1, -1] and dense["outputs"] == [
        {"name": "mask", "datatype": "INT32", "shape": [-1, -1, -1]}
    ]
    assert client.get_model_metadata("series")["inputs"][0]["shape"] == [-1, 1, -1]
    with pytest.raises(InferenceServerException, match="no model named 'nope'"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_classifier_answers_as_predict_from_files_and_from_tensors(client, binary):
    expected = predicted(CLASSIFIER, *map(str, INPUTS[:4]))
    names = ["top_classes", "top_probabilities", "top_names", "probabilities"]
    result = client.infer(CLASSIFIER, [files_input(INPUTS[:4], True)], outputs=outputs(names, binary))
    top, probs = result.as_numpy("top_classes"), result.as_numpy("top_probabilities")
    assert top.shape == (4, 5) and result.as_numpy("probabilities").shape == (4, 10)
    for i, want in enumerate(expected):
        assert top[i].tolist() == [t["class"] for t in want["top"]]
        np.testing.assert_allclose(probs[i], [t["prob"] for t in want["top"]], atol=1e-5)
        # BYTES come back as bytes in binary data and as str in JSON (tritonclient's as_numpy)
        names = [n.decode() if isinstance(n, bytes) else n for n in result.as_numpy("top_names")[i]]
        assert names == [t["name"] for t in want["top"]]
    # The same images preprocessed by the client (as the model's record says) give the same logits.
    model = load_source(CLASSIFIER)
    task = task_of(model)
    x = np.stack([task.read(str(p), model)[0].input.numpy() for p in INPUTS[:4]]).astype(np.float32)
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    from_tensor = client.infer(CLASSIFIER, [tensor], outputs=outputs(["top_classes", "logits"], binary))
    assert from_tensor.as_numpy("top_classes").tolist() == top.tolist()
    from_files = client.infer(CLASSIFIER, [files_input(INPUTS[:4], True)], outputs=outputs(["logits"], binary))
    np.testing.assert_allclose(from_tensor.as_numpy("logits"), from_files.as_numpy("logits"), atol=1e-5)


def test_top_k_is_a_request_parameter_and_every_output_comes_without_a_list(client):
    result = client.infer(CLASSIFIER, [files_input(INPUTS[:2], True)], parameters={"top_k": 2})
    assert result.as_numpy("top_classes").shape == (2, 2)  # no outputs named: all of them, binary
    assert {o["name"] for o in result.get_response()["outputs"]} == {
        "logits",
        "probabilities",
        "top_classes",
        "top_probabilities",
        "top_names",
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_segmenter_answers_its_mask_as_predict(client, models, binary):
    image = scene(models["folder"], (64, 96))
    (expected,) = predicted(str(models["segmenter"]), str(image))
    result = client.infer("segmenter", [files_input([image], True)], outputs=outputs(["mask"], binary))
    mask = result.as_numpy("mask")
    assert mask.shape == (1, 64, 96) and mask.dtype == np.int32
    classes = ["background", "T-shirt/top", "Trouser"]
    shares = {classes[c]: n / mask.size for c, n in enumerate(np.bincount(mask.ravel(), minlength=3)) if n}
    assert shares == pytest.approx(expected["classes"], abs=1e-9)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_detector_answers_its_boxes_as_predict(client, models, binary):
    image = scene(models["folder"], (64, 96))
    (expected,) = predicted(str(models["detector"]), str(image))
    names = ["boxes", "scores", "labels", "names"]
    result = client.infer("detector", [files_input([image], True)], outputs=outputs(names, binary))
    boxes, scores, labels = (result.as_numpy(n)[0] for n in ("boxes", "scores", "labels"))
    assert len(expected["boxes"]) == len(boxes) > 0
    for want, box, score, label in zip(expected["boxes"], boxes, scores, labels, strict=True):
        np.testing.assert_allclose(box, want["box"], atol=0.06)
        assert abs(score - want["score"]) < 1e-4 and label == want["label"]


def test_a_detector_batch_of_unequal_finds_is_padded(client, models):
    images = [scene(models["folder"], (64, 96), "a.png"), scene(models["folder"], (48, 48), "b.png")]
    result = client.infer("detector", [files_input(images, True)], parameters={"min_score": 0.9})
    labels, scores = result.as_numpy("labels"), result.as_numpy("scores")
    assert labels.shape == scores.shape and labels.shape[0] == 2
    # Padding: label -1 and score 0 past each image's own boxes, none of which scores under 0.9.
    assert ((labels == -1) == (scores == 0)).all() and (scores[labels >= 0] >= 0.9).all()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_sequence_model_answers_as_predict(client, models, tmp_path, binary):
    series = np.sin(np.arange(40) / 3)
    path = tmp_path / "series.txt"
    np.savetxt(path, series[None])
    (expected,) = predicted(str(models["series"]), str(path))
    body = np.array([json.dumps({"series": series.tolist()}).encode()], dtype=np.object_)
    tensor = triton.InferInput("file", [1], "BYTES")
    tensor.set_data_from_numpy(body, binary_data=binary)
    result = client.infer("series", [tensor], outputs=outputs(["top_classes", "top_probabilities"], binary))
    assert result.as_numpy("top_classes")[0].tolist() == [t["class"] for t in expected["top"]]
    np.testing.assert_allclose(result.as_numpy("top_probabilities")[0], [t["prob"] for t in expected["top"]], atol=1e-5)
    # The series z-normalised by the client: an FP32 [1, 1, 40] tensor.
    z = ((series - series.mean()) / series.std()).astype(np.float32)[None, None]
    tensor = triton.InferInput("input", [1, 1, 40], "FP32")
    tensor.set_data_from_numpy(z, binary_data=binary)
    result = client.infer("series", [tensor], outputs=outputs(["top_probabilities"], binary))
    np.testing.assert_allclose(result.as_numpy("top_probabilities")[0], [t["prob"] for t in expected["top"]], atol=1e-4)


def test_the_v1_routes_serve_each_model_by_name(server, models):
    image = scene(models["folder"], (64, 96))
    reply = httpx.post(f"{server.url}/v1/models/segmenter/predict", files=[("file", ("s.png", image.read_bytes()))])
    assert reply.status_code == 200 and "classes" in reply.json()["predictions"][0]
    assert httpx.get(f"{server.url}/v1/models/detector").json()["task"] == "detection"
    assert httpx.get(f"{server.url}/v1/model").json()["served_as"] == CLASSIFIER  # the first model
    assert httpx.post(f"{server.url}/v1/models/nope/predict").status_code == 404


def infer_raw(server, model, header, binary=b"", **headers):
    body = json.dumps(header).encode()
    if binary:
        headers["Inference-Header-Content-Length"] = str(len(body))
    return httpx.post(f"{server.url}/v2/models/{model}/infer", content=body + binary, headers=headers, timeout=30)


def fp32(shape, data=None, **params):
    tensor = {"name": "input", "datatype": "FP32", "shape": shape, "parameters": params}
    return {"inputs": [tensor if data is None else {**tensor, "data": data}]}


@pytest.mark.parametrize(
    ("header", "binary", "message"),
    [
        (fp32([1, 1, 28, 28], [0.0] * 783), b"", "holds 784 elements, 'data' 783"),
        (fp32([1, 1, 28, 28], binary_data_size=3136), b"\0" * 3132, "binary_data_size 3136, but 3,132 bytes"),
        (fp32([2, 1, 28, 28], binary_data_size=3136), b"\0" * 3136, "is 6,272 bytes, the data 3,136"),
        (fp32([1, 1, 27, 28], [0.0] * 756), b"", "the model takes [-1, 1, 28, 28]"),
        (fp32([9, 1, 28, 28], binary_data_size=9 * 3136), b"\0" * 9 * 3136, "1 to 8 items"),
        (fp32([1, 1, 28, 28], [float("nan")] * 784), b"", "NaN"),
        ({"inputs": [{"name": "input", "datatype": "FP16", "shape": [1, 1, 28, 28], "data": []}]}, b"", "FP16"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}, b"", "inputs are input, file"),
        ({"inputs": []}, b"", "one tensor"),
        ({"inputs": [{"name": "file", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}, b"", "file[0]"),
        ({**fp32([1, 1, 28, 28], [0] * 784), "outputs": [{"name": "z"}]}, b"", "the model's outputs are"),
        ({**fp32([1, 1, 28, 28], [0] * 784), "parameters": {"top_k": 0}}, b"", "top_k"),
        (fp32([1, 1, 28, 28], ["a"] * 784), b"", "must be numbers"),
        (fp32([1, -1, 28, 28], [0] * 784), b"", "'shape' must be"),
    ],
)
def test_hostile_requests_get_a_400_that_names_the_problem(server, header, binary, message):
    reply = infer_raw(server, CLASSIFIER, header, binary)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]


def test_framing_compression_and_size_limits(server):
    url = f"{server.url}/v2/models/{CLASSIFIER}/infer"
    assert httpx.post(url, content=b"{not json").status_code == 400
    reply = httpx.post(url, content=b"{}", headers={"Inference-Header-Content-Length": "99"})
    assert reply.status_code == 400 and "Inference-Header-Content-Length" in reply.json()["error"]
    bomb = gzip.compress(b" " * (8 * 2**20))  # 8 MiB of spaces in a few KiB: past the 1 MiB limit inflated
    reply = httpx.post(url, content=bomb, headers={"Content-Encoding": "gzip"})
    assert reply.status_code == 413 and "inflates past" in reply.json()["error"]
    reply = httpx.post(url, content=b"x", headers={"Content-Encoding": "br"})
    assert reply.status_code == 415
    assert httpx.post(url, content=b"\0" * (2 * 2**20)).status_code == 413
    good = gzip.compress(json.dumps(fp32([1, 1, 28, 28], [0.0] * 784)).encode())
    reply = httpx.post(url, content=good, headers={"Content-Encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    assert httpx.get(f"{server.url}/v2/models/{CLASSIFIER}/versions/7").status_code == 404
    assert httpx.get(f"{server.url}/v2/health/ready").json() == {"ready": True}


def test_a_model_repository_is_served_and_a_broken_model_is_not_fatal(models, tmp_path):
    repo = tmp_path / "repo"
    for version in ("1", "3"):
        (repo / "scenes" / version).mkdir(parents=True)
        shutil.copy(models["segmenter"], repo / "scenes" / version / "model.safetensors")
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "1" / "model.safetensors").write_bytes(b"not a model")
    (repo / "unversioned").mkdir()
    srv = Server([], "--model-repository", str(repo), "--precision", "fp32", log=tmp_path / "repo.log")
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{srv.port}")
        index = {m["name"]: m for m in client.get_model_repository_index()}
        assert {n: (m["state"], m["version"]) for n, m in index.items()} == {
            "broken": ("UNAVAILABLE", "1"),
            "scenes": ("READY", "3"),
            "unversioned": ("UNAVAILABLE", "1"),
        }
        assert "broken" in index["broken"]["reason"] and "no numbered version" in index["unversioned"]["reason"]
        assert client.is_model_ready("scenes", "3") and not client.is_model_ready("broken")
        assert client.is_server_ready()  # the models that loaded are served
        image = scene(tmp_path, (32, 32))
        result = client.infer("scenes", [files_input([image], True)], model_version="3")
        assert result.as_numpy("mask").shape == (1, 32, 32)
        with pytest.raises(InferenceServerException, match="could not be loaded"):
            client.infer("broken", [files_input([image], True)])
        with pytest.raises(InferenceServerException, match="version 3 is served"):
            client.infer("scenes", [files_input([image], True)], model_version="1")
    finally:
        assert srv.stop() in (0, -signal.SIGTERM)


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(data)
        conn.settimeout(20)
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    return reply


def counted(server, status: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("resnetkit_requests_total{") and f'status="{status}"' in line
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v2/models/x/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
    ],
    ids=["request-line", "chunk-size", "two-lengths"],
)
def test_malformed_framing_answers_json_and_counts_as_a_400(server, request_bytes):
    before_400, before_415 = counted(server, "400"), counted(server, "415")
    reply = raw_exchange(server.port, request_bytes)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head.lower(), reply
    assert json.loads(body)["error"].startswith("malformed HTTP request")
    assert counted(server, "400") == before_400 + 1 and counted(server, "415") == before_415


def test_the_docs_client_example_runs(server, tmp_path, monkeypatch, capsys):
    page = (Path(__file__).parents[1] / "docs" / "reference" / "serving.md").read_text(encoding="utf-8")
    section = page.split("## The Open Inference Protocol (v2)", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    for name, source in (("shirt.png", INPUTS[0]), ("boot.png", INPUTS[1])):
        shutil.copy(source, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    exec(code.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}"), {})
    printed = capsys.readouterr().out
    assert printed.count("[[") == 2  # the two [2, 3] arrays


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name a SOURCE"),
        (["a=resnet20.fashion_mnist", "a=resnet20.fashion_mnist"], "two models would be served as 'a'"),
        (["--model-repository", "/no/such/folder"], "--model-repository /no/such/folder: no such folder"),
    ],
)
def test_serve_arguments_are_one_line_and_exit_2(args, message, capsys):
    from serve_helpers import free_port

    assert main(["serve", *args, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
