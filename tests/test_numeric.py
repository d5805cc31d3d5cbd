"""numeric: compiled evaluation against direct numpy, complex safety, finite differences."""
import time

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from tracegrad.numeric import (central_difference, compile_expression, complex_step,
                     directional_complex_step, evaluate)
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.functions import ELEMENT, elementwise, relu, sigmoid, softmax, step

p, q, r, s = sp.symbols("p q r s", integer=True, positive=True)
SIZES = {p: 2, q: 3, r: 5, s: 7}
A = sp.MatrixSymbol("A", p, q)      # 2×3
B = sp.MatrixSymbol("B", q, r)      # 3×5
C = sp.MatrixSymbol("C", r, s)      # 5×7
D = sp.MatrixSymbol("D", p, q)      # 2×3, same shape as A
S = sp.MatrixSymbol("S", q, q)      # 3×3
P = sp.MatrixSymbol("P", p, q)      # 2×3, positive entries
c = sp.Symbol("c")                  # real scalar
x = sp.Symbol("x")
i, j, k = sp.symbols("i j k", integer=True)


def _values(rng, dtype=float):
    vals = {A: rng.normal(size=(2, 3)), B: rng.normal(size=(3, 5)), C: rng.normal(size=(5, 7)),
            D: rng.normal(size=(2, 3)), S: rng.normal(size=(3, 3)) + 3 * np.eye(3),
            P: rng.uniform(0.5, 2.0, size=(2, 3)), c: 0.7}
    if dtype is complex:
        vals = {k: v + 1j * rng.normal(size=np.shape(v)) * 1e-3 for k, v in vals.items()}
    return {**vals, **SIZES}


@pytest.fixture
def vals():
    return _values(np.random.default_rng(0))


