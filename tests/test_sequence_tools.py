"""The issue's lists, end to end with the real readers: every bad input stops ``resnetkit train``
with one line naming the file and exit 2 before any training (no checkpoint written), and a model
pretrained on one bundled dataset fine-tunes to another."""

import numpy as np
import pytest

from resnetkit.artifacts import load_checkpoint, load_model
from resnetkit.cli import main

pytest.importorskip("aeon")

SMALL = '{"channels": [8, 16, 16]}'


def _ts(path, rows, header="@classLabel true a b"):
    path.write_text(f"@problemName toy\n{header}\n@data\n" + "\n".join(rows) + "\n")
    return path


def _rows(n, channels=1):
    return [":".join(["1,2,3,2"] * channels) + f":{'ab'[i % 2]}" for i in range(n)]


def _texts(root, bad_name=None, bad=b""):
    for c in ("ham", "spam"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            (root / c / f"{i}.txt").write_text(f"{c} message number {i}\n")
    if bad_name:
        (root / "ham" / bad_name).write_bytes(bad)
    return root


def _nan(tmp):
    return _ts(tmp / "nan.ts", [*_rows(10), "1,NaN,3,2:a"]), "nan.ts", "value 2 is nan", []


def _channels(tmp):
    d = tmp / "chans"
    d.mkdir()
    _ts(d / "train.ts", _rows(10, 2))
    _ts(d / "test.ts", _rows(4, 3))
    return d, "test.ts", "3 channels, but the training file has 2", []


def _header(tmp):
    return _ts(tmp / "dims.ts", _rows(10), "@dimensions 2\n@classLabel true a b"), "dims.ts", "@dimensions says 2", []


def _single(tmp):
    path = _ts(tmp / "one.ts", [*_rows(10), "1,2,3,4:c"], "@classLabel true a b c")
    return path, "one.ts", "class 'c' has", []


def _long(tmp):
    return _ts(tmp / "long.ts", [*_rows(10), "1,2,3,4,5,6,7,8:a"]), "long.ts", "max_length=6", ["--max-length", "6"]


def _empty_text(tmp):
    return _texts(tmp / "empty", "9.txt", b" \n"), "9.txt", "empty text", ["--model", "resnet_text"]


def _latin1(tmp):
    return _texts(tmp / "latin1", "9.txt", "café".encode("latin-1")), "9.txt", "not UTF-8", ["--model", "resnet_text"]


@pytest.mark.parametrize("make", [_nan, _channels, _header, _single, _long, _empty_text, _latin1])
def test_bad_input_stops_training_before_it_starts(tmp_path, capsys, make):
    data, name, needle, extra = make(tmp_path)
    out = tmp_path / "runs"
    args = ["train", "--model", "resnet_tsc", "--data", str(data), "--max-steps", "1", "--out", str(out)]
    assert main([*args, "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err and needle in err and "Traceback" not in err, err
    assert not list(out.rglob("last.pt"))  # refused before any training step


def test_a_model_pretrained_on_one_bundled_dataset_finetunes_to_another(tmp_path, capsys):
    base = ["--max-steps", "2", "--out", str(tmp_path), "--no-progress", "--set", "data.batch_size=16"]
    train = ["train", "--model", "resnet_tsc", "--data", "ucr:ItalyPowerDemand", "--set", f"model.overrides={SMALL}"]
    assert main([*train, *base, "--name", "src"]) == 0
    assert main(["finetune", str(tmp_path / "src"), "--data", "ucr:GunPoint", *base, "--name", "gun"]) == 0
    tuned = load_model(tmp_path / "gun")
    assert (tuned.card.task, tuned.card.data, tuned.card.max_length) == ("sequence", "ucr:GunPoint", 150)
    config = load_checkpoint(tmp_path / "gun")["config"]
    assert config["model"]["weights"] == str(tmp_path / "src") and config["transfer"]["mode"] == "finetune"
    # The trunk came from the source: two fine-tuning steps move its first convolution's weights
    # by about 1e-3 on average, where a fresh initialisation differs by ~0.2 (weights of ~0.2).
    source, after = load_model(tmp_path / "src").state_dict(), tuned.state_dict()
    first = next(k for k, v in source.items() if v.ndim == 3)
    assert (source[first] - after[first]).abs().mean() < 0.02
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "gun"), "--json"]) == 0
    assert '"n": 150' in capsys.readouterr().out  # GunPoint's own test split
    np.savez(tmp_path / "x.npz", X=np.sin(np.arange(150) / 5)[None, None])
    assert main(["gradcam", str(tmp_path / "gun"), str(tmp_path / "x.npz"), "-o", str(tmp_path / "cam")]) == 0
