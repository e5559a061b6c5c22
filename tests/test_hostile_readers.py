"""Hostile files into the data and config readers, each made on the fly in its real format: every
one ends in one line that names the file and the problem, within seconds, and the small files that
would grow without limit (a lying IDX header, a CIFAR batch that names a huge array, a YAML nest of
aliases, a config nested 50,000 deep, a class range of 10^8, a ragged .ts file that pads to 7e7
values, an .npz header that declares 8 GiB) stay under a memory ceiling, measured
in a fresh process."""

import gzip
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetkit.cli import main
from resnetkit.data import DatasetError, load_mnist_split, parse_classes, read_idx, set_max_image_pixels
from resnetkit.data.cifar import load_cifar
from resnetkit.data.dense_folders import load_coco_folder, load_mask_folder
from resnetkit.train.config import ConfigError, load_config_file

CEILING_KB = 1536 * 1024  # peak RSS of the whole process, torch included (about 240 MB of it)


def _one_line(error: pytest.ExceptionInfo, path: Path | str, *needles: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, message
    return message


# ---- Files that are small and would grow: each case run in one fresh process --------------------


def _idx_header(dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _zeros_gzip(total: int) -> bytes:
    """gzip members that inflate to ``total`` zero bytes, a few kilobytes each 16 MB."""
    block = gzip.compress(bytes(16 << 20), 9)
    return block * (total // (16 << 20))


class _NdarrayCall:
    """Pickles as ``numpy.ndarray(shape, "u1")``: an array of any size from a few bytes."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __reduce__(self):
        return (np.ndarray, (self.shape, "u1"))


class _ReconstructCall:
    """Pickles as numpy's ``_reconstruct(ndarray, shape, "B")`` with a shape that is not empty."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __reduce__(self):
        from resnetkit.data.cifar import _numpy_reconstruct

        return (_numpy_reconstruct, (np.ndarray, self.shape, "B"))


def _cifar_folder(root: Path, data) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    labels = list(range(10)) * 70_000
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": labels[:3]}, protocol=2))
    return folder / "test_batch"


def _billion_laughs() -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\nmodel:\n  overrides:\n    blocks: *l9\n"


def _bombs(root: Path) -> dict[str, tuple[str, Path, str]]:
    """name -> (the call, run in the fresh process; the file its error must name; a word of it)."""
    root.mkdir(parents=True, exist_ok=True)
    cases = {}
    trailing = root / "trailing" / "train-images-idx3-ubyte.gz"  # a true header, 3.2 GB of zeros after
    trailing.parent.mkdir()
    trailing.write_bytes(gzip.compress(_idx_header((60_000, 28, 28))) + _zeros_gzip(3200 << 20))
    cases["idx_trailing_gigabytes"] = (f"load_mnist_split({str(trailing.parent)!r}, 'train')", trailing, "trailing")
    liar = root / "liar" / "train-images-idx3-ubyte.gz"  # the header claims 3.3 GB of images
    liar.parent.mkdir()
    liar.write_bytes(gzip.compress(_idx_header((4_200_000, 28, 28))) + _zeros_gzip(64 << 20))
    cases["idx_header_claims_gigabytes"] = (f"load_mnist_split({str(liar.parent)!r}, 'train')", liar, "4,200,000")
    cases["idx_header_past_what_gzip_inflates"] = (f"read_idx({str(liar)!r}, max_bytes=1 << 40)", liar, "inflate")
    shaped = _cifar_folder(root / "ndarray", _NdarrayCall((700_000, 3072)))
    cases["cifar_ndarray_of_a_named_size"] = (f"load_cifar({str(shaped.parents[1])!r}, 'test')", shaped, "ndarray")
    built = _cifar_folder(root / "reconstruct", _ReconstructCall((700_000, 3072)))
    cases["cifar_reconstruct_of_a_named_size"] = (f"load_cifar({str(built.parents[1])!r}, 'test')", built, "empty")
    laughs = root / "laughs.yaml"
    laughs.write_text(_billion_laughs())
    cases["yaml_billion_laughs"] = (f"load_config_file({str(laughs)!r})", laughs, "aliases expand")
    deep_yaml = root / "deep.yaml"
    deep_yaml.write_text("optim: " + "[" * 50_000 + "]" * 50_000 + "\n")
    cases["yaml_nested_50000_deep"] = (f"load_config_file({str(deep_yaml)!r})", deep_yaml, "nested")
    deep_json = root / "deep.json"
    deep_json.write_text('{"optim": ' + "[" * 50_000 + "]" * 50_000 + "}")
    cases["json_nested_50000_deep"] = (f"load_config_file({str(deep_json)!r})", deep_json, "nested")
    ragged = root / "ragged.ts"  # 200 KB: one series of 10^5 steps, then 700 of one step (pads to 7e7)
    ragged.write_text("@classLabel true a b\n@data\n" + ",".join(["1"] * 100_000) + ":a\n" + "1:b\n" * 700)
    cases["ts_ragged_padding_past_the_limit"] = (f"load_sequences({str(ragged)!r}, 'train')", ragged, "past the limit")
    npz = root / "liar.npz"  # 300 bytes whose X header declares 2^26 x 16 float64 (8 GiB)
    with zipfile.ZipFile(npz, "w") as archive:
        with archive.open("X.npy", "w") as member:
            header = {"descr": "<f8", "fortran_order": False, "shape": (1 << 26, 16)}
            np.lib.format.write_array_header_1_0(member, header)
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(4, dtype=np.int8))
    cases["npz_header_claims_gigabytes"] = (f"load_sequences({str(npz)!r}, 'train')", npz, "8,589,934,592 bytes")
    cases["classes_range_of_10_to_the_8"] = (
        "parse_classes('0-100000000', [str(i) for i in range(10)])",
        "",
        "100000000",
    )
    return cases


_RUNNER = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # a regression fails here, not the machine
from resnetkit.data import load_mnist_split, parse_classes, read_idx
from resnetkit.data.cifar import load_cifar
from resnetkit.data.sequences import load_sequences
from resnetkit.train.config import load_config_file

def peak_kb():
    # VmHWM belongs to this process's own address space: getrusage's ru_maxrss keeps the high-water
    # mark of the pytest worker this process was forked from (exec folds it in), gigabytes in CI.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")

out = {}
for name, call in json.loads(sys.argv[1]).items():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark: each case is measured on its own (Linux >= 4.0)
    start = time.perf_counter()
    try:
        eval(call)
        kind, message = "none", ""
    except Exception as e:
        kind, message = type(e).__name__, str(e)
    peak = peak_kb()
    out[name] = [kind, message, peak, time.perf_counter() - start]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    cases = _bombs(tmp_path_factory.mktemp("bombs"))
    calls = {name: call for name, (call, _, _) in cases.items()}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RUNNER), json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (cases[name], results[name]) for name in cases}


