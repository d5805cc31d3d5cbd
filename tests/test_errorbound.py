"""Every rule of the rounding-error model (numeric/errorbound.py) and of the complex step's tangent
bounds (numeric/tangents.py), alone, against a 40-digit oracle (tests/oracle.py: SymPy, the float
inputs taken exactly), with operands of different sizes:

    sound  — the computed value is within the bound of the exact one, entry by entry;
    tight  — over seeded random inputs the worst error reaches at least 1/F of the bound, F stated
             per rule (a bound F times too loose, or made looser by a mutation, fails).

A rule's inputs are exact symbols where its own rounding is tested, and rounded sums (X + Y) where
its propagation of input errors is."""
import numpy as np
import pytest
import sympy as sp

from oracle import explicit
from tracegrad.numeric import evaluate
from tracegrad.numeric.compile import compile_group
from tracegrad.numeric.gradcheck import H, _direction
from tracegrad.numeric.errorbound import (UNIT_ROUNDOFF, NoErrorModel, RoundingModel, absval, branch_arguments,
                                          elementwise_nodes, entry_total, exact_scale, representable,
                                          rounding_bound, total, transpose)
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.numeric.tangents import ProgramBounds
from tracegrad.symbolic.functions import Softmax, elementwise, relu, sigmoid, step

u = UNIT_ROUNDOFF
a, b, c, k, n = (sp.Symbol(s, integer=True, positive=True) for s in "abckn")
SIZES = {a: 3, b: 7, c: 2, k: 40, n: 4}
P, R = sp.MatrixSymbol("P", a, b), sp.MatrixSymbol("R", a, b)        # 3×7
Q = sp.MatrixSymbol("Q", b, c)                                      # 7×2
L, M = sp.MatrixSymbol("L", c, k), sp.MatrixSymbol("M", k, a)       # 2×40, 40×3
S, T = sp.MatrixSymbol("S", n, n), sp.MatrixSymbol("T", n, n)       # 4×4
x, y, z = sp.symbols("x y z", real=True)


def draw(rng, positive=(), dominant=()):
    """Values for every symbol: normal, uniform(0.5, 2) for ``positive``, a big diagonal for ``dominant``."""
    out = dict(SIZES)
    for s in (P, R, Q, L, M, S, T):
        shape = tuple(SIZES[d] for d in s.shape)
        v = rng.uniform(0.5, 2.0, shape) if s in positive else rng.normal(size=shape)
        out[s] = v + (3 * shape[0] * np.eye(shape[0]) if s in dominant else 0)
    for s in (x, y, z):
        out[s] = float(rng.uniform(0.5, 2.0) if s in positive else rng.normal())
    return out


def exact_value(expr, values):
    """expr at ``values`` in exact/40-digit arithmetic (each float taken exactly)."""
    env = {}
    for s, v in values.items():
        if isinstance(s, sp.MatrixSymbol):
            env[s] = sp.Matrix(v.shape[0], v.shape[1], [sp.Rational(float(e)) for e in np.ravel(v)])
        elif s.is_integer:
            env[s] = sp.Integer(v)
        else:
            env[s] = sp.Rational(float(v))
    if isinstance(expr, sp.ImmutableDenseMatrix):     # the oracle builds matrix expressions only
        got = expr.applyfunc(lambda e: explicit(e, env))
    else:
        got = explicit(expr, env)
    entries = list(got) if isinstance(got, sp.MatrixBase) else [got]
    return [sp.N(e.replace(sigmoid, lambda t: 1 / (1 + sp.exp(-t))), 40) for e in entries]


def errors(expr, values):
    """(|computed − exact| entry by entry, u·ε) as float arrays."""
    computed = np.ravel(np.asarray(evaluate(expr, values), dtype=float))
    exact = exact_value(expr, values)
    error = np.array([float(abs(sp.Rational(float(g)) - e)) for g, e in zip(computed, exact)])
    bound = rounding_bound(expr)
    bound = np.zeros_like(error) if bound is None else \
        u * np.ravel(np.broadcast_to(np.asarray(evaluate(bound, values), dtype=float), np.shape(evaluate(expr, values))))
    return error, bound


