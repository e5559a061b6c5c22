"""The sequence task through the engine and every tool: train (bucketed batches, the time-series
recipe's Adam and plateau schedule), resume exactly, eval, predict (a .npz, a file of numbers, a
text file, a string), embed, export to ONNX with a dynamic length, finetune, and its refusals.
The readers live on another branch: ``sequence_helpers`` stands in for them with their interface."""

import json
import zipfile

import numpy as np
import pytest
import torch

import sequence_helpers
from resnetkit.artifacts import load_checkpoint, load_model
from resnetkit.cli import main
from resnetkit.tasks.sequence_data import PAD_SYMBOL, TEXT_QUANTUM, BucketLoader, SequenceDataset
from resnetkit.train import fit
from resnetkit.train.config import TrainConfig
from resnetkit.train.recipes import recipe

SMALL = '{"channels": [8, 16, 16]}'  # the time-series ResNet at an eighth of its width: tests stay fast


@pytest.fixture(autouse=True)
def readers(monkeypatch):
    sequence_helpers.install(monkeypatch)


def _cfg(tmp_path, **kw):
    base = recipe("time-series")
    base |= {
        "model": {"name": "resnet_tsc", "overrides": {"channels": [8, 16, 16]}},
        "data": {**base["data"], "name": "toy:ragged", "batch_size": 4, "batch_fraction": None},
        "epochs": 2,
        "precision": "fp32",
        "out": str(tmp_path),
        "progress": False,
        "log_every": 1,
    }
    for k, v in kw.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) else v
    return TrainConfig.from_dict(base)


def test_series_batches_hold_one_length_and_every_item_once():
    ds = SequenceDataset.of(sequence_helpers.load_sequences("toy:ragged", "train"))
    loader = BucketLoader(ds, 4)
    seen = []
    for x, y in loader:
        assert x.dtype == torch.float32 and x.shape[1] == 2 and len(x) == len(y) <= 4
        seen.append(x)
    assert sum(len(x) for x in seen) == len(ds)
    # Each series at its own length: the batches' lengths are the items' lengths, unpadded.
    assert sorted(int(x.shape[-1]) for x in seen for _ in x) == sorted(ds.lengths.tolist())
    train = BucketLoader(ds, 4, shuffle=True, seed=3)
    train.set_epoch(1)
    first = [idx.tolist() for _, idx in train.batches()]
    assert first == [idx.tolist() for _, idx in train.batches()]  # an epoch replays (resume)
    train.set_epoch(2)
    assert first != [idx.tolist() for _, idx in train.batches()]
    ranks = [BucketLoader(ds, 4, shuffle=True, rank=r, world_size=2, even_shards=True) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
    assert not {i for _, b in ranks[0].batches() for i in b.tolist()} & {
        i for _, b in ranks[1].batches() for i in b.tolist()
    }


def test_a_text_is_padded_alike_whatever_its_batch():
    ds = SequenceDataset.of(sequence_helpers.texts("train"))
    x, _ = next(iter(BucketLoader(ds, 8)))
    n = int(ds.lengths[0])
    assert x.dtype == torch.int64 and x.shape[-1] % TEXT_QUANTUM == 0
    assert (x[0, 0, n:] == PAD_SYMBOL).all() and bytes(x[0, 0, :n].tolist()) == bytes(ds.values[0, 0, :n])
    from resnetkit.models import create_model

    model = create_model("resnet_text", num_classes=2, channels=(8, 8, 8, 8)).eval()
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(together, alone)


def test_plateau_halves_the_lr_when_the_training_loss_stalls():
    from resnetkit.train.config import OptimConfig, ScheduleConfig
    from resnetkit.train.optim import build_optimizer, build_scheduler, end_epoch

    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, OptimConfig(name="adam", lr=1e-3, weight_decay=0.0))
    assert isinstance(opt, torch.optim.Adam)
    sched = build_scheduler(opt, ScheduleConfig(name="plateau", gamma=0.5, patience=1, min_lr=0.25), 100, 10)
    lrs = []
    for loss in (1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5):
        sched.step()  # per optimizer step: nothing moves
        end_epoch(sched, {"train_loss": loss})
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:4] == [1e-3, 1e-3, 1e-3, 5e-4] and min(lrs) == pytest.approx(2.5e-4)