@pytest.mark.parametrize(
    "name",
    [
        "idx_trailing_gigabytes",
        "idx_header_claims_gigabytes",
        "idx_header_past_what_gzip_inflates",
        "cifar_ndarray_of_a_named_size",
        "cifar_reconstruct_of_a_named_size",
        "yaml_billion_laughs",
        "yaml_nested_50000_deep",
        "json_nested_50000_deep",
        "classes_range_of_10_to_the_8",
        "ts_ragged_padding_past_the_limit",
        "npz_header_claims_gigabytes",
    ],
)
def test_small_files_that_would_grow_are_refused_within_a_memory_ceiling(bombs, name):
    (_, path, needle), (kind, message, peak_kb, seconds) = bombs[name]
    assert kind in ("DatasetError", "ConfigError"), (kind, message)
    assert str(path) in message and needle in message and "\n" not in message, message
    assert peak_kb < CEILING_KB, f"{name}: peak RSS {peak_kb // 1024} MB"
    assert seconds < 20, f"{name}: {seconds:.1f} s"


# ---- IDX -------------------------------------------------------------------------------------------


def test_idx_header_is_checked_against_the_format(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_header((6, 32, 32)) + bytes(6 * 1024)))
    with pytest.raises(DatasetError) as error:
        load_mnist_split(tmp_path, "train")
    _one_line(error, tmp_path / "train-images-idx3-ubyte.gz", "expected 28x28 images", "32x32")


def test_uncompressed_idx_size_is_checked_before_reading(tmp_path):
    path = tmp_path / "images.idx"
    path.write_bytes(_idx_header((1000, 28, 28)) + bytes(10))
    with pytest.raises(DatasetError) as error:
        read_idx(path)
    _one_line(error, path, "truncated", "(1000, 28, 28)")


# ---- CIFAR -----------------------------------------------------------------------------------------


def test_cifar_batch_of_more_rows_than_the_format_holds(tmp_path):
    batch = _cifar_folder(tmp_path, np.zeros((10_001, 3072), np.uint8))
    with pytest.raises(DatasetError) as error:
        load_cifar(tmp_path, "test")
    _one_line(error, "test_batch", "10,001 images", "10,000")
    assert batch.is_file()


