"""The spellings of the formula language (DESIGN §4): tracegrad's functions, their numpy and
PyTorch names, and the method forms (``A.sum(axis=1, keepdims=True)``, ``A.t()``).

Each entry is (how arguments are read, handler(where, *args, **keywords)); the handler's
signature is the function's signature.  Argument modes: "values" (arithmetic values),
"grid" (a list of rows of blocks, as np.block takes), "raw" (conditions and max pairs as they are), "sizes" (dimension expressions), "blocks" (may
come as one tuple or list), "name" (grad/jac of an identifier).
"""
import sympy as sp

from tracegrad.language import broadcast as bc
from tracegrad.language.values import ArgMax, Condition, LabelSymbol, MaxPair, OneHot, Vector, describe, row_of, value_of
from tracegrad.symbolic.functions import ELEMENT as _X, AxisMax, relu, sigmoid, step
from tracegrad.symbolic.rules import at_max
from tracegrad.symbolic.shapes import is_matrix, same_dim

# keyword spellings -> the handlers' parameter names
KEYWORD_ALIASES = {"dim": "axis", "keepdim": "keepdims", "a_min": "lo", "min": "lo",
                   "a_max": "hi", "max": "hi"}
# how a keyword's value is read
KEYWORD_KINDS = {"axis": "axis", "keepdims": "bool", "ddof": "int", "unbiased": "bool",
                 "correction": "int", "num_classes": "size", "lo": "value", "hi": "value"}
TORCH_KEYWORDS = {"dim", "keepdim", "unbiased", "correction"}     # only PyTorch has these


def _axis(axis, allow_none=True):
    if axis is None and allow_none:
        return None
    if isinstance(axis, (int, sp.Integer)) and int(axis) in (0, 1, -1, -2):
        return int(axis) % 2
    raise ValueError("axis must be 0 or 1")


def _vector_axis(a, axis):
    """axis -1 of a 1-D vector is its only axis, 0."""
    if isinstance(a, Vector) and axis is not None and int(axis) == -1:
        return 0
    return _axis(axis)


def _elementwise(f):
    return lambda where, a: bc.apply(f, a)


def _binary(op):
    return lambda where, a, b: bc.binary(op, a, b, where)


def _square(kind):
    return lambda where, a: bc.square(kind, a, where)


def _ones_shape(r, c):
    return (r, c) if c is not None else (1, r)


def _filled(kind):
    """ones(r, c) / zeros(r, c); ones(n) is 1-D (a Vector)."""
    make = sp.OneMatrix if kind == "ones" else sp.ZeroMatrix

    def filled(where, r, c=None):
        value = make(*_ones_shape(r, c))
        return Vector(value) if c is None else value
    return filled


def _like(kind):
    """zeros_like(A) / ones_like(A): A's shape, 1-D if A is."""
    make = sp.OneMatrix if kind == "ones" else sp.ZeroMatrix

    def like(where, a):
        inner = row_of(a)
        if not is_matrix(inner):
            return sp.Integer(kind == "ones")
        value = make(*inner.shape)
        return Vector(value) if isinstance(a, Vector) else value
    return like


def _sum(where, a, axis=None, keepdims=False):
    return bc.total(a, _vector_axis(a, axis), keepdims, where)


def _mean(where, a, axis=None, keepdims=False):
    return bc.mean(a, _vector_axis(a, axis), keepdims, where)


def _spread(library):
    """var / std: numpy divides by n − ddof (default 0), PyTorch by n − correction (default 1,
    or unbiased=True); the method form without a deciding keyword follows the file's library."""
    def ddof_of(ddof, unbiased, correction, dialect):
        given = [k for k in (ddof, correction) if k is not None]
        if given:
            return given[0]
        if unbiased is not None:
            return int(unbiased)
        return 1 if (library or dialect) == "torch" else 0

    def var(where, a, axis=None, keepdims=False, ddof=None, unbiased=None, correction=None,
            dialect=None):
        return bc.var(a, _vector_axis(a, axis), keepdims, ddof_of(ddof, unbiased, correction, dialect), where)

    def std(where, a, axis=None, keepdims=False, ddof=None, unbiased=None, correction=None,
            dialect=None):
        return bc.apply(sp.sqrt, var(where, a, axis, keepdims, ddof, unbiased, correction, dialect))
    return var, std


def _max(where, a, axis=None, keepdims=False):
    """numpy's max(A, axis); PyTorch's A.max(dim) is a (values, indices) pair."""
    if is_matrix(row_of(axis)):              # torch.max(A, B): the entry-wise maximum
        return bc.maximum(a, axis, where)
    axis = _vector_axis(a, axis)
    values = bc.largest(a, axis, keepdims, where)
    if axis is None or isinstance(a, Vector):
        return values
    return MaxPair(values, ArgMax(a, axis))


