"""Common subexpressions: the children the printer visits, occurrence counts, what is too
trivial for a temporary, and double transposes removed."""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.numeric.codegen.base import oriented
from tracegrad.symbolic.algebra import submatrix
from tracegrad.symbolic.functions import Softmax


def children(e):
    if isinstance(e, ElementwiseApplyFunction):
        return (e.expr,)
    if isinstance(e, (sp.MatrixSymbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity, sp.Sum)) or \
            not isinstance(e, sp.Basic) or e.is_Atom:
        return ()
    if isinstance(e, (sp.MatrixSlice, MatrixElement)):
        return (e.parent,)
    if isinstance(e, (sp.MatPow, sp.HadamardPower)):
        return (e.base,)
    if isinstance(e, Softmax):
        return (e.arg,)
    if isinstance(e, sp.BlockMatrix):
        return tuple(e.blocks)
    if isinstance(e, sp.ImmutableDenseMatrix):
        return tuple(e)
    return e.args


def occurrences(exprs):
    """Occurrences of every subexpression; below a repeated one its children count once."""
    counts = {}
    stack = list(reversed(exprs))
    while stack:
        e = stack.pop()
        key = oriented(e)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            stack.extend(reversed(children(e)))
    return counts


def trivial(e, dims):
    """Not worth a temporary: names, views of names, and arithmetic of sizes."""
    if not isinstance(e, sp.Basic) or e.is_Atom or \
            isinstance(e, (sp.MatrixSymbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity)):
        return True
    if isinstance(e, sp.Transpose):
        return isinstance(e.arg, sp.MatrixSymbol)
    if isinstance(e, (sp.MatrixSlice, MatrixElement)):
        return isinstance(e.parent, sp.MatrixSymbol)
    return not getattr(e, "is_Matrix", False) and e.free_symbols <= dims


def collapse(e):
    """Rebuild ``e`` with double transposes removed."""
    if isinstance(e, sp.Transpose) and isinstance(e.arg, sp.Transpose):
        return collapse(e.arg.arg)
    if isinstance(e, sp.Transpose) and isinstance(e.arg, sp.MatrixSlice) and \
            isinstance(e.arg.parent, sp.Transpose) and e.arg.rowslice[2] == e.arg.colslice[2] == 1:
        # (Aᵀ[r, c])ᵀ = A[c, r]
        s = e.arg
        return submatrix(collapse(s.parent.arg), s.colslice[:2], s.rowslice[:2])
    if not isinstance(e, sp.Basic) or not e.args or isinstance(e, sp.MatrixSymbol):
        return e
    args = [collapse(a) for a in e.args]
    return e if all(a is b for a, b in zip(args, e.args)) else e.func(*args)
