"""NumPy semantics made explicit in SymPy: broadcasting, element-wise arithmetic, reductions.

Values are scalar SymPy expressions or matrix expressions.  ``where`` is the formula fragment
named in errors.  Shape problems raise ShapeError; other refusals raise ValueError, which the
formula parser turns into a positioned FormulaError.
"""
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.symbolic.algebra import matrix_product, matrix_sum, submatrix
from tracegrad.symbolic.errors import ShapeError
from tracegrad.symbolic.functions import elementwise, relu, softmax, step
from tracegrad.symbolic.shapes import fmt, is_matrix, same_dim

_UNDEFINED = (sp.zoo, sp.nan, sp.oo, -sp.oo)
_MAX_POWER_BITS = 100_000
MAX_STACK_DEPTH = 8


def shape_text(value):
    return fmt(value.shape if is_matrix(value) else None)


def _mismatch(a, b, where, verb, what):
    return ShapeError(f"shapes {shape_text(a)} and {shape_text(b)} do not {verb} "
                      f"in '{where}' ({what})")


def _need_matrix(value, where, what):
    if not is_matrix(value):
        raise ShapeError(f"{what} needs a matrix, got a scalar in '{where}'")


def _finite(value):
    if value in _UNDEFINED:
        raise ValueError("undefined value (division by zero or log of 0)")
    return value


def _matrix(value, shape):
    # SymPy folds A - A and 0*A to a zero that may lose its matrix type.
    if not is_matrix(value) and value == 0:
        return sp.ZeroMatrix(*shape)
    return value


def scale(s, m):
    """Scalar times matrix, simplified at the top only (a deep doit would evaluate operands)."""
    return matrix_product([s, m])


def expand_to(value, rows, cols):
    """Broadcast a scalar, 1×1, row or column to rows × cols with explicit ones matrices."""
    if not is_matrix(value):
        return sp.ZeroMatrix(rows, cols) if value == 0 else scale(value, sp.OneMatrix(rows, cols))
    if value.rows == 1 and rows != 1:
        value = matrix_product([sp.OneMatrix(rows, 1), value])
    if value.cols == 1 and cols != 1:
        value = matrix_product([value, sp.OneMatrix(1, cols)])
    return value


def broadcast_shape(a, b, where, what):
    if not is_matrix(a):
        return b.shape
    if not is_matrix(b):
        return a.shape
    shape = []
    for x, y in zip(a.shape, b.shape):
        if same_dim(x, y) or y == 1:
            shape.append(x)
        elif x == 1:
            shape.append(y)
        else:
            raise _mismatch(a, b, where, "broadcast", what)
    return tuple(shape)


def binary(op, a, b, where):
    """a op b for op in + - * / with numpy broadcasting."""
    what = f"element-wise {op}"
    if op == "/" and (isinstance(b, sp.ZeroMatrix) or (not is_matrix(b) and b == 0)):
        raise ValueError("division by zero")
    if not is_matrix(a) and not is_matrix(b):
        return _finite({"+": sp.Add, "-": lambda x, y: x - y, "*": sp.Mul,
                        "/": lambda x, y: x / y}[op](a, b))
    shape = broadcast_shape(a, b, where, what)
    if op == "*" and not (is_matrix(a) and is_matrix(b)):
        return scale(a, b) if is_matrix(b) else scale(b, a)
    if op == "/":
        if not is_matrix(b):
            return scale(1 / b, a)
        b, op = sp.HadamardPower(b, -1), "*"
        if not is_matrix(a):
            return scale(a, expand_to(b, *shape))
    a, b = expand_to(a, *shape), expand_to(b, *shape)
    if op == "*":
        return _matrix(sp.hadamard_product(a, b), shape)
    if op == "-":
        b = scale(-1, b)
    return matrix_sum([a, b])


def negate(a):
    return scale(-1, a) if is_matrix(a) else -a


