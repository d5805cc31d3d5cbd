"""Two cheap comparisons the checker and the diagnoses share: a 1×1 matrix read as a scalar,
and symbolic identity (both sides expanded and normalised, or their difference zero)."""
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.symbolic.algebra import add, normal, scale
from tracegrad.symbolic.shapes import shape_of


def as_scalars(claim, truth):
    """A 1×1 matrix compared with a scalar is its one entry."""
    one = lambda e, other: MatrixElement(e, 0, 0) if shape_of(e) == (1, 1) and shape_of(other) is None else e
    return one(claim, truth), one(truth, claim)


def symbolically_equal(program, a, b):
    a, b = normal(program.expand(a)), normal(program.expand(b))
    if a == b:
        return True
    difference = normal(add(a, scale(-1, b)))
    return difference == 0 or isinstance(difference, sp.ZeroMatrix)
