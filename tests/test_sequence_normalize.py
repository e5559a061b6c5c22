"""``data.normalize``: series normalised each on its own (the default, UCR practice), with the
training split's per-channel mean and std, or not at all; the choice and the statistics travel in
the model's record, so eval, predict, serve, export and finetune feed new series as training did.
Real readers on a small folder of ``train.npz``/``test.npz`` whose class is a channel's level."""

import json

import numpy as np
import pytest
import torch

from resnetkit.artifacts import load_model
from resnetkit.cli import main
from resnetkit.data.sequences import channel_stats, load_sequences, normalized
from resnetkit.infer import OnnxClassifier
from resnetkit.tasks import task_of

SMALL = '{"channels": [8, 16, 16]}'


def _levels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two channels of one shape; class 0 sits at level +2 on channel 0, class 1 at -2, so the
    level carries the class (per-series z-normalisation erases it)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(30)
    x = np.stack([np.sin(t / 3) + 0.1 * rng.standard_normal((2, 30)) for _ in range(n)]).astype(np.float32)
    x[:, 0] += np.where(y == 0, 2.0, -2.0)[:, None] + 5.0
    x[:, 1] *= 10.0
    return x, y


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "levels"
    d.mkdir()
    for split, n, seed in (("train", 16, 0), ("test", 8, 1)):
        x, y = _levels(n, seed)
        np.savez(d / f"{split}.npz", X=x, y=y)
    return d


def test_dataset_normalisation_uses_the_training_splits_statistics(folder):
    train = load_sequences(str(folder), "train", normalize="dataset")
    test = load_sequences(str(folder), "test", normalize="dataset")
    raw_train, raw_test = (load_sequences(str(folder), s, normalize="none") for s in ("train", "test"))
    with np.load(folder / "train.npz") as f:
        np.testing.assert_array_equal(raw_train.values, f["X"])  # "none": the values as read
    assert train.mean == test.mean and train.std == test.std and len(train.mean) == 2
    flat = train.values.transpose(1, 0, 2).reshape(2, -1)
    np.testing.assert_allclose(flat.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(flat.std(1), 1, atol=1e-5)
    mean, std = np.array(train.mean)[None, :, None], np.array(train.std)[None, :, None]
    np.testing.assert_allclose(test.values, (raw_test.values - mean) / std, rtol=1e-5, atol=1e-5)
    # The levels survive (class 0 above class 1 on channel 0); per series they are gone.
    assert test.values[test.targets == 0, 0].mean() > 0 > test.values[test.targets == 1, 0].mean()
    series = load_sequences(str(folder), "test")
    assert series.mean is None and abs(series.values[:, 0].mean(-1)).max() < 1e-5
    with pytest.raises(ValueError, match="expected one of series, dataset, none"):
        load_sequences(str(folder), "train", normalize="global")


def test_stats_skip_padding_and_keep_constant_channels_finite():
    values = np.zeros((2, 2, 4), np.float32)
    values[0, :, :2] = [[1, 3], [7, 7]]
    values[1, :, :4] = [[1, 3, 1, 3], [7, 7, 7, 7]]
    lengths = np.array([2, 4])
    mean, std = channel_stats(values, lengths)
    assert mean == pytest.approx((2.0, 7.0)) and std == pytest.approx((1.0, 1.0))  # a constant channel: std 1
    out = normalized(values.copy(), lengths, "dataset", (mean, std))
    assert np.all(out[0, :, 2:] == 0) and np.isfinite(out).all()
    np.testing.assert_allclose(out[1, 0], [-1, 1, -1, 1])


def test_the_record_carries_the_choice_to_eval_predict_serve_export_and_finetune(folder, tmp_path, capsys):
    args = ["train", "--model", "resnet_tsc", "--data", str(folder), "--recipe", "time-series", "--max-steps", "2"]
    args += ["--set", f"model.overrides={SMALL}", "--set", "data.normalize=dataset", "--set", "data.batch_size=8"]
    assert main([*args, "--out", str(tmp_path), "--name", "r", "--no-progress"]) == 0
    run = tmp_path / "r"
    model = load_model(run)
    card = model.card
    train = load_sequences(str(folder), "train", normalize="dataset")
    assert card.data_config["normalize"] == "dataset"
    assert card.mean == pytest.approx(train.mean) and card.std == pytest.approx(train.std)

    # predict prepares a file's series exactly as eval prepares its own test split.
    task = task_of(model)
    ds = task.eval_dataset(card, model, None, None, "test")
    with np.load(folder / "test.npz") as f:
        np.savez(tmp_path / "x.npz", X=f["X"])
    prepared = task.read(str(tmp_path / "x.npz"), model)
    got = torch.stack([p.input for p in prepared])
    torch.testing.assert_close(got, ds.inputs(np.arange(len(ds)), ds.max_length), rtol=1e-5, atol=1e-5)
    # ... and so does an aeon .ts file of the same series (labels optional).
    with np.load(folder / "test.npz") as f:
        rows = [":".join(",".join(f"{v:.9g}" for v in channel) for channel in series) for series in f["X"]]
    (tmp_path / "x.ts").write_text("@problemName x\n@classLabel false\n@data\n" + "\n".join(rows) + "\n")
    from_ts = torch.stack([p.input for p in task.read(str(tmp_path / "x.ts"), model)])
    torch.testing.assert_close(from_ts, got, rtol=1e-5, atol=1e-5)
    (tmp_path / "bad.ts").write_text("@problemName x\n@classLabel false\n@data\n1,NaN,3:1,2,3\n")
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "bad.ts")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.ts" in err and "nan" in err and "Traceback" not in err
    # ... and so does a server's JSON body.
    body = json.dumps({"series": np.load(folder / "test.npz")["X"][0].tolist()}).encode()
    torch.testing.assert_close(task.decode(body, "body", model, 0).input, got[0], rtol=1e-5, atol=1e-5)
    assert task.input_facts(model)["normalize"] == "dataset"  # serve's /v1/model says so

    # The record survives export: the ONNX file normalises alike, and its parity check ran on real series.
    onnx = tmp_path / "r.onnx"
    capsys.readouterr()
    assert main(["export", str(run), "-o", str(onnx)]) == 0
    assert "real test" in capsys.readouterr().out
    exported = OnnxClassifier(onnx).card
    assert exported.mean == card.mean and exported.data_config["normalize"] == "dataset"
    assert main(["predict", str(onnx), str(tmp_path / "x.npz"), "--json"]) == 0
    from_onnx = [r["top"][0]["name"] for r in json.loads(capsys.readouterr().out)]
    assert main(["predict", str(run), str(tmp_path / "x.npz"), "--json"]) == 0
    assert from_onnx == [r["top"][0]["name"] for r in json.loads(capsys.readouterr().out)]

    # Fine-tuning keeps the choice and takes the new data's own statistics.
    fine = ["finetune", str(run), "--data", str(folder), "--max-steps", "1", "--set", "data.batch_size=8"]
    assert main([*fine, "--out", str(tmp_path), "--name", "f", "--no-progress"]) == 0
    tuned = load_model(tmp_path / "f").card
    assert tuned.data_config["normalize"] == "dataset" and tuned.mean == pytest.approx(train.mean)


