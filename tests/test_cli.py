"""The command line: thin, and bad input gets one clear line."""

import json

import pytest

from resnetkit.cli import main


def test_info_table_and_json(capsys):
    assert main(["info", "resnet50", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "25,557,032" in out and "4.089" in out
    assert main(["info", "resnet18", "--json", "--image-size", "112"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (
        row["image_size"] == 112 and row["depth"] == 18 and row["gmacs"] == pytest.approx(1.814 / 4, rel=0.1)
    )  # layer4 is 4x4, not 3.5x3.5


def test_info_unknown_pattern(capsys):
    assert main(["info", "vgg*"]) == 2
    assert "no model matches" in capsys.readouterr().err


def test_train_then_eval_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [
        "train",
        "--model",
        "resnet20",
        "--data",
        "digits",
        "--max-steps",
        "4",
        "--batch-size",
        "64",
        "--out",
        str(tmp_path),
        "--name",
        "cli",
        "--no-progress",
        "--precision",
        "fp32",
        "--set",
        "data.pad=1",
        "--set",
        "data.flip=false",
        "--set",
        "tta_flip=true",
        "--set",
        "tta_shift=1",
        "--set",
        "data.val_size=100",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "run folder:" in out and "best.pt" in out and "best validation top-1" in out
    assert (tmp_path / "cli" / "command.txt").read_text().startswith("resnetkit train --model resnet20 --data digits")
    assert main(["eval", str(tmp_path / "cli" / "best.pt"), "--json", "--precision", "fp32"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"top1", "top5", "n", "per_class", "confusion"} <= set(report) and report["n"] == 360
    # eval repeats the run's own evaluation (here flip and shift TTA) unless told otherwise, and
    # keeps the confusion matrix as a PNG beside its JSON
    assert report["tta_flip"] is True and report["tta_shift"] == 1 and "plain_top1" in report
    assert (tmp_path / "runs" / "eval" / "cli-best" / "confusion.png").is_file()
    assert main(["eval", str(tmp_path / "cli"), "--no-tta-flip", "--precision", "fp32", "--out", "e"]) == 0
    assert "with ±1 px shift TTA" in capsys.readouterr().out
    argv = ["eval", str(tmp_path / "cli"), "--no-tta-flip", "--tta-shift", "0", "--precision", "fp32", "--out", "e"]
    assert main(argv) == 0
    assert "without TTA" in capsys.readouterr().out
    assert json.loads((tmp_path / "e" / "eval.json").read_text())["tta_flip"] is False


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "--recipe", "imagenet"], "unknown recipe"),
        (["train", "--set", "optim.momentun=0.8"], "optim.momentun"),
        (["train", "--data", "svhn"], "unknown dataset 'svhn'"),
        (["train", "--model", "resnet19", "--data", "digits"], "did you mean"),
        (["eval", "nowhere.pt"], "nowhere.pt"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, argv, needle, tmp_path):
    assert main(argv + (["--out", str(tmp_path)] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["predict", "eval", "gradcam"])
@pytest.mark.parametrize("content", [b"", b"\x00\x01 not safetensors at all " * 9])
def test_a_damaged_weights_file_is_one_line_to_every_command(tmp_path, capsys, command, content):
    from PIL import Image

    weights = tmp_path / "m.safetensors"
    weights.write_bytes(content)
    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    argv = [command, str(weights)] + ([] if command == "eval" else [str(image)])
    if command != "predict":
        argv += ["-o" if command == "gradcam" else "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.safetensors: not a safetensors file" in err and "Traceback" not in err


def test_an_image_over_the_pixel_limit_is_one_line_that_names_the_flag(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "big.png"
    Image.new("L", (40, 30)).save(image)
    assert main(["predict", "resnet20.fashion_mnist", str(image), "--max-image-pixels", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "40x30 (1,200 pixels)" in err and "--max-image-pixels" in err
    assert main(["predict", "resnet20.fashion_mnist", str(image), "--max-image-pixels", "1200"]) == 0


def test_training_without_a_terminal_prints_progress_lines(tmp_path, caplog, monkeypatch):
    from resnetkit.train import engine

    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 0.0)  # a line at every step instead of every 30 s
    args = [
        "train",
        "--data",
        "digits",
        "--max-steps",
        "3",
        "--batch-size",
        "64",
        "--precision",
        "fp32",
        "--out",
        str(tmp_path),
        "--name",
        "p",
        "--set",
        "data.pad=1",
    ]
    with caplog.at_level("INFO", logger="resnetkit.train"):
        assert main(args) == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"] and all("ETA" in line for line in lines)
