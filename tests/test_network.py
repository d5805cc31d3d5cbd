"""The default 4-layer network of the Vardhan note, derived end to end.

Z[l] = W[l]ᵀ A[l−1] + b[l] 1ᵀ,  A[l] = relu(Z[l]) (l < 4),  A[4] = σ(Z[4]),  A[0] = X,
J = −(1/m) [Y ∘ log A4 + (1 − Y) ∘ log(1 − A4)] 1,  widths n = 5, 4, 3, 2, 1 and m = 7.

Every derived adjoint (parameters, input, and every intermediate A[l], Z[l]) is checked
against complex-step differences; the compact and named forms are checked as printed.
"""
import numpy as np
import pytest
import sympy as sp

from tracegrad.numeric import complex_step, evaluate
from tracegrad.symbolic import RULES, Program, derive, elementwise, relu, sigmoid
from tracegrad.symbolic.printing import to_text
from tracegrad.symbolic.rules import rule_for
from tracegrad.symbolic.shapes import same_shape, shape_of
from tests.oracle import exact_gradient_check

L = 4
n = list(sp.symbols("n0:4", integer=True, positive=True)) + [sp.Integer(1)]
m = sp.Symbol("m", integer=True, positive=True)
SIZES = {n[0]: 5, n[1]: 4, n[2]: 3, n[3]: 2, m: 7}
X = sp.MatrixSymbol("X", n[0], m)
Y = sp.MatrixSymbol("Y", n[L], m)
W = {l: sp.MatrixSymbol(f"W{l}", n[l - 1], n[l]) for l in range(1, L + 1)}
b = {l: sp.MatrixSymbol(f"b{l}", n[l], 1) for l in range(1, L + 1)}
PARAMS = [x for l in range(1, L + 1) for x in (W[l], b[l])]
SEEDS = (0, 1, 2)


def network():
    program, A = Program(), X
    for l in range(1, L + 1):
        Z = program.define(f"Z{l}", W[l].T * A + b[l] * sp.OneMatrix(1, m))
        A = program.define(f"A{l}", elementwise(relu if l < L else sigmoid, Z))
    one = sp.OneMatrix(n[L], m)
    program.define("J", -(1 / m) * (sp.HadamardProduct(Y, elementwise(sp.log, A))
                                    + sp.HadamardProduct(one - Y, elementwise(sp.log, one - A)))
                   * sp.OneMatrix(m, 1))
    return program


PROGRAM = network()
NAMES = {s.name: s for s, _ in PROGRAM.definitions}
INTERMEDIATES = [f"{k}{l}" for l in range(1, L + 1) for k in ("Z", "A")]


@pytest.fixture(scope="module")
def d():
    return derive(PROGRAM, PARAMS + [X])


def point(seed):
    rng = np.random.default_rng(seed)
    values = {x: rng.normal(size=tuple(int(sp.sympify(k).xreplace(SIZES)) for k in x.shape))
              for x in PARAMS + [X]}
    values[Y] = rng.integers(0, 2, size=(1, SIZES[m])).astype(float)
    return values | SIZES


def cost_given(name):
    """The cost as a function of the named intermediate (and the inputs the rest uses): the
    definitions after ``name`` substituted into one another, ``name`` itself left free."""
    after, out = False, {}
    for symbol, expr in PROGRAM.definitions:
        if after:
            out[symbol] = expr.xreplace(out)
        after = after or symbol.name == name
    return out[PROGRAM.cost]


def relative_error(got, want):
    return np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want)))


@pytest.mark.parametrize("seed", SEEDS)
def test_points_are_away_from_relu_kinks(seed):
    """Each hidden pre-activation has entries of both signs, none within 1e-3 of the kink."""
    values, expansions = point(seed), PROGRAM.expansions()
    for l in range(1, L):
        z = evaluate(expansions[NAMES[f"Z{l}"]], values)
        assert np.min(np.abs(z)) > 1e-3, f"Z{l} has an entry at {np.min(np.abs(z)):.1e} from 0"
        assert (z > 0).any() and (z < 0).any(), f"Z{l} is all on one side of the kink"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("x", PARAMS + [X], ids=lambda x: x.name)