def test_an_unknown_choice_is_one_line(folder, tmp_path, capsys):
    args = ["train", "--model", "resnet_tsc", "--data", str(folder), "--max-steps", "1", "--out", str(tmp_path)]
    assert main([*args, "--set", "data.normalize=global"]) == 2
    err = capsys.readouterr().err
    assert "data.normalize" in err and "series, dataset, none" in err and "Traceback" not in err


def test_the_console_counts_series_and_texts_not_images(folder, tmp_path, caplog, capsys):
    args = ["train", "--model", "resnet_tsc", "--data", str(folder), "--max-steps", "2", "--batch-size", "8"]
    args += ["--set", f"model.overrides={SMALL}", "--out", str(tmp_path), "--name", "w", "--no-progress"]
    with caplog.at_level("INFO"):
        assert main(args) == 0
    said = caplog.text + capsys.readouterr().out
    assert "2 steps of 8 series" in said and "series/s" in said and "images" not in said and "img/s" not in said


def test_image_statistics_for_series_are_one_line(folder, tmp_path, capsys):
    args = ["train", "--model", "resnet_tsc", "--data", str(folder), "--max-steps", "1", "--out", str(tmp_path)]
    assert main([*args, "--set", "data.mean=[0.5,0.5]", "--set", "data.std=[1,1]"]) == 2
    err = capsys.readouterr().err
    assert "is not images (series take data.normalize)" in err and "Traceback" not in err
