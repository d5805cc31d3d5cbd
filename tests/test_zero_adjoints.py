"""Zero adjoints: a step, an indicator or any other function constant almost everywhere has
derivative 0 there, and the adjoint it sends on is exactly zero.  That zero must have the shape
of the quantity it is for (or, as the sweep does, send nothing on at all): a bare scalar 0 for a
matrix made a later rule fail, e.g. ``sum((W @ X > Y) * relu(W @ X))`` gave "rule 'matrix sum'
at '-Y + Z2' gave an adjoint of shape scalar for '-Y', expected (m, n)".

The family: each zero-derivative operation S of a moved quantity W X (step, Heaviside, sign,
the comparisons > >= < <= with data, floor, ceiling, an interval indicator, a step with a
threshold parameter, a function whose derivative vanishes, a comparison of data only), in each
context (Hadamard products, matrix sums, matrix products, transposes, traces, a slice and a
stack, a softmax, and S as the only path to a parameter).  For every program: the derivation
succeeds, every gradient has its quantity's shape, a quantity reached only through S has the
gradient exactly zero (a zero matrix of its shape), and every gradient equals the exact SymPy
oracle (tests/oracle.py) at n = 2, m = 3 with S held constant near the point.
"""
import itertools

import numpy as np
import pytest
import sympy as sp

import tracegrad as tg
from tracegrad.language.formula import parse_formula
from tracegrad.numeric import evaluate
from tracegrad.symbolic import derive, elementwise
from tracegrad.symbolic.algebra import add, is_zero, trace_of
from tracegrad.symbolic.entrywise import differentiate
from tracegrad.symbolic.functions import step
from tracegrad.symbolic.shapes import same_shape, shape_of
from tests.oracle import OnAJump, exact_gradient_check

n, m = sp.symbols("n m", integer=True, positive=True)
SIZES = {n: 2, m: 3}                      # distinct: a swapped dimension cannot hide
W, V = sp.MatrixSymbol("W", n, n), sp.MatrixSymbol("V", n, n)
X, Y = sp.MatrixSymbol("X", n, m), sp.MatrixSymbol("Y", n, m)
c = sp.Symbol("c", real=True)
NAMES = {"W": W, "V": V, "X": X, "Y": Y, "c": c}
t = sp.Symbol("t", real=True)
MOVED = W * X - Y
# what the oracle holds constant near the point (the comparisons are steps of a difference)
LOCALLY_CONSTANT = (step, sp.Heaviside, sp.sign, sp.floor, sp.ceiling)

# S: an n × m quantity whose derivative is zero almost everywhere (text: as a model file writes it)
ZERO_DERIVATIVE = {
    "step": "step(W @ X - Y)",
    ">": "W @ X > Y",
    ">=": "W @ X >= Y",
    "<": "W @ X < Y",
    "<=": "W @ X <= Y",
    "> with the moved quantity on the right": "Y > W @ X",
    "Heaviside": elementwise(sp.Heaviside, MOVED),
    "sign": elementwise(sp.sign, MOVED),
    "floor": elementwise(sp.floor, MOVED),
    "ceiling": elementwise(sp.ceiling, MOVED),
    "indicator of an interval": "(W @ X > Y) * (W @ X <= Y + 1)",
    "step with a threshold parameter": elementwise(sp.Lambda(t, step(t - c)), MOVED),
    "vanishing derivative": elementwise(sp.Lambda(t, sp.floor(t) ** 2 + 3 * sp.sign(t) - 1), MOVED),
    "data only": "X > Y",
}

CONTEXTS = {
    "hadamard with relu (the report)": "sum(S * relu(W @ X))",
    "hadamard with another parameter": "sum(S * tanh(V @ X))",
    "matrix sum": "sum(S + W @ X)",
    "matrix sum inside a function": "sum(tanh(S + V @ X))",
    "scaled and subtracted": "sum(3 * S - V @ X)",
    "matrix product": "sum(S.T @ (V @ X))",
    "matrix product on the left": "sum((V @ X) @ S.T)",
    "transposes": "sum(S.T * (W @ X).T)",
    "trace": "trace(S @ X.T @ V)",
    "product of sums": "sum(S) * sum(V @ X)",
    "slice and stack": "sum(vstack(S[1:, :], V @ X) * vstack(Y[1:, :], W @ X))",
    "softmax": "sum(Y * log(softmax(S + V @ X, axis=0)))",
    "only path": "sum(S)",
    "only path, matrix product": "sum(S.T @ S)",
    "only path, function and transpose": "sum(exp(S).T * X.T)",
}


def program(op, context):
    S = ZERO_DERIVATIVE[op]
    S = parse_formula(S, NAMES) if isinstance(S, str) else S
    cost = parse_formula(CONTEXTS[context], {**NAMES, "S": S})
    # the quantities the cost reaches other than through S
    held = parse_formula(CONTEXTS[context], {**NAMES, "S": sp.MatrixSymbol("S", n, m)}).free_symbols
    wrt = [s for s in (W, V, X, Y, c) if s in cost.free_symbols]
    return cost, wrt, [s for s in wrt if s not in held]


