"""What a formula or a line of code can evaluate to, besides a SymPy scalar or matrix.

numpy has 1-D arrays, boolean masks, shapes and (in PyTorch) (values, indices) pairs; SymPy has
none of these.  Each is a small wrapper around the SymPy value it stands for, so the numpy
semantics of an operation can look at what its operands are (DESIGN §4, §4b).
"""
from dataclasses import dataclass

import sympy as sp

from tracegrad.symbolic.shapes import is_matrix


class VectorSymbol(sp.MatrixSymbol):
    """A declared 1-D input or parameter (a shape with one entry, ``"H"``): to the engine a
    1 × n MatrixSymbol, to the formula language a Vector."""

    def _numpystr(self, printer):
        # the engine's 1 × n row, spelt so that pasting it back means the row, not the 1-D array
        return printer.emit(self, f"{printer.name(self.name)}[None, :]", "postfix")


class LabelSymbol(sp.MatrixSymbol):
    """Integer class labels (``DATA = {"y": "labels of K"}``) as the one-hot matrix they index
    with: one row per label, one column per class (numpy's ``P[range(N), y]`` is one-hot algebra)."""

    def _numpystr(self, printer):
        # the one-hot matrix the engine holds, not the integer labels the name stands for
        return printer.emit(self, f"one_hot({printer.name(self.name)}, {printer._print(self.shape[1])})", "atom")


@dataclass(frozen=True)
class Vector:
    """A numpy 1-D array of length n, held as the 1 × n row it broadcasts as: it acts as a row on
    the left of ``@`` and as a column on the right, and ``.T`` leaves it as it is."""
    row: sp.Basic

    @property
    def length(self):
        return self.row.shape[1]


@dataclass(frozen=True)
class Condition:
    """A boolean array (a comparison): in arithmetic it is its 0/1 value; it is also what a mask,
    ``where`` and ``~ & |`` take."""
    value: object


@dataclass(frozen=True)
class Shape:
    """``X.shape``: a tuple of dimension expressions."""
    dims: tuple


@dataclass(frozen=True)
class ArgMax:
    """The positions of the maxima of ``matrix`` along ``axis`` (``A.max(1).indices``,
    ``np.argmax``): integers, usable as one-hot rows (``F.one_hot``) only."""
    matrix: sp.Basic
    axis: int


@dataclass(frozen=True)
class MaxPair:
    """PyTorch's ``A.max(dim)``: ``.values`` (also what it means in arithmetic, as numpy's
    ``A.max(axis)``) and ``.indices``."""
    values: object
    indices: ArgMax


@dataclass(frozen=True)
class OneHot:
    """``one_hot(y, K)`` of integer labels: the one-hot matrix the label symbol stands for, now
    a value to compute with (the bare labels are not)."""
    labels: sp.Basic


def value_of(x):
    """The arithmetic value of ``x``: a condition is its 0/1 matrix, a max pair its values, a
    one-hot encoding its matrix."""
    if isinstance(x, OneHot):
        return x.labels
    if isinstance(x, Condition):
        return value_of(x.value)
    if isinstance(x, MaxPair):
        return x.values
    return x


def row_of(x):
    """A Vector as its row; anything else as it is."""
    return x.row if isinstance(x, Vector) else x


def one_d_if(result, *operands):
    """``result`` as 1-D when a Vector took part and no 2-D matrix did (numpy's rank rule)."""
    if any(isinstance(a, Vector) for a in operands) and not any(is_matrix(a) for a in operands):
        return Vector(result) if is_matrix(result) else result
    return result


def describe(x):
    """What ``x`` is, for an error message."""
    if isinstance(x, Vector):
        return f"({x.length},)"
    if isinstance(x, (Shape, ArgMax, MaxPair)):
        return {Shape: "a shape", ArgMax: "argmax indices", MaxPair: "a (values, indices) pair"}[type(x)]
    if is_matrix(x):
        return f"({x.shape[0]}, {x.shape[1]})"
    if isinstance(x, sp.Basic):
        return "scalar"
    return {"Container": "a tuple, list or dict", "Stack": "a 3-D array", "LabelGrid": "integer labels",
            "Flat": "a flattened array", "Function": "a function"}.get(type(x).__name__, type(x).__name__)