def _argmax(where, a, axis=None):
    if axis is None or isinstance(a, Vector) or not is_matrix(a):
        raise ValueError("argmax is supported along an axis of a 2-D matrix (for one_hot)")
    return ArgMax(a, _axis(axis))


def _one_hot(where, labels, num_classes=None):
    """F.one_hot(A.max(1).indices, num_classes=K): 1[A = max] (first-maximum ties aside);
    F.one_hot(y, K) of integer labels: their one-hot rows."""
    if isinstance(labels, ArgMax):
        mask = at_max(AxisMax(labels.matrix, labels.axis))
        size = labels.matrix.shape[labels.axis]
        onehot = mask if labels.axis == 1 else mask.T
    elif isinstance(labels, LabelSymbol):
        onehot, size = OneHot(labels), labels.shape[1]
    else:
        raise ValueError("one_hot takes integer labels or argmax indices")
    if num_classes is not None and not same_dim(num_classes, size):
        raise ValueError(f"one_hot with num_classes={num_classes} of labels with {size} classes")
    return onehot


def _transpose(where, a, *axes):
    if axes and sorted(int(x) % 2 for x in axes) != [0, 1]:
        raise ValueError("transpose of a 2-D matrix swaps axes 0 and 1")
    return bc.transpose(a)


def _copy(where, a):
    return a


def _clip(where, a, lo=None, hi=None):
    return bc.clip(a, lo, hi, where)


def _select(where, condition, a, b):
    if not isinstance(condition, Condition):
        raise ValueError("where(c, a, b) needs a comparison as its condition, as in where(Z > 0, A, 0)")
    return bc.select(condition, *(value_of(x) for x in (a, b)), where)


def _astype(where, a, kind=None):
    return value_of(a)


def _item(where, a):
    inner = row_of(a)
    if is_matrix(inner):
        if inner.shape != (1, 1):
            raise ValueError(f"item() of a {describe(a)} array")
        return bc.element(inner, sp.Integer(0), sp.Integer(0), where)
    return inner


def _pow(where, a, b):
    return bc.power(a, b, where)


def _softmax(where, a, axis=0):
    return bc.soft(a, _axis(axis, False), where)


def _log_softmax(where, a, axis=0):
    """log softmax(a): what codegen writes (as log-sum-exp) for the log of a softmax."""
    return bc.apply(sp.log, bc.soft(a, _axis(axis, False), where))


_VAR, _STD = _spread(None)
_NP_VAR, _NP_STD = _spread("numpy")
_TORCH_VAR, _TORCH_STD = _spread("torch")

_ELEMENTWISE = {
    "log": sp.log, "exp": sp.exp, "tanh": sp.tanh, "sqrt": sp.sqrt, "abs": sp.Abs,
    "absolute": sp.Abs, "sigmoid": sigmoid, "relu": relu, "relu_prime": step, "step": step,
    "sigmoid_prime": sp.Lambda(_X, sigmoid(_X) * (1 - sigmoid(_X))),
    "tanh_prime": sp.Lambda(_X, 1 - sp.tanh(_X) ** 2),
    "log_sigmoid": sp.Lambda(_X, sp.log(sigmoid(_X))),      # what codegen writes (stably) for log σ
}

# tracegrad's own functions, also written np.NAME (except grad and jac)
FUNCTIONS = {
    "dot": ("values", lambda where, a, b: bc.dot(a, b, where)),
    "matmul": ("values", lambda where, a, b: bc.matmul(a, b, where)),
    "add": ("values", _binary("+")),
    "subtract": ("values", _binary("-")),
    "multiply": ("values", _binary("*")),
    "divide": ("values", _binary("/")),
    "power": ("values", _pow),
    "square": ("values", lambda where, a: bc.power(a, sp.Integer(2), where)),
    "transpose": ("values", _transpose),
    "outer": ("values", lambda where, a, b: bc.outer(a, b, where)),
    "vstack": ("blocks", lambda where, blocks: bc.stack(blocks, 0, where)),
    "hstack": ("blocks", lambda where, blocks: bc.stack(blocks, 1, where)),
    "block": ("grid", lambda where, rows: bc.stack([bc.stack(r, 1, where) for r in rows], 0, where)),
    "concatenate": ("blocks", lambda where, blocks, axis=None: bc.concatenate(blocks, _axis(axis), where)),
    "ones": ("sizes", _filled("ones")),
    "zeros": ("sizes", _filled("zeros")),
    "ones_like": ("values", _like("ones")),
    "zeros_like": ("values", _like("zeros")),
    "eye": ("sizes", lambda where, n: sp.Identity(n)),
    "sum": ("values", _sum),
    "mean": ("values", _mean),
    "var": ("values", _VAR),
    "std": ("values", _STD),
    "max": ("values", _max),
    "amax": ("values", _max),
    "argmax": ("values", _argmax),
    "softmax": ("values", _softmax),
    "log_softmax": ("values", _log_softmax),
    "maximum": ("values", lambda where, a, b: bc.maximum(a, b, where)),
    "minimum": ("values", lambda where, a, b: bc.minimum(a, b, where)),
    "clip": ("values", _clip),
    "where": ("raw", _select),
    "copy": ("values", _copy),
    "one_hot": ("raw", _one_hot),
    "trace": ("values", _square("trace")),
    "inv": ("values", _square("inv")),
    "det": ("values", _square("det")),
    "logdet": ("values", _square("logdet")),
    "grad": ("name", None),
    "jac": ("name", None),
    **{name: ("values", _elementwise(f)) for name, f in _ELEMENTWISE.items()},
}

