"""The Open Inference Protocol ("v2", as NVIDIA Triton, KServe, Seldon MLServer and OpenVINO
Model Server speak it, REST form: kserve/open-inference-protocol ``inference_rest.md``) and
Triton's binary tensor data extension: the request's JSON header, ``Inference-Header-Content-Length``
bytes long, followed by the raw bytes of the inputs that give ``parameters.binary_data_size``;
outputs asked for with ``binary_data`` come back the same way.

What a model takes and answers comes from its task (``Task.tensor_input``, ``tensor_outputs``,
``tensor_encode``): this module knows tensors, not tasks. Every model takes two inputs, one per
request: ``input`` (FP32, the task's preprocessed tensor) or ``file`` (BYTES, each element one
body as ``/v1/predict`` takes it: an encoded image, or a sequence model's JSON)."""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..tasks import PredictOptions, Prepared, Task, TensorSpec
from .decode import HTTPError

FILE_INPUT = "file"
DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
EXTENSIONS = ["binary_tensor_data", "model_repository"]

# Triton's classification extension: an output parameter (not resnetkit's classification task).
TRITON_CLASSIFICATION = "classification"


@dataclass
class TensorRequest:
    """One inference request, checked: the items to predict and how each output is answered."""

    id: str | None
    inputs: list[Any]  # per item: a float tensor (``input``) or the bytes of one body (``file``)
    from_files: bool
    outputs: list[tuple[str, bool]]  # (name, as binary data)
    options: PredictOptions


def input_specs(task: Task, model: Any) -> list[TensorSpec]:
    specs = [TensorSpec(FILE_INPUT, "BYTES", ())]
    tensor = task.tensor_input(model)
    return ([tensor] if tensor is not None else []) + specs


def metadata(name: str, version: str, task: Task, model: Any) -> dict[str, Any]:
    """The model metadata response: the batch dimension is the first, -1 (as every size that varies)."""

    def described(spec: TensorSpec) -> dict[str, Any]:
        return {"name": spec.name, "datatype": spec.datatype, "shape": [-1, *spec.shape]}

    return {
        "name": name,
        "versions": [version],
        "platform": f"resnetkit_{task.name}",
        "inputs": [described(s) for s in input_specs(task, model)],
        "outputs": [described(s) for s in task.tensor_outputs(model)],
    }


