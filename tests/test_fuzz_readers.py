"""Random and mutated bytes into every reader of outside files: only resnetkit's own one-line
errors come out, never another exception, a crash or a hang (bounded by hypothesis' deadline)."""

import io
import json
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from resnetkit.artifacts import load_checkpoint, load_model, save_checkpoint, save_weights
from resnetkit.data import DatasetError
from resnetkit.data.images import read_image
from resnetkit.models import WeightsError, create_model, read_state_dict
from resnetkit.train.config import ConfigError, load_config_file

OURS = (DatasetError, WeightsError, ConfigError)
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=5),
    derandomize=True,  # the same inputs every run: a CI failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(64 * 3).reshape(8, 8, 3) % 256).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(64 * 3).reshape(8, 8, 3) % 256).astype(np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _safetensors(tmp: Path) -> bytes:
    return save_weights({"w": torch.arange(6.0).view(2, 3)}, tmp / "seed.safetensors").read_bytes()


def _checkpoint(tmp: Path) -> bytes:
    return save_checkpoint(tmp / "seed.pt", model={"w": torch.ones(2)}, step=3).read_bytes()


@st.composite
def mutated(draw, seed: bytes):
    """``seed`` with a few bytes flipped, a slice cut out, or cut short: what a half-written or
    damaged file looks like."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if data and draw(st.booleans()):
        a = draw(st.integers(0, len(data) - 1))
        b = draw(st.integers(a, len(data)))
        del data[a:b]
    return bytes(data[: draw(st.integers(0, len(data)))])


def _payloads(seed: bytes):
    return st.one_of(st.binary(max_size=2048), mutated(seed))


def _only_our_errors(call, path: Path) -> None:
    try:
        call(path)
    except OURS as e:
        message = str(e)
        assert "\n" not in message.split("  ")[0] and str(path) in message, message


@pytest.mark.parametrize("seed", [_png(), _jpeg()], ids=["png", "jpeg"])
def test_image_reader(tmp_path, seed):
    @FUZZ
    @given(data=_payloads(seed))
    def run(data):
        path = tmp_path / "x.png"
        path.write_bytes(data)
        _only_our_errors(read_image, path)

    run()


def test_weights_reader(tmp_path):
    seed = _safetensors(tmp_path)

    @FUZZ
    @given(data=_payloads(seed), suffix=st.sampled_from([".safetensors", ".pth"]))
    def run(data, suffix):
        path = tmp_path / f"w{suffix}"
        path.write_bytes(data)
        _only_our_errors(read_state_dict, path)
        _only_our_errors(load_model, path)

    run()


def test_checkpoint_reader(tmp_path):
    seed = _checkpoint(tmp_path)

    @FUZZ
    @given(data=_payloads(seed))
    def run(data):
        path = tmp_path / "c.pt"
        path.write_bytes(data)
        _only_our_errors(load_checkpoint, path)
        _only_our_errors(load_model, path)

    run()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_reader(tmp_path, suffix):
    seed = (
        b"optim:\n  lr: 0.1\ndata:\n  name: digits\n"
        if suffix == ".yaml"
        else json.dumps({"optim": {"lr": 0.1}, "data": {"name": "digits"}}).encode()
    )

    @FUZZ
    @given(data=st.one_of(_payloads(seed), st.text(max_size=300).map(str.encode)))
    def run(data):
        path = tmp_path / f"c{suffix}"
        path.write_bytes(data)
        _only_our_errors(load_config_file, path)

    run()


def test_a_real_model_file_still_loads(tmp_path):
    from resnetkit.artifacts import export_weights

    path = export_weights(create_model("resnet20"), tmp_path / "m.safetensors", dataset={})
    assert load_model(path).num_classes == 10


# ---- Configs: nests of aliases and deep nesting --------------------------------------------------


def _laughs(width: int, depth: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    return "\n".join(lines) + f"\nmodel:\n  overrides:\n    x: *l{depth - 1}\n"


def _nested(depth: int, style: str) -> str:
    if style == "json":
        return '{"optim": ' + "[" * depth + "]" * depth + "}"
    if style == "flow":
        return "optim: " + "[" * depth + "]" * depth + "\n"
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "1\n"  # block mappings


def test_config_alias_bombs_and_deep_nesting(tmp_path):
    from resnetkit.train.config_parse import MAX_DEPTH, MAX_VALUES

    @settings(FUZZ, max_examples=30)
    @given(
        laughs=st.one_of(st.none(), st.tuples(st.integers(1, 12), st.integers(1, 12))),
        depth=st.integers(1, 3000),
        style=st.sampled_from(["json", "flow", "block"]),
    )
    def run(laughs, depth, style):
        if laughs is not None:
            path, text = tmp_path / "c.yaml", _laughs(*laughs)
            width, levels = laughs
            too_big = sum(width**i for i in range(1, levels + 1)) + 4 > MAX_VALUES or levels + 3 > MAX_DEPTH
        else:
            path, text = tmp_path / ("c.json" if style == "json" else "c.yaml"), _nested(depth, style)
            too_big = depth + 1 > MAX_DEPTH
        path.write_text(text)
        try:
            load_config_file(path)
        except ConfigError as e:
            assert "\n" not in str(e) and str(path) in str(e), str(e)
        else:
            assert not too_big, text[:200]

    run()


# ---- COCO JSON and PNG masks: dense folders --------------------------------------------------------

_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**400), 10**400))


@st.composite
def _coco(draw):
    """A COCO dict of one 16x16 image, its fields valid, mistyped, missing or hostile."""

    def field(valid, hostile=_ANY_JSON):  # one field in six is hostile: most examples reach the boxes
        return draw(hostile) if draw(st.integers(0, 5)) == 5 else valid  # (hypothesis favours 0)

    numbers = [field(draw(st.integers(-20, 30)), _NUMBER) for _ in range(4)]
    bbox = field(numbers, st.lists(_NUMBER, max_size=6) | _ANY_JSON)
    name = field("a.png", st.sampled_from(["../a.png", "/etc/hostname", "sub/../../a.png", "C:\\a.png", "", "b.png"]))
    image = {"id": field(1), "file_name": name}
    annotation = {"id": field(5), "image_id": field(1), "category_id": field(7), "bbox": bbox}
    coco = {
        "images": field([image]),
        "annotations": field([annotation, {"id": 6, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}]),
        "categories": field([{"id": 7, "name": "block"}]),
    }
    for key in list(coco):
        if draw(st.integers(0, 19)) == 19:
            del coco[key]
    return coco


def test_coco_reader(tmp_path):
    from resnetkit.data.dense_folders import load_coco_folder

    (tmp_path / "train").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "train" / "a.png")
    listing = tmp_path / "train.json"

    @settings(FUZZ, max_examples=80)
    @given(coco=_coco())
    def run(coco):
        listing.write_text(json.dumps(coco))
        try:
            ds = load_coco_folder(tmp_path, "train", 16)
        except DatasetError as e:
            assert "\n" not in str(e) and str(listing) in str(e), str(e)
            return
        for boxes, labels in zip(ds.boxes, ds.labels, strict=True):  # what trains is clean
            assert torch.isfinite(boxes).all() and (boxes >= 0).all() and (boxes <= 16).all()
            assert (boxes[:, 2:] > boxes[:, :2]).all() and ((labels >= 1) & (labels < len(ds.classes))).all()

    run()
    seed = json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 7}], "annotations": []})

    @settings(FUZZ, max_examples=30)
    @given(data=_payloads(seed.encode()))
    def raw(data):
        listing.write_bytes(data)
        _only_our_errors(lambda _: load_coco_folder(tmp_path, "train", 16), listing)

    raw()


def test_mask_reader(tmp_path):
    from resnetkit.data.dense_folders import load_mask_folder

    values = st.one_of(st.integers(0, 3), st.sampled_from([5, 200, 254, 255, 256, 300, 65535]))

    @settings(FUZZ, max_examples=40)
    @given(
        masks=st.lists(st.lists(values, min_size=1, max_size=4), min_size=1, max_size=3),
        wide=st.booleans(),
        listed=st.one_of(st.none(), st.integers(2, 6), st.integers(0, 300)),
    )
    def run(masks, wide, listed):
        root = tmp_path / "d"
        shutil.rmtree(root, ignore_errors=True)
        (root / "train" / "images").mkdir(parents=True)
        (root / "train" / "masks").mkdir()
        for i, row in enumerate(masks):
            mask = np.resize(np.array(row).astype(np.uint16 if wide else np.uint8), (4, 4))  # uint8 wraps 256+
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "train" / "images" / f"{i}.png")
            Image.fromarray(mask).save(root / "train" / "masks" / f"{i}.png")
        if listed is not None:
            (root / "classes.txt").write_text("".join(f"c{i}\n" for i in range(listed)))
        try:
            ds = load_mask_folder(root, "train", 4)
        except DatasetError as e:
            assert "\n" not in str(e) and str(root) in str(e), str(e)
            return
        labelled = ds.masks[ds.masks != 255]
        assert len(labelled) == 0 or int(labelled.max()) < len(ds.classes)
        if listed is None:  # the classes are the values present, with no gap
            assert set(labelled.unique().tolist()) | {0} == set(range(len(ds.classes)))

    run()


def _sequence_seeds(tmp: Path) -> dict[str, bytes]:
    rows = [f"{i % 3},{i + 1}.5:{i * 2}.25,{7 - i}:{'ab'[i % 2]}" for i in range(8)]
    ts = "@problemName f\n@dimensions 2\n@equalLength false\n@classLabel true a b\n@data\n" + "\n".join(rows) + "\n"
    np.savez(tmp / "seed.npz", X=np.arange(48.0).reshape(8, 2, 3), y=np.array([0, 1] * 4), lengths=np.array([3, 2] * 4))
    tsv = "".join(f"{i % 2}\t{i}\t{i * 3 % 5}\t2.5\n" for i in range(10))
    text = "text,label\n" + "".join(f'"text {i}, é",{"xy"[i % 2]}\n' for i in range(10))
    return {".ts": ts.encode(), ".npz": (tmp / "seed.npz").read_bytes(), ".tsv": tsv.encode(), ".csv": text.encode()}


@pytest.mark.parametrize("suffix", [".ts", ".npz", ".tsv", ".csv"])
def test_sequence_readers(tmp_path, suffix):
    from resnetkit.data.sequences import load_sequences

    seed = _sequence_seeds(tmp_path)[suffix]

    @settings(FUZZ, max_examples=40)
    @given(data=_payloads(seed), split=st.sampled_from(["train", "test"]))
    def run(data, split):
        path = tmp_path / f"s{suffix}"
        path.write_bytes(data)
        try:
            out = load_sequences(str(path), split)
        except DatasetError as e:
            assert "\n" not in str(e) and str(path) in str(e), str(e)
            return
        assert len(out) and (out.lengths >= 1).all() and (out.lengths <= out.values.shape[2]).all()  # what trains
        assert ((out.targets >= 0) & (out.targets < len(out.classes))).all()
        assert out.kind == "text" or np.isfinite(out.values).all()

    run()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def _onnx_meta(draw, meta: dict):
    """A real export's metadata with fields (its record's too) dropped or replaced by any JSON."""
    meta = json.loads(json.dumps(meta))
    for part in (meta, meta["card"]):
        for key in list(part):
            choice = draw(st.integers(0, 9))
            if choice == 9:
                del part[key]
            elif choice == 8:
                part[key] = draw(_JSON)
    return meta


def test_onnx_metadata_reader(tmp_path):
    import onnx

    from resnetkit import export_weights
    from resnetkit.infer import ExportError, OnnxClassifier, export_model
    from resnetkit.infer.export import exported_card

    model = create_model("resnet20", num_classes=3, in_chans=1).eval()
    card = {"name": "d", "classes": list("abc"), "in_chans": 1, "image_size": [8, 8], "mean": [0.3], "std": [0.2]}
    model.card = load_model(export_weights(model, tmp_path / "m.safetensors", dataset=card)).card
    seed, _ = export_model(model, tmp_path / "seed.onnx", inputs=torch.randn(2, 1, 8, 8))
    proto = onnx.load(str(seed))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["resnetkit"])
    path = tmp_path / "fuzz.onnx"

    def check(raw: str) -> None:
        (entry,) = [p for p in proto.metadata_props if p.key == "resnetkit"]
        entry.value = raw
        onnx.save(proto, str(path))
        for read in (OnnxClassifier, exported_card):
            try:
                got = read(path)
            except (ExportError, WeightsError) as e:
                assert "\n" not in str(e) and str(path) in str(e), str(e)
                continue
            if isinstance(got, OnnxClassifier):  # what was accepted predicts: sane preprocessing, finite logits
                c = got.card
                assert c.mean is None or (len(c.mean) == got.in_chans and all(np.isfinite(c.mean)))
                assert c.std is None or (len(c.std) == got.in_chans and all(s > 0 for s in c.std))
                assert c.classes is None or len(c.classes) == got.num_classes
                side = c.image_size or (8, 8)
                assert max(side) <= 4096
                assert torch.isfinite(got(torch.rand(1, got.in_chans, 8, 8))).all()

    @settings(FUZZ, max_examples=60)
    @given(changed=_onnx_meta(meta))
    def fields(changed):
        check(json.dumps(changed))

    fields()

    @settings(FUZZ, max_examples=30)
    @given(data=mutated(json.dumps(meta).encode()))
    def raw(data):
        check(data.decode("utf-8", "replace"))

    raw()