# library namespaces: their names for these functions (a name of one library is refused in
# another, where its meaning may differ: torch.max(A, 1) is a pair, np.max(A, 1) an array)
NUMPY = {name: spec for name, spec in FUNCTIONS.items() if name not in ("grad", "jac", "one_hot")}
NUMPY.update({"var": ("values", _NP_VAR), "std": ("values", _NP_STD)})
TORCH = {name: FUNCTIONS[name] for name in (
    "sum", "mean", "max", "amax", "argmax", "exp", "log", "tanh", "sigmoid", "relu", "softmax",
    "matmul", "transpose", "sqrt", "abs", "square", "zeros_like", "ones_like", "zeros", "ones",
    "eye", "where", "outer", "trace", "det", "logdet", "maximum", "minimum", "clip", "dot")}
TORCH.update({"var": ("values", _TORCH_VAR), "std": ("values", _TORCH_STD),
              "mm": FUNCTIONS["matmul"], "t": FUNCTIONS["transpose"], "pow": FUNCTIONS["power"],
              "clamp": FUNCTIONS["clip"], "cat": FUNCTIONS["concatenate"],
              "inverse": FUNCTIONS["inv"]})
FUNCTIONAL = {name: FUNCTIONS[name] for name in ("softmax", "log_softmax", "relu", "sigmoid", "tanh", "one_hot")}
FUNCTIONAL["logsigmoid"] = FUNCTIONS["log_sigmoid"]
LINALG = {name: FUNCTIONS[name] for name in ("inv", "det")}
NAMESPACES = {("np",): NUMPY, ("numpy",): NUMPY, ("np", "linalg"): LINALG,
              ("numpy", "linalg"): LINALG, ("torch",): TORCH, ("torch", "linalg"): LINALG,
              ("F",): FUNCTIONAL, ("torch", "nn", "functional"): FUNCTIONAL}

# methods: A.name(...) is FUNCTIONS[name](A, ...) unless listed here
METHODS = {
    "sum": FUNCTIONS["sum"], "mean": FUNCTIONS["mean"], "var": ("values", _VAR),
    "std": ("values", _STD), "max": FUNCTIONS["max"], "argmax": FUNCTIONS["argmax"],
    "dot": FUNCTIONS["dot"], "matmul": FUNCTIONS["matmul"], "mm": FUNCTIONS["matmul"],
    "exp": FUNCTIONS["exp"], "log": FUNCTIONS["log"], "tanh": FUNCTIONS["tanh"],
    "sigmoid": FUNCTIONS["sigmoid"], "relu": FUNCTIONS["relu"], "sqrt": FUNCTIONS["sqrt"],
    "abs": FUNCTIONS["abs"], "square": FUNCTIONS["square"], "pow": FUNCTIONS["power"],
    "softmax": FUNCTIONS["softmax"], "clip": FUNCTIONS["clip"], "clamp": FUNCTIONS["clip"],
    "t": FUNCTIONS["transpose"], "transpose": FUNCTIONS["transpose"],
    "copy": FUNCTIONS["copy"], "clone": FUNCTIONS["copy"],
    "float": ("raw", _astype), "double": ("raw", _astype), "astype": ("raw", _astype),
    "item": ("values", _item),
}
# methods refused with the reason (they change what is differentiated, or are not arrays)
REFUSED_METHODS = {
    "detach": "detach() stops gradients, which changes the derivative",
    "numpy": "numpy() is not needed: the value is the same array",
    "backward": "autograd's backward() is what this tool checks, not something it runs",
}
