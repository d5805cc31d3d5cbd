"""Verdicts that cannot be fooled (issue 11 §2): scalars are checked, each comparison means
itself, and a bound too loose to resolve a difference gives `inconclusive`, never `holds`.
Verdicts are pinned exactly: 'fails' is not 'error', 'holds' is not 'inconclusive'."""
import numpy as np
import pytest

import tracegrad
from tracegrad.language.formula import parse_formula
from tracegrad.numeric import evaluate

SCALARS = """
name = "scalars"
[dims]
n = "inputs"
m = "examples"
[inputs]
X = "n, m"
Y = { shape = "1, m", values = "binary" }
[params]
W = "n, 1"
[scalars]
reg = "L2 strength"
temp = "a temperature"
[forward]
Z = "W.T @ X / temp"
J = "sum((sigmoid(Z) - Y) ** 2) / m + 0.5 * reg * sum(W * W)"
[meaning]
dreg = "grad(reg)"
dtemp = "grad(temp)"
dZ = "grad(Z)"
dW = "grad(W)"
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "scalars.toml"
    path.write_text(SCALARS)
    return tracegrad.load(path)


def verdicts(model, claims):
    return {r.name + "=" + r.formula: r.verdict for r in model.check(claims=claims).results}


@pytest.mark.parametrize("name, formula, verdict", [
    ("dreg", "grad(reg)", "holds"),
    ("dreg", "0.5 * sum(W * W)", "holds"),                       # a 1×1 formula for a scalar
    ("dreg", "0.5 * W.T @ W", "holds"),
    ("dreg", "sum(W * W)", "fails"),                             # off by 2
    ("dreg", "0.5 * sum(W)", "fails"),
    ("dtemp", "-sum(dZ * Z) / temp", "holds"),                   # dJ/dτ = −Σ dZ ∘ Z / τ
    ("dtemp", "sum(dZ * Z) / temp", "fails"),                    # the sign
    ("dtemp", "-sum(dZ * Z)", "fails"),                          # a missing 1/τ
    ("dW", "X @ dZ.T / temp + reg * W", "holds"),
    ("dW", "X @ dZ.T + reg * W", "fails"),
    ("dreg", "W", "fails"),                                      # a vector for a scalar
])
def test_scalar_claims(model, name, formula, verdict):
    (result,) = model.check(claims={name: formula}).results
    assert result.verdict == verdict, (name, formula, result.evidence)


@pytest.mark.parametrize("comparison, verdict", [
    ("Y > 0.5", "holds"), ("Y >= 1", "holds"), ("Y == 1", "holds"), ("Y != 0", "holds"),
    ("Y > 0", "holds"), ("1 - (Y <= 0)", "holds"), ("1 - (Y < 1)", "holds"), ("0.5 < Y", "holds"),
    ("Y >= 0", "fails"), ("Y <= 1", "fails"), ("Y < 1", "fails"), ("Y == 0", "fails"),
    ("Y != 1", "fails"), ("Y >= 0.5 * 0", "fails"), ("1 - (Y < 0)", "fails"),
])
def test_each_comparison_means_itself_on_binary_data(comparison, verdict):
    """vardhan's Y is binary: ties (Y = 0, Y = 1) are the rule, and ≥ is not >."""
    vardhan = tracegrad.load("vardhan")
    (result,) = vardhan.check(claims={"dZ4": f"(A4 - ({comparison})).T / m"}).results
    assert result.verdict == verdict, (comparison, result.evidence)


def test_comparisons_evaluate_ties_as_written():
    import sympy as sp
    n = sp.Symbol("n", integer=True, positive=True)
    X = sp.MatrixSymbol("X", n, n)
    x = np.array([[0.0, 1.0], [-1.0, 0.0]])
    for text, expected in [("X > 0", x > 0), ("X >= 0", x >= 0), ("X < 0", x < 0), ("X <= 0", x <= 0),
                           ("X == 0", x == 0), ("X != 0", x != 0), ("X >= 1", x >= 1)]:
        got = evaluate(parse_formula(text, {"X": X, "n": n}), {X: x})
        np.testing.assert_array_equal(got, expected.astype(float), err_msg=text)


@pytest.mark.parametrize("claim, verdict", [
    # a wrong sign hidden next to a term that is zero exactly but carries a huge rounding bound
    # (columns of a softmax sum to 1: the term is 0, computed with an error of a few ulps)
    ("-(A4 - Y).T / m + 1e14 * (ones(1, n1) @ softmax(Z1) - 1).T", "inconclusive"),
    ("(A4 - Y).T / m + 1e14 * (ones(1, n1) @ softmax(Z1) - 1).T", "inconclusive"),
    # the same noise with a difference far beyond it: that is a difference
    ("1e9 * (A4 - Y).T / m + 1e14 * (ones(1, n1) @ softmax(Z1) - 1).T", "fails"),
    ("(A4 - Y).T / m + 1e-6 * (ones(1, n1) @ softmax(Z1) - 1).T", "holds"),
])
def test_a_loose_bound_never_holds(claim, verdict):
    vardhan = tracegrad.load("vardhan")
    (result,) = vardhan.check(claims={"dZ4": claim}).results
    assert result.verdict == verdict, result.evidence