def body_parts(body: bytes, header_length: str | None, encoding: str | None, max_bytes: int) -> tuple[dict, bytes]:
    """The JSON header of an inference request and the binary data after it."""
    body = _decompressed(body, encoding, max_bytes)
    if header_length is None:
        split = len(body)
    else:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise HTTPError(
                400, f"Inference-Header-Content-Length {header_length!r}: not a length within the {len(body)}-byte body"
            )
        split = int(header_length)
    try:
        header = json.loads(body[:split])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise HTTPError(400, f"the inference request is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise HTTPError(400, "the inference request must be a JSON object")
    return header, body[split:]


def _decompressed(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """A gzip or deflate body (tritonclient's ``request_compression_algorithm``), inflated to at
    most ``max_bytes``: a small bomb is refused before it grows."""
    kind = (encoding or "identity").strip().lower()
    if kind == "identity":
        return body
    if kind not in ("gzip", "deflate"):
        raise HTTPError(415, f"Content-Encoding {kind!r}: send gzip, deflate or none")
    inflate = zlib.decompressobj(31 if kind == "gzip" else 15)
    try:
        out = inflate.decompress(body, max_bytes + 1)
    except zlib.error as e:
        raise HTTPError(400, f"the {kind} body does not inflate ({e})") from None
    if len(out) > max_bytes or inflate.unconsumed_tail:
        raise HTTPError(413, f"the {kind} body inflates past the limit of {max_bytes:,} bytes (--max-upload-mb)")
    return out


def parse_request(
    header: dict,
    binary: bytes,
    task: Task,
    model: Any,
    max_items: int,
    max_pixels: int,
    top_k: int,
) -> TensorRequest:
    """The request checked against the model's metadata and the server's limits before any
    tensor is made: the input's name, datatype and shape, the element count against the data."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        names = ", ".join(s.name for s in input_specs(task, model))
        raise HTTPError(400, f"'inputs' must hold one tensor, one of: {names}")
    given = inputs[0]
    specs = {s.name: s for s in input_specs(task, model)}
    name = given.get("name")
    if name not in specs:
        raise HTTPError(400, f"input {name!r}: the model's inputs are {', '.join(specs)}")
    spec = specs[name]
    datatype, shape = given.get("datatype"), given.get("shape")
    if datatype != spec.datatype:
        raise HTTPError(400, f"input {name!r}: datatype {datatype!r}, the model takes {spec.datatype}")
    if not isinstance(shape, list) or not shape or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise HTTPError(400, f"input {name!r}: 'shape' must be a list of sizes, batch first")
    count = shape[0]
    if not 1 <= count <= max_items:
        raise HTTPError(400, f"input {name!r}: a batch of {count}; 1 to {max_items} items (--max-images)")
    _check_shape(name, spec, shape, max_pixels)
    params = given.get("parameters") or {}
    if not isinstance(params, dict):
        raise HTTPError(400, f"input {name!r}: 'parameters' must be an object")
    elements = math.prod(shape)
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        if not isinstance(size, int) or size != len(binary):
            raise HTTPError(
                400, f"input {name!r}: binary_data_size {size!r}, but {len(binary):,} bytes follow the JSON header"
            )
        if "data" in given:
            raise HTTPError(400, f"input {name!r}: both 'data' and binary data")
        items = _binary_items(name, spec, shape, binary)
    else:
        if binary:
            raise HTTPError(400, f"{len(binary):,} bytes follow the JSON header, but no input gives binary_data_size")
        items = _json_items(name, spec, shape, given.get("data"), elements)
    return TensorRequest(
        id=header.get("id") if isinstance(header.get("id"), str) else None,
        inputs=items,
        from_files=spec.name == FILE_INPUT,
        outputs=_outputs(header, task, model),
        options=_options(header, top_k),
    )


def _check_shape(name: str, spec: TensorSpec, shape: list[int], max_pixels: int) -> None:
    item = shape[1:]
    if spec.datatype == "BYTES":
        if math.prod(item) != 1:
            raise HTTPError(400, f"input {name!r}: shape {shape}; one body per item, [N] or [N, 1]")
        return
    want = list(spec.shape)
    if len(item) != len(want) or any(w not in (-1, n) for w, n in zip(want, item, strict=True)):
        raise HTTPError(400, f"input {name!r}: shape {shape}; the model takes {[-1, *want]}")
    if 0 in item:
        raise HTTPError(400, f"input {name!r}: shape {shape} is empty")
    if len(item) >= 3 and item[-1] * item[-2] > max_pixels:
        raise HTTPError(400, f"input {name!r}: {item[-1]}x{item[-2]} pixels, over --max-image-pixels {max_pixels:,}")


def _binary_items(name: str, spec: TensorSpec, shape: list[int], binary: bytes) -> list[Any]:
    if spec.datatype == "BYTES":
        elements = _bytes_elements(name, binary)
        if len(elements) != shape[0]:
            raise HTTPError(400, f"input {name!r}: shape {shape} but {len(elements)} elements in the binary data")
        return elements
    dtype = np.dtype(DTYPES[spec.datatype]).newbyteorder("<")
    expected = math.prod(shape) * dtype.itemsize
    if len(binary) != expected:
        raise HTTPError(
            400, f"input {name!r}: shape {shape} of {spec.datatype} is {expected:,} bytes, the data {len(binary):,}"
        )
    array = np.frombuffer(binary, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape)
    return list(torch.from_numpy(array))


def _bytes_elements(name: str, binary: bytes) -> list[bytes]:
    """Triton's BYTES serialization: each element its length (4 bytes, little-endian), then itself."""
    elements, at = [], 0
    while at < len(binary):
        if at + 4 > len(binary):
            raise HTTPError(400, f"input {name!r}: the binary BYTES data ends inside a length")
        (length,) = struct.unpack_from("<I", binary, at)
        at += 4
        if at + length > len(binary):
            raise HTTPError(400, f"input {name!r}: an element of {length:,} bytes runs past the data")
        elements.append(binary[at : at + length])
        at += length
    return elements


def _json_items(name: str, spec: TensorSpec, shape: list[int], data: Any, elements: int) -> list[Any]:
    if not isinstance(data, list):
        raise HTTPError(400, f"input {name!r}: no 'data' (a list, row-major) and no binary_data_size")
    if spec.datatype == "BYTES":
        flat = _flat(data)
        if flat is None or len(flat) != elements or not all(isinstance(e, str) for e in flat):
            raise HTTPError(400, f"input {name!r}: 'data' must be {elements} string(s) for shape {shape}")
        return [e.encode("utf-8") for e in flat]
    try:
        array = np.asarray(data, dtype=DTYPES[spec.datatype])
    except (TypeError, ValueError, OverflowError):
        raise HTTPError(400, f"input {name!r}: 'data' must be numbers, flat or nested row-major") from None
    if array.size != elements:
        raise HTTPError(400, f"input {name!r}: shape {shape} holds {elements:,} elements, 'data' {array.size:,}")
    return list(torch.from_numpy(array.reshape(shape)))


def _flat(data: list, depth: int = 0) -> list | None:
    """A nested list flattened (row-major), or None past a depth no tensor of ours has."""
    out: list = []
    for value in data:
        if not isinstance(value, list):
            out.append(value)
            continue
        inner = _flat(value, depth + 1) if depth < 8 else None
        if inner is None:
            return None
        out.extend(inner)
    return out


def _outputs(header: dict, task: Task, model: Any) -> list[tuple[str, bool]]:
    known = [s.name for s in task.tensor_outputs(model)]
    params = header.get("parameters") or {}
    if not isinstance(params, dict):
        raise HTTPError(400, "'parameters' must be an object")
    binary_all = bool(params.get("binary_data_output", False))
    asked = header.get("outputs")
    if asked is None:
        return [(n, binary_all) for n in known]
    if not isinstance(asked, list) or not all(isinstance(o, dict) for o in asked):
        raise HTTPError(400, "'outputs' must be a list of objects with a 'name'")
    chosen = []
    for output in asked:
        name, oparams = output.get("name"), output.get("parameters") or {}
        if name not in known:
            raise HTTPError(400, f"output {name!r}: the model's outputs are {', '.join(known)}")
        if not isinstance(oparams, dict):
            raise HTTPError(400, f"output {name!r}: 'parameters' must be an object")
        if TRITON_CLASSIFICATION in oparams:
            raise HTTPError(400, f"output {name!r}: the classification extension is not served; ask for top_classes")
        chosen.append((name, bool(oparams.get("binary_data", binary_all))))
    return chosen


def _options(header: dict, top_k: int) -> PredictOptions:
    """The request's ``parameters``: ``top_k`` (classification) and ``min_score`` (detection)."""
    params = header.get("parameters") or {}
    k = params.get("top_k", top_k)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise HTTPError(400, f"parameter top_k {k!r}: a whole number of at least 1")
    score = params.get("min_score", 0.3)
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0 <= score <= 1:
        raise HTTPError(400, f"parameter min_score {score!r}: a number from 0 to 1")
    return PredictOptions(top_k=k, min_score=float(score), mask=False)


def response(
    model_name: str,
    version: str,
    request: TensorRequest,
    specs: Sequence[TensorSpec],
    encoded: list[dict[str, Any]],
) -> tuple[bytes, int | None]:
    """The inference response's body, and the length of its JSON header where binary data follows."""
    by_name = {s.name: s for s in specs}
    outputs, chunks = [], []
    for name, binary in request.outputs:
        spec = by_name[name]
        array = _stacked([e[name] for e in encoded], spec)
        entry: dict[str, Any] = {"name": name, "datatype": spec.datatype, "shape": list(array.shape)}
        if binary:
            raw = _serialized(array, spec)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = (
                [e.decode("utf-8", "replace") for e in array.ravel()]
                if spec.datatype == "BYTES"
                else array.ravel().tolist()
            )
        outputs.append(entry)
    head: dict[str, Any] = {"model_name": model_name, "model_version": version, "outputs": outputs}
    if request.id is not None:
        head["id"] = request.id
    text = json.dumps(head).encode()
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)


def _stacked(items: list[np.ndarray], spec: TensorSpec) -> np.ndarray:
    """Items as one batch tensor; items of unequal shapes are padded with the output's ``fill``."""
    dtype = object if spec.datatype == "BYTES" else DTYPES[spec.datatype]
    shape = tuple(max(s) for s in zip(*(a.shape for a in items), strict=True)) if items[0].ndim else ()
    out = np.full((len(items), *shape), spec.fill, dtype=dtype)
    for i, a in enumerate(items):
        index: tuple[Any, ...] = (i, *(slice(0, n) for n in a.shape))
        out[index] = a
    return out


def _serialized(array: np.ndarray, spec: TensorSpec) -> bytes:
    if spec.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(e)) + e for e in (bytes(v) for v in array.ravel()))
    return np.ascontiguousarray(array, dtype=np.dtype(DTYPES[spec.datatype]).newbyteorder("<")).tobytes()


def prepared_items(request: TensorRequest, task: Task, model: Any, decode: Any) -> list[Prepared]:
    """The items made ready: bodies decoded as ``/v1`` decodes uploads (``decode(data, name)``),
    tensors checked by the task. Runs off the event loop."""
    if request.from_files:
        return [decode(data, f"{FILE_INPUT}[{i}]") for i, data in enumerate(request.inputs)]
    ready = []
    for i, x in enumerate(request.inputs):
        try:
            ready.append(task.from_tensor(x, f"input[{i}]", model))
        except ValueError as e:
            raise HTTPError(400, f"input[{i}]: {e}") from None
    return ready
