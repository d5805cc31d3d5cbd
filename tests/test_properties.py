"""Property test: random well-shaped programs, every derived gradient against complex steps.

Expressions are built bottom-up by a Hypothesis strategy that tracks shapes: a target shape
(rows, cols) over the dimensions p, q, r (bound to 2, 3, 5, so a swapped dimension shows) is
reached by a leaf of that shape or by an operation whose operands are built for the shapes
it needs.  The cost is 1ᵀ E 1, tr(E), or c tr(E) + (1ᵀ F 1)[0, 0].
"""
import itertools
import warnings

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.numeric import complex_step, evaluate
from tracegrad.symbolic import derive, elementwise, sigmoid
from tracegrad.symbolic.shapes import same_shape, shape_of

# On a failure Hypothesis imports its patch writer, whose libcst import raises a
# DeprecationWarning (mypy_extensions.TypedDict) — an error under our filterwarnings, which
# turns the failure report into an INTERNALERROR.  Import it here, warnings ignored.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

p, q, r = sp.symbols("p q r", integer=True, positive=True)
DIMS = (p, q, r)
SIZES = {p: 2, q: 3, r: 5}
POOL = {(a, b): [sp.MatrixSymbol(f"{name}_{a}{b}", a, b) for name in "AB"]
        for a, b in itertools.product(DIMS, DIMS)}
VECTORS = {a: sp.MatrixSymbol(f"v_{a}", a, 1) for a in DIMS}
SCALARS = sp.symbols("c1 c2")
X_ = sp.Symbol("x")
FUNCTIONS = {
    "tanh": sp.tanh,
    "sigmoid": sigmoid,
    "sin": sp.sin,
    "exp of small": sp.Lambda(X_, sp.exp(X_ / 4)),
    "x·exp(c x)": sp.Lambda(X_, X_ * sp.exp(SCALARS[1] * X_ / 8)),   # a scalar parameter inside f
}
OPS = ["leaf", "matmul", "add", "transpose", "hadamard", "scale", "function", "function",
       "stack rows", "stack cols", "slice", "slice", "sum by ones", "broadcast"]


def size(d):
    return int(sp.sympify(d).xreplace(SIZES))


def build(draw, shape, depth):
    """An expression of ``shape``, at most ``depth`` operations deep (``draw``: Hypothesis')."""
    rows, cols = shape
    sub = lambda s: build(draw, s, depth - 1)
    op = draw(st.sampled_from(OPS if depth > 0 else ["leaf"]), label="op")
    if op == "leaf":
        return draw(st.sampled_from(POOL[shape]), label="leaf")
    if op == "matmul":
        inner = draw(st.sampled_from(DIMS), label="inner")
        return sub((rows, inner)) * sub((inner, cols))
    if op == "add":
        return sub(shape) + sub(shape)
    if op == "transpose":
        return sub((cols, rows)).T
    if op == "hadamard":
        return sp.HadamardProduct(sub(shape), sub(shape))
    if op == "scale":
        c = draw(st.sampled_from([*SCALARS, sp.Rational(-3, 2)]), label="scalar")
        return c * sub(shape)
    if op == "function":
        f = FUNCTIONS[draw(st.sampled_from(sorted(FUNCTIONS)), label="f")]
        return elementwise(f, sub(shape))
    if op in ("stack rows", "stack cols"):
        # [E1; E2] or [E1, E2], then read back to the target shape by a product with a leaf
        a, b = draw(st.sampled_from(DIMS), label="a"), draw(st.sampled_from(DIMS), label="b")
        if op == "stack rows":
            stacked = sp.BlockMatrix([[sub((a, cols))], [sub((b, cols))]])
            return fresh(draw, rows, a + b) * stacked
        stacked = sp.BlockMatrix([[sub((rows, a)), sub((rows, b))]])
        return stacked * fresh(draw, a + b, cols)
    if op == "slice":
        # rows [k, k + rows) of a taller expression, or columns likewise
        taller = [d for d in DIMS if size(d) > size(rows)]
        wider = [d for d in DIMS if size(d) > size(cols)]
        if not taller and not wider:
            return draw(st.sampled_from(POOL[shape]), label="leaf")
        if taller and (not wider or draw(st.booleans(), label="rows?")):
            big = draw(st.sampled_from(taller), label="big")
            k = draw(st.integers(0, size(big) - size(rows)), label="k")
            return unsliced(sub((big, cols)), (big, cols), draw)[k:k + rows, :]
        big = draw(st.sampled_from(wider), label="big")
        k = draw(st.integers(0, size(big) - size(cols)), label="k")
        return unsliced(sub((rows, big)), (rows, big), draw)[:, k:k + cols]
    if op == "sum by ones":
        inner = draw(st.sampled_from(DIMS), label="inner")
        if draw(st.booleans(), label="left?"):
            return sp.OneMatrix(rows, inner) * sub((inner, cols))
        return sub((rows, inner)) * sp.OneMatrix(inner, cols)
    if op == "broadcast":                     # v 1ᵀ + E, the bias pattern
        return VECTORS[rows] * sp.OneMatrix(1, cols) + sub(shape)
    raise AssertionError(op)