def tightness(expr, trials=None, seed=0, **kinds):
    """The largest error/bound over seeded trials (12 for a matrix, 40 for a scalar), after
    asserting error ≤ bound everywhere."""
    trials = trials or (12 if expr.is_Matrix else 40)
    worst = 0.0
    for t in range(trials):
        error, bound = errors(expr, draw(np.random.default_rng([seed, t]), **kinds))
        assert np.all(error <= bound), (expr, error, bound)
        with np.errstate(divide="ignore", invalid="ignore"):
            worst = max(worst, float(np.max(np.where(bound > 0, error / bound, 0.0))))
    return worst


# (name, expression, tightness factor F, draw kinds): each rule with exact inputs (own rounding)
# and with rounded inputs (propagation)
CASES = [
    ("sum of two", P + R, 1.5, {}),
    ("sum of three", P + R + sp.MatMul(2, P), 1.7, {}),
    ("scalar sum", x + y, 1.7, {}),
    ("scalar product", x * y, 2.0, {}),
    ("scalar product of three", x * y * z, 2.7, {}),
    ("product with a rounded factor", (x + y) * z, 2.0, {}),
    ("exact scale", sp.Rational(1, 4) * (x + y), 1.7, {}),
    ("rounded constant", (x + y) / 3, 3.5, {}),
    ("hadamard", sp.HadamardProduct(P, R), 1.6, {}),
    ("hadamard of rounded", sp.HadamardProduct(P + R, R), 1.8, {}),
    ("hadamard of three", sp.HadamardProduct(P, R, P + R), 2.4, {}),
    ("matmul", P * Q, 2.1, {"positive": (P, Q)}),
    ("matmul, long inner size", L * M, 5.3, {"positive": (L, M)}),
    ("matmul of rounded", (P + R) * Q, 3.2, {"positive": (P, R, Q)}),
    ("matmul with a coefficient", sp.MatMul(sp.Rational(1, 3), P, Q), 3.1, {"positive": (P, Q)}),
    ("matmul with a rounded coefficient", sp.MatMul(x + y, P, Q), 2.4, {"positive": (P, Q, x, y)}),
    ("chain of three", Q.T * P.T * R, 2.8, {"positive": (P, Q, R)}),
    ("transpose", (P + R).T, 1.5, {}),
    ("trace", sp.Trace(S), 2.2, {"positive": (S,)}),
    ("trace of rounded", sp.Trace(S + T), 2.1, {"positive": (S, T)}),
    ("reciprocal", 1 / (x + y), 2.2, {"positive": (x, y)}),
    ("square", (x + y) ** 2, 2.0, {}),
    ("square root", sp.sqrt(x + y), 2.3, {"positive": (x, y)}),
    ("cube", x ** 3, 3.2, {}),
    ("rounded exponent", x ** sp.Rational(1, 3), 3.0, {"positive": (x,)}),
    ("variable exponent", x ** (y + z), 2.7, {"positive": (x, y, z)}),
    ("hadamard power", sp.HadamardPower(P + R, 2), 1.7, {}),
    ("hadamard reciprocal", sp.HadamardPower(P, -1), 1.5, {"positive": (P,)}),
    ("exp", sp.exp(x + y), 3.8, {}),
    ("log", sp.log(x + y), 3.7, {"positive": (x, y)}),
    ("elementwise exp", elementwise(sp.exp, P), 2.7, {}),
    ("elementwise log(1 + x)", elementwise(sp.Lambda(x, sp.log(1 + x)), P), 2.7, {"positive": (P,)}),
    ("elementwise tanh", elementwise(sp.tanh, P + R), 2.7, {}),
    ("elementwise sigmoid", elementwise(sigmoid, P), 2.5, {}),
    ("elementwise relu", elementwise(relu, P + R), 1.5, {}),
    ("sin", sp.sin(x), 3.5, {}),
    ("softmax per column", Softmax(P, 0), 4.2, {}),
    ("softmax per row", Softmax(P, 1), 5.9, {}),
    ("softmax of rounded", Softmax(P + R, 1), 5.5, {}),
    ("softmax of wide logits", Softmax(sp.MatMul(12, P), 0), 2.0, {}),
    ("inverse", sp.Inverse(S), 8.8, {"dominant": (S,)}),
    ("determinant", sp.Determinant(S), 2.4, {"dominant": (S,)}),
    ("determinant of rounded", sp.Determinant(S + T), 2.2, {"dominant": (S,)}),
    ("matrix power", sp.MatPow(S, 3), 2.9, {"positive": (S,)}),
    ("entry", (P * Q)[1, 0], 2.8, {"positive": (P, Q)}),
    ("slice", (P + R)[:, 2:5], 1.5, {}),
    ("block", sp.BlockMatrix([[P + R], [sp.MatMul(2, P)]]), 1.5, {}),
    ("explicit matrix", sp.ImmutableDenseMatrix([[x + y, z + x]]), 1.8, {}),
    ("max", sp.Max(x + y, z), 2.5, {}),
    ("piecewise", sp.Piecewise((x + y, z > 0), (x * y, True)), 3.4, {}),
]