def _np(vals):
    """Numpy values by symbol name, for the reference formulas."""
    return {k.name: v for k, v in vals.items()}


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# (expression, numpy reference over the dict of values by name)
CASES = {
    "MatrixSymbol": (A, lambda v: v["A"]),
    "MatMul": (A * B * C, lambda v: v["A"] @ v["B"] @ v["C"]),
    "MatMul-coeff": (3 * c * A * B, lambda v: 3 * v["c"] * v["A"] @ v["B"]),
    "MatMul-dim-coeff": ((1 / s) * A * B, lambda v: v["A"] @ v["B"] / 7),
    "MatMul-trace-coeff": (sp.Trace(S) * A, lambda v: np.trace(v["S"]) * v["A"]),
    "MatMul-det-coeff": (sp.Determinant(S) * A.T, lambda v: np.linalg.det(v["S"]) * v["A"].T),
    "MatMul-element-coeff": (S[0, 1] * A, lambda v: v["S"][0, 1] * v["A"]),
    "MatMul-func-coeff": (sp.exp(sp.Trace(S) / 10) * A,
                          lambda v: np.exp(np.trace(v["S"]) / 10) * v["A"]),
    "MatAdd": (A + D - 2 * A, lambda v: v["D"] - v["A"]),
    "Transpose": (sp.Transpose(A * B), lambda v: (v["A"] @ v["B"]).T),
    "HadamardProduct": (sp.hadamard_product(A, D, P), lambda v: v["A"] * v["D"] * v["P"]),
    "HadamardPower-2": (sp.HadamardPower(A, 2), lambda v: v["A"] ** 2),
    "HadamardPower--1": (sp.HadamardPower(P, -1), lambda v: 1 / v["P"]),
    "HadamardPower-half": (sp.HadamardPower(P, sp.S.Half), lambda v: np.sqrt(v["P"])),
    "HadamardPower-symbol": (sp.HadamardPower(P, c), lambda v: v["P"] ** v["c"]),
    "MatPow-2": (S ** 2, lambda v: v["S"] @ v["S"]),
    "MatPow-0": (sp.MatPow(S, 0), lambda v: np.eye(3)),
    "MatPow--2": (S ** -2, lambda v: np.linalg.inv(v["S"] @ v["S"])),
    "Inverse": (sp.Inverse(S), lambda v: np.linalg.inv(v["S"])),
    "Inverse-of-product": (sp.Inverse(S * S.T), lambda v: np.linalg.inv(v["S"] @ v["S"].T)),
    "Trace": (sp.Trace(S), lambda v: np.trace(v["S"])),
    "Trace-squared": (sp.Trace(S) ** 2 + 1, lambda v: np.trace(v["S"]) ** 2 + 1),
    "Determinant": (sp.Determinant(S), lambda v: np.linalg.det(v["S"])),
    "log-det": (sp.log(sp.Determinant(S * S.T)),
                lambda v: np.log(np.linalg.det(v["S"] @ v["S"].T))),
    "MatrixElement": (A[1, 2], lambda v: v["A"][1, 2]),
    "MatrixElement-of-product": ((A * B)[1, 4], lambda v: (v["A"] @ v["B"])[1, 4]),
    "OneMatrix": (sp.OneMatrix(p, s), lambda v: np.ones((2, 7))),
    "OneMatrix-sum": (sp.OneMatrix(1, p) * A * sp.OneMatrix(q, 1),
                      lambda v: v["A"].sum().reshape(1, 1)),
    "Identity": (sp.Identity(r), lambda v: np.eye(5)),
    "ZeroMatrix": (sp.ZeroMatrix(q, s), lambda v: np.zeros((3, 7))),
    "ZeroMatrix-plus": (sp.MatAdd(A, sp.ZeroMatrix(p, q), evaluate=False), lambda v: v["A"]),
    "MatrixSlice-rows": (C[1:, :], lambda v: v["C"][1:, :]),
    "MatrixSlice-cols": (C[:, : s - 2], lambda v: v["C"][:, :5]),
    "MatrixSlice-step": (C[1::2, 1:s:3], lambda v: v["C"][1::2, 1:7:3]),
    "MatrixSlice-row": (C[r - 1, :], lambda v: v["C"][4:5, :]),
    "BlockMatrix-vstack": (sp.BlockMatrix([[A], [sp.OneMatrix(1, q)]]),
                           lambda v: np.vstack([v["A"], np.ones((1, 3))])),
    "BlockMatrix-hstack": (sp.BlockMatrix([[sp.ZeroMatrix(p, 1), A, D]]),
                           lambda v: np.hstack([np.zeros((2, 1)), v["A"], v["D"]])),
    "BlockMatrix-2x2": (sp.BlockMatrix([[A, sp.ZeroMatrix(p, p)], [S, sp.OneMatrix(q, p)]]),
                        lambda v: np.block([[v["A"], np.zeros((2, 2))],
                                            [v["S"], np.ones((3, 2))]])),
    "explicit-Matrix": (sp.ImmutableMatrix([[1, c], [sp.pi, sp.Trace(S)]]),
                        lambda v: np.array([[1, v["c"]], [np.pi, np.trace(v["S"])]])),
    "applyfunc-log": (P.applyfunc(sp.log), lambda v: np.log(v["P"])),
    "elementwise-exp": (elementwise(sp.exp, A * B), lambda v: np.exp(v["A"] @ v["B"])),
    "elementwise-sigmoid": (elementwise(sigmoid, A), lambda v: _sig(v["A"])),
    "elementwise-relu": (elementwise(relu, A), lambda v: np.where(v["A"].real > 0, v["A"], 0)),
    "elementwise-step": (elementwise(step, A), lambda v: (v["A"].real > 0) * 1.0),
    "elementwise-Heaviside": (elementwise(sp.Heaviside, A), lambda v: (v["A"].real > 0) * 1.0),
    "elementwise-tanh": (elementwise(sp.tanh, A), lambda v: np.tanh(v["A"])),
    "elementwise-sin-cos": (elementwise(sp.Lambda(x, sp.sin(x) * sp.cos(x)), A),
                            lambda v: np.sin(v["A"]) * np.cos(v["A"])),
    "elementwise-sqrt": (elementwise(sp.sqrt, P), lambda v: np.sqrt(v["P"])),
    # references branch on the real part too, so they hold for complex inputs as well
    "elementwise-Abs": (elementwise(sp.Abs, A),
                        lambda v: np.where(v["A"].real < 0, -v["A"], v["A"])),
    "elementwise-Max": (elementwise(sp.Lambda(x, sp.Max(x, 0)), A),
                        lambda v: np.where(v["A"].real > 0, v["A"], 0)),
    "elementwise-Min": (elementwise(sp.Lambda(x, sp.Min(x, c)), A),
                        lambda v: np.where(v["A"].real < v["c"].real, v["A"], v["c"])),
    "elementwise-Gt": (elementwise(sp.Lambda(x, x > 0), A), lambda v: (v["A"].real > 0) * 1.0),
    "elementwise-Ge": (elementwise(sp.Lambda(x, x >= c), A),
                       lambda v: (v["A"].real >= v["c"].real) * 1.0),
    "elementwise-Lt": (elementwise(sp.Lambda(x, x < 0), A), lambda v: (v["A"].real < 0) * 1.0),
    "elementwise-Le": (elementwise(sp.Lambda(x, x <= c), A),
                       lambda v: (v["A"].real <= v["c"].real) * 1.0),
    "elementwise-Piecewise": (
        elementwise(sp.Lambda(x, sp.Piecewise((x ** 2, x > 0), (-x, True))), A),
        lambda v: np.where(v["A"].real > 0, v["A"] ** 2, -v["A"])),
    "elementwise-outer-symbol": (elementwise(sp.Lambda(x, c * x + sp.Trace(S)), A),
                                 lambda v: v["c"] * v["A"] + np.trace(v["S"])),
    "elementwise-constant": (A.applyfunc(lambda t: 1), lambda v: np.ones((2, 3))),
    "elementwise-nested": (elementwise(sp.log, elementwise(sigmoid, A)),
                           lambda v: np.log(_sig(v["A"]))),
    "elementwise-sigmoid-prime": (
        elementwise(sp.Lambda(ELEMENT, sp.diff(sigmoid(ELEMENT), ELEMENT)), A),
        lambda v: _sig(v["A"]) * (1 - _sig(v["A"]))),
    "softmax-columns": (softmax(A * B, 0), lambda v: _softmax(v["A"] @ v["B"], 0)),
    "softmax-rows": (softmax(A * B, 1), lambda v: _softmax(v["A"] @ v["B"], 1)),
    "scalar-log-of-1x1": (sp.log(sp.OneMatrix(1, p) * P * sp.OneMatrix(q, 1)),
                          lambda v: np.log(v["P"].sum())),
    "scalar-of-1x1-mul": (2 * (A * B * C)[0, 0] - c ** 2,
                          lambda v: 2 * (v["A"] @ v["B"] @ v["C"])[0, 0] - v["c"] ** 2),
    "Sum-entry-of-1x1": (
        (sp.OneMatrix(1, p) * sp.hadamard_product(A, D) * sp.OneMatrix(q, 1))[0, 0],
        lambda v: np.sum(v["A"] * v["D"])),
    "Sum-quadratic-form": ((B.T * S * B)[4, 2], lambda v: (v["B"].T @ v["S"] @ v["B"])[4, 2]),
    "Sum-nested": (sp.Sum(A[i, j] * sp.Sum(S[j, k] ** 2, (k, 0, q - 1)) + c, (i, 0, p - 1),
                          (j, 0, q - 1)),
                   lambda v: np.sum(v["A"] * (v["S"] ** 2).sum(axis=1)) + 6 * v["c"]),
    "Sum-reversed-bounds": (sp.Sum(k * c, (k, 5, 2)), lambda v: -7 * v["c"]),
    "Sum-empty": (sp.Sum(k * c, (k, r, r - 1)), lambda v: 0 * v["c"]),
    "scalar-constants": (sp.pi * sp.E + sp.Rational(1, 3) + sp.Float(0.25),
                         lambda v: np.pi * np.e + 1 / 3 + 0.25),
    "scalar-sigmoid": (sigmoid(c), lambda v: _sig(v["c"])),
    "scalar-dims": (s / (p + q) + r ** 2, lambda v: 7 / 5 + 25.0),
    "KroneckerDelta": (sp.Identity(q)[i, j] + sp.Identity(q)[r - 4, 1], lambda v: 0.0 + 1.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_node_matches_numpy(name, vals):
    expr, ref = CASES[name]
    extra = {"i": 0, "j": 2} if name == "KroneckerDelta" else {}
    got = evaluate(expr, {**vals, **extra})
    want = ref(_np(vals))
    if expr.is_Matrix:
        assert isinstance(got, np.ndarray) and got.ndim == 2 and got.dtype == np.float64
    else:
        assert isinstance(got, np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_complex_inputs_keep_imaginary_part(name):
    expr, ref = CASES[name]
    vals = _values(np.random.default_rng(1), complex)
    extra = {"i": 0, "j": 2} if name == "KroneckerDelta" else {}
    got = evaluate(expr, {**vals, **extra})
    want = ref(_np(vals))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if np.any(np.imag(want) != 0):
        assert np.iscomplexobj(got)


def test_result_types(vals):
    assert evaluate(A * B * C, vals).shape == (2, 7)
    one = evaluate(sp.OneMatrix(1, p) * A * sp.OneMatrix(q, 1), vals)
    assert one.shape == (1, 1)
    assert type(evaluate(sp.Trace(S), vals)) is np.float64
    cvals = _values(np.random.default_rng(2), complex)
    assert type(evaluate(sp.Trace(S), cvals)) is np.complex128
    assert evaluate(A * B, cvals).dtype == np.complex128
    ints = {A: np.arange(6).reshape(2, 3), B: np.ones((3, 5), dtype=int), p: 2, q: 3, r: 5}
    assert evaluate(A * B, ints).dtype == np.float64


def test_string_keys_and_inferred_dims(vals):
    by_name = {"A": vals[A], "B": vals[B]}
    np.testing.assert_allclose(evaluate(A * B, by_name), vals[A] @ vals[B])
    # s is not the side of any matrix here, so it must be given
    got = evaluate((1 / s) * sp.OneMatrix(1, p) * A, {"A": vals[A], "s": 7})
    np.testing.assert_allclose(got, vals[A].sum(axis=0, keepdims=True) / 7)
    # a dimension symbol with other assumptions but the same name still matches
    np.testing.assert_allclose(evaluate(A / sp.Symbol("q"), {"A": vals[A], "q": 3}), vals[A] / 3)


def test_result_does_not_alias_inputs(vals):
    for expr in (A, A.T, elementwise(sp.Lambda(x, x), A)):
        out = evaluate(expr, vals)
        out[...] = 0
    assert np.any(vals[A] != 0)


def test_sigmoid_and_softmax_are_stable():
    big = {A: np.array([[1000.0, -1000.0, 0.0], [-745.0, 750.0, 3.0]]), p: 2, q: 3}
    sig = evaluate(elementwise(sigmoid, A), big)
    np.testing.assert_allclose(sig, [[1.0, 0.0, 0.5], [0.0, 1.0, _sig(3.0)]], atol=1e-300)
    sm = evaluate(softmax(A, 1), big)
    np.testing.assert_allclose(sm.sum(axis=1), 1.0)
    cbig = {A: big[A] + 1e-20j, p: 2, q: 3}
    assert np.all(np.isfinite(evaluate(elementwise(sigmoid, A), cbig)))
    assert np.all(np.isfinite(evaluate(softmax(A, 0), cbig)))


def test_heaviside_at_zero_follows_sympy_and_step_is_zero():
    zero = {A: np.zeros((2, 3)), p: 2, q: 3}
    np.testing.assert_array_equal(evaluate(elementwise(sp.Heaviside, A), zero), 0.5)
    np.testing.assert_array_equal(evaluate(elementwise(step, A), zero), 0.0)
    np.testing.assert_array_equal(evaluate(elementwise(relu, A), zero), 0.0)


def test_memoisation_of_a_shared_dag():
    n = sp.Symbol("n", integer=True, positive=True)
    X, T = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("T", n, n)
    e = X
    for _ in range(60):  # tree size 2**60, DAG size about 120
        e = sp.MatAdd(sp.MatMul(T, e, evaluate=False), e, evaluate=False)
    start = time.perf_counter()
    fn = compile_expression(e)
    got = fn({X: np.eye(3), T: np.eye(3) * 1e-3})
    assert time.perf_counter() - start < 5
    assert fn.instructions < 200
    np.testing.assert_allclose(got, np.eye(3) * 1.001 ** 60)


def test_equal_subtrees_built_separately_are_evaluated_once(vals):
    left = sp.Trace(A.T * A) * (A * B)
    right = sp.Trace(sp.Transpose(A) * A) * sp.MatMul(A, B)
    shared = compile_expression(left + right)
    single = compile_expression(left)
    assert shared.instructions <= single.instructions + 3


def test_evaluate_caches_compiled_expressions(vals):
    assert compile_expression(A * B) is compile_expression(A * B)


def _relu_net():
    W1, W2 = sp.MatrixSymbol("W1", q, p), sp.MatrixSymbol("W2", q, 1)
    X = sp.MatrixSymbol("X", q, s)
    b1 = sp.MatrixSymbol("b1", p, 1)
    H = elementwise(relu, W1.T * X + b1 * sp.OneMatrix(1, s))
    J = ((1 / s) * sp.OneMatrix(1, p) * sp.hadamard_product(H, H) * sp.OneMatrix(s, 1))[0, 0] \
        + sp.Trace(W2.T * W2)
    return J, W1, W2, X, b1


def test_complex_step_of_relu_net_equals_analytic():
    J, W1, W2, X, b1 = _relu_net()
    rng = np.random.default_rng(0)
    w1, w2, x, b = (rng.normal(size=(3, 2)), rng.normal(size=(3, 1)), rng.normal(size=(3, 7)),
                    rng.normal(size=(2, 1)))
    fixed = {W2: w2, X: x, b1: b, p: 2, q: 3, s: 7}
    fn = compile_expression(J)
    z = w1.T @ x + b
    analytic = x @ ((2 / 7) * np.maximum(z, 0) * (z > 0)).T
    got = complex_step(lambda w: fn({**fixed, W1: w}), w1)
    np.testing.assert_allclose(got, analytic, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(central_difference(lambda w: fn({**fixed, W1: w}), w1), analytic,
                               rtol=1e-6, atol=1e-8)
    v = rng.normal(size=w1.shape)
    np.testing.assert_allclose(directional_complex_step(lambda w: fn({**fixed, W1: w}), w1, v),
                               np.sum(analytic * v), rtol=1e-12)


def test_complex_step_through_inverse_det_softmax_and_bce():
    rng = np.random.default_rng(3)
    Y = sp.MatrixSymbol("Y", q, r)
    Z = B.T * S * B
    Pm = softmax(S * B, 0)
    J = (sp.log(sp.Determinant(S)) + sp.Trace(sp.Inverse(S) * Z[:q, :q])
         - (1 / s) * sp.Trace(sp.OneMatrix(1, q) * sp.hadamard_product(Y, Pm.applyfunc(sp.log))
                              * sp.OneMatrix(r, 1))
         + sp.Max(sp.Trace(S), 0) + sp.Abs(sp.Trace(S)) + sigmoid(S[0, 1]))
    vals = {B: rng.normal(size=(3, 5)), Y: rng.uniform(size=(3, 5)), p: 2, q: 3, r: 5, s: 7}
    fn = compile_expression(J)
    s0 = rng.normal(size=(3, 3)) + 4 * np.eye(3)

    def f(x):
        return fn({**vals, S: x})
    np.testing.assert_allclose(complex_step(f, s0), central_difference(f, s0), rtol=1e-6, atol=1e-8)


def test_central_difference_and_complex_step_on_known_functions():
    x0 = np.array([[0.3, -1.2], [2.0, 0.5]])

    def f(x):
        return np.sum(np.sin(x) * x) + x[0, 0] * x[1, 1]
    want = np.sin(x0) + x0 * np.cos(x0)
    want[0, 0] += x0[1, 1]
    want[1, 1] += x0[0, 0]
    np.testing.assert_allclose(central_difference(f, x0), want, rtol=1e-8)
    np.testing.assert_allclose(complex_step(f, x0), want, rtol=1e-14)
    np.testing.assert_allclose(central_difference(f, x0, h=1e-4), want, rtol=1e-6)
    one_by_one = complex_step(lambda x: np.array([[f(x)]]), x0)
    np.testing.assert_allclose(one_by_one, want, rtol=1e-14)


def test_finite_difference_errors():
    with pytest.raises(TracegradError, match="scalar"):
        complex_step(lambda x: x, np.ones((2, 2)))
    with pytest.raises(TracegradError, match="positive"):
        central_difference(np.sum, np.ones(3), h=0.0)
    with pytest.raises(TracegradError, match="shape"):
        directional_complex_step(np.sum, np.ones(3), np.ones(2))
    with pytest.raises(TracegradError, match="real"):
        complex_step(np.sum, np.ones(3) * 1j)


@pytest.mark.parametrize("values, message", [
    ({B: np.ones((3, 5)), p: 2, q: 3, r: 5}, "missing value for matrix symbol A"),
    ({A: np.ones(6), B: np.ones((3, 5))},
     r"A must be a 2-D array of shape \(p, q\), got shape \(6,\)"),
    # r given: B's second side contradicts it
    ({A: np.ones((2, 3)), B: np.ones((3, 4)), r: 5},
     r"B has shape \(3, 4\), expected \(q, r\) = \(3, 5\)"),
    # q inferred from A: B's first side contradicts it
    ({A: np.ones((2, 3)), B: np.ones((4, 5))},
     r"B has shape \(4, 5\), expected \(q, r\) = \(3, 5\)"),
    ({A: np.ones((2, 3)), B: np.ones((3, 5)), q: 2.5}, "not an integer"),
    ({A: [["a", "b", "c"]] * 2, B: np.ones((3, 5))}, "not numeric"),
    ({A: np.ones((2, 3)), B: np.ones((3, 5)), c: np.ones(2)}, "must be a number"),
    ([1, 2], "mapping"),
])
def test_bad_values_raise(values, message):
    if isinstance(values, dict):
        values = {c: 0.5, **values}
    with pytest.raises(TracegradError, match=message):
        evaluate(A * B + c * A * B, values)


def test_missing_scalar_and_dimension():
    with pytest.raises(TracegradError, match="missing value for symbol c"):
        evaluate(c * A, {A: np.ones((2, 3))})
    with pytest.raises(TracegradError, match="missing value for symbol s"):
        evaluate(A / s, {A: np.ones((2, 3))})


@pytest.mark.parametrize("expr, message", [
    (sp.Function("f")(c), "cannot evaluate f"),
    (sp.Adjoint(A), "cannot evaluate Adjoint"),
    (sp.conjugate(c), "cannot evaluate conjugate"),
    (sp.KroneckerProduct(A, S), "cannot evaluate KroneckerProduct"),
    (elementwise(sp.Lambda(x, sp.erf(x)), A), "cannot evaluate erf"),
    (sp.exp(A * B), "used as a scalar but has shape"),
    (sp.MatPow(S, sp.Rational(1, 2)), "cannot evaluate MatPow"),
    ("A*B", "not a SymPy expression"),
])
def test_unsupported_nodes_raise(vals, expr, message):
    with pytest.raises(TracegradError, match=message):
        evaluate(expr, vals)


def test_stepped_slice_that_sympy_sizes_wrongly_raises(vals):
    with pytest.raises(TracegradError, match="18411"):
        evaluate(C[::2, :], vals)


def test_singular_inverse_raises():
    with pytest.raises(TracegradError, match="cannot evaluate Inverse"):
        evaluate(sp.Inverse(S), {S: np.zeros((3, 3))})


def test_elementwise_apply_over_dummy_and_canonical_agree(vals):
    a = P.applyfunc(sp.log)
    assert isinstance(a, ElementwiseApplyFunction)
    np.testing.assert_allclose(evaluate(a, vals), evaluate(elementwise(sp.log, P), vals))
