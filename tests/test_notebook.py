"""Notebooks: tracegrad's objects executed in a real Jupyter kernel show short reprs and HTML and
LaTeX bundles that carry what the terminal report carries (verdicts, diagnoses, suggestions)."""
from pathlib import Path

import pytest

import tracegrad
from tracegrad.symbolic.printing import to_text

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the 'test' extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the 'test' extra")
pytest.importorskip("ipykernel", reason="ipykernel is in the 'test' extra")

ROOT = Path(__file__).resolve().parents[1]
CELLS = [
    "import tracegrad as tg\nprint(tg.__file__)",
    "model = tg.load('vardhan')\nmodel",
    "report = model.check(claims={'dW4': 'dZ4.T @ A4.T', 'dZ3': 'dA3', 'dZ4': '(A4 - Y).T / m'})\nreport",
    "report.results[0]",
    "model.verify()",
    "model.derivation",
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}})
    client.execute()
    return [cell.outputs for cell in nb.cells]


def bundle(outputs, k):
    (result,) = [o for o in outputs[k] if o.output_type == "execute_result"]
    return result.data


def test_the_kernel_runs_this_checkout(outputs):
    (printed,) = outputs[0]
    assert Path(printed.text.strip()).is_relative_to(ROOT)


def test_a_check_report_shows_its_diagnoses(outputs):
    data = bundle(outputs, 2)
    assert {"text/plain", "text/html", "text/latex"} <= set(data)
    assert data["text/plain"] == "CheckReport(model='vardhan', seed=0: 1 holds, 2 fails)"
    for part in ("shape mismatch: the formula is (1, 1), dW4 is (1, n3)", "did you mean: dW4 = dZ4.T @ A3.T",
                 "missing activation derivative: multiplying by f′(Z3) = 1[Z3 &gt; 0]"):
        assert part in data["text/html"], part
    assert "did you mean: dW4 = dZ4.T @ A3.T" in data["text/latex"]
    claim = bundle(outputs, 3)
    assert claim["text/plain"] == "ClaimResult(dW4 = 'dZ4.T @ A4.T': fails)" and "did you mean" in claim["text/html"]


def test_model_verify_and_derivation_bundles(outputs):
    model, verified, derivation = bundle(outputs, 1), bundle(outputs, 4), bundle(outputs, 5)
    assert model["text/plain"].startswith("Model('vardhan': 4-layer dense net")
    z1 = tracegrad.load("vardhan").program.definitions[0][1]
    assert ":= " + to_text(z1, "unicode") in model["text/html"]
    assert "\\begin{aligned}" in model["text/latex"]
    assert verified["text/plain"] == "VerifyReport(model='vardhan', seed=0: 10 of 10 pass)"
    assert "∇W1" in verified["text/html"] and "worst error/bound" in verified["text/html"]
    assert "\\nabla" in verified["text/latex"]
    assert derivation["text/latex"].startswith("$$\\begin{aligned}")