def unsliced(expr, shape, draw):
    """SymPy cannot slice a slice with symbolic bounds (it asks whether p > q): slice a leaf."""
    if isinstance(expr, sp.MatrixSlice):
        return draw(st.sampled_from(POOL[shape]), label="leaf")
    return expr


def fresh(draw, rows, cols):
    """A leaf of a stacked shape, e.g. (q, p + r)."""
    name = draw(st.sampled_from("KL"), label="name")
    return sp.MatrixSymbol(f"{name}_{rows}_{cols}".replace(" ", ""), rows, cols)


@st.composite
def programs(draw):
    """A scalar cost over the pool: 1ᵀ E 1, tr(E), or c tr(E) + (1ᵀ F 1)[0, 0]."""
    depth = lambda: draw(st.integers(1, 4), label="depth")
    kind = draw(st.sampled_from(["ones", "trace", "scalar"]), label="reduction")
    n = draw(st.sampled_from(DIMS), label="n")
    square = lambda: build(draw, (n, n), depth())
    if kind == "trace":
        return sp.Trace(square())
    shape = (n, draw(st.sampled_from(DIMS), label="cols"))
    total = sp.OneMatrix(1, shape[0]) * build(draw, shape, depth()) * sp.OneMatrix(shape[1], 1)
    if kind == "ones":
        return total
    # a scalar expression of a trace and of a 1×1 matrix used as a scalar
    # (kept linear in the trace: see the note at the end of this file)
    return SCALARS[0] * sp.Trace(square()) + MatrixElement(total, 0, 0)


def leaves(cost):
    return sorted(cost.free_symbols - set(DIMS), key=str)


def values_for(symbols, rng):
    out = {}
    for x in symbols:
        if isinstance(x, sp.MatrixSymbol):
            out[x] = rng.uniform(-1, 1, size=tuple(size(d) for d in x.shape))
        else:
            out[x] = rng.uniform(0.5, 1.5)
    return out | SIZES


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cost=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_programs_against_complex_step(cost, seed):
    wrt = leaves(cost)
    d = derive(cost, wrt)
    values = values_for(wrt, np.random.default_rng(seed))
    for x in wrt:
        grad = d.gradient(x)
        if isinstance(x, sp.MatrixSymbol):
            assert same_shape(shape_of(grad), x.shape), (x, grad)
            assert same_shape(shape_of(d.jacobian(x)), x.T.shape), x
        got = np.asarray(evaluate(grad, values), dtype=float)
        want = complex_step(lambda v: evaluate(cost, {**values, x: v[()] if v.ndim == 0 else v}),
                            np.asarray(values[x]))
        assert got.shape == want.shape, x
        err = np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want)))
        assert err < 1e-9, f"∇{x} of {cost}: derived {got}, complex step {want}"


# Note: nonlinear functions of traces (tr(E)², log tr(E), tr(E)·tr(F)) are not generated: the
# engine's entry-wise simplification currently crashes inside sp.cancel when an adjoint's
# coefficient holds a trace whose argument has a numeric factor, e.g.
#   derive(Trace(elementwise(sin, 2*X) + X)**2, [X])  ->  ValueError (reported).
