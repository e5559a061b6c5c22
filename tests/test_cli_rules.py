"""Small rules of the command line (issue 21): a port in use is refused before the model loads,
and a flag given beside --resume is named as ignored rather than silently dropped."""

from __future__ import annotations

import socket

from resnetkit.cli import main


def test_serve_on_a_port_in_use_is_one_line_before_the_model_loads(capsys, monkeypatch):
    import resnetkit.infer as infer

    monkeypatch.setattr(infer, "load_source", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "resnet20.fashion_mnist", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--port {port}: cannot listen there" in err and "\n" not in err


def test_flags_beside_resume_are_named_as_ignored(tmp_path, capsys):
    args = ["train", "--data", "digits", "--max-steps", "2", "--batch-size", "64", "--no-progress"]
    assert main([*args, "--precision", "fp32", "--out", str(tmp_path), "--name", "r"]) == 0
    capsys.readouterr()
    # (a --max-steps other than the run's is refused instead: tests/test_resume_rules.py)
    assert main(["train", "--resume", str(tmp_path / "r"), "--lr", "0.5", "--batch-size", "32"]) == 0
    assert "--batch-size, --lr ignored" in capsys.readouterr().err
