"""What names are bound to while a code file is read: numpy's object model, made explicit.

``a = b`` binds a second name to the same ``Array``; ``+=`` and item assignment change the
Array for every name bound to it; ``.copy()`` (any expression) makes a new one (DESIGN §4b).
"""
from dataclasses import dataclass, field

import sympy as sp

from tracegrad.symbolic.shapes import is_matrix

from tracegrad.language.values import Vector, row_of


class Array:
    """A mutable numpy array: its current value (a matrix, a Vector or a scalar expression)."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"Array({self.value!r})"


@dataclass
class Container:
    """A dict or list of arrays (``hs = {}``, ``grads = {}``, ``cache = (x, w)``): items by key."""
    items: dict = field(default_factory=dict)
    kind: str = "dict"                # dict | list | tuple

    def ordered(self):
        return [self.items[k] for k in sorted(self.items)] if self.kind != "dict" else list(self.items.values())


@dataclass(frozen=True)
class Stack:
    """A 3-D array (C[Xb]: examples × positions × features) as its 2-D slices along axis 1."""
    blocks: tuple

    @property
    def shape(self):
        rows, cols = self.blocks[0].shape
        return (rows, sp.Integer(len(self.blocks)), cols)


@dataclass(frozen=True)
class LabelGrid:
    """Integer labels with a fixed number of positions per example (``"N, B"``) or a sequence of
    single labels (``"T"``): one LabelSymbol per position."""
    positions: tuple
    per_example: bool                 # N × B (one label per example and position) or T single labels

    @property
    def shape(self):
        if self.per_example:
            return (self.positions[0].rows, sp.Integer(len(self.positions)))
        return (sp.Integer(len(self.positions)),)


@dataclass(frozen=True)
class Flat:
    """``Xb.view(-1)`` or ``demb.view(-1, d)``: the positions of a LabelGrid or a Stack laid end
    to end, in the same (row-major) order; only ``index_add_`` takes them."""
    parts: tuple


@dataclass(frozen=True)
class Function:
    """A helper function of the file, inlined where it is called."""
    node: object


def is_array_value(value):
    """A value that lives in an Array: a matrix, a 1-D vector, or a scalar expression."""
    inner = row_of(value)
    return is_matrix(inner) or (isinstance(inner, sp.Expr) and not isinstance(value, (Stack, LabelGrid)))


def same_shape_kind(value):
    """(shape, is 1-D) of an array value, for += and item assignment checks."""
    inner = row_of(value)
    return (tuple(inner.shape) if is_matrix(inner) else None), isinstance(value, Vector)
