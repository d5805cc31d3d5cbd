"""Constructors that keep adjoints in one normal form, so equal terms look equal.

Transposes sit on symbols only (``(AB)ᵀ = BᵀAᵀ`` is applied eagerly), scalar factors stand in
front of products, and all-ones factors of a Hadamard product are dropped.
"""
import functools

import sympy as sp
from sympy.core.operations import AssocOp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import canonicalize as _hadamard_canonical
from sympy.matrices.expressions.matadd import canonicalize as _matadd_canonical
from sympy.matrices.expressions.matmul import canonicalize as _matmul_canonical

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
        # c * x would be MatMul(c, x).doit(): the same, with the deep part memoised
        return sp.MatMul(c, x).doit(deep=False) if isinstance(x, sp.MatMul) else doit(sp.MatMul(c, x))
    return c * x


def doit(x):
    """``x.doit()``, memoised per subexpression (SymPy's own recursion re-walks shared tails).

    The operations the engine builds are handled by mirrors of SymPy's own ``doit`` methods,
    memoised; a tree holding anything else goes to SymPy's ``doit`` whole.
    """
    out = _doit(x)
    return x.doit() if out is None else out


@functools.lru_cache(maxsize=1 << 16)
def _doit(x):
    """SymPy's ``x.doit()`` (deep) step by step, or None where it is not mirrored here."""
    method = type(x).doit
    if method is _DOIT["atom"]:
        return x
    if method is _DOIT["transpose"]:
        arg = _doit(x.arg)
        if arg is None:
            return None
        transpose = getattr(arg, "_eval_transpose", None)
        result = transpose() if transpose is not None else None
        return result if result is not None else sp.Transpose(arg)
    if method is _DOIT["elementwise"]:
        expr = _doit(x.expr)
        if expr is None or isinstance(expr, (sp.MatrixBase, ElementwiseApplyFunction)):
            return None
        return expr if isinstance(x.function, sp.Lambda) and x.function.is_identity else x
    if method not in _MIRRORED:
        return None
    args = [_doit(a) if isinstance(a, sp.Basic) else a for a in x.args]
    if any(a is None for a in args):
        return None
    if method is _DOIT["basic"]:
        return x.func(*args)
    if method is _DOIT["assoc"] or method is _DOIT["ones"]:
        return x.func(*args, evaluate=True)
    if method is _DOIT["matmul"]:
        return _matmul_canonical(sp.MatMul(*args))
    if method is _DOIT["matadd"]:
        return _matadd_canonical(sp.MatAdd(*args))
    if any(isinstance(a, sp.MatrixBase) for a in args):   # Hadamard product of explicit matrices
        return None
    return _hadamard_canonical(x.func(*args))


_DOIT = {"atom": sp.Atom.doit, "basic": sp.Basic.doit, "assoc": AssocOp.doit, "ones": sp.OneMatrix.doit,
         "matmul": sp.MatMul.doit, "matadd": sp.MatAdd.doit, "hadamard": sp.HadamardProduct.doit,
         "transpose": sp.Transpose.doit, "elementwise": ElementwiseApplyFunction.doit}
_MIRRORED = {_DOIT[k] for k in ("basic", "assoc", "ones", "matmul", "matadd", "hadamard")}


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


def memoised_walk(step):
    """``walk(x, memo=None)``: ``step(x, memo)`` once per distinct matrix subexpression of ``x``
    (``memo``, a dict, may be shared across calls), since the results of a deep network share
    their tails; scalars and atoms are returned as they are."""
    @functools.wraps(step)
    def walk(x, memo=None):
        if not is_matrix(x) or not x.args:
            return x
        memo = {} if memo is None else memo
        if x not in memo:
            memo[x] = step(x, memo)
        return memo[x]
    return walk


@memoised_walk
def normal(x, memo):
    """``x`` rebuilt bottom-up with the constructors above (after a substitution)."""
    args = [normal(a, memo) if isinstance(a, sp.Basic) else a for a in x.args]
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


def substitute(expr, rule, memo=None):
    """``expr.xreplace(rule)`` (the same result), each subexpression rebuilt once per ``memo``.

    SymPy's ``xreplace`` walks a shared subexpression once per occurrence; the results of a
    deep network share long tails, so walking each once keeps their expansion linear.
    """
    if expr in rule:
        return rule[expr]
    if not rule or not expr.args:
        return expr
    memo = {} if memo is None else memo
    out = memo.get(expr)
    if out is None:
        args = [substitute(a, rule, memo) if isinstance(a, sp.Basic) else a for a in expr.args]
        changed = any(a is not b for a, b in zip(args, expr.args))
        out = memo[expr] = expr.func(*args) if changed else expr
    return out