def test_cifar_file_larger_than_a_batch_is_not_read(tmp_path):
    batch = _cifar_folder(tmp_path, np.zeros((1, 3072), np.uint8))
    with batch.open("r+b") as f:  # sparse: 100 MB on paper, nothing on disk
        f.truncate(100 << 20)
    with pytest.raises(DatasetError) as error:
        load_cifar(tmp_path, "test")
    _one_line(error, batch, "104,857,600 bytes", "download it again")


@pytest.mark.parametrize(
    ("labels", "meta", "needle"),
    [
        ([b"x", b"y", b"z"], None, "labels must be a list of integers"),
        ([0, 1, 2], [b"a", b"b", b"c"], "3 class names, cifar10 has 10"),
    ],
)
def test_cifar_labels_and_class_names_are_checked(tmp_path, labels, meta, needle):
    batch = _cifar_folder(tmp_path, np.zeros((3, 3072), np.uint8))
    batch.write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": labels}, protocol=2))
    if meta is not None:
        (batch.parent / "batches.meta").write_bytes(pickle.dumps({b"label_names": meta}, protocol=2))
    with pytest.raises(DatasetError) as error:
        load_cifar(tmp_path, "test")
    _one_line(error, tmp_path, needle)


# ---- Configs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("big.yaml", "# padding\n" * 120_000, "larger than 1,048,576 bytes"),
        ("loop.yaml", "model:\n  overrides: &a {x: [*a]}\n", "a config cannot contain itself"),
        ("wide.yaml", "optim: [" + ", ".join(["1"] * 20_000) + "]\n", "more than 10,000 values"),
        ("key.yaml", "optim:\n  1: 0.1\n", "key 1 is not a string"),
        ("yes.yaml", "yes: 1\n", "key True is not a string"),
        ("digits.yaml", "epochs: " + "9" * 5000 + "\n", "a value that cannot be read"),
        ("digits.json", '{"epochs": ' + "9" * 5000 + "}", "a value that cannot be read"),
        ("date.yaml", "run_name: 2001-13-45\n", "a value that cannot be read"),
    ],
)
def test_config_files_past_the_limits_are_one_line(tmp_path, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config_file(path)
    _one_line(error, path, needle)


def test_config_aliases_and_merge_keys_within_the_limits_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("base: &b {lr: 0.05, momentum: 0.8}\noptim:\n  <<: *b\n  nesterov: true\nmilestones: [*b, *b]\n")
    values = load_config_file(path)
    assert values["optim"] == {"lr": 0.05, "momentum": 0.8, "nesterov": True}


def test_config_bomb_through_the_command_line_is_exit_2_and_one_line(tmp_path, capsys):
    path = tmp_path / "laughs.yaml"
    path.write_text(_billion_laughs())
    assert main(["train", "--config", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "aliases expand" in err


# ---- --classes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("0-100000000", "index 100000000 is out of range (0..9)"),
        ("9" * 5000, "is out of range (0..9)"),
        ("5-3", "runs backwards (write 3-5)"),
        ("0-3,2", "class 2 is given twice"),
        ("²", "is neither a class index nor one of"),
    ],
)
def test_class_specs_are_checked_before_they_are_expanded(spec, needle):
    with pytest.raises(DatasetError) as error:
        parse_classes(spec, [str(i) for i in range(10)])
    message = _one_line(error, "data.classes=", needle)
    assert len(message) < 400


# ---- Segmentation folders: images and PNG masks ----------------------------------------------------


def _mask_split(root: Path, split: str, masks: list[np.ndarray]) -> list[Path]:
    (root / split / "images").mkdir(parents=True)
    (root / split / "masks").mkdir(parents=True)
    paths = []
    for i, mask in enumerate(masks):
        Image.fromarray(np.full(mask.shape, 90, np.uint8)).save(root / split / "images" / f"m{i}.png")
        Image.fromarray(mask).save(root / split / "masks" / f"m{i}.png")  # uint16 arrays save as I;16
        paths.append(root / split / "masks" / f"m{i}.png")
    return paths


def _mask(*values: int, dtype=np.uint16) -> np.ndarray:
    mask = np.zeros((8, 8), dtype)
    for i, v in enumerate(values):
        mask[i, :] = v
    return mask


def test_16_bit_mask_value_past_the_class_list_is_an_error_not_ignore(tmp_path):
    (mask,) = _mask_split(tmp_path, "train", [_mask(1, 300)])
    with Image.open(mask) as img:
        assert img.mode == "I;16"
    (tmp_path / "classes.txt").write_text("background\nbox\nplate\n")
    with pytest.raises(DatasetError) as error:
        load_mask_folder(tmp_path, "train", 8)
    _one_line(error, mask, "mask value 300", "names 3 classes")


def test_16_bit_masks_within_the_list_load_with_ignore_kept(tmp_path):
    _mask_split(tmp_path, "train", [_mask(1, 2, 255)])
    (tmp_path / "classes.txt").write_text("background\nbox\nplate\n")
    ds = load_mask_folder(tmp_path, "train", 8)
    assert ds.classes == ["background", "box", "plate"] and set(ds.masks.unique().tolist()) == {0, 1, 2, 255}


def test_without_classes_txt_a_gap_in_the_values_asks_for_it(tmp_path):
    _mask_split(tmp_path, "train", [_mask(1), _mask(200, dtype=np.uint8)])
    with pytest.raises(DatasetError) as error:
        load_mask_folder(tmp_path, "train", 8)
    _one_line(error, tmp_path / "train" / "masks", "up to 200 but not 2, 3, 4 and 195 more", "classes.txt")


def test_without_classes_txt_the_classes_are_the_values_present(tmp_path):
    _mask_split(tmp_path, "train", [_mask(1), _mask(2, 255)])
    _mask_split(tmp_path, "val", [_mask(2), _mask(3)])
    assert load_mask_folder(tmp_path, "train", 8).classes == ["background", "class1", "class2"]
    with pytest.raises(DatasetError) as error:  # val holds a class that train does not
        load_mask_folder(tmp_path, "val", 8)
    _one_line(error, tmp_path / "val" / "masks" / "m1.png", "mask value 3", "train masks' values, 0..2")


def test_only_background_without_classes_txt_asks_for_it(tmp_path):
    _mask_split(tmp_path, "train", [_mask(0)])
    with pytest.raises(DatasetError) as error:
        load_mask_folder(tmp_path, "train", 8)
    _one_line(error, tmp_path / "train" / "masks", "no class but the background", "classes.txt")


@pytest.mark.parametrize("listed", [True, False])
def test_train_masks_of_nothing_but_ignore_are_one_line(tmp_path, listed):
    _mask_split(tmp_path, "train", [np.full((8, 8), 255, np.uint8)] * 2)
    if listed:
        (tmp_path / "classes.txt").write_text("background\nbox\n")
    with pytest.raises(DatasetError) as error:
        load_mask_folder(tmp_path, "train", 8)
    _one_line(error, tmp_path / "train" / "masks", "every pixel of every mask is the ignore value 255")


def test_non_utf8_classes_txt_is_one_line(tmp_path):
    _mask_split(tmp_path, "train", [_mask(1)])
    (tmp_path / "classes.txt").write_bytes(b"background\n\xff\xfebox\n")
    with pytest.raises(DatasetError) as error:
        load_mask_folder(tmp_path, "train", 8)
    _one_line(error, tmp_path / "classes.txt", "not UTF-8")


def test_mask_over_the_pixel_limit_is_one_line(tmp_path):
    _mask_split(tmp_path, "train", [_mask(1)])
    big = tmp_path / "train" / "masks" / "m0.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(big)
    set_max_image_pixels(1000)  # the image (64 pixels) is within it, its mask (1,600) is not
    try:
        with pytest.raises(DatasetError) as error:
            load_mask_folder(tmp_path, "train", 8)
    finally:
        set_max_image_pixels(None)
    _one_line(error, big, "over the limit of 1,000 pixels")


# ---- Detection folders: COCO JSON and images -------------------------------------------------------


def _coco_split(root: Path, split: str, boxes: list, categories=None, **changes) -> Path:
    """``split``.json of one 40x30 image and its ``boxes`` [(category, [x, y, w, h])]."""
    (root / split).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(root / split / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [
            {"id": 10 + i, "image_id": 1, "category_id": c, "bbox": bbox, "iscrowd": 0}
            for i, (c, bbox) in enumerate(boxes)
        ],
        "categories": [{"id": 7, "name": "block"}, {"id": 9, "name": "ball"}] if categories is None else categories,
    }
    coco.update(changes)
    path = root / f"{split}.json"
    path.write_text(json.dumps(coco))
    return path


def test_every_split_takes_trains_category_mapping(tmp_path):
    _coco_split(tmp_path, "train", [(7, [1, 1, 10, 10]), (9, [5, 5, 10, 10])])
    _coco_split(tmp_path, "test", [(9, [5, 5, 10, 10])], categories=[{"id": 9, "name": "ball"}])
    test = load_coco_folder(tmp_path, "test", 40)
    assert test.classes == ["background", "block", "ball"] and test.labels[0].tolist() == [2]


def test_a_test_category_that_train_lacks_is_an_error(tmp_path):
    _coco_split(tmp_path, "train", [(7, [1, 1, 10, 10])])
    listing = _coco_split(tmp_path, "test", [(11, [1, 1, 10, 10])], categories=[{"id": 11, "name": "cup"}])
    with pytest.raises(DatasetError) as error:
        load_coco_folder(tmp_path, "test", 40)
    _one_line(error, listing, "category 11 ('cup') is not among", "train.json")


@pytest.mark.parametrize(
    ("bbox", "needle"),
    [
        ([50, 5, 10, 10], "lies outside its image a.png (40x30)"),
        ([-20, -20, 5, 5], "lies outside its image"),
        ([5, 5, -3, 4], "has no area"),
        ([5, 5, 0, 4], "has no area"),
        ([5, 5, float("nan"), 4], "is not finite"),
        ([5, 5, float("inf"), 4], "is not finite"),
        ([5, 5, 4], "must be 4 numbers"),
        ([5, "5", 4, 4], "must be 4 numbers"),
    ],
)
def test_bad_boxes_name_their_annotation(tmp_path, bbox, needle):
    listing = _coco_split(tmp_path, "train", [(7, [1, 1, 10, 10]), (7, bbox)])
    with pytest.raises(DatasetError) as error:
        load_coco_folder(tmp_path, "train", 40)
    _one_line(error, listing, "annotation 11", needle)


def test_a_box_past_the_edge_is_clipped_and_counted(tmp_path, caplog):
    _coco_split(tmp_path, "train", [(7, [30, 20, 20, 20]), (9, [1, 1, 10, 10])])
    with caplog.at_level(logging.INFO, logger="resnetkit.data.dense_folders"):
        ds = load_coco_folder(tmp_path, "train", 40)
    assert torch.allclose(ds.boxes[0][0], torch.tensor([30.0, 20 * 40 / 30, 40.0, 40.0]))
    assert "1 of 2 boxes reach past their image's edge; clipped to it" in caplog.text


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"images": [{"file_name": "a.png"}]}, "images[0] needs an 'id'"),
        ({"images": {"1": {"id": 1, "file_name": "a.png"}}}, "'images' must be a list"),
        ({"images": [{"id": 1, "file_name": None}]}, "'file_name' must be a file's path, got null"),
        ({"images": [{"id": 1, "file_name": "../train/a.png"}]}, "leaves"),
        ({"images": [{"id": 1, "file_name": "/etc/hostname"}]}, "leaves"),
        ({"images": [{"id": 1, "file_name": "a.png"}, {"id": 1, "file_name": "a.png"}]}, "image id 1 appears twice"),
        ({"categories": []}, "'categories' must be a non-empty list"),
        ({"annotations": [{"id": 5, "image_id": 1, "category_id": 7}]}, "annotation 5 has no bbox"),
        ({"annotations": [{"id": 5, "image_id": 2, "category_id": 7, "bbox": [1, 1, 2, 2]}]}, "names image 2"),
        ({"annotations": [{"id": 5, "image_id": [1], "category_id": 7, "bbox": [1, 1, 2, 2]}]}, "needs an 'image_id'"),
        ({"annotations": [{"id": 5, "image_id": 1, "category_id": 8, "bbox": [1, 1, 2, 2]}]}, "names category 8"),
    ],
)
def test_coco_structure_errors_are_one_line(tmp_path, changes, needle):
    listing = _coco_split(tmp_path, "train", [(7, [1, 1, 10, 10])], **changes)
    with pytest.raises(DatasetError) as error:
        load_coco_folder(tmp_path, "train", 40)
    _one_line(error, listing, needle)


def test_non_utf8_and_non_json_coco_files_are_one_line(tmp_path):
    listing = _coco_split(tmp_path, "train", [(7, [1, 1, 10, 10])])
    listing.write_bytes(listing.read_bytes().replace(b"block", b"bl\xffck"))
    with pytest.raises(DatasetError) as error:
        load_coco_folder(tmp_path, "train", 40)
    _one_line(error, listing, "not UTF-8")
    listing.write_text("[" * 50_000)
    with pytest.raises(DatasetError) as error:
        load_coco_folder(tmp_path, "train", 40)
    _one_line(error, listing)
