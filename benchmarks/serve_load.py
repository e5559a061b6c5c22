"""Load on ``resnetkit serve`` over loopback: requests/s and p50/p99 latency at several
concurrencies, dynamic batching on and off, against the same model's offline batched images/s
measured in the same run (the server's cost is the gap between them).

    python benchmarks/serve_load.py [--models resnet20.fashion_mnist resnet50] [--seconds 6] [--json FILE]
                                    [--protocols v1 v2] [--batching on off]

``resnet50`` is a freshly built ResNet-50 (weights do not change speed) saved as a 224px RGB
model and sent 224px JPEGs; ``resnet20.fashion_mnist`` is the shipped model, sent real
Fashion-MNIST test PNGs (its recipe's flip TTA runs each image twice, offline as served). One
image a request; the client is a separate process of bounded concurrency. Nothing is asserted.
``v1`` posts each image as multipart; ``v2`` posts it as the Open Inference Protocol's binary
tensor data (a BYTES ``file`` input, the top classes asked back in binary), as tritonclient does.
``--client raw`` (the default) sends ready-made HTTP/1.1 bytes over keep-alive sockets and reads
back only the status and the body's length, as wrk and h2load do, so the load generator's CPU stays
small beside the server's on a shared machine; ``--client httpx`` builds each request with httpx,
as a Python service calling the server would.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from resnetkit.artifacts import export_weights, trained_tta_flip
from resnetkit.infer import fast_path, input_spec, load_source
from resnetkit.models import create_model
from resnetkit.serve.seam import served_name
from serve_helpers import INPUTS, Server


def offline_images_per_second(source: str, batch: int, seconds: float) -> tuple[float, str]:
    """The fast path the server runs, fed ready tensors in batches of ``batch`` (with the
    model's flip TTA where it has one, as the server runs it)."""
    model = load_source(source)
    runner = fast_path(model, "auto")
    spec = input_spec(model)
    passes = 2 if trained_tta_flip(model) else 1
    x = torch.randn(batch * passes, spec.in_chans, *spec.image_size)
    with torch.inference_mode():
        runner(x)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or count < 3:
            runner(x)
            count += 1
    return count * batch / (time.perf_counter() - start), getattr(runner, "path", "")


def v2_request(body: tuple[str, bytes, str]) -> tuple[bytes, dict[str, str]]:
    """One image as an inference request in binary tensor data: the JSON header, then the BYTES
    element (its 4-byte little-endian length, then the file)."""
    data = body[1]
    element = len(data).to_bytes(4, "little") + data
    header = {
        "inputs": [
            {"name": "file", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(element)}}
        ],
        "outputs": [{"name": "top_classes", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    return head + element, {"Inference-Header-Content-Length": str(len(head))}


def multipart(body: tuple[str, bytes, str], boundary: str = "resnetkit-load") -> tuple[bytes, dict[str, str]]:
    """One image as the ``file`` field of a multipart/form-data body, as /v1/predict takes it."""
    name, data, kind = body
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
    head += f"Content-Type: {kind}\r\n\r\n"
    content = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return content, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def raw_requests(url: str, bodies: list[tuple[str, bytes, str]], v2_model: str | None) -> list[bytes]:
    """Every request of the load as the bytes sent on the wire (HTTP/1.1, keep-alive)."""
    host = url.split("://", 1)[1]
    path = f"/v2/models/{v2_model}/infer" if v2_model else "/v1/predict"
    out = []
    for body in bodies:
        content, headers = v2_request(body) if v2_model else multipart(body)
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(content)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode() + content)
    return out


async def load_raw(
    url: str, bodies: list[tuple[str, bytes, str]], concurrency: int, seconds: float, v2_model: str | None = None
) -> dict:
    """``load`` with the requests sent as ready bytes over ``concurrency`` keep-alive sockets, and
    the responses read to their Content-Length: a few microseconds of client CPU a request."""
    requests = raw_requests(url, bodies, v2_model)
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    latencies: list[float] = []
    errors = 0
    stop = 0.0

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> int:
        writer.write(requests[n % len(requests)])
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return int(head[9:12])

    async def worker(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        n = i
        while time.perf_counter() < stop:
            start = time.perf_counter()
            status = await exchange(reader, writer, n)
            n += concurrency
            latencies.append(time.perf_counter() - start)
            errors += status != 200

    streams = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
    await asyncio.gather(*(exchange(r, w, 0) for r, w in streams))  # warm, as ``load`` does
    stop = time.perf_counter() + seconds
    begin, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(i, r, w) for i, (r, w) in enumerate(streams)))
    elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
    for _, w in streams:
        w.close()
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed, "cpu": cpu}


