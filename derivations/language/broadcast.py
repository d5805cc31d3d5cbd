"""NumPy semantics made explicit in SymPy: broadcasting, element-wise arithmetic, reductions.

Values are scalar SymPy expressions, matrix expressions or 1-D ``Vector``s (values.py).
``where`` is the formula fragment named in errors.  Shape problems raise ShapeError; other
refusals raise ValueError, which the formula parser turns into a positioned FormulaError.
"""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.symbolic.algebra import T, matrix_product, matrix_sum, submatrix
from tracegrad.symbolic.errors import ShapeError
from tracegrad.symbolic.functions import ELEMENT as _X, AxisMax, elementwise, relu, softmax, step
from tracegrad.symbolic.shapes import is_matrix, same_dim

from tracegrad.language.values import Condition, Vector, describe, one_d_if, row_of

_UNDEFINED = (sp.zoo, sp.nan, sp.oo, -sp.oo)
_MAX_POWER_BITS = 100_000
MAX_STACK_DEPTH = 8


def _mismatch(a, b, where, verb, what):
    return ShapeError(f"shapes {describe(a)} and {describe(b)} do not {verb} in '{where}' ({what})")


def _need_matrix(value, where, what):
    if not is_matrix(row_of(value)):
        raise ShapeError(f"{what} needs a matrix, got a scalar in '{where}'")


def _need_2d(value, where, what):
    _need_matrix(value, where, what)
    if isinstance(value, Vector):
        raise ShapeError(f"{what} needs a 2-D matrix, got a 1-D vector {describe(value)} in '{where}'")


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
    """a op b for op in + - * / with numpy broadcasting (a 1-D vector broadcasts as a row)."""
    if isinstance(a, Vector) or isinstance(b, Vector):
        if isinstance(a, Vector) and isinstance(b, Vector) and not same_dim(a.length, b.length) \
                and 1 not in (a.length, b.length):
            raise _mismatch(a, b, where, "broadcast", f"element-wise {op}")
        return one_d_if(binary(op, row_of(a), row_of(b), where), a, b)
    what = f"element-wise {op}"
    if op == "/" and (isinstance(b, sp.ZeroMatrix) or (not is_matrix(b) and b == 0)):
        raise ValueError("division by zero")
    if not is_matrix(a) and not is_matrix(b):
        return _finite({"+": sp.Add, "-": lambda x, y: x - y, "*": sp.Mul,
                        "/": lambda x, y: x / y}[op](a, b))
    shape = broadcast_shape(a, b, where, what)
    if op == "/" and is_matrix(b) and tuple(shape) == (1, 1):
        # a 1×1 reciprocal would become SymPy's MatPow (matrix inverse): divide by the entry
        return scale(1 / MatrixElement(b, 0, 0), a) if is_matrix(a) else \
            scale(a / MatrixElement(b, 0, 0), sp.OneMatrix(1, 1))
    if op == "*" and not (is_matrix(a) and is_matrix(b)):
        return scale(a, b) if is_matrix(b) else scale(b, a)
    if op == "/":
        if not is_matrix(b):
            return scale(1 / b, a)
        b, op = sp.HadamardPower(expand_to(b, *shape), -1), "*"
        if not is_matrix(a):
            return scale(a, expand_to(b, *shape))
    a, b = expand_to(a, *shape), expand_to(b, *shape)
    if op == "*":
        return _matrix(sp.hadamard_product(a, b), shape)
    if op == "-":
        b = scale(-1, b)
    return matrix_sum([a, b])


def negate(a):
    return binary("*", sp.Integer(-1), a, "-") if is_matrix(row_of(a)) else -a


def power(a, b, where):
    """a ** b element-wise; the exponent must be a scalar."""
    if is_matrix(row_of(b)):
        raise ShapeError(f"the exponent must be a scalar, got shape {describe(b)} in '{where}'")
    if isinstance(a, Vector):
        return Vector(power(a.row, b, where))
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
    """a @ b; a 1-D vector is a row on the left, a column on the right, and v @ w is their dot
    product (a 1×1 value)."""
    if isinstance(a, Vector) and isinstance(b, Vector):
        if not same_dim(a.length, b.length):
            raise _mismatch(a, b, where, "compose", "dot product of 1-D vectors")
        return matrix_product([a.row, T(b.row)])
    if isinstance(b, Vector):
        if not is_matrix(a) or not same_dim(a.cols, b.length):
            raise _mismatch(a, b, where, "compose", "matrix product")
        return Vector(T(matrix_product([a, T(b.row)])))
    left = a.row if isinstance(a, Vector) else a
    if not (is_matrix(left) and is_matrix(b)) or not same_dim(left.cols, b.rows):
        raise _mismatch(a, b, where, "compose", "matrix product")
    return one_d_if(matrix_product([left, b]), a)


