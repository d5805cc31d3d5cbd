"""The engine's own constructors (symbolic/algebra.py) give exactly SymPy's canonical forms, and
our shapes are SymPy's shapes — without patching SymPy: its classes are left as they are."""
import sympy as sp
from sympy.matrices.expressions.hadamard import canonicalize as hadamard_canonical
from sympy.matrices.expressions.matadd import canonicalize as matadd_canonical
from sympy.matrices.expressions.matmul import canonicalize as matmul_canonical
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracegrad.symbolic.algebra import entrywise_product, matrix_product, matrix_sum
from tracegrad.symbolic.shapes import shape_of

n, m = sp.symbols("n m", integer=True, positive=True)
x = sp.Symbol("x")
A, B = sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("B", n, n)
C, D = sp.MatrixSymbol("C", n, m), sp.MatrixSymbol("D", m, n)
SQUARE = [A, B, sp.Identity(n), sp.OneMatrix(n, n), sp.ZeroMatrix(n, n), sp.Inverse(A), sp.MatPow(A, 2),
          sp.MatMul(C, D), sp.Transpose(B)]
SCALARS = [sp.Integer(2), sp.Integer(-1), sp.Rational(1, 2), m, x, 1 / m]
EXAMPLES = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def square_exprs(depth=2):
    """Square expressions in SymPy's canonical form: operands as the engine's constructors get them."""
    return raw_square_exprs(depth).map(lambda e: e.doit())


def raw_square_exprs(depth):
    leaf = st.sampled_from(SQUARE)
    if depth == 0:
        return leaf
    sub = raw_square_exprs(depth - 1)
    return st.one_of(
        leaf,
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: sp.MatMul(*xs)),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: sp.MatAdd(*xs)),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: sp.HadamardProduct(*xs)),
        st.tuples(st.sampled_from(SCALARS), sub).map(lambda t: sp.MatMul(*t)))


@EXAMPLES
@given(st.lists(st.one_of(square_exprs(), st.sampled_from(SCALARS)), min_size=1, max_size=4)
       .filter(lambda xs: any(isinstance(a, sp.MatrixExpr) for a in xs)))
def test_product_is_sympys_canonical_product(args):
    assert matrix_product(args) == matmul_canonical(sp.MatMul(*args))


@EXAMPLES
@given(st.lists(square_exprs(), min_size=1, max_size=4))
def test_total_is_sympys_canonical_sum(args):
    assert matrix_sum(args) == matadd_canonical(sp.MatAdd(*args))


@EXAMPLES
@given(st.lists(square_exprs(), min_size=1, max_size=4))
def test_entrywise_product_is_sympys_canonical_hadamard_product(args):
    assert entrywise_product(args) == hadamard_canonical(sp.HadamardProduct(*args))


@EXAMPLES
@given(raw_square_exprs(3))
def test_shapes_are_sympys(expr):
    assert shape_of(expr) == expr.shape


def test_rectangular_products_and_ones():
    ones = [sp.OneMatrix(1, n), C, sp.OneMatrix(m, 1)]
    assert matrix_product(ones) == matmul_canonical(sp.MatMul(*ones))
    assert matrix_product([sp.OneMatrix(n, m), sp.OneMatrix(m, n)]) == m * sp.OneMatrix(n, n)
    assert matrix_product([C, sp.ZeroMatrix(m, 1)]) == sp.ZeroMatrix(n, 1)


def test_sympy_is_not_patched():
    """Importing tracegrad leaves SymPy's classes as SymPy defines them."""
    for cls in (sp.MatMul, sp.MatAdd, sp.HadamardProduct, sp.HadamardPower, sp.Transpose, sp.Inverse,
                sp.MatPow, sp.BlockMatrix):
        getter = cls.__dict__.get("shape")
        if getter is not None:
            assert getter.fget.__module__.startswith("sympy."), cls
    assert not hasattr(sp.MatMul(A, B), "_tracegrad_shape")