@pytest.mark.parametrize("name, expr, factor, kinds", CASES, ids=[c[0] for c in CASES])
def test_rule_is_sound_and_tight(name, expr, factor, kinds):
    worst = tightness(expr, **kinds)
    assert worst >= 1 / factor, f"{name}: the bound is {1 / worst:.3g} times the worst error, stated {factor}"


def ones_total(e):
    """1ᵀ E 1: the sum of the entries of E, as a 1×1 product."""
    rows, cols = e.shape
    return sp.MatMul(sp.OneMatrix(1, rows), e, sp.OneMatrix(cols, 1))


def leaves(expr):
    return sorted((s for s in expr.free_symbols if isinstance(s, sp.MatrixSymbol) or not s.is_integer), key=str)


def tangent(s):
    return sp.MatrixSymbol(f"d{s.name}", *s.shape) if isinstance(s, sp.MatrixSymbol) else sp.Symbol(f"d{s.name}")


def step_errors(cost, values, rng, derivative=None):
    """(|complex step − exact derivative|, u·(T + D)) along a random direction with |v| ≤ 1, the
    complex step taken as the checker takes it (a first-order re-run of the compiled cost), the
    truth in extended precision, or by the oracle from ``derivative`` (over ``tangent`` symbols)."""
    moved = leaves(cost)
    bounds = ProgramBounds((), moved)
    size, error = bounds.step(cost)
    program = compile_group([cost, size, error])
    state = program.run({**values, **{mu: 1.0 for mu in bounds.scales.values()}})
    # positive directions: no cancellation between terms of the tangent, so T is its size and
    # the rounding rules alone set D
    v = {s: np.abs(_direction(rng, np.shape(values[s]))) for s in moved}
    (value,) = program.rerun(state, {s: values[s] + 1j * H * v[s] for s in moved}, [0], first_order=True)
    measured = float(np.imag(np.asarray(value).reshape(()))) / H
    if derivative is not None:                  # numpy's linalg has no extended precision
        exact = exact_value(derivative, {**values, **{tangent(s): d for s, d in v.items()}})[0]
    else:                                       # the same complex step in extended precision
        wide = {s: (np.asarray(val, dtype=np.longdouble) + 1j * np.longdouble(1e-30) * v[s]
                    if s in v else val) for s, val in values.items()}
        exact = sp.Float(str(np.imag(np.asarray(evaluate(cost, wide)).reshape(())) / np.longdouble(1e-30)), 25)
    err = float(abs(sp.Rational(measured) - exact))
    bound = u * float(np.sum(program.outputs(state, [1, 2])[0]) + np.sum(program.outputs(state, [1, 2])[1]))
    return err, bound


def entry(e):
    """E[1, 0], kept as an entry of E (indexing would evaluate it entry-wise)."""
    return MatrixElement(e, 1, 0)