async def load(
    url: str, bodies: list[tuple[str, bytes, str]], concurrency: int, seconds: float, v2_model: str | None = None
) -> dict:
    """``v2_model``: the model's name on the v2 routes, to send binary v2 requests; None: /v1 multipart."""
    latencies: list[float] = []
    v2_bodies = [v2_request(b) for b in bodies] if v2_model else []

    async def send(client: httpx.AsyncClient, n: int) -> httpx.Response:
        if v2_model:
            content, headers = v2_bodies[n % len(v2_bodies)]
            return await client.post(f"{url}/v2/models/{v2_model}/infer", content=content, headers=headers)
        name, data, kind = bodies[n % len(bodies)]
        return await client.post(f"{url}/v1/predict", files=[("file", (name, data, kind))])

    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        n = i
        while time.perf_counter() < stop:
            start = time.perf_counter()
            r = await send(client, n)
            n += concurrency
            latencies.append(time.perf_counter() - start)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        # Warm: every connection opened before the clock starts (32 connections at once can
        # overflow a small listen backlog, and a SYN retried after 1 s is no server cost).
        await asyncio.gather(*(send(client, 0) for _ in range(concurrency)))
        begin, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(i, client) for i in range(concurrency)))
        elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed, "cpu": cpu}


def _load_in_process(args: tuple) -> dict:
    client, *rest = args
    return asyncio.run((load_raw if client == "raw" else load)(*rest))


def load_from_processes(
    url: str,
    bodies: list[tuple[str, bytes, str]],
    concurrency: int,
    seconds: float,
    v2_model: str | None,
    per: int,
    client: str = "raw",
) -> dict:
    """``concurrency`` connections held by as many client processes as keep each at ``per`` or
    fewer: one httpx process's CPU per request grows with its connections (3.1 ms at 8, 8.5 ms at
    32, measured), so one process of 32 measured the load generator as much as the server."""
    processes = -(-concurrency // per)
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_load_in_process, [(client, url, bodies, c, seconds, v2_model) for c in shares])
    latencies = sorted(t for p in parts for t in p["latencies"])
    elapsed = max(p["elapsed"] for p in parts)
    return {
        "concurrency": concurrency,
        "client": client,
        "client_processes": processes,
        "requests": len(latencies),
        "errors": sum(p["errors"] for p in parts),
        "requests_per_second": len(latencies) / elapsed,
        "client_cpu_cores": sum(p["cpu"] for p in parts) / elapsed,  # the clients' share (1.0: one core busy)
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
    }


def bodies_for(name: str) -> list[tuple[str, bytes, str]]:
    if name == "resnet50":
        out = []
        for p in INPUTS:
            buf = io.BytesIO()
            Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR).save(buf, format="JPEG", quality=90)
            out.append((p.stem + ".jpg", buf.getvalue(), "image/jpeg"))
        return out
    return [(p.name, p.read_bytes(), "image/png") for p in INPUTS]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet20.fashion_mnist", "resnet50"])
    p.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--protocols", nargs="+", choices=["v1", "v2"], default=["v1", "v2"])
    p.add_argument("--batching", nargs="+", choices=["on", "off"], default=["on", "off"])
    p.add_argument("--connections-per-client", type=int, default=8, help="connections one client process holds at most")
    p.add_argument("--client", choices=["raw", "httpx"], default="raw", help="how requests are sent (see above)")
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args()
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models:
            source = name
            if name == "resnet50":
                dataset = {"name": "synthetic", "in_chans": 3, "image_size": [224, 224]}
                source = str(export_weights(create_model("resnet50"), Path(tmp) / "resnet50.safetensors", dataset))
            offline, path = offline_images_per_second(source, 32, a.seconds)
            print(f"{name}: offline batched (batch 32) {offline:.1f} img/s on {path}", flush=True)
            row = {"model": name, "offline_images_per_second": offline, "path": path, "runs": []}
            policies = {"on": ["--max-batch", "32", "--max-wait-ms", "5"], "off": ["--max-batch", "1"]}
            for batching in a.batching:
                server = Server(source, *policies[batching], log=Path(tmp) / f"{name}-{batching}.log")
                try:
                    for protocol, c in ((p, c) for p in a.protocols for c in a.concurrency):
                        v2_model = served_name(source) if protocol == "v2" else None
                        r = load_from_processes(
                            server.url, bodies_for(name), c, a.seconds, v2_model, a.connections_per_client, a.client
                        )
                        r |= {
                            "batching": batching,
                            "protocol": protocol,
                            "of_offline": r["requests_per_second"] / offline,
                        }
                        row["runs"].append(r)
                        print(
                            f"  {protocol} batching {batching:<3} concurrency {c:>2}: "
                            f"{r['requests_per_second']:7.1f} req/s "
                            f"({100 * r['of_offline']:5.1f}% of offline)  p50 {r['p50_ms']:7.1f} ms  "
                            f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}  "
                            f"{r['client_processes']} client process(es), {r['client_cpu_cores']:.2f} cores",
                            flush=True,
                        )
                finally:
                    server.stop()
            report.append(row)
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