def test_parameter_and_input_gradients(d, x, seed):
    values = point(seed)
    cost = PROGRAM.expanded_cost
    got = evaluate(d.gradient(x), values)
    assert got.shape == values[x].shape
    want = complex_step(lambda v: evaluate(cost, {**values, x: v}), values[x])
    assert relative_error(got, want) < 1e-10


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", INTERMEDIATES)
def test_intermediate_gradients(d, name, seed):
    """dJ/dZ[l] and dJ/dA[l]: perturb the intermediate with the later definitions unchanged."""
    values, symbol = point(seed), NAMES[name]
    at = evaluate(PROGRAM.expansions()[symbol], values)
    got = evaluate(d.gradient(name), values)
    assert got.shape == at.shape
    cost = cost_given(name)
    want = complex_step(lambda v: evaluate(cost, {**values, symbol: v}), at)
    assert relative_error(got, want) < 1e-10
    # the named form (in terms of forward names) evaluates to the same, given the forward values
    forward = {s: evaluate(e, values) for s, e in PROGRAM.expansions().items() if s != PROGRAM.cost}
    named = evaluate(d.gradient(name, "named"), {**values, **forward})
    assert relative_error(named, want) < 1e-10


def test_shapes(d):
    for x in list(NAMES.values())[:-1] + PARAMS + [X]:
        assert same_shape(shape_of(d.gradient(x)), x.shape), x
        assert same_shape(shape_of(d.jacobian(x)), x.T.shape), x


def test_exact_at_tiny_sizes(d):
    """The same derivation, checked exactly against SymPy's diff at widths 2, 2, 2, 2, 1, m = 2."""
    tiny = {n[0]: 2, n[1]: 2, n[2]: 2, n[3]: 2, m: 2}
    cost = PROGRAM.expanded_cost
    assert exact_gradient_check(cost, d, [W[4], b[4], W[3], b[2], X], tiny, seed=4) == 2 + 1 + 4 + 2 + 4


def text(expr):
    return to_text(expr, "unicode")


def test_bce_sigmoid_collapse(d):
    """dJ/dZ4: σ′ and the BCE derivative cancel to (A4 − Y)/m."""
    assert text(d.gradient("Z4", "named")) == "(1/m) (A4 − Y)"
    assert text(d.jacobian("Z4", "named")) == "(1/m) (A4 − Y)ᵀ"


def test_compact_forms_are_the_textbook_equations(d):
    """dJ/dW[l] = G_Z[l]ᵀ A[l−1]ᵀ, dJ/db[l] = 1ᵀ G_Z[l], dJ/dA[l−1] = G_Z[l] W[l]ᵀ,
    dJ/dZ[l] = G_A[l] ∘ relu′(Z[l])ᵀ for the hidden layers."""
    assert text(d.jacobian("W4", "compact")) == "G_Z4ᵀ A3ᵀ"
    for l in range(1, L + 1):
        prev = "X" if l == 1 else f"A{l - 1}"
        assert text(d.jacobian(f"W{l}", "compact")) == f"G_Z{l}ᵀ {prev}ᵀ"
        assert text(d.jacobian(f"b{l}", "compact")) == f"𝟏₍1,m₎ G_Z{l}"
        assert text(d.jacobian(prev, "compact")) == f"G_Z{l} W{l}ᵀ"
    for l in range(1, L):
        assert text(d.jacobian(f"Z{l}", "compact")) == f"G_A{l} ∘ 1[Z{l} > 0]ᵀ"
    assert text(d.jacobian("W4", "named")) == "(1/m) (A4 − Y) A3ᵀ"


def test_steps_cover_every_layer(d):
    table = {r.name for r in RULES.values()}
    rewrites = {"sum over uses", "name intermediates", "entry-wise algebra", "substitute adjoints"}
    for step in d.steps:
        assert step.rule.name in table | rewrites, step.rule.name
    rules_at = {}
    for step in d.steps:
        rules_at.setdefault(step.definition.name, set()).add(step.rule.name)
    for l in range(1, L + 1):
        assert {"matrix product", "matrix sum", "transpose"} <= rules_at[f"Z{l}"], l
        assert "elementwise function" in rules_at[f"A{l}"], l
        assert "substitute adjoints" in rules_at[f"W{l}"] and "substitute adjoints" in rules_at[f"b{l}"]
    assert {"matrix product", "matrix sum", "hadamard product", "elementwise function"} <= rules_at["J"]
    assert "entry-wise algebra" in rules_at["Z4"]      # the BCE∘σ collapse is a recorded rewrite
    for step in d.steps:
        if step.G is not None:                         # a rule application, not a rewrite
            assert rule_for(step.node) is step.rule, step.node