def test_resume_continues_exactly(tmp_path):
    fit(_cfg(tmp_path, run_name="a", max_steps=12))

    def stop_at_5(step, _):
        if step == 5:
            raise KeyboardInterrupt

    from resnetkit.train import TrainingInterrupted

    with pytest.raises(TrainingInterrupted):
        fit(_cfg(tmp_path, run_name="b", max_steps=12), callbacks=[stop_at_5])
    assert load_checkpoint(tmp_path / "b")["step"] == 5
    fit(None, resume=tmp_path / "b")
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in "ab")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["scheduler"] == b["scheduler"]


def test_train_eval_predict_embed_export_through_the_cli(tmp_path, capsys):
    run = tmp_path / "r"
    args = ["train", "--model", "resnet_tsc", "--data", "toy:ragged", "--recipe", "time-series", "--epochs", "3"]
    args += ["--set", f"model.overrides={SMALL}", "--out", str(tmp_path), "--name", "r", "--no-progress"]
    assert main(args) == 0
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["task"] == "sequence" and ckpt["config"]["optim"]["name"] == "adam"
    card = load_model(run).card
    assert (card.task, card.kind, card.in_chans, card.classes, card.max_length) == (
        "sequence",
        "series",
        2,
        ("early", "late"),
        32,
    )
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "sequence" and report["n"] == 12 and report["top1"] >= 0.5

    test = sequence_helpers.bumps(3, 40, 7, channels=2)
    np.savez(tmp_path / "x.npz", X=test.values)
    assert main(["predict", str(run), str(tmp_path / "x.npz"), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in records] == [f"{tmp_path / 'x.npz'}#{i}" for i in range(3)]
    assert all(abs(sum(t["prob"] for t in r["top"]) - 1) < 1e-5 for r in records)

    assert main(["embed", str(run), "toy:ragged", "-o", str(tmp_path / "e.npz"), "--knn", "1"]) == 0
    with np.load(tmp_path / "e.npz") as e:
        assert e["features_train"].shape == (24, 16) and e["features_test"].shape == (12, 16)

    onnx = tmp_path / "r.onnx"
    assert main(["export", str(run), "-o", str(onnx)]) == 0
    assert "real test" in capsys.readouterr().out
    # The length axis is dynamic: the file runs series of other lengths as PyTorch does.
    from resnetkit.infer import OnnxClassifier

    runner, model = OnnxClassifier(onnx), load_model(run)
    for length in (7, 50):
        x = torch.randn(3, 2, length)
        with torch.no_grad():
            torch.testing.assert_close(runner(x), model(x), rtol=1e-4, atol=1e-4)
    assert main(["predict", str(onnx), str(tmp_path / "x.npz")]) == 0


def test_predict_refuses_bad_series_in_one_line(tmp_path, capsys):
    fit(_cfg(tmp_path, run_name="r", max_steps=1, data={"name": "toy:series"}))
    run = str(tmp_path / "r")
    nan = np.zeros((1, 1, 20))
    nan[0, 0, 3] = np.nan
    np.savez(tmp_path / "nan.npz", X=nan)
    np.savez(tmp_path / "two.npz", X=np.zeros((1, 2, 20)))
    (tmp_path / "ragged.txt").write_text("1 2 3\n4 5\n")
    # UCR style: a .csv/.tsv row is its label, then the series; other text files are values only.
    values = "0,1,2,3,2,1,0,0,0,0"
    (tmp_path / "one.csv").write_text(f"late,{values}\n")
    (tmp_path / "one.tsv").write_text("early\t" + values.replace(",", "\t") + "\n")
    (tmp_path / "one.txt").write_text(values + "\n")
    (tmp_path / "unlabelled.csv").write_text(values + "\n")
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as archive, archive.open("X.npy", "w") as member:
        header = {"descr": "<f8", "fortran_order": False, "shape": (1 << 26, 1, 16)}  # 8 GiB in ~200 bytes
        np.lib.format.write_array_header_1_0(member, header)
    capsys.readouterr()
    for name, message in (
        ("nan.npz", "NaN"),
        ("two.npz", "(N, 1, L)"),
        ("ragged.txt", "different lengths"),
        ("unlabelled.csv", "line 1: first field '0' is not one of the model's classes (early, late)"),
        ("liar.npz", "declares 8,589,934,592 bytes"),
    ):
        assert main(["predict", run, str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and name in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # The label is read and set aside: the three files predict the same series alike.
    tops = []
    for name in ("one.csv", "one.tsv", "one.txt"):
        assert main(["predict", run, str(tmp_path / name), "--json"]) == 0
        tops.append([t["prob"] for t in json.loads(capsys.readouterr().out)[0]["top"]])
    assert tops[0] == tops[1] == tops[2]


def test_text_model_trains_and_reads_files_and_strings(tmp_path, capsys):
    args = ["train", "--model", "resnet_text", "--data", "toy:text", "--max-steps", "2", "--batch-size", "8"]
    args += ["--set", 'model.overrides={"channels": [8, 8, 8, 8]}', "--out", str(tmp_path), "--name", "t"]
    assert main([*args, "--no-progress"]) == 0
    run = str(tmp_path / "t")
    assert load_model(run).card.kind == "text"
    (tmp_path / "a.txt").write_text("waves on the shore\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("  \n")
    assert "texts/s)" in capsys.readouterr().out  # the unit is the task's: "done: 2 steps in ... (N texts/s)"
    assert main(["predict", run, str(tmp_path / "a.txt"), "stars at night", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in records] == [str(tmp_path / "a.txt"), "stars at night"]
    assert {r["top"][0]["name"] for r in records} <= {"sea", "sky"}
    for name, message in (("latin1.txt", "not UTF-8"), ("empty.txt", "empty text")):
        assert main(["predict", run, str(tmp_path / name)]) == 2
        assert message in capsys.readouterr().err
    assert main(["export", run, "-o", str(tmp_path / "t.onnx")]) == 0


def test_any_family_trains_on_sequences_and_finetunes(tmp_path):
    base = ["--data", "toy:series", "--max-steps", "2", "--batch-size", "8", "--out", str(tmp_path), "--no-progress"]
    assert main(["train", "--task", "sequence", "--model", "resnet20", *base, "--name", "f"]) == 0
    model = load_model(tmp_path / "f")
    assert model.spatial_dims == 1 and model.card.task == "sequence"
    # A model pretrained on one sequence dataset, fine-tuned to another (a new head, the same trunk).
    fine = ["finetune", str(tmp_path / "f"), "--data", "toy:long", "--max-steps", "2", "--batch-size", "8"]
    assert main([*fine, "--out", str(tmp_path), "--name", "g", "--no-progress"]) == 0
    tuned = load_model(tmp_path / "g")
    assert tuned.card.task == "sequence" and tuned.card.data == "toy:long" and tuned.card.max_length == 48
    config = load_checkpoint(tmp_path / "g")["config"]
    assert config["model"]["weights"] == str(tmp_path / "f") and config["transfer"]["mode"] == "finetune"


def test_sequence_config_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--task", "detection", "--model", "resnet_tsc", "--data", "toy:series"]) == 2
    assert "resnet_tsc is a sequence model" in capsys.readouterr().err
    bad = ["train", "--model", "resnet_text", "--data", "toy:series", "--max-steps", "1", "--out", str(tmp_path)]
    assert main(bad) == 2
    assert "reads bytes" in capsys.readouterr().err


def test_serve_answers_a_series_and_a_text_as_json(tmp_path):
    import httpx

    from serve_helpers import Server

    fit(_cfg(tmp_path, run_name="s", max_steps=2, data={"name": "toy:series"}))
    args = ["train", "--model", "resnet_text", "--data", "toy:text", "--max-steps", "1", "--batch-size", "8"]
    args += ["--set", 'model.overrides={"channels": [8, 8, 8, 8]}', "--out", str(tmp_path), "--name", "t"]
    assert main([*args, "--no-progress"]) == 0
    series = Server(str(tmp_path / "s"), log=tmp_path / "s.log")
    try:
        model = httpx.get(f"{series.url}/v1/model").json()
        assert model["task"] == "sequence" and model["input"]["kind"] == "series"
        body = json.dumps({"series": np.sin(np.arange(40) / 3).tolist()})
        reply = httpx.post(f"{series.url}/v1/predict", content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 200, reply.text
        (answer,) = reply.json()["predictions"]
        assert {t["name"] for t in answer["top"]} == {"early", "late"}
        for bad, message in (('{"series": [1, NaN, 2]}', "NaN"), ('{"text": "x"}', '"series"'), ("[1,", "not JSON")):
            reply = httpx.post(f"{series.url}/v1/predict", content=bad, headers={"content-type": "application/json"})
            assert reply.status_code == 400 and message in reply.json()["error"]
        reply = httpx.post(f"{series.url}/v1/predict", content=b"\x89PNG", headers={"content-type": "image/png"})
        assert reply.status_code == 415
    finally:
        series.stop()
    text = Server(str(tmp_path / "t"), log=tmp_path / "t.log")
    try:
        body = json.dumps({"text": "a ship on the waves"})
        reply = httpx.post(f"{text.url}/v1/predict", content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 200 and reply.json()["predictions"][0]["top"][0]["name"] in ("sea", "sky")
    finally:
        text.stop()
