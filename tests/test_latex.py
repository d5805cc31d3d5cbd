"""LaTeX export: whole documents that compile with pdflatex (installed by .ci/run)."""
import os
import re
import shutil

import pytest

from tracegrad import builtin_names, load
from tracegrad.cli import main
from tracegrad.render.latex import document, write_pdf
from tracegrad.render.tex import _group_end, statement, text
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
def test_documents_compile_without_box_or_glyph_defects(tmp_path, capsys, model):
    tex = tmp_path / f"{model}.tex"
    assert main(["latex", model, "-o", str(tex), "--pdf"]) == 0
    pdf = tex.with_suffix(".pdf").read_bytes()
    assert len(pdf) > 10_000
    assert b"MSBM" not in pdf           # amssymb's blackboard font: its "1" is not a 1
    _, log = write_pdf(tex)
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert max(overfull, default=0) <= 10, overfull
    assert "Missing character" not in log and "Undefined control sequence" not in log
    assert not [line for line in log.splitlines() if line.startswith("!")]


def test_prose_keeps_its_unicode():
    title = load("seed-question").title
    assert "Sudeep" in title and "δ⁽⁴⁾" in title
    assert text(title).endswith("Ng's and Sudeep's $\\delta^{(4)}$, $\\delta^{(3)}$, $\\Delta^{(3)}$ for a three-layer sigmoid net")
    assert text("½‖x − t‖², § 3.1, 𝟏₍K,m₎") == "$\\frac12\\|$x $-$ t$\\|^{2}$, \\S{} 3.1, $\\mathbf{1}_{(K,m)}$"
    assert text("ΣΩ✓").isascii() and "?" not in text("—…’")


def test_rule_statements_set_words_as_text():
    from tracegrad.symbolic.rewrites import NAME_INTERMEDIATES, SUBSTITUTE
    assert "definition's right-hand side" in statement(NAME_INTERMEDIATES.statement)
    assert statement(SUBSTITUTE.statement) == "each adjoint $G_N$ is replaced by its own expression, the sum of its uses"


def test_document_reads_as_a_derivation():
    from tracegrad.checking.compare import compare
    from tracegrad.layer import generic_layer
    from tracegrad.symbolic.printing import to_text
    model = load("seed-question")
    layer = generic_layer(model)
    tex = document(model, model.check(), None, compare(load("ng"), load("sudeep")), layer)
    assert "In the definition of" not in tex and "\\text{" not in tex
    # transposes of fractions apply to the whole fraction
    for k in [m.start() for m in re.finditer(re.escape("\\frac{"), tex)]:
        end = _group_end(tex, _group_end(tex, k + 5) + 1)
        assert not tex.startswith("^{\\top}", end + 1), tex[k:end + 10]
    # the general layer is derived from one layer with a free incoming adjoint, and agrees with
    # the whole network's derivative of that layer
    theta2 = model.symbols["Theta2"]
    assert layer.derivation.jacobian(theta2, "compact") == model.derivation.jacobian(theta2, "compact")
    assert layer.incoming.name == "G_a3" and layer.below == (model.forward_names()["a2"],)
    line = to_text(layer.derivation.jacobian(theta2, "named"), "latex", layer.names)
    assert "G_{{a^{[l]}}}" in line and line in tex
    assert "\\section{The general layer $l$}" in tex and "\\section{Why the formulas differ}" in tex
    assert "Where the transposes in sudeep's" in tex
    why = tex.split("Why \\texttt{delta4}")[1].split("Under mse")[0]
    assert "entry-wise algebra" in why and to_text(load("ng").derive("bce").adjoint(load("ng").forward_names()["z4"], "named"), "latex") in why


def test_latex_bad_output_name(capsys, tmp_path):
    assert main(["latex", "-o", str(tmp_path / "x.pdf")]) == 2
    assert main(["latex", "-o", "/nonexistent-dir/x.tex"]) == 2


def test_notebook_display():
    model = load("vardhan")
    assert model.derivation._repr_latex_().startswith("$$\\begin{aligned}")
    report = model.check(claims={"dZ4": "(A4 - Y).T / m"})
    assert "holds" in report._repr_latex_()