POSITIVE = {"positive": (P, R, Q, L, M, S, T, x, y, z)}
STEP_CASES = [
    ("sum", entry(P + R + sp.MatMul(2, R)), 11, POSITIVE),
    ("sum of entries", ones_total(P + R), 8.2, POSITIVE),
    ("scalar product", (x * y + z) * x, 9.1, POSITIVE),
    ("hadamard", entry(sp.HadamardProduct(P, R + P)), 5.6, POSITIVE),
    ("matmul", entry((P + R) * Q), 13, POSITIVE),
    ("matmul, long inner size", entry(L * M), 13, POSITIVE),
    ("transpose and trace", sp.Trace(S.T * T), 7.4, POSITIVE),
    ("power", (x * y + 1) ** 3 + 1 / (z + 3), 19, POSITIVE),
    ("exp and log", entry(elementwise(sp.log, elementwise(sp.exp, P) + R)), 8.6, POSITIVE),
    ("sigmoid", entry(elementwise(sigmoid, P + R)), 20, {}),
    ("tanh", entry(elementwise(sp.tanh, P + R)), 25, {}),
    ("relu", ones_total(elementwise(relu, P + R)), 16, {}),
    ("softmax cross-entropy", ones_total(sp.HadamardProduct(R, elementwise(sp.log, Softmax(P, 0)))), 100, POSITIVE),
    ("softmax per row", entry(Softmax(P + R, 1)), 73, {}),
    ("inverse", sp.Trace(sp.Inverse(S) * T), 330, {"dominant": (S,), "positive": (T,),
     "derivative": sp.Trace(sp.Inverse(S) * tangent(T)) - sp.Trace(sp.Inverse(S) * tangent(S) * sp.Inverse(S) * T)}),
    ("log det", sp.log(sp.Determinant(S)), 29, {"dominant": (S,), "derivative": sp.Trace(sp.Inverse(S) * tangent(S))}),
    ("matrix power", entry(sp.MatPow(S, 3)), 13, POSITIVE),
    ("slice and block", entry(sp.BlockMatrix([[P[:, 1:4], R[:, 0:3] + P[:, 0:3]]])), 3.0, POSITIVE),
    ("index sum and max", sp.Max((P * Q)[1, 0], x) * y, 22, POSITIVE),
]


@pytest.mark.parametrize("name, cost, factor, kinds", STEP_CASES, ids=[c[0] for c in STEP_CASES])
def test_complex_step_bound_is_sound_and_tight(name, cost, factor, kinds):
    kinds = dict(kinds)
    worst = 0.0
    derivative = kinds.pop("derivative", None)
    for trial in range(6):
        rng = np.random.default_rng([7, trial])
        err, bound = step_errors(cost, draw(rng, **kinds), rng, derivative)
        assert err <= bound, (name, err, bound)
        worst = max(worst, err / bound)
    assert worst >= 1 / factor, f"{name}: the bound is {1 / worst:.3g} times the worst error, stated {factor}"


def test_softmax_bound_is_per_column():
    """A column's bound depends on its own inputs' errors only (no sum over the whole matrix)."""
    E = sp.MatrixSymbol("E", a, b)                 # stands for ε(P)
    values = draw(np.random.default_rng(3))
    small, large = np.ones((3, 7)), np.ones((3, 7))
    large[:, 0] = 1e6
    for axis in (0, 1):
        bound = RoundingModel({P: E})(Softmax(P, axis))
        got = [np.asarray(evaluate(bound, {**values, E: e})) for e in (small, large)]
        if axis == 0:
            np.testing.assert_array_equal(got[0][:, 1:], got[1][:, 1:])
            assert np.all(got[1][:, 0] > 1e5 * got[0][:, 0])
        else:                                   # every row holds column 0, weighted by its s
            s = np.asarray(evaluate(Softmax(P, 1), values))
            np.testing.assert_allclose(got[1] - got[0], (1e6 - 1) * s * (s[:, :1] + (np.arange(7) == 0)), rtol=1e-9)


