"""The engine never returns what it has not derived (issue 11 §3): costs written with SymPy's own
entry, Sum and element-wise forms — the shapes SymPy rewrites ``M[0, 0]`` of a product into —
and with abs, sign, Piecewise, Max/Min, symbolic exponents and 1×1 sums used as scalars.  Each
gives a gradient that is numerically right (complex step of the cost as SymPy wrote it), or a
one-line error naming the construct: never a stray summation index, never an unevaluated
derivative, never an explicit matrix at symbolic sizes."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracegrad.numeric import evaluate
from tracegrad.symbolic import TracegradError, derive, sigmoid

n, m = sp.symbols("n m", integer=True, positive=True)
x, y = sp.MatrixSymbol("x", n, 1), sp.MatrixSymbol("y", n, 1)
A, B = sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("B", n, m)
c = sp.Symbol("c", real=True)
t = sp.Symbol("t", real=True)
SIZES = {n: 3, m: 4}
ENTRY = [sp.exp, sp.sin, sp.tanh, sigmoid, sp.Abs, sp.Lambda(t, sp.Piecewise((t, t > 0), (t / 4, True))),
         sp.Lambda(t, t ** 2), sp.Lambda(t, c * t)]


def leaves():
    """Scalar costs as SymPy builds them from matrix symbols (entries of products become Sums)."""
    f = st.sampled_from(ENTRY)
    return st.one_of(
        st.just((x.T * A * x)[0, 0]),
        st.just((y.T * x)[0, 0]),
        f.map(lambda f: (sp.OneMatrix(1, n) * x.applyfunc(f))[0, 0]),
        f.map(lambda f: (sp.OneMatrix(1, n) * A.applyfunc(f) * sp.OneMatrix(n, 1))[0, 0]),
        st.tuples(st.integers(0, 2), st.integers(0, 3)).map(lambda ij: (A * B)[ij]),
        st.integers(0, 2).map(lambda i: x[i, 0] ** 2),
        st.just(sp.Max(x[0, 0], x[1, 0], 0) + sp.Min(x[2, 0], y[0, 0])),
        st.just(sp.Abs(sp.Trace(A)) + sp.sign(c) * c),
        st.just(sp.Trace(A * A.T) ** sp.Rational(3, 2)),
        st.just(2 ** (m - 3) * sp.Trace(B.T * B)),
        st.just(sp.Trace(sp.OneMatrix(n, n) * sp.HadamardPower(A.applyfunc(sp.exp), c))),
        st.just(sp.Trace(A) / (sp.OneMatrix(1, n) * x.applyfunc(sp.exp))[0, 0]),
        st.just(sp.log((sp.OneMatrix(1, n) * x.applyfunc(sp.exp))[0, 0])))


def costs():
    leaf = leaves()
    return st.one_of(leaf, st.tuples(leaf, leaf).map(lambda ab: ab[0] + ab[1]),
                     st.tuples(leaf, leaf).map(lambda ab: ab[0] * ab[1]),
                     leaf.map(lambda a: sp.exp(a / 8)))


def values(rng):
    vals = {x: rng.normal(size=(3, 1)), y: rng.normal(size=(3, 1)), A: rng.normal(size=(3, 3)) / 2,
            B: rng.normal(size=(3, 4)), c: 0.7}
    return {**vals, **SIZES}


def complex_step_gradient(cost, wrt, point, h=1e-30):
    """∂J/∂w entry by entry from the cost as written, by complex steps."""
    base = point[wrt]
    grad = np.empty(np.shape(base))
    for k in np.ndindex(grad.shape):
        moved = np.array(base, dtype=complex)
        moved[k] += 1j * h
        grad[k] = np.imag(complex(evaluate(cost, {**point, wrt: moved}))) / h
    return grad


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(costs(), st.integers(0, 2**16))
def test_sympy_forms_are_derived_or_named(cost, seed):
    wrt = [s for s in (x, y, A, B, c) if s in cost.free_symbols]
    try:
        d = derive(cost, wrt)
    except TracegradError as e:
        assert "\n" not in str(e) and str(e)
        return
    point = values(np.random.default_rng(seed))
    for w in wrt:
        g = d.gradient(w)
        assert not g.has(sp.Sum, sp.Derivative, sp.Dummy, sp.DiracDelta), (cost, w, g)
        assert not (isinstance(w, sp.MatrixSymbol) and isinstance(g, sp.MatrixBase)), (cost, w, g)
        derived = np.asarray(evaluate(g, point), dtype=float)
        if isinstance(w, sp.MatrixSymbol):
            true = complex_step_gradient(cost, w, point)
        else:
            true = np.imag(complex(evaluate(cost, {**point, w: point[w] + 1e-30j}))) / 1e-30
        np.testing.assert_allclose(derived.reshape(np.shape(true)), true, rtol=1e-9, atol=1e-11,
                                   err_msg=f"{cost} d/d{w}")


@pytest.mark.parametrize("cost, wrt, gradient", [
    (sp.log((sp.OneMatrix(1, n) * x.applyfunc(sp.exp))[0, 0]), x, "softmax"),
    ((x.T * A * x)[0, 0], x, (A + A.T) * x),
])
def test_the_issue_examples(cost, wrt, gradient):
    """log Σ exp(x) and xᵀAx at a symbolic n: a matrix expression, not Matrix([[0], [1], [0]])."""
    g = derive(cost, [wrt]).gradient(wrt)
    assert not isinstance(g, sp.MatrixBase) and not g.has(sp.Dummy, sp.Sum)
    point = values(np.random.default_rng(0))
    if gradient == "softmax":
        e = np.exp(point[x])
        expected = e / e.sum()
    else:
        expected = evaluate(gradient, point)
    np.testing.assert_allclose(evaluate(g, point), expected, rtol=1e-12)


def test_a_sum_over_entries_that_is_no_product_is_named():
    k = sp.Symbol("k", integer=True)
    cost = sp.Sum(x[k, 0] * k, (k, 0, n - 1))       # weights by the index itself: no matrix form
    with pytest.raises(TracegradError, match="sum over matrix entries"):
        derive(cost, [x])
