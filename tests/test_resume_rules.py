"""What ``--resume`` does with what it is given (issue 21): a run length other than the run's own
is refused in one line naming the run's config.yaml (its schedule spans that length), not
ignored; and a run killed before its first checkpoint, leaving only a temp file, is no dead end:
the command ``--resume`` prints starts it again in the same folder."""

from __future__ import annotations

import shlex

import pytest

from resnetkit.cli import main


def _run_folder(tmp_path, command: str = ""):
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("data:\n  name: digits\nepochs: 30\nmax_steps: 2\nrun_name: r\n")
    if command:
        (run / "command.txt").write_text(command + "\n")
    return run


@pytest.mark.parametrize(
    ("flag", "value", "saved"), [("--max-steps", "4", "max_steps: 2"), ("--epochs", "5", "epochs: 30")]
)
def test_another_run_length_beside_resume_is_refused_naming_the_config(tmp_path, capsys, flag, value, saved):
    run = _run_folder(tmp_path)
    (run / "last.pt").write_bytes(b"")  # refused before the checkpoint is read
    assert main(["train", "--resume", str(run), flag, value]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert f"{flag} {value}: {run / 'config.yaml'} has {saved}" in err
    assert f"--weights {run} {flag} {value} --name NEW" in err  # and says how to train longer


def test_the_runs_own_length_beside_resume_is_accepted_without_a_note(tmp_path, capsys):
    run = _run_folder(tmp_path)  # no checkpoint: fit says so, after the length was accepted
    assert main(["train", "--resume", str(run), "--max-steps", "2", "--epochs", "30"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "ignored" not in err and "--max-steps 2:" not in err


def test_a_run_killed_before_its_first_checkpoint_starts_again_in_its_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    command = f"resnetkit train --data digits --max-steps 1 --batch-size 16 --out {out} --name r --no-progress"
    run = _run_folder(tmp_path, command)
    (run / "last.pt.tmp").write_bytes(b"half a checkpoint")  # what a killed write leaves
    (run / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and f"run it again: {command}" in err
    assert main(shlex.split(command)[1:]) == 0
    assert (run / "last.pt").is_file() and (run / "summary.json").is_file()


def test_under_nproc_another_run_length_is_refused_once_before_any_worker_starts(tmp_path, capsys, monkeypatch):
    import resnetkit.train.launch as launch

    run = _run_folder(tmp_path)
    (run / "last.pt").write_bytes(b"")
    monkeypatch.setattr(launch, "launch_local", lambda *a: pytest.fail("workers were started"))
    assert main(["train", "--resume", str(run), "--nproc", "2", "--max-steps", "4"]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert f"--max-steps 4: {run / 'config.yaml'} has max_steps: 2" in err
