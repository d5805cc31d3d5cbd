"""Printing rules for matrix nodes: one rule per SymPy node type in ``MATRIX_RULES``.

Idioms: ``1ᵀ M`` prints ``M.sum(axis=0, keepdims=True)``, ``M 1`` prints
``M.sum(axis=1, keepdims=True)``; ``b 1ᵀ`` next to a full matrix in a sum or element-wise product
prints ``b`` (numpy broadcasting).
"""
import re

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.numeric.codegen.base import ATOM, MUL, POW, UNARY, Code, wrap
from tracegrad.numeric.codegen.scalar_rules import sum_text, symbol
from tracegrad.numeric.codegen.stable import LogSoftmax
from tracegrad.symbolic.algebra import T, transposes
from tracegrad.symbolic.functions import Softmax


def _is_ones(x, rows=None, cols=None):
    return isinstance(x, sp.OneMatrix) and (rows is None or x.shape[0] == rows) and \
        (cols is None or x.shape[1] == cols)


def _broadcast_form(term):
    """A smaller expression that numpy broadcasts to ``term`` next to a full matrix, or None.

    ``1`` (all ones) -> 1;  ``c u 1ᵀ`` with u a column -> ``c u``;  ``c 1 v`` with v a row -> ``c v``.
    """
    if isinstance(term, sp.OneMatrix):
        return sp.S.One
    if not isinstance(term, sp.MatMul):
        return None
    coeff, mats = term.as_coeff_matrices()
    mats = list(mats)
    if len(mats) == 1 and _is_ones(mats[0]):
        return coeff
    form = None
    if len(mats) > 1 and _is_ones(mats[-1]):      # M 1(k×c) = (M 1(k×1)) broadcast over c
        k = mats[-1].shape[0]
        form = mats[:-1] if k == 1 else mats[:-1] + [sp.OneMatrix(k, 1)]
    elif len(mats) > 1 and _is_ones(mats[0]):     # 1(r×k) M = (1(1×k) M) broadcast over r
        k = mats[0].shape[1]
        form = mats[1:] if k == 1 else [sp.OneMatrix(1, k)] + mats[1:]
    if form is None or form == mats:
        return None
    return sp.MatMul(coeff, *form).doit() if len(form) > 1 else coeff * form[0]


def _reduced(args):
    """Arguments of a sum or Hadamard product with broadcast forms where numpy allows them."""
    forms = [_broadcast_form(a) for a in args]
    if all(f is not None for f in forms):
        return list(args)  # nothing full to broadcast against
    return [a if f is None else f for a, f in zip(args, forms)]


def _matadd(p, e):
    return sum_text(p, _reduced(e.args))


def _scaled(p, coeff, code):
    """coeff · code for a scalar coefficient."""
    if coeff == 1:
        return code
    if coeff == -1:
        return Code(f"-{wrap(code, UNARY)}", UNARY)
    c = p(coeff)
    return Code(f"{wrap(c, MUL)} * {wrap(code, UNARY)}", MUL)


def _matmul(p, e):
    coeff, mats = e.as_coeff_matrices()
    mats = list(mats)
    left = len(mats) > 1 and _is_ones(mats[0], rows=1)
    if left:
        mats = mats[1:]
    right = len(mats) > 1 and _is_ones(mats[-1], cols=1)
    if right:
        mats = mats[:-1]
    codes = [p(m) for m in mats]
    if len(codes) == 1:
        code = codes[0]
    else:
        code = Code(" @ ".join(wrap(c, POW) for c in codes), MUL)
    if left and right:
        code = Code(f"{wrap(code, ATOM)}.sum(keepdims=True)")
    elif left:
        code = Code(f"{wrap(code, ATOM)}.sum(axis=0, keepdims=True)")
    elif right:
        code = Code(f"{wrap(code, ATOM)}.sum(axis=1, keepdims=True)")
    return _scaled(p, coeff, code)


def _hadamard(p, e):
    factors = _reduced(e.args)
    scalars = [f for f in factors if not getattr(f, "is_Matrix", False) and f != 1]
    mats = [f for f in factors if getattr(f, "is_Matrix", False)]
    num = [m for m in mats if not (isinstance(m, sp.HadamardPower) and m.exp == -1)]
    den = [m.base for m in mats if isinstance(m, sp.HadamardPower) and m.exp == -1]
    codes = [p(m) for m in num]
    text = " * ".join([wrap(codes[0], MUL)] + [wrap(c, UNARY) for c in codes[1:]]) \
        if codes else "1"
    text += "".join(f" / {wrap(p(m), UNARY)}" for m in den)
    return _scaled(p, sp.Mul(*scalars), Code(text, MUL if (den or len(codes) > 1) else
                                             codes[0].prec))


def _hadamard_power(p, e):
    base, k = p(e.base), e.exp
    if k == -1:
        return Code(f"1 / {wrap(base, UNARY)}", MUL)
    if k == sp.S.Half:
        return p.call("np.sqrt", base)
    return Code(f"{wrap(base, ATOM)} ** {wrap(p.scalar(k), UNARY)}", POW)