def power(a, b, where):
    """a ** b element-wise; the exponent must be a scalar."""
    if is_matrix(b):
        raise ShapeError(f"the exponent must be a scalar, got shape {shape_text(b)} in '{where}'")
    if (isinstance(a, sp.ZeroMatrix) or a == 0) and b.is_number and b.is_extended_negative:
        raise ValueError("division by zero")
    if is_matrix(a):
        return a if b == 1 else sp.HadamardPower(a, b)
    # Only rational exponents of numbers make SymPy compute big integers.
    if a.is_number and b.is_Rational and a not in (0, 1, -1):
        bits = max(abs(a.p).bit_length(), a.q.bit_length()) if a.is_Rational else 64
        if abs(b) > 10_000 or bits * abs(b) > _MAX_POWER_BITS:
            raise ValueError("number too large")
    return _finite(sp.Pow(a, b))


def matmul(a, b, where):
    if not (is_matrix(a) and is_matrix(b)) or not same_dim(a.cols, b.rows):
        raise _mismatch(a, b, where, "compose", "matrix product")
    return matrix_product([a, b])


def transpose(a):
    return a.T if is_matrix(a) else a


def apply(function, a):
    """An element-wise function: its canonical element-wise node, or f(scalar)."""
    if is_matrix(a):
        return elementwise(function, a)
    # relu and step test x > 0 on numbers; SymPy cannot always decide it (log 2 + log 3 − log 6).
    if isinstance(function, sp.FunctionClass) and a.is_number and a.is_extended_positive is None:
        return function(a, evaluate=False)
    return _finite(function(a))


def total(a, axis, keepdims, where):
    """numpy sum: all → 1×1; axis 0 → 1×c; axis 1 → r×1 with keepdims, else a 1×r row."""
    if not is_matrix(a):
        if axis is not None:
            raise ShapeError(f"sum over an axis needs a matrix, got a scalar in '{where}'")
        return a
    rows, cols = a.shape
    if axis in (None, 0) and rows != 1:
        a = matrix_product([sp.OneMatrix(1, rows), a])
    if axis in (None, 1) and cols != 1:
        a = matrix_product([a, sp.OneMatrix(cols, 1)])
    # numpy returns a 1-D vector here, and 1-D vectors broadcast as rows.
    return a.T if axis == 1 and not keepdims else a


def mean(a, axis, keepdims, where):
    count = {None: sp.Mul(*a.shape), 0: a.shape[0], 1: a.shape[1]}[axis] if is_matrix(a) else 1
    return binary("/", total(a, axis, keepdims, where), count, where)


def square(kind, a, where):
    """trace, inv, det, logdet of a square matrix."""
    _need_matrix(a, where, kind)
    if not same_dim(a.rows, a.cols):
        raise ShapeError(f"{kind} needs a square matrix, got shape {shape_text(a)} in '{where}'")
    if kind == "trace":
        return sp.Trace(a)
    if kind == "inv":
        return sp.Inverse(a)
    det = sp.Determinant(a)
    return sp.log(det) if kind == "logdet" else det


def stack(blocks, axis, where):
    """vstack (axis 0) or hstack (axis 1) as a BlockMatrix."""
    what = "vstack" if axis == 0 else "hstack"
    if not blocks:
        raise ValueError(f"{what} needs at least one matrix")
    for block in blocks:
        _need_matrix(block, where, what)
    blocks = [part for block in blocks for part in _stack_parts(block, axis)]
    first = blocks[0]
    for block in blocks[1:]:
        if not same_dim(first.shape[1 - axis], block.shape[1 - axis]):
            raise _mismatch(first, block, where, "stack", what)
    if len(blocks) == 1:
        return first
    # SymPy recomputes nested block shapes on every access: the cost doubles per level.
    if max(_stack_depth(b) for b in blocks) >= MAX_STACK_DEPTH:
        raise ValueError(f"vstack/hstack nest deeper than {MAX_STACK_DEPTH} levels")
    return sp.BlockMatrix([[b] for b in blocks] if axis == 0 else [list(blocks)])


