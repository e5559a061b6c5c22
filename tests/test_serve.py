"""``resnetkit serve`` against a real uvicorn on 127.0.0.1: real Fashion-MNIST images get the
classes ``resnetkit predict`` gives, hostile input gets a JSON 4xx that names it and never takes
the server down, 200 concurrent requests are answered, memory stays bounded, SIGTERM is graceful."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from resnetkit.cli import main
from serve_helpers import INPUTS, Server, as_format

LIMIT_MB = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    flags = ["--max-upload-mb", str(LIMIT_MB), "--max-images", "8", "--max-image-pixels", "1000000"]
    srv = Server("resnet20.fashion_mnist", *flags, "--body-timeout", "2", log=log)
    yield srv
    # uvicorn re-raises the SIGTERM it handled once it has shut down: the status of a process ended by it
    assert srv.stop() in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text() and "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def expected():
    """``resnetkit predict``'s top class for each committed real test image."""
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["predict", "resnet20.fashion_mnist", *map(str, INPUTS), "--json"]) == 0
    return {p.name: r["top"][0]["class"] for p, r in zip(INPUTS, json.loads(out.getvalue()), strict=True)}


def post(server, files=None, **kw):
    return httpx.post(f"{server.url}/v1/predict", files=files, timeout=30, **kw)


def top1(response):
    assert response.status_code == 200, response.text
    return [p["top"][0]["class"] for p in response.json()["predictions"]]


def test_health_readiness_model_card_and_docs(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "alive"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
    card = httpx.get(f"{server.url}/v1/model").json()
    assert card["classes"][6] == "Shirt" and card["input"] == {
        "channels": 1,
        "size": [28, 28],
        "mean": [0.286],
        "std": [0.353],
    }
    assert card["accuracy"]["tta_flip"]["top1"] == pytest.approx(0.9504) and "OpenVINO" in card["inference"]["path"]
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/explain", "/v1/model", "/healthz", "/readyz"} <= set(paths)
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_real_images_as_png_and_jpeg_get_predicts_classes(server, expected):
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in INPUTS[:8]]
    answer = post(server, files)
    body = answer.json()
    assert [p["image"] for p in body["predictions"]] == [p.name for p in INPUTS[:8]]  # in the order sent
    assert top1(answer) == [expected[p.name] for p in INPUTS[:8]]
    assert body["model"] == "resnet20" and body["ms"] > 0 and len(body["predictions"][0]["top"]) == 5
    jpeg = [("file", (p.name, as_format(p, "JPEG", quality=95), "image/jpeg")) for p in INPUTS[:8]]
    assert top1(post(server, jpeg)) == [expected[p.name] for p in INPUTS[:8]]
    raw = post(server, content=INPUTS[9].read_bytes(), headers={"content-type": "image/png"}, params={"top_k": 2})
    assert top1(raw) == [expected[INPUTS[9].name]] and len(raw.json()["predictions"][0]["top"]) == 2


def _odd_versions(path):
    gray = Image.open(path).convert("L")
    arr = np.asarray(gray)
    out = {}
    for mode in ("RGBA", "LA"):
        buf = io.BytesIO()
        gray.convert(mode).save(buf, format="PNG")
        out[mode] = buf.getvalue()
    out["CMYK JPEG"] = as_format(path, "JPEG", mode="CMYK", quality=95)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint16) * 257).save(buf, format="PNG")  # 16-bit samples
    out["16-bit"] = buf.getvalue()
    buf = io.BytesIO()
    gray.convert("P").save(buf, format="PNG", transparency=0)  # index 0 is black: transparent onto black
    out["palette + transparency"] = buf.getvalue()
    buf = io.BytesIO()
    inverted = Image.fromarray(255 - arr)
    gray.save(buf, format="GIF", save_all=True, append_images=[inverted], duration=100, loop=0)
    out["animated GIF"] = buf.getvalue()
    return out