def _transpose(p, e):
    return Code(f"{wrap(p(e.arg), ATOM)}.T")


def _shape(p, e):
    return ", ".join(p.size(d).text for d in e.shape)


def _elementwise(p, e):
    (var,) = e.function.variables
    body, arg = e.function.expr, p(e.expr)
    if var not in body.free_symbols:  # constant body: still a full matrix
        return Code(f"np.full({wrap(arg, ATOM)}.shape, {p.scalar(body).text})")
    if body.count(var) > 1 and not re.fullmatch(r"\w+(\.T)?", arg.text):
        name = p.temps.new()
        p.lines.append(f"{name} = {arg.text}")
        arg = Code(name)
    p.env[var] = arg
    try:
        return p.scalar(body)
    finally:
        del p.env[var]


def _softmax(p, e):
    return p.helper("softmax", p(e.arg), Code(f"axis={e.axis}"))


def _slice(p, e):
    parts = []
    for (start, stop, stride), size in zip((e.rowslice, e.colslice), e.parent.shape):
        a = "" if start == 0 else p.size(start).text
        b = "" if sp.simplify(stop - size) == 0 else p.size(stop).text
        parts.append(f"{a}:{b}" + ("" if stride == 1 else f":{p.size(stride).text}"))
    return Code(f"{wrap(p(e.parent), ATOM)}[{', '.join(parts)}]")


def _element(p, e):
    return Code(f"{wrap(p(e.parent), ATOM)}[{p.size(e.i).text}, {p.size(e.j).text}]")


def _block(p, e):
    b = e.blocks
    rows = ", ".join("[" + ", ".join(p(b[i, j]).text for j in range(b.cols)) + "]"
                     for i in range(b.rows))
    return Code(f"np.block([{rows}])")


def _explicit(p, e):
    rows = ", ".join("[" + ", ".join(p.scalar(e[i, j]).text for j in range(e.cols)) + "]"
                     for i in range(e.rows))
    return Code(f"np.array([{rows}], dtype=float)")


def _summation(p, e):
    """Sum(body, (i, lo, hi), ...) -> sum(body for i in range(lo, hi + 1) ...); lo ≤ hi + 1."""
    added = []
    loops = []
    for var, lo, hi in e.limits:
        name = p.temps.new(str(var))
        p.env[var] = Code(name)
        added.append(var)
        loops.append(f"for {name} in range({p.size(lo).text}, {p.size(hi + 1).text})")
    try:
        body = p.scalar(e.function)
    finally:
        for var in added:
            del p.env[var]
    return Code(f"sum({body.text} {' '.join(loops)})")


def _trace(p, e):
    """tr(c P Q) = c · sum(P ∘ Qᵀ): no product matrix is formed."""
    if isinstance(e.arg, sp.MatMul):
        coeff, mats = e.arg.as_coeff_matrices()
        if len(mats) == 2:
            P, Q = mats
            pairs = [sp.HadamardProduct(P, T(Q)), sp.HadamardProduct(T(P), Q)]
            had = min(pairs, key=transposes)
            return _scaled(p, coeff, Code(f"{wrap(p(had), ATOM)}.sum()"))
    return p.call("np.trace", p(e.arg))


def _sized(fn):
    return lambda p, e: Code(f"{fn}(({_shape(p, e)}))")


def _one_arg(fn):
    return lambda p, e: p.call(fn, p(e.args[0]))


MATRIX_RULES = {
    sp.MatrixSymbol: symbol,
    sp.MatMul: _matmul,
    sp.MatAdd: _matadd,
    sp.Transpose: _transpose,
    sp.HadamardProduct: _hadamard,
    sp.HadamardPower: _hadamard_power,
    sp.MatPow: lambda p, e: p.call("np.linalg.matrix_power", p(e.base), p.size(e.exp)),
    sp.Inverse: _one_arg("np.linalg.inv"),
    sp.Trace: _trace,
    sp.Determinant: _one_arg("np.linalg.det"),
    MatrixElement: _element,
    sp.OneMatrix: _sized("np.ones"),
    sp.ZeroMatrix: _sized("np.zeros"),
    sp.Identity: lambda p, e: p.call("np.eye", p.size(e.rows)),
    sp.MatrixSlice: _slice,
    sp.BlockMatrix: _block,
    sp.ImmutableDenseMatrix: _explicit,
    sp.Sum: _summation,
    ElementwiseApplyFunction: _elementwise,
    Softmax: _softmax,
    LogSoftmax: lambda p, e: p.helper("log_softmax", p(e.arg), Code(f"axis={e.axis}")),
}


# max along an axis (symbolic/functions.py AxisMax)
from tracegrad.symbolic.functions import AxisMax  # noqa: E402  (a self-contained block)

MATRIX_RULES[AxisMax] = lambda p, e: Code(f"{wrap(p(e.arg), ATOM)}.max(axis={e.axis}, keepdims=True)")