def _stack_parts(block, axis):
    """A stack of stacks in the same direction is one stack."""
    if isinstance(block, sp.BlockMatrix) and block.blockshape[1 - axis] == 1:
        return list(block.blocks[:, 0] if axis == 0 else block.blocks[0, :])
    return [block]


def _stack_depth(block):
    if not isinstance(block, sp.BlockMatrix):
        return 0
    return 1 + max(_stack_depth(b) for b in block.blocks)


def soft(a, axis, where):
    _need_matrix(a, where, "softmax")
    return softmax(a, axis)


def maximum(a, b):
    """maximum(0, A) is relu(A); other maxima are refused."""
    if not is_matrix(a) and a == 0:
        a, b = b, a
    if is_matrix(b) or b != 0:
        raise ValueError("maximum is supported only against 0, as in maximum(0, A)")
    return apply(relu, a)


_T = sp.Symbol("t", real=True)
INDICATORS = {">": step, ">=": sp.Lambda(_T, sp.Heaviside(_T, 1)),
              "==": sp.Lambda(_T, sp.Heaviside(_T, 1) - step(_T)),
              "!=": sp.Lambda(_T, 1 - sp.Heaviside(_T, 1) + step(_T))}


def compare(op, a, b, where):
    """a > b, a ≥ b, a = b, a ≠ b as 0/1: 1[a − b > 0], 1[a − b ≥ 0], … — each comparison means
    itself (on binary, one-hot or integer data ties are the rule, not measure zero)."""
    if op in ("<", "<="):
        a, b, op = b, a, op.replace("<", ">")
    diff = a if not is_matrix(b) and b == 0 else binary("-", a, b, where)
    return apply(INDICATORS[op], diff)


def slice_(a, rows, cols, where):
    """A[r0:r1, c0:c1] with numpy bounds (None, negatives from the end) over symbolic dims."""
    _need_matrix(a, where, "slicing")
    spans = []
    for (lo, hi), dim in zip((rows, cols), _shape(a)):
        lo, hi = _bound(lo, dim, 0, a, where), _bound(hi, dim, dim, a, where)
        length = sp.expand(hi - lo)
        if length.is_number and length <= 0 or (dim.is_number and hi.is_number and hi > dim):
            raise _out_of_range(a, where)
        spans.append((lo, hi))
    try:
        return submatrix(a, *spans)
    except IndexError:
        raise _out_of_range(a, where) from None


def element(a, i, j, where):
    _need_matrix(a, where, "indexing")
    rows, cols = _shape(a)
    i, j = _bound(i, rows, 0, a, where), _bound(j, cols, 0, a, where)
    for k, dim in ((i, rows), (j, cols)):
        if k.is_number and (k < 0 or dim.is_number and k >= dim):
            raise _out_of_range(a, where)
    try:
        # Not a[i, j]: that computes the entry (a symbolic inverse, for inv(A)[0, 0]).
        return MatrixElement(a, i, j)
    except IndexError:
        raise _out_of_range(a, where) from None


def _out_of_range(a, where):
    return ShapeError(f"index out of range or empty slice for shape {shape_text(a)} in '{where}'")


def _shape(a):
    # Explicit matrices report Python ints.
    return tuple(sp.Integer(d) if isinstance(d, int) else d for d in a.shape)


def _bound(value, dim, default, a, where):
    if value is None:
        return default
    # Out-of-range symbolic indices into a fixed size would only fail later, inside SymPy.
    if dim.is_number and not value.is_number:
        raise ShapeError(f"a fixed size is indexed by '{value}' for shape {shape_text(a)} "
                         f"in '{where}'")
    if value.is_number and value < 0:
        return sp.expand(dim + value)
    return value
