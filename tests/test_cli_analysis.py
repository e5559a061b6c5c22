"""The analysis commands on a small trained checkpoint: each writes its PNG and JSON and prints numbers."""

import json

import numpy as np
import pytest
from PIL import Image

from resnetkit.cli import main
from resnetkit.train import TrainConfig, fit


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    fit(
        TrainConfig.from_dict(
            {
                "model": {"name": "resnet20"},
                "data": {"name": "digits", "batch_size": 64, "pad": 1},
                "max_steps": 3,
                "precision": "fp32",
                "out": str(out),
                "run_name": "r",
                "progress": False,
            }
        )
    )
    return str(out / "r" / "last.pt")


def test_gradients_of_models_at_init_and_of_a_trained_checkpoint(tmp_path, capsys, checkpoint):
    assert (
        main(
            [
                "analyze",
                "gradients",
                "plain20",
                "resnet20",
                checkpoint,
                "--points",
                "8",
                "--batch-size",
                "4",
                "--image-size",
                "8",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "plain20" in out and "init" in out and "trained" in out and "spread" in out
    data = json.loads((tmp_path / "gradients.json").read_text())
    assert [m["trained"] for m in data["models"]] == [False, False, True]
    assert data["models"][2]["layers"][0]["name"] == "conv1" and (tmp_path / "gradients.png").is_file()


def test_gradients_without_norm_only_at_init(tmp_path, capsys, checkpoint):
    assert (
        main(
            ["analyze", "gradients", "plain20", "--no-norm", "--points", "8", "--batch-size", "4", "-o", str(tmp_path)]
        )
        == 0
    )
    assert json.loads((tmp_path / "gradients.json").read_text())["norm"] is False
    assert main(["analyze", "gradients", checkpoint, "--no-norm", "-o", str(tmp_path)]) == 2
    assert "--no-norm applies to models at initialization" in capsys.readouterr().err


def test_responses_and_lesion_of_a_checkpoint(tmp_path, capsys, checkpoint):
    # Plots and JSON name a run by its folder and a checkpoint by folder/stem, not by the whole path.
    assert main(["analyze", "responses", checkpoint, "--images", "50", "-o", str(tmp_path)]) == 0
    prof = json.loads((tmp_path / "responses.json").read_text())["r/last"]
    assert len(prof["std"]) == 9 and all(s > 0 for s in prof["std"])
    assert main(["analyze", "lesion", checkpoint, "--images", "100", "-o", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "lesion.json").read_text())["r/last"]
    assert len(report["units"]) == 9 and 0 <= report["baseline"] <= 1
    assert "baseline" in capsys.readouterr().out and (tmp_path / "lesion.png").is_file()


def test_sources_are_labelled_short_unless_that_would_merge_two(tmp_path):
    from resnetkit.cli.labels import source_labels as _labels

    for run in ("a/r", "b/r", "c/s"):
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "best.pt").touch()
    a, b, c = (str(tmp_path / run) for run in ("a/r", "b/r", "c/s"))
    assert _labels([c, c + "/best.pt", "resnet20.fashion_mnist"]) == {
        c: "s",
        c + "/best.pt": "s/best",
        "resnet20.fashion_mnist": "resnet20.fashion_mnist",
    }
    assert _labels([a, b, c]) == {a: a, b: b, c: "s"}


def test_gradcam_over_image_files(tmp_path, capsys, checkpoint):
    gray = tmp_path / "digit.png"
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(gray)
    rgb = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(rgb)
    cam = tmp_path / "cam"
    assert main(["gradcam", checkpoint, str(gray), str(rgb), "-o", str(cam), "--grid"]) == 0
    rows = [json.loads((cam / f"{stem}.gradcam.json").read_text()) for stem in ("digit", "photo")]
    assert [r["image"] for r in rows] == [str(gray), str(rgb)] and {r["layer"] for r in rows} == {"layer3"}
    assert all(r["class_name"] == str(r["class"]) for r in rows)  # digits' classes are "0".."9"
    assert (cam / "digit.gradcam.png").is_file() and (cam / "photo.gradcam.png").is_file()
    assert (cam / "gradcam-grid.png").is_file()
    # Nothing is overwritten unless asked, and the refusal comes before any work.
    before = (cam / "digit.gradcam.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["gradcam", checkpoint, str(gray), "-o", str(cam)]) == 2
    assert "would overwrite" in capsys.readouterr().err and (cam / "digit.gradcam.png").stat().st_mtime_ns == before
    args = ["gradcam", checkpoint, str(gray), "--layer", "layer2.1", "--class", "3", "-o", str(cam), "--overwrite"]
    assert main(args) == 0
    row = json.loads((cam / "digit.gradcam.json").read_text())
    assert row["layer"] == "layer2.1" and row["class"] == 3
    assert main(["gradcam", checkpoint, str(tmp_path / "missing.png"), "-o", str(tmp_path)]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, capsys, checkpoint):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should go")
    for argv in (
        ["gradcam", checkpoint, str(tmp_path / "none.png"), "-o", str(blocked / "out")],
        ["analyze", "lesion", checkpoint, "-o", str(blocked / "out")],
        ["eval", checkpoint, "--out", str(blocked / "out")],
        ["train", "--data", "digits", "--max-steps", "1", "--out", str(blocked / "runs")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "cannot write there" in err and str(blocked / "out" if argv[0] != "train" else blocked / "runs") in err


def test_experiment_command_and_its_bad_input(tmp_path, capsys):
    assert (
        main(
            [
                "experiment",
                "degradation",
                "--data",
                "digits",
                "--depths",
                "20",
                "--epochs",
                "1",
                "--no-progress",
                "--set",
                "data.pad=1",
                "--set",
                'precision="fp32"',
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Only depth 20 was trained" in out and "report:" in out
    assert (tmp_path / "report.md").is_file() and (tmp_path / "runs" / "resnet20" / "last.pt").is_file()
    assert main(["experiment", "degradation", "--depths", "20,21", "-o", str(tmp_path)]) == 2
    assert "no model plain21" in capsys.readouterr().err
    assert main(["experiment", "degradation", "--depths", "twenty", "-o", str(tmp_path)]) == 2
    assert "--depths 'twenty'" in capsys.readouterr().err
