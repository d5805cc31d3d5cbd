"""LaTeX export: whole documents that compile with pdflatex (installed by .ci/run)."""
import os
import shutil
import subprocess

import pytest

from tracegrad import builtin_names, load
from tracegrad.cli import main
from tracegrad.render.latex import document, statement
from tracegrad.symbolic.rules import RULES

HAVE_PDFLATEX = shutil.which("pdflatex") is not None
needs_pdflatex = pytest.mark.skipif(
    not HAVE_PDFLATEX and os.environ.get("CI") != "true",
    reason="pdflatex is not installed here (.ci/run installs it; CI=true makes this a failure)")


def test_rule_statements_become_ascii_math():
    for rule in set(RULES.values()):
        s = statement(rule.statement)
        assert s.isascii() and "=" in s


def test_document_has_every_part():
    model = load("vardhan")
    tex = document(model, model.check(), model.verify())
    for part in ("\\section{The network}", "\\section{Convention}", "Step-by-step derivation",
                 "\\section{Results}", "Jacobian or gradient", "Numeric verification",
                 "\\frac{\\partial J}{\\partial {W^{[4]}}}", "\\mathbf{1}_{(1,m)}"):
        assert part in tex
    assert tex.isascii()


@needs_pdflatex
@pytest.mark.parametrize("model", builtin_names())
def test_documents_compile(tmp_path, capsys, model):
    tex = tmp_path / f"{model}.tex"
    assert main(["latex", model, "-o", str(tex), "--pdf"]) == 0
    assert tex.with_suffix(".pdf").stat().st_size > 10_000
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", f"-output-directory={tmp_path}", str(tex)],
                         capture_output=True, text=True, timeout=300)
    assert "Undefined control sequence" not in run.stdout
    assert "! " not in run.stdout


def test_latex_bad_output_name(capsys, tmp_path):
    assert main(["latex", "-o", str(tmp_path / "x.pdf")]) == 2
    assert main(["latex", "-o", "/nonexistent-dir/x.tex"]) == 2


def test_notebook_display():
    model = load("vardhan")
    assert model.derivation._repr_latex_().startswith("$$\\begin{aligned}")
    report = model.check(claims={"dZ4": "(A4 - Y).T / m"})
    assert "holds" in report._repr_latex_()
