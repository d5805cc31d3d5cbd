"""The CLI fits its surroundings: --json everywhere, help with defaults and examples, stdin as
`-`, a console that cannot show Unicode, and output files that are whole or absent."""
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from tracegrad.cli import build_parser, main
from tracegrad.model import MODELS


def run(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8"))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, key", [
    (["list"], None), (["derive", "--wrt", "W4"], "results"), (["check", "vardhan", "--claim", "dZ4 = (A4 - Y).T / m"], "results"),
    (["compare", "ng", "sudeep", "--loss", "bce"], "ng"), (["derive", "--wrt", "Z3", "--steps"], "path"),
])
def test_json_is_one_document(capsys, argv, key):
    code, out, _ = run(capsys, *argv, "--json")
    data = json.loads(out)
    assert code in (0, 1) and (key is None or key in data)


def test_json_of_the_file_writers(capsys, tmp_path):
    target = tmp_path / "net.py"
    code, out, _ = run(capsys, "codegen", "-o", str(target), "--json")
    assert code == 0 and json.loads(out) == {"module": str(target), "wrt": ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]}


def test_check_json_keeps_its_shape(capsys):
    code, out, _ = run(capsys, "check", "seed-question", "--json")
    data = json.loads(out)
    assert set(data) >= {"model", "loss", "seed", "sizes", "results"}
    for r in data["results"]:
        assert set(r) >= {"name", "formula", "verdict", "evidence", "diagnosis", "suggestion"}


def test_every_argument_has_help_and_every_command_examples():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert "examples:\n  tracegrad " in sub.epilog, name
        for action in sub._actions:
            assert action.help, (name, action.dest)
            if action.default not in (None, False, [], "==SUPPRESS==") and action.dest != "help":
                assert "default" in action.help, (name, action.dest)


def test_model_from_stdin(capsys, monkeypatch):
    text = (MODELS / "sudeep.toml").read_text()
    code, out, err = run(capsys, "check", "-", stdin=text, monkeypatch=monkeypatch)
    assert code == 0 and out.startswith("model sudeep") and not err


def test_claims_from_stdin(capsys, monkeypatch):
    claims = "# mine\ndZ4 = (A4 - Y).T / m\n\ndW4 = dZ4.T @ A4.T\n"
    code, out, _ = run(capsys, "check", "vardhan", "--claim", "-", "--json", stdin=claims, monkeypatch=monkeypatch)
    assert code == 1
    assert [(r["name"], r["verdict"]) for r in json.loads(out)["results"]] == [("dZ4", "holds"), ("dW4", "fails")]


def test_stdin_cannot_be_read_twice(capsys, monkeypatch):
    code, _, err = run(capsys, "check", "-", "--claim", "-", stdin="", monkeypatch=monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "stdin" in err


def test_bad_model_on_stdin_is_one_line(capsys, monkeypatch):
    code, _, err = run(capsys, "derive", "-", stdin="name = [", monkeypatch=monkeypatch)
    assert code == 2 and err.startswith("tracegrad: error: <stdin>: not valid TOML") and err.count("\n") == 1


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0",
                                                                  "PYTHONCOERCECLOCALE": "0"}])
def test_a_console_without_unicode_gets_ascii(env):
    done = subprocess.run([sys.executable, "-m", "tracegrad", "check", "seed-question"], capture_output=True,
                          env={**os.environ, **env}, timeout=120)
    assert done.returncode == 1 and not done.stderr
    out = done.stdout.decode("ascii")
    assert "f'(z4) = (1(K,m) - a4) * a4" in out and "?" not in out


def test_an_interrupted_write_leaves_no_file(capsys, tmp_path, monkeypatch):
    import pathlib
    real = pathlib.Path.write_text

    def interrupted(self, text, *args, **kwargs):
        real(self, text[:100], *args, **kwargs)
        raise KeyboardInterrupt
    monkeypatch.setattr(pathlib.Path, "write_text", interrupted)
    for argv in (["latex", "-o", str(tmp_path / "x.tex")], ["codegen", "-o", str(tmp_path / "x.py")]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err == "tracegrad: interrupted\n"
        assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("pdflatex") is None and os.environ.get("CI") != "true", reason="no pdflatex")
def test_pdf_onto_an_unwritable_target_is_one_line(capsys, tmp_path):
    (tmp_path / "x.pdf").mkdir()          # root may write anywhere: a directory is never a file
    code, out, err = run(capsys, "latex", "-o", str(tmp_path / "x.tex"), "--pdf")
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"tracegrad: error: cannot write {tmp_path}/x.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pdf", "x.tex"]