def test_odd_but_valid_images_are_answered_right(server, expected):
    path = INPUTS[1]
    versions = _odd_versions(path)
    files = [("file", (f"{kind}.img", data, "application/octet-stream")) for kind, data in versions.items()]
    assert len(files) == 6
    assert top1(post(server, files)) == [expected[path.name]] * len(files)


def _truncated():
    return INPUTS[0].read_bytes()[:60]


def _bomb():
    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, format="PNG")  # 25M pixels in a few kB
    return buf.getvalue()


@pytest.mark.parametrize(
    ("what", "data", "status", "words"),
    [
        ("not an image", b"%PDF-1.4 not an image at all", 400, "not an image"),
        ("PostScript", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n", 400, "not an image"),
        ("zero bytes", b"", 400, "empty"),
        ("truncated", None, 400, "unreadable image"),
        ("decompression bomb", None, 400, "decompression bombs"),
    ],
)
def test_bad_images_are_refused_by_name(server, what, data, status, words):
    data = {"truncated": _truncated, "decompression bomb": _bomb}.get(what, lambda: data)()
    answer = post(server, [("file", ("evil.png", data, "image/png"))])
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and "evil.png" in answer.json()["error"]


def test_bad_requests_get_the_status_that_names_them(server):
    big = b"\0" * (LIMIT_MB * 1024 * 1024 + 10)
    answer = post(server, [("file", ("big.png", big, "image/png"))])
    assert answer.status_code == 413 and "--max-upload-mb" in answer.json()["error"]

    def chunks():  # no Content-Length: refused once the streamed body passes the limit
        for _ in range(LIMIT_MB * 16 + 2):
            yield b"\0" * 65536

    answer = httpx.post(f"{server.url}/v1/predict", content=chunks(), headers={"content-type": "image/png"})
    assert answer.status_code == 413
    answer = post(server, content=b"hello", headers={"content-type": "text/plain"})
    assert answer.status_code == 415 and "text/plain" in answer.json()["error"]
    many = [("file", (p.name, p.read_bytes(), "image/png")) for p in INPUTS[:9]]
    answer = post(server, many)
    assert answer.status_code == 413 and "images in one request" in answer.json()["error"]
    answer = post(server, [("other", ("x.png", INPUTS[0].read_bytes(), "image/png"))])
    assert answer.status_code == 400 and "'file'" in answer.json()["error"]
    answer = post(server, [("file", ("x.png", INPUTS[0].read_bytes(), "image/png"))], params={"top_k": 0})
    assert answer.status_code == 422 and "top_k" in answer.json()["error"]
    answer = httpx.post(f"{server.url}/v1/explain?class=12", files=[("file", ("x.png", INPUTS[0].read_bytes()))])
    assert answer.status_code == 400 and "class 12" in answer.json()["error"]
    assert httpx.get(f"{server.url}/no/such/route").json() == {"error": "Not Found"}
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # still up


def test_a_long_strip_is_answered_without_resizing_it_whole(server):
    buf = io.BytesIO()
    Image.new("L", (40_000, 1), 128).save(buf, format="PNG")  # 40,000 pixels in about 100 bytes
    start = server.rss_bytes()
    answer = post(server, [("file", ("strip.png", buf.getvalue(), "image/png"))])
    assert answer.status_code == 200 and server.rss_bytes() - start < 200 * 2**20


def test_an_early_refusal_closes_the_connection_instead_of_draining_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"
        )
        client.settimeout(10)
        reply = b""
        while chunk := client.recv(4096):  # the server answers and closes; we never finish the body
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 415") and b"connection: close" in reply.lower()


def test_explain_returns_a_png_overlay_for_the_top_class(server, expected):
    path = INPUTS[4]
    answer = httpx.post(f"{server.url}/v1/explain", files=[("file", (path.name, path.read_bytes(), "image/png"))])
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert int(answer.headers["x-class"]) == expected[path.name]
    overlay = Image.open(io.BytesIO(answer.content))
    assert overlay.size == (224, 224) and overlay.mode == "RGB"
    other = httpx.post(f"{server.url}/v1/explain?class=0", files=[("file", (path.name, path.read_bytes()))])
    assert other.headers["x-class"] == "0" and other.content != answer.content


