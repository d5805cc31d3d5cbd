"""Integer labels as one-hot algebra (DESIGN §4b): ``DATA = {"y": "labels of K"}`` declares a
vector of class indices, held as its one-hot matrix Y (a row per label), and indexing by it is
a product with Y — no new engine operation, and every derivative follows from the rules."""
import sympy as sp

from tracegrad.symbolic.algebra import T, hadamard, matmul, submatrix
from tracegrad.symbolic.shapes import is_matrix, same_dim

from tracegrad.language.values import LabelSymbol, Vector, describe


class SingleLabel(LabelSymbol):
    """One class index (``"label of K"``): its one-hot row, 1 × K."""


def index_by_labels(target, items):
    """``target[...]`` for ``items`` [(kind, value)] with kind "range" (range(N): every row in
    order), "labels" (a LabelSymbol) or "number" (an integer index):

        P[range(N), y] = ((P ∘ Y) 1)ᵀ      (1-D: the labelled entry of each row)
        C[y]           = Y C               (the labelled rows)
        v[y]           = (Y vᵀ)ᵀ           (1-D: the labelled entries of a 1-D vector)
        p[k], c[k, 0]  = k p, (k c)[0, 0]   for a single label k (its one-hot row)
    """
    kinds = [kind for kind, _ in items]
    labels = next(value for kind, value in items if kind == "labels")
    single = isinstance(labels, SingleLabel)
    if kinds == ["range", "labels"] and not single:
        n = items[0][1]
        if not (is_matrix(target) and same_dim(n, labels.rows) and
                all(same_dim(a, b) for a, b in zip(target.shape, labels.shape))):
            raise ValueError(f"P[range(n), y] needs P of shape {describe(labels)} (a row per label, "
                             f"a column per class) and n = {labels.rows}, got P {describe(target)}, n = {n}")
        return Vector(T(matmul(hadamard(target, labels), sp.OneMatrix(labels.cols, 1))))
    if kinds == ["labels"]:
        if isinstance(target, Vector):
            _classes(target.length, labels)
            picked = matmul(labels, T(target.row))
            return picked if single else Vector(T(picked))
        if is_matrix(target):
            _classes(target.rows, labels)
            picked = matmul(labels, target)
            return Vector(picked) if single else picked
    if kinds == ["labels", "number"] and single and is_matrix(target):
        _classes(target.rows, labels)
        column = items[1][1]
        if not column.is_Integer or column < 0 or (target.cols.is_number and column >= target.cols):
            raise ValueError(f"column {column} out of range")
        return submatrix(matmul(labels, target), (0, 1), (column, column + 1))   # 1×1, not an entry
    raise ValueError("integer labels index as P[range(N), y], C[y], v[y] or (one label) c[k, 0]")


def _classes(size, labels):
    if not same_dim(size, labels.cols):
        raise ValueError(f"labels of {labels.cols} classes index an axis of length {size}")