def exact_check(cost, d, wrt):
    """The exact oracle at the first seed whose point sits on no jump of S."""
    for seed in range(40):
        try:
            return exact_gradient_check(cost, d, wrt, SIZES, seed=seed, locally_constant=LOCALLY_CONSTANT)
        except OnAJump:
            continue
    raise AssertionError("every point tried sits on a jump")


@pytest.mark.parametrize("op, context", itertools.product(ZERO_DERIVATIVE, CONTEXTS))
def test_zero_derivative_family(op, context):
    cost, wrt, only_through_s = program(op, context)
    d = derive(cost, wrt)
    for w in wrt:
        g = d.gradient(w)
        if isinstance(w, sp.MatrixSymbol):
            assert same_shape(shape_of(g), w.shape), (w, g)
            assert same_shape(shape_of(d.jacobian(w)), w.T.shape), w
        else:
            assert shape_of(g) is None, (w, g)
        if w in only_through_s:
            assert is_zero(g), f"∇{w} is reached only through a zero derivative, yet is {g}"
            assert isinstance(g, sp.ZeroMatrix) == isinstance(w, sp.MatrixSymbol), (w, g)
    # an adjoint that is exactly zero sends nothing on: no rule is applied to it
    assert not any(s.G is not None and is_zero(s.G) for s in d.steps)
    assert exact_check(cost, d, wrt) >= sum(int(np.prod([SIZES[k] for k in w.shape])) if
                                            isinstance(w, sp.MatrixSymbol) else 1 for w in wrt)


REPORT = """
name = "stepbug"
[dims]
n = "units"
m = "examples"
[inputs]
X = "n, m"
Y = "n, m"
[params]
W = "n, n"
[forward]
Z2 = "W @ X"
A2 = "relu(Z2)"
J = "sum({} * A2)"
"""


@pytest.mark.parametrize("mask", ["(Z2 > Y)", "step(Z2 - Y)"])
def test_the_reported_model(tmp_path, mask):
    """The model of the report: dJ/dW = (1[Z − Y > 0] ∘ 1[Z > 0]) Xᵀ, the mask held constant;
    dJ/dY = 0; and the numeric verification passes."""
    path = tmp_path / "step.toml"
    path.write_text(REPORT.format(mask))
    model = tg.load(str(path))
    d = model.derive()
    Wm, Xm, Ym = (model.symbols[k] for k in "WXY")
    assert isinstance(d.gradient(Ym), sp.ZeroMatrix) and same_shape(d.gradient(Ym).shape, Ym.shape)
    Z = Wm * Xm
    want = sp.HadamardProduct(elementwise(step, Z - Ym), elementwise(step, Z)) * Xm.T
    rng = np.random.default_rng(0)
    point = {Wm: rng.normal(size=(4, 4)), Xm: rng.normal(size=(4, 5)), Ym: rng.normal(size=(4, 5))}
    np.testing.assert_allclose(evaluate(d.gradient(Wm), point), evaluate(want, point), rtol=1e-13)
    assert exact_check(model.program.expanded_cost, d, [Wm, Xm, Ym]) == 4 + 6 + 6
    report = model.verify()
    assert {c.verdict for c in report.checks} <= {"pass", "inconclusive"}
    assert any(c.verdict == "pass" for c in report.checks)


def test_sums_of_zero_matrices_keep_their_shape():
    """add() of zero matrices is the zero matrix of their shape, not the number 0; tr(0) = 0."""
    Z = sp.ZeroMatrix(n, m)
    assert add(Z, Z) == Z and add(Z) == Z
    assert add() == 0 and add(sp.Integer(0), sp.Integer(0)) == 0
    assert add(Z, X) == X
    assert trace_of(sp.ZeroMatrix(n, n)) == 0 and trace_of(W) == sp.Trace(W)


@pytest.mark.parametrize("f, derivative", [
    (sp.floor(2 * t + 1), 0), (sp.ceiling(sp.exp(t)), 0), (t * sp.floor(t), sp.floor(t)),
    (sp.floor(t) ** 2, 0), (sp.Heaviside(t - 1), 0), (sp.sign(t) * t, sp.sign(t)),
])
def test_piecewise_constant_functions_differentiate_to_zero_almost_everywhere(f, derivative):
    assert differentiate(f, t) == derivative


def test_the_almost_everywhere_table_is_known_to_every_numeric_concern():
    """floor and ceiling, differentiable here, are also computed, bounded and printed."""
    from tracegrad.numeric.codegen.printer import RULES as CODEGEN
    from tracegrad.numeric.compile import RULES as COMPILE
    from tracegrad.numeric.errorbound import RULES as BOUND
    from tracegrad.symbolic.entrywise import ALMOST_EVERYWHERE
    for table in (COMPILE, BOUND, CODEGEN):
        assert all(table.find(f) is not None for f in ALMOST_EVERYWHERE), table