def dot(a, b, where):
    """np.dot: a matrix product, or a product with a scalar."""
    if is_matrix(row_of(a)) and is_matrix(row_of(b)):
        return matmul(a, b, where)
    return binary("*", a, b, where)


def outer(a, b, where):
    """np.outer(u, v)[i, j] = u_i v_j, for vectors of any orientation."""
    u, v = (row_of(x) for x in (a, b))
    for x in (u, v):
        if not is_matrix(x) or 1 not in x.shape:
            raise ShapeError(f"outer needs vectors, got {describe(x)} in '{where}'")
    column = u if u.cols == 1 else T(u)
    row = v if v.rows == 1 else T(v)
    return matrix_product([column, row])


def transpose(a):
    return a.T if is_matrix(a) else a


def apply(function, a):
    """An element-wise function: its canonical element-wise node, or f(scalar)."""
    if isinstance(a, Vector):
        return Vector(apply(function, a.row))
    if is_matrix(a):
        return elementwise(function, a)
    # relu and step test x > 0 on numbers; SymPy cannot always decide it (log 2 + log 3 − log 6).
    if isinstance(function, sp.FunctionClass) and a.is_number and a.is_extended_positive is None:
        return function(a, evaluate=False)
    return _finite(function(a))


def _reduction_axis(a, axis, where, what):
    if isinstance(a, Vector) and axis not in (None, 0):
        raise ValueError(f"{what} of a 1-D vector has only axis 0")
    if not is_matrix(row_of(a)) and axis is not None:
        raise ShapeError(f"{what} over an axis needs a matrix, got a scalar in '{where}'")


def total(a, axis, keepdims, where):
    """numpy sum: all → 1×1; axis 0 → 1×c; axis 1 → r×1 with keepdims, else 1-D."""
    _reduction_axis(a, axis, where, "sum")
    if isinstance(a, Vector):
        entries = total(a.row, None, True, where)
        return Vector(entries) if keepdims else entries
    if not is_matrix(a):
        return a
    rows, cols = a.shape
    if axis in (None, 0) and rows != 1:
        a = matrix_product([sp.OneMatrix(1, rows), a])
    if axis in (None, 1) and cols != 1:
        a = matrix_product([a, sp.OneMatrix(cols, 1)])
    return one_dimensional(a, axis) if axis is not None and not keepdims else a


def one_dimensional(kept, axis):
    """A reduction along ``axis`` kept 2-D, as the 1-D vector numpy returns without keepdims."""
    return Vector(kept if axis == 0 else T(kept))


def count(a, axis):
    """How many entries a reduction along ``axis`` (None: all) combines."""
    a = row_of(a)
    if not is_matrix(a):
        return sp.Integer(1)
    return {None: sp.Mul(*a.shape), 0: a.shape[0], 1: a.shape[1]}[axis]


def mean(a, axis, keepdims, where):
    return binary("/", total(a, axis, keepdims, where), count(a, axis), where)


def var(a, axis, keepdims, ddof, where):
    """numpy var: mean of squared deviations from the mean, divided by (count − ddof)."""
    centred = binary("-", a, mean(a, axis, True, where), where)
    n = count(a, axis) - ddof
    if n.is_number and n <= 0:
        raise ValueError(f"variance with ddof={ddof} of {count(a, axis)} entries")
    return binary("/", total(power(centred, sp.Integer(2), where), axis, keepdims, where), n, where)


def largest(a, axis, keepdims, where):
    """numpy max: along axis 0 (1×c), 1 (r×1) or all entries (1×1); without keepdims, 1-D."""
    _reduction_axis(a, axis, where, "max")
    if isinstance(a, Vector):
        entries = AxisMax(a.row, 1)
        return Vector(entries) if keepdims else entries
    if not is_matrix(a):
        return a
    if axis is None:
        return AxisMax(AxisMax(a, 1), 0)
    kept = AxisMax(a, axis)
    return kept if keepdims else one_dimensional(kept, axis)


def maximum(a, b, where):
    """Entry-wise maximum: relu(A) against 0, else b + relu(a − b)."""
    if not is_matrix(row_of(a)) and a == 0:
        a, b = b, a
    if not is_matrix(row_of(b)) and b == 0:
        return apply(relu, a)
    return binary("+", b, apply(relu, binary("-", a, b, where)), where)


def minimum(a, b, where):
    """Entry-wise minimum: a − relu(a − b)."""
    return binary("-", a, apply(relu, binary("-", a, b, where)), where)


def clip(a, lo, hi, where):
    """np.clip(a, lo, hi) = lo + relu(a − lo) − relu(a − hi) (lo ≤ hi; either may be None)."""
    if lo is None and hi is None:
        raise ValueError("clip needs a lower or an upper bound")
    if lo is None:
        return minimum(a, hi, where)
    if hi is None:
        return maximum(a, lo, where)
    if not is_matrix(row_of(lo)) and not is_matrix(row_of(hi)) and (lo - hi).is_positive:
        raise ValueError("clip's lower bound is above its upper bound")
    return binary("-", maximum(a, lo, where), apply(relu, binary("-", a, hi, where)), where)


