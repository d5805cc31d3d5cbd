"""Branch arguments on data alone are not kinks (issue 11/12 follow-up): a comparison, a max or a
relu of inputs that are not differentiated (binary or one-hot targets, labels) cannot switch along
any direction the checks move, so it must not make a point "near a kink", a weak test point, or a
verdict inconclusive.  Branch arguments that reach a differentiated symbol (a ReLU pre-activation,
a comparison of a prediction with a target, a real input that is differentiated) still count."""
import numpy as np
import pytest
import sympy as sp

import tracegrad
from tracegrad.checking.points import counted_branches, covered_point, draw_point, example_dims, size_sets
from tracegrad.checking.verify import checker_of, verify_model
from tracegrad.numeric.gradcheck import Landscape, depends_on, verdict_of

# every data comparison below is evaluated on binary Y, i.e. exactly AT its tie for Y >= 0,
# Y <= 0, Y == 1, Y != 0, relu(Y) and maximum(0, Y - 1): all of them sit "on the kink"
DATA_TERMS = [
    "sum((Y >= 0) * A2) / m",
    "sum((Y > 0.5) * log(A2)) / m",
    "sum((Y <= 0) * log(1 - A2)) / m",
    "sum((Y == 1) * A2 * A2) / m",
    "sum((Y != 0) * A2) / m",
    "sum(relu(Y) * A2) / m",
    "sum(maximum(0, Y - 1) * A2) / m",
    "sum((0.5 < Y) * A2) / m",
]


def model_text(cost, extra_inputs=""):
    return f"""
name = "datacmp"
[dims]
n = "inputs"
h = "hidden"
m = "examples"
[inputs]
X = "n, m"
Y = {{ shape = "1, m", values = "binary" }}
{extra_inputs}
[params]
W1 = "h, n"
b1 = "h, 1"
W2 = "1, h"
[forward]
Z1 = "W1 @ X + b1"
A1 = "relu(Z1)"
Z2 = "W2 @ A1"
A2 = "sigmoid(Z2)"
J = "{cost}"
[meaning]
dZ2 = "grad(Z2)"
dW2 = "grad(W2)"
dW1 = "grad(W1)"
[claims]
dW2 = "dZ2 @ A1.T"
dW1 = "((W2.T @ dZ2) * (Z1 > 0)) @ X.T"
"""


def load(tmp_path, cost, extra_inputs="", name="datacmp.toml"):
    path = tmp_path / name
    path.write_text(model_text(cost, extra_inputs))
    return tracegrad.load(path)


@pytest.mark.parametrize("term", DATA_TERMS)
def test_a_data_comparison_is_not_a_kink(tmp_path, term):
    model = load(tmp_path, "-sum(Y * log(A2)) / m + " + term)
    checker = checker_of(model)
    z1 = model.forward_names()["Z1"]
    # the ReLU pre-activation is the one branch argument that counts
    assert list(checker.branch_exprs) == [z1], checker.branch_exprs
    report = verify_model(model, seed=0)
    assert report.ok, str(report)
    assert all(c == "" for c in report.coverage), report.coverage
    assert all(c.verdict == "pass" for c in report.checks)


def test_many_data_comparisons_with_real_kinks(tmp_path):
    """All data terms at once, and a second ReLU on the parameters: exactly the two ReLU
    pre-activations count, and a point that puts one of them on its kink is inconclusive."""
    cost = "-sum(Y * log(A2)) / m + " + " + ".join(DATA_TERMS) + " + sum(relu(W2 @ Z1 - 0.1)) / m"
    model = load(tmp_path, cost)
    checker = checker_of(model)
    z1 = model.forward_names()["Z1"]
    assert len(checker.branch_exprs) == 2 and checker.branch_exprs[0] == z1
    assert all(depends_on(checker, b, [model.symbols["W1"]]) for b in checker.branch_exprs)
    report = verify_model(model, seed=0)
    assert report.ok and all(c == "" for c in report.coverage), str(report)
    # a real kink still counts: X = 0 and b1 = 0 put every entry of Z1 on 0
    dims = {model.dims[k]: v for k, v in dict(n=3, h=4, m=5).items()}
    point = draw_point(model, dims, np.random.default_rng(0))
    on_kink = {**point, model.symbols["X"]: np.zeros((3, 5)), model.symbols["b1"]: np.zeros((4, 1))}
    ms = checker.measure(on_kink, 0, np.random.default_rng(1))
    assert verdict_of(ms) == "inconclusive"
    assert any("kink" in m.reason for m in ms)
    # and the same point with the kink moved off, data ties untouched, passes
    assert verdict_of(checker.measure(point, 0, np.random.default_rng(1))) == "pass"


@pytest.mark.parametrize("term, counts", [
    ("sum(relu(Z2 - Y)) / m", True),               # a prediction against a target: reaches W
    ("sum(maximum(Y, A2)) / m", True),
    ("sum((X > 0) * A2) / m", True),               # X is a real input: differentiated
    ("sum((Y > 0.5) * A2) / m", False),
    ("sum(maximum(0, 2 * Y - 1) * A2) / m", False),
])
def test_which_branch_arguments_count(tmp_path, term, counts):
    model = load(tmp_path, "-sum(Y * log(A2)) / m + " + term)
    checker = checker_of(model)
    assert len(checker.branch_exprs) == (2 if counts else 1), checker.branch_exprs
    # the claims checker's landscape moves every leaf (data too): the points filter counts the same
    landscape = Landscape(model.program.expanded_cost)
    assert len(counted_branches(model, landscape)) == (2 if counts else 1)


def test_data_comparisons_do_not_burn_the_point_search(tmp_path):
    """Before: ``Y >= 0`` on binary data was 'all on' at every candidate, so the claims checker drew
    its whole budget (400 candidates) and settled for a weak point."""
    model = load(tmp_path, "-sum(Y * log(A2)) / m + sum((Y >= 0) * A2) / m + sum((Y <= 0) * A2) / m")
    landscape = Landscape(model.program.expanded_cost)
    for dims in size_sets(model):
        point, attempts, problem = covered_point(model, landscape, dims, 0, 0, 0)
        assert problem == "" and attempts < 50, (attempts, problem)
    results = {r.name: r.verdict for r in model.check().results}
    assert results == {"dW2": "holds", "dW1": "holds"}


def test_an_axis_max_of_data_is_not_a_kink(tmp_path):
    """A max along an axis of one-hot targets ties everywhere; it is data, so no kink."""
    model = load(tmp_path, "-sum(Y * log(A2)) / m + sum(T.max(axis=0, keepdims=True) * A2) / m",
                 extra_inputs='T = { shape = "h, m", values = "one-hot columns" }')
    checker = checker_of(model)
    assert list(checker.branch_exprs) == [model.forward_names()["Z1"]]
    report = verify_model(model, seed=0)
    assert report.ok, str(report)