def test_bounds_over_a_program_hold_entry_by_entry():
    """ε of the named-form gradients over the model's program (as the checker evaluates them) bounds
    their true rounding error, entry by entry, and is not vacuous."""
    import tracegrad
    from tracegrad.checking.points import draw_point
    for name in ("vardhan", "pytorch"):
        model = tracegrad.load(name)
        program, derivation = model.program, model.derivation
        bounds = ProgramBounds(program.definitions, ())
        grads = [derivation.gradient(w, "named") for w in derivation.wrt]
        errs = [bounds.error(g) for g in grads]
        compiled = compile_group([*grads, *errs], program.definitions + tuple(bounds.definitions))
        dims = {d: 3 + i for i, d in enumerate(model.dims.values())}
        point = draw_point(model, dims, np.random.default_rng(5))
        out = compiled(point)
        for w, g, computed, bound in zip(derivation.wrt, grads, out[:len(grads)], out[len(grads):]):
            exact = exact_value(derivation.gradient(w), point)
            error = np.array([float(abs(sp.Rational(float(c)) - e)) for c, e in zip(np.ravel(computed), exact)])
            assert np.all(error <= u * np.ravel(bound)), (name, w)
            assert np.max(u * bound) < 1e-11 * max(1.0, np.max(np.abs(computed)))


def test_helpers():
    ones, other = sp.OneMatrix(3, 7), sp.MatrixSymbol("O", 3, 7)
    merged = total([ones, sp.MatMul(2, ones), other, None])
    assert set(merged.args) == {other, sp.MatMul(3, ones)}
    assert total([None, None]) is None and total([x]) == x and total([x, y]) == x + y
    assert transpose(ones) == sp.OneMatrix(7, 3) and transpose(None) is None
    assert transpose(sp.Identity(3)) == sp.Identity(3) and transpose(P) == P.T
    assert absval(P.T) == transpose(absval(P)) and absval(ones) == ones
    assert absval(sp.MatMul(Q[:, :1], sp.OneMatrix(1, 5))).args[1] == sp.OneMatrix(1, 5)   # outer: |a| 1ᵀ
    assert absval(elementwise(sp.exp, P)) == elementwise(sp.exp, P)       # evidently ≥ 0
    assert absval(elementwise(sp.sin, P)) != elementwise(sp.sin, P)
    assert exact_scale(sp.Rational(-1, 4)) and exact_scale(sp.Integer(8)) and not exact_scale(sp.Rational(1, 3))
    assert not exact_scale(sp.Integer(0)) and not exact_scale(x)
    assert representable(sp.Rational(3, 8)) and representable(sp.Float(0.1)) and not representable(sp.Rational(1, 10))
    assert rounding_bound(sp.MatMul(-1, P)) is None and rounding_bound(-x) is None and rounding_bound(x / 8) is None
    assert rounding_bound(sp.Float(0.25) * x) is None and rounding_bound(sp.Rational(1, 3) * x) is not None
    values = draw(np.random.default_rng(1))
    for e in (P * Q, (P + R).T * P, sp.HadamardProduct(P, R), sp.BlockMatrix([[P], [R]]), sp.MatMul(2, P.T, R)):
        np.testing.assert_allclose(evaluate(entry_total(e), values), np.sum(evaluate(e, values)), rtol=1e-12)
    assert entry_total(x) == x
    z1 = P + R
    cost = elementwise(relu, z1) + elementwise(sp.Lambda(x, step(x - 1)), R) + elementwise(sp.exp, P)
    assert set(branch_arguments(cost)) == {z1, elementwise(sp.Lambda(x, x - 1), R)}
    assert len(elementwise_nodes(cost)) == 3


def test_operations_without_a_rule_are_named():
    for e, what in ((sp.MatPow(S, -2), "matrix power"),
                    (sp.atan2(x, y), "2 arguments"), (sp.MatPow(S, 65), "matrix power")):
        with pytest.raises(NoErrorModel, match=what):
            rounding_bound(e)
    with pytest.raises(NoErrorModel, match="tangent"):
        ProgramBounds((), (x, y)).tangent(x ** y)
    size, error = ProgramBounds((), (x,)).step(x ** y)     # only the base moves: T = |y x^(y−1)| T(x)
    assert size.has(y) and error is not None


def test_shared_subexpressions_are_modelled_once():
    shared = P + R
    model = RoundingModel()
    model(sp.HadamardProduct(shared, shared) + shared)
    assert sum(1 for key in model.memo if key == shared) == 1
    assert model(shared) is model.memo[shared]