def test_a_stalled_client_is_cut_off_and_holds_nobody_up(server):
    with socket.create_connection(("127.0.0.1", server.port)) as stalled:
        stalled.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
            + b"\x89PNG"
        )
        start = time.monotonic()
        assert top1(post(server, [("file", ("a.png", INPUTS[0].read_bytes(), "image/png"))]))  # others are served
        assert time.monotonic() - start < 2
        stalled.settimeout(10)
        reply = b""
        while chunk := stalled.recv(4096):  # the server answers, then closes the connection
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 408") and "timed out" in reply and time.monotonic() - start < 8


def test_200_concurrent_requests_are_all_answered_right_and_batched(server, expected):
    def batches():
        text = httpx.get(f"{server.url}/metrics").text
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith(("resnetkit_batch_images_count", "resnetkit_batch_images_sum"))
        }

    before = batches()

    async def run():
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200), timeout=60) as client:

            async def one(i):
                p = INPUTS[i % len(INPUTS)]
                r = await client.post(
                    f"{server.url}/v1/predict", files=[("file", (p.name, p.read_bytes(), "image/png"))]
                )
                return p.name, r

            return await asyncio.gather(*(one(i) for i in range(200)))

    answers = asyncio.run(run())
    assert all(r.status_code == 200 for _, r in answers)
    assert all(top1(r) == [expected[name]] for name, r in answers)
    after = batches()
    images = after["resnetkit_batch_images_sum"] - before["resnetkit_batch_images_sum"]
    count = after["resnetkit_batch_images_count"] - before["resnetkit_batch_images_count"]
    assert images == 400  # each image and its mirror (the model's flip TTA)
    assert count <= images / 4  # dynamic batching put several requests into each model call
    text = httpx.get(f"{server.url}/metrics").text
    assert 'resnetkit_requests_total{route="/v1/predict",status="200"}' in text and "resnetkit_queue_images" in text


def test_memory_stays_bounded_over_1000_requests(server):
    files = [("file", (INPUTS[2].name, INPUTS[2].read_bytes(), "image/png"))]

    async def run(n):
        async with httpx.AsyncClient(timeout=60) as client:
            sem = asyncio.Semaphore(16)

            async def one():
                async with sem:
                    r = await client.post(f"{server.url}/v1/predict", files=files)
                    assert r.status_code == 200

            await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(run(200))  # warm: allocator pools and caches reach their working size
    warm = server.rss_bytes()
    asyncio.run(run(1000))
    grown = server.rss_bytes() - warm
    assert grown < 40 * 1024 * 1024, f"RSS grew {grown / 2**20:.1f} MiB over 1000 requests"


def test_sigterm_lets_in_flight_requests_finish(tmp_path):
    srv = Server("resnet20.fashion_mnist", log=tmp_path / "log")
    data = INPUTS[0].read_bytes()
    started, results = threading.Event(), []

    def body():  # half the image, then (after SIGTERM has been sent) the rest
        yield data[: len(data) // 2]
        started.set()
        time.sleep(1.0)
        yield data[len(data) // 2 :]

    def request():
        results.append(httpx.post(f"{srv.url}/v1/predict", content=body(), headers={"content-type": "image/png"}))

    thread = threading.Thread(target=request)
    thread.start()
    assert started.wait(20)
    time.sleep(0.2)  # the server has the request's headers and half its body
    assert srv.stop() in (0, -signal.SIGTERM)
    thread.join(30)
    log = (tmp_path / "log").read_text()
    assert results and results[0].status_code == 200, log
    assert top1(results[0]) and "Traceback" not in log


def test_a_bad_source_is_one_line_before_any_server_starts(capsys):
    assert main(["serve", "no-such-model.fashion_mnist", "--port", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model" in err[0]