def square(kind, a, where):
    """trace, inv, det, logdet of a square matrix."""
    _need_2d(a, where, kind)
    if not same_dim(a.rows, a.cols):
        raise ShapeError(f"{kind} needs a square matrix, got shape {describe(a)} in '{where}'")
    if kind == "trace":
        return sp.Trace(a)
    if kind == "inv":
        return sp.Inverse(a)
    det = sp.Determinant(a)
    return sp.log(det) if kind == "logdet" else det


def stack(blocks, axis, where):
    """vstack (axis 0) or hstack (axis 1) as a BlockMatrix; hstack of 1-D vectors is 1-D, vstack
    makes each a row."""
    what = "vstack" if axis == 0 else "hstack"
    if not blocks:
        raise ValueError(f"{what} needs at least one matrix")
    for block in blocks:
        _need_matrix(block, where, what)
    vectors = [isinstance(b, Vector) for b in blocks]
    if axis == 1 and any(vectors):
        if not all(vectors):
            raise ShapeError(f"hstack of 1-D and 2-D arrays in '{where}'")
        return Vector(stack([b.row for b in blocks], 1, where))
    blocks = [part for block in blocks for part in _stack_parts(row_of(block), axis)]
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


def concatenate(blocks, axis, where):
    """np.concatenate / torch.cat: 1-D vectors end to end, 2-D matrices along ``axis``."""
    if blocks and all(isinstance(b, Vector) for b in blocks):
        if axis not in (None, 0):
            raise ValueError("1-D vectors are concatenated along axis 0")
        return stack(blocks, 1, where)
    if any(isinstance(b, Vector) for b in blocks):
        raise ShapeError(f"concatenate of 1-D and 2-D arrays in '{where}'")
    return stack(blocks, 0 if axis is None else axis, where)


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
    if isinstance(a, Vector):
        if axis not in (0, None):
            raise ValueError("softmax of a 1-D vector has only axis 0")
        return Vector(softmax(a.row, 1))
    return softmax(a, axis)


# comparisons as 0/1 matrices: each of a op b is a step function of d = a − b (a < b is b > a)
_COMPARISONS = {">": step(_X), ">=": 1 - step(-_X), "==": 1 - step(_X) - step(-_X),
                "!=": step(_X) + step(-_X)}


def compare(op, a, b, where):
    """a op b entry by entry as a Condition whose value is 0/1 (a step function of a − b)."""
    if op in ("<", "<="):
        a, b, op = b, a, op.replace("<", ">")
    diff = a if not is_matrix(row_of(b)) and b == 0 else binary("-", a, b, where)
    return Condition(apply(sp.Lambda(_X, _COMPARISONS[op]), diff))


def negation(c):
    """~c: 1 − c, folded into the step function of a comparison."""
    value = c.value
    inner = row_of(value)
    if isinstance(inner, ElementwiseApplyFunction):
        body = 1 - inner.function.expr
        flipped = elementwise(sp.Lambda(inner.function.variables[0], body), inner.expr)
        return Condition(Vector(flipped) if isinstance(value, Vector) else flipped)
    if not is_matrix(inner):
        return Condition(1 - value)
    return Condition(binary("-", sp.Integer(1), value, "~"))


def conjunction(a, b, where):
    return Condition(binary("*", a.value, b.value, where))


def disjunction(a, b, where):
    both = binary("*", a.value, b.value, where)
    return Condition(binary("-", binary("+", a.value, b.value, where), both, where))


def select(c, a, b, where):
    """np.where(c, a, b) = c ∘ a + (1 − c) ∘ b, broadcast."""
    chosen = binary("*", c.value, a, where)
    other = binary("*", negation(c).value, b, where)
    return binary("+", chosen, other, where)


def slice_(a, rows, cols, where):
    """A[r0:r1, c0:c1] with numpy bounds (None, negatives from the end) over symbolic dims."""
    _need_2d(a, where, "slicing")
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
    _need_2d(a, where, "indexing")
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
    return ShapeError(f"index out of range or empty slice for shape {describe(a)} in '{where}'")


def _shape(a):
    # Explicit matrices report Python ints.
    return tuple(sp.Integer(d) if isinstance(d, int) else d for d in a.shape)


def _bound(value, dim, default, a, where):
    if value is None:
        return default
    # Out-of-range symbolic indices into a fixed size would only fail later, inside SymPy.
    if dim.is_number and not value.is_number:
        raise ShapeError(f"a fixed size is indexed by '{value}' for shape {describe(a)} "
                         f"in '{where}'")
    if value.is_number and value < 0:
        return sp.expand(dim + value)
    return value
