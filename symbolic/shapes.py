"""Shape analysis with symbolic dimensions: ours, because SymPy's is not enough.

SymPy compares shapes structurally and rewrites ``A*A`` as ``A**2`` even for a non-square
``A``; here every node's shape is recomputed and checked, and an error names the node.
"""
import functools

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .errors import ShapeError
from .functions import Softmax


def same_dim(a, b):
    """True when two dimension expressions are provably equal."""
    return a == b or sp.expand(sp.sympify(a) - sp.sympify(b)) == 0


def same_shape(s, t):
    return s is not None and t is not None and all(same_dim(a, b) for a, b in zip(s, t))


def fmt(shape):
    return "scalar" if shape is None else f"({shape[0]}, {shape[1]})"


def is_matrix(expr):
    return isinstance(expr, sp.MatrixExpr)


def _require(ok, node, what, s, t):
    if not ok:
        raise ShapeError(f"shapes {fmt(s)} and {fmt(t)} do not match in {what} '{node}'")


@functools.lru_cache(maxsize=1 << 16)
def shape_of(node):
    """(rows, cols) of a matrix node after checking how its operands compose; None for a scalar."""
    return _check(node) if is_matrix(node) else None


def _check(node):
    if isinstance(node, sp.MatMul):
        mats = [a for a in node.args if is_matrix(a)]
        rows, cols = shape_of(mats[0])
        for a in mats[1:]:
            r, c = shape_of(a)
            _require(same_dim(cols, r), node, "matrix product", (rows, cols), (r, c))
            cols = c
        return (rows, cols)
    if isinstance(node, (sp.MatAdd, sp.HadamardProduct)):
        what = "sum" if isinstance(node, sp.MatAdd) else "Hadamard product"
        mats = [a for a in node.args if is_matrix(a)]
        first = shape_of(mats[0])
        for a in mats[1:]:
            _require(same_shape(first, shape_of(a)), node, what, first, shape_of(a))
        return first
    if isinstance(node, sp.Transpose):
        r, c = shape_of(node.arg)
        return (c, r)
    if isinstance(node, (sp.Inverse, sp.MatPow)):
        s = shape_of(node.args[0])
        _require(same_dim(*s), node, "square-matrix operation", s, s[::-1])
        return s
    if isinstance(node, (sp.HadamardPower, ElementwiseApplyFunction, Softmax)):
        return shape_of(node.args[0] if not isinstance(node, ElementwiseApplyFunction) else node.expr)
    if isinstance(node, sp.BlockMatrix):
        blocks = node.blocks
        for i in range(blocks.rows):
            for j in range(blocks.cols):
                r, c = shape_of(blocks[i, j])
                _require(same_dim(r, shape_of(blocks[i, 0])[0]), node, "block row", (r, c), shape_of(blocks[i, 0]))
                _require(same_dim(c, shape_of(blocks[0, j])[1]), node, "block column", (r, c), shape_of(blocks[0, j]))
        return tuple(node.shape)
    return tuple(node.shape)


def matrix_numbers(expr, sizes):
    """(total, largest node, its count): how many numbers the distinct matrix values of ``expr``
    hold at ``sizes`` ({dimension: int}) — what evaluating it would allocate."""
    total, largest, seen, stack = 0, (0, None), set(), [expr]
    while stack:
        node = stack.pop()
        if not isinstance(node, sp.Basic) or node in seen:
            continue
        seen.add(node)
        stack.extend(node.args)
        if is_matrix(node):
            rows, cols = shape_of(node)
            count = int(sp.sympify(rows * cols).xreplace(sizes))
            total += count
            largest = max(largest, (count, node), key=lambda t: t[0])
    return total, largest[1], largest[0]
