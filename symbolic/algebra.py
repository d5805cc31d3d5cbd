"""Constructors that keep adjoints in one normal form, so equal terms look equal.

Transposes sit on symbols only (``(AB)ᵀ = BᵀAᵀ`` is applied eagerly), scalar factors stand in
front of products, and all-ones factors of a Hadamard product are dropped.
"""
import functools

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .functions import Softmax, elementwise
from .shapes import is_matrix, shape_of


@functools.lru_cache(maxsize=1 << 14)
def T(x):
    """xᵀ with the transpose pushed down to the symbols."""
    if not is_matrix(x):
        return x
    if isinstance(x, sp.Transpose):
        return x.arg
    if isinstance(x, (sp.OneMatrix, sp.ZeroMatrix)):
        return type(x)(x.shape[1], x.shape[0])
    if isinstance(x, sp.Identity):
        return x
    if isinstance(x, sp.MatMul):
        coeff, mats = x.as_coeff_matrices()
        return scale(coeff, matmul(*[T(a) for a in reversed(mats)]))
    if isinstance(x, sp.MatAdd):
        return add(*[T(a) for a in x.args])
    if isinstance(x, sp.HadamardProduct):
        return hadamard(*[T(a) for a in x.args])
    if isinstance(x, sp.HadamardPower):
        return sp.HadamardPower(T(x.base), x.exp)
    if isinstance(x, ElementwiseApplyFunction):
        return elementwise(x.function, T(x.expr))
    if isinstance(x, sp.Inverse):
        return sp.Inverse(T(x.arg))
    if isinstance(x, sp.MatPow):
        return sp.MatPow(T(x.base), x.exp)
    if isinstance(x, Softmax):
        return Softmax(T(x.arg), 1 - x.axis)
    if isinstance(x, sp.BlockMatrix):
        b = x.blocks
        return sp.BlockMatrix([[T(b[i, j]) for i in range(b.rows)] for j in range(b.cols)])
    return sp.Transpose(x)


def power(x, p):
    """X^∘p, with X^∘1 = X and X^∘0 = 1."""
    if p == 1:
        return x
    if p == 0:
        return sp.OneMatrix(*shape_of(x))
    return sp.HadamardPower(x, p)


def scale(c, x):
    """c·X; a zero factor gives the zero matrix of X's shape."""
    if c == 1:
        return x
    if c == 0:
        return zeros_like(x) if is_matrix(x) else sp.Integer(0)
    if is_matrix(x):
        return sp.MatMul(c, x).doit(deep=False) if isinstance(x, sp.MatMul) else c * x
    return c * x


def matmul(*factors):
    factors = [f for f in factors if not isinstance(f, sp.Identity)] or factors[:1]
    out = factors[0]
    for f in factors[1:]:
        out = sp.MatMul(out, f).doit(deep=False)
    return out


def add(*terms):
    terms = [t for t in terms if not (isinstance(t, sp.ZeroMatrix) or t == 0)]
    if not terms:
        return sp.Integer(0)
    if len(terms) == 1:
        return terms[0]
    return sp.MatAdd(*terms).doit(deep=False) if is_matrix(terms[0]) else sp.Add(*terms)


def hadamard(*factors):
    """A ∘ B ∘ …, with scalar coefficients pulled in front and all-ones factors dropped."""
    coeff, mats = sp.Integer(1), []
    for f in factors:
        if isinstance(f, sp.MatMul):
            c, rest = f.as_coeff_matrices()
            coeff, f = coeff * c, matmul(*rest)
        if isinstance(f, sp.HadamardProduct):
            mats.extend(f.args)
        elif isinstance(f, sp.ZeroMatrix):
            return f
        elif not isinstance(f, sp.OneMatrix):
            mats.append(f)
    if not mats:
        body = sp.OneMatrix(*shape_of(factors[0]))
    else:
        body = mats[0] if len(mats) == 1 else sp.HadamardProduct(*mats)
    return scale(coeff, body)


def zeros_like(x):
    return sp.ZeroMatrix(*shape_of(x))


def ones(rows, cols):
    return sp.OneMatrix(rows, cols)


def normal(x):
    """``x`` rebuilt bottom-up with the constructors above (after a substitution)."""
    if not is_matrix(x) or not x.args:
        return x
    args = [normal(a) if isinstance(a, sp.Basic) else a for a in x.args]
    if isinstance(x, sp.Transpose):
        return T(args[0])
    if isinstance(x, sp.MatMul):
        coeff = sp.Mul(*[a for a in args if not is_matrix(a)])
        return scale(coeff, matmul(*[a for a in args if is_matrix(a)]))
    if isinstance(x, sp.MatAdd):
        return add(*args)
    if isinstance(x, sp.HadamardProduct):
        return hadamard(*args)
    return x if all(a is b for a, b in zip(args, x.args)) else x.func(*args)
