"""Compile SymPy expressions to straight-line numpy programs, so SymPy is out of the loop.

``compile_expression(expr)`` walks the expression DAG once; equal subtrees share one slot.
Calling the result with ``values`` runs a flat list of numpy closures.

Values: ``MatrixSymbol`` -> 2-D array of exactly its shape; scalar ``Symbol`` -> number;
dimension symbols -> int (a dimension that is a whole side of some matrix symbol may be left
out: it is read off that array). Keys may be symbols or their names.
Results: matrix expressions give a 2-D ``ndarray`` (1×1 stays (1, 1)); scalar expressions a
numpy scalar, ``np.float64`` or ``np.complex128`` (subclasses of ``float`` / ``complex``).

Non-finite results (log 0, overflow) come back as inf/nan without a numpy warning.
Complex-safe for complex-step differentiation: branches (relu, step, Max, comparisons)
decide on the real part, no rule takes ``abs`` or ``conj`` of a value, and complex inputs give
complex results.  Ints are computed as float64, so ``1/m`` is a true division.
"""
import functools
import math
import operator
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import sympy as sp
from sympy.logic.boolalg import BooleanFalse, BooleanTrue
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.numeric.errorbound import magnitude
from tracegrad.symbolic.dispatch import Dispatch
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.functions import Softmax, relu, sigmoid, step

_MISSING = object()


def _fail(node, why):
    return TracegradError(f"cannot evaluate {type(node).__name__}: {why}")


class _Builder:
    """Accumulates slots and instructions ``(out, fn, args, node name)`` in dependency order."""

    def __init__(self):
        self.memo, self.code, self.count = {}, [], 0
        self.scalars = []   # (slot, Symbol), bound from values before the code runs
        self.matrices = []  # (slot, MatrixSymbol, ((axis, slot of a plain-symbol dim), ...))
        self.indices = set()  # slots of Sum index arrays

    def new_slot(self):
        self.count += 1
        return self.count - 1

    def emit(self, fn, args, node):
        out = self.new_slot()
        self.code.append((out, fn, tuple(args), type(node).__name__))
        return out

    def slot(self, expr, env):
        """Slot of ``expr``; ``env`` binds Lambda and Sum variables to array slots."""
        expr = sp.sympify(expr)  # explicit matrices have int shapes
        if env and not (env.keys() & expr.free_symbols):
            env = {}
        key = (expr, tuple(env.items()))
        if key not in self.memo:
            self.memo[key] = _rule(expr)(self, expr, env)
        return self.memo[key]

    def scalar(self, expr, env):
        """Slot of ``expr`` used as a scalar: a 1×1 matrix stands for its single entry."""
        expr = sp.sympify(expr)
        if not expr.is_Matrix:
            return self.slot(expr, env)
        key = ("scalar", expr, tuple(env.items()))
        if key not in self.memo:
            self.memo[key] = self.emit(_entry_of_1x1(expr), [self.slot(expr, env)], expr)
        return self.memo[key]

    def size(self, expr, env, node):
        """Slot of an integer size or index of ``node``, computed exactly (``floor(7/3 - 1/3)``
        is 2, not 1 as in floating point)."""
        expr = sp.sympify(expr)
        exact = None if env.keys() & expr.free_symbols else _exact(expr)
        if exact is None:
            return self.scalar(expr, env)
        key = ("size", expr, type(node))
        if key not in self.memo:
            syms = sorted(expr.free_symbols, key=sp.default_sort_key)
            slots = [self.slot(x, {}) for x in syms]

            def size(*vals):
                got = exact({x: _as_int(v, node) for x, v in zip(syms, vals)})
                if got.denominator != 1:
                    raise _fail(node, f"size or index {expr} = {got} is not an integer")
                return int(got)
            self.memo[key] = self.emit(size, slots, expr)
        return self.memo[key]


_EXACT = {sp.Add: lambda xs: sum(xs, Fraction(0)), sp.Mul: math.prod, sp.Max: max, sp.Min: min,
          sp.floor: lambda xs: Fraction(math.floor(*xs)),
          sp.ceiling: lambda xs: Fraction(math.ceil(*xs))}


def _exact(expr):
    """Fraction-valued closure over a dict of symbol values, or None if not plain arithmetic."""
    if expr.is_Rational:
        value = Fraction(int(expr.p), int(expr.q))
        return lambda env: value
    if expr.is_Symbol:
        return lambda env: env[expr]
    if expr.is_Pow and expr.exp.is_Integer:
        base, k = _exact(expr.base), int(expr.exp)
        return base and (lambda env: base(env) ** k)
    fn = _EXACT.get(type(expr))
    args = [_exact(a) for a in expr.args] if fn else [None]
    if None in args:
        return None
    return lambda env: fn([a(env) for a in args])


def _rule(expr):
    found = RULES(expr)
    if found is None:
        raise _fail(expr, "no numeric rule for this node")
    return found


def _entry_of_1x1(node):
    def entry(a):
        if np.shape(a) != (1, 1):
            raise _fail(node, f"used as a scalar but has shape {np.shape(a)}")
        return a[0, 0]
    return entry


def _as_int(v, node):
    z = complex(v)
    if z.imag != 0 or not z.real.is_integer():
        raise _fail(node, f"size or index {v} is not an integer")
    return int(z.real)


def _as_index(v, node):
    """An int, or an int array for a Sum index."""
    if np.ndim(v) == 0:
        return _as_int(v, node)
    if np.any(np.imag(v) != 0) or np.any(np.real(v) % 1 != 0):
        raise _fail(node, "index is not an integer")
    return np.real(v).astype(np.intp)


def _sum(*xs):
    return functools.reduce(operator.add, xs)


def _prod(*xs):
    return functools.reduce(operator.mul, xs)


def _where_real(test):
    """0/1 float from a comparison of real parts."""
    return lambda a, b: np.where(test(np.real(a), np.real(b)), 1.0, 0.0)


def _pick_real(keep_first):
    """Max/Min deciding on the real part but returning the (complex) value itself."""
    return lambda *xs: functools.reduce(
        lambda a, b: np.where(keep_first(np.real(a), np.real(b)), a, b), xs)


def _sigmoid(x):
    # exp of a number with non-positive real part never overflows
    pos = np.real(x) >= 0
    e = np.exp(np.where(pos, -x, x))
    return np.where(pos, 1 / (1 + e), e / (1 + e))


def _softmax(a, axis):
    e = np.exp(a - np.max(np.real(a), axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _op(fn, scalar_args=False):
    """Rule for a node whose value is ``fn`` of its arguments' values."""
    def rule(b, expr, env):
        get = b.scalar if scalar_args else b.slot
        return b.emit(fn, [get(a, env) for a in expr.args], expr)
    return rule


def _ufunc(fn):
    return _op(fn, scalar_args=True)


def _symbol(b, expr, env):
    if expr in env:
        return env[expr]
    out = b.new_slot()
    b.scalars.append((out, expr))
    return out


def _matrix_symbol(b, expr, env):
    r, c = (b.size(d, {}, expr) for d in expr.shape)
    raw = b.new_slot()
    b.matrices.append((raw, expr, tuple((k, b.slot(d, {})) for k, d in enumerate(expr.shape)
                                        if d.is_Symbol)))

    def check(a, rows, cols):
        want = (_as_int(rows, expr), _as_int(cols, expr))
        if a.shape != want:
            raise TracegradError(f"value for {expr.name} has shape {a.shape}, expected "
                                 f"({expr.shape[0]}, {expr.shape[1]}) = {want}")
        return a
    return b.emit(check, [raw, r, c], expr)


def _constant(b, expr, env):
    if expr in (sp.nan, sp.zoo):
        raise _fail(expr, f"{expr} is undefined")
    z = complex(expr)
    value = np.float64(z.real) if z.imag == 0 else np.complex128(z)
    return b.emit(lambda: value, [], expr)


def _boolean(b, expr, env):
    value = np.float64(bool(expr))
    return b.emit(lambda: value, [], expr)


def _pow(b, expr, env):
    if expr.exp == sp.S.Half:
        return b.emit(np.sqrt, [b.scalar(expr.base, env)], expr)
    return b.emit(np.power, [b.scalar(expr.base, env), b.scalar(expr.exp, env)], expr)


def _matmul(b, expr, env):
    coeffs = [b.scalar(a, env) for a in expr.args if not a.is_Matrix]
    mats = []
    for a in (a for a in expr.args if a.is_Matrix):
        scale, inner = _scaled_ones(a)
        if scale is not None:
            coeffs.append(b.scalar(scale, env))
        mats.append(inner)
    n = len(coeffs)
    # an all-ones factor is a sum: 1 B and A 1 cost a sum and a broadcast, not a product
    ones = tuple(isinstance(a, sp.OneMatrix) for a in mats)

    def matmul(*xs):
        m = _chain(xs[n:], ones)
        return _prod(*xs[:n]) * m if n else m

    def first_order(old, *xs):
        """``matmul`` when the imaginary parts are infinitesimal and ``old`` is the real value:
        old + i Σₖ (the product with factor k's imaginary part, the others' real parts)."""
        real = [np.real(x) for x in xs]
        imag = None
        for k, x in enumerate(xs):
            if np.iscomplexobj(x):
                term = matmul(*real[:k], np.ascontiguousarray(np.imag(x)), *real[k + 1:])
                imag = term if imag is None else imag + term
        return old if imag is None else old + 1j * imag
    matmul.first_order = first_order
    return b.emit(matmul, coeffs + [b.slot(a, env) for a in mats], expr)


def _scaled_ones(a):
    """(c, 1) for a factor c·1 (all ones, scaled), else (None, a)."""
    if isinstance(a, sp.MatMul):
        coeff, mats = a.as_coeff_matrices()
        if len(mats) == 1 and isinstance(mats[0], sp.OneMatrix):
            return coeff, mats[0]
    return None, a


def _chain(ms, ones):
    """The product of ``ms`` (``ones[i]``: factor i is all ones).  Without ones: ``_product``.
    With them, left to right (right to left when only the last factor is ones), each all-ones
    factor applied as a sum: A 1 is A's row sums and 1 B is B's column sums, broadcast."""
    if not any(ones):
        return _product(ms)
    if ones[-1] and not ones[0]:
        return _chain([m.T for m in reversed(ms)], ones[::-1]).T
    out, lazy = None, None           # lazy: out is (rows, scale) × all ones, not built yet
    for m, one in zip(ms, ones):
        rows, cols = m.shape
        if out is None and lazy is None:
            out, lazy = (None, (rows, 1.0)) if one else (m, None)
        elif lazy is not None:
            r, k = lazy
            out, lazy = (None, (r, k * rows)) if one else \
                (np.broadcast_to(k * np.sum(m, axis=0, keepdims=True), (r, cols)), None)
        elif one:
            out = np.broadcast_to(np.sum(out, axis=1, keepdims=True), (out.shape[0], cols))
        else:
            out = _matmul2(out, m)
    if lazy is not None:
        out = np.full((lazy[0], ms[-1].shape[1]), lazy[1])
    return out


def _product(ms):
    if len(ms) == 1:
        return ms[0]
    if any(map(np.iscomplexobj, ms)):
        return functools.reduce(_matmul2, ms)
    return ms[0] @ ms[1] if len(ms) == 2 else np.linalg.multi_dot(ms)


def _matmul2(a, b):
    """A @ B with one complex side as two real products (complex steps: half the work of zgemm)."""
    if np.iscomplexobj(a) and not np.iscomplexobj(b):
        return a.real @ b + 1j * (a.imag @ b)
    if np.iscomplexobj(b) and not np.iscomplexobj(a):
        return a @ b.real + 1j * (a @ b.imag)
    return a @ b


def _matpow(b, expr, env):
    def matpow(a, k):
        return np.linalg.matrix_power(a, _as_int(k, expr))
    return b.emit(matpow, [b.slot(expr.base, env), b.size(expr.exp, env, expr)], expr)


def _sized(make):
    """Rule for OneMatrix / ZeroMatrix / Identity, whose args are sizes."""
    def rule(b, expr, env):
        return b.emit(lambda *dims: make(*(_as_int(d, expr) for d in dims)),
                      [b.size(d, env, expr) for d in expr.args], expr)
    return rule


def _element(b, expr, env):
    def element(a, i, j):
        return a[_as_index(i, expr), _as_index(j, expr)]
    indices = [b.size(i, env, expr) for i in expr.args[1:]]
    return b.emit(element, [b.slot(expr.parent, env)] + indices, expr)


def _slice(b, expr, env):
    def cut(a, *bounds):
        r0, r1, rs, c0, c1, cs, rows, cols = (_as_int(x, expr) for x in bounds)
        out = a[r0:r1:rs, c0:c1:cs]
        if out.shape != (rows, cols):
            # SymPy sizes a stepped slice as floor((stop - start) / step): sympy issue #18411
            raise _fail(expr, f"SymPy gives it shape {(rows, cols)} but it selects {out.shape} "
                              "(sympy issue #18411); use a step that divides the range")
        return out
    bounds = [b.size(x, env, expr) for x in (*expr.rowslice, *expr.colslice, *expr.shape)]
    return b.emit(cut, [b.slot(expr.parent, env)] + bounds, expr)


def _block(b, expr, env):
    rows, cols = expr.blocks.shape

    def block(*xs):
        return np.block([list(xs[i * cols:(i + 1) * cols]) for i in range(rows)])
    return b.emit(block, [b.slot(x, env) for x in expr.blocks], expr)


def _summation(b, expr, env):
    """Sum(body, (i, lo, hi), ...), vectorised: index k runs along its own leading axis.

    Inside the body of an enclosing Sum, the enclosing indices occupy the trailing axes, so
    summing the leading axes leaves exactly the enclosing indices' shape.
    """
    if any(v in expr.free_symbols for v, slot in env.items() if slot not in b.indices):
        raise _fail(expr, "a sum over an element-wise variable is not supported")
    depth, n = sum(1 for slot in env.values() if slot in b.indices), len(expr.limits)
    bounds = [b.size(x, env, expr) for _, lo, hi in expr.limits for x in (lo, hi)]
    inner = dict(env)
    for k, (var, lo, hi) in enumerate(expr.limits):
        def index(lo, hi, k=k):
            lo, hi = _as_int(lo, expr), _as_int(hi, expr)
            shape = [1] * (n + depth)
            shape[k] = abs(hi + 1 - lo)
            return np.arange(min(lo, hi + 1), max(lo, hi + 1), dtype=np.float64).reshape(shape)
        inner[var] = b.emit(index, bounds[2 * k:2 * k + 2], expr)
        b.indices.add(inner[var])

    def total(body, *bounds):
        lengths = [_as_int(hi, expr) + 1 - _as_int(lo, expr)
                   for lo, hi in zip(bounds[::2], bounds[1::2])]
        full = np.broadcast_shapes(np.shape(body), tuple(abs(k) for k in lengths) + (1,) * depth)
        # Karr's convention, as SymPy: a sum with hi < lo - 1 is minus the reversed sum
        sign = (-1) ** sum(k < 0 for k in lengths)
        return sign * np.sum(np.broadcast_to(body, full), axis=tuple(range(n)))
    return b.emit(total, [b.scalar(expr.function, inner)] + bounds, expr)


def _explicit(b, expr, env):
    shape = expr.shape
    return b.emit(lambda *xs: np.array(xs).reshape(shape), [b.scalar(x, env) for x in expr], expr)


def _elementwise(b, expr, env):
    (var,) = expr.function.variables
    arg = b.slot(expr.expr, env)
    body = b.scalar(expr.function.expr, {**env, var: arg})
    # a body that ignores its variable (constant) still gives a full matrix
    return b.emit(lambda v, a: v if np.shape(v) == a.shape else np.broadcast_to(v, a.shape),
                  [body, arg], expr)


def _softmax_rule(b, expr, env):
    axis = expr.axis
    return b.emit(lambda a: _softmax(a, axis), [b.slot(expr.arg, env)], expr)


def _heaviside(b, expr, env):
    def heaviside(x, h0):
        return np.where(np.real(x) > 0, 1.0, np.where(np.real(x) == 0, h0, 0.0))
    h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
    return b.emit(heaviside, [b.scalar(expr.args[0], env), b.scalar(h0, env)], expr)


def _piecewise(b, expr, env):
    pairs = [(b.scalar(e, env), b.scalar(c, env)) for e, c in expr.args]

    def piecewise(*xs):
        out = np.nan  # SymPy's value where no condition holds
        for i in reversed(range(0, len(xs), 2)):
            out = np.where(np.real(xs[i + 1]) != 0, xs[i], out)
        return out
    return b.emit(piecewise, [s for pair in pairs for s in pair], expr)


def _logic(test):
    return _op(lambda *xs: np.where(test(*(np.real(x) != 0 for x in xs)), 1.0, 0.0), True)


def _inverse(a):
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError as e:
        raise TracegradError(f"cannot evaluate Inverse: {e}") from None


RULES = Dispatch("numeric compilation", {
    # matrices
    sp.MatrixSymbol: _matrix_symbol,
    sp.MatMul: _matmul,
    sp.MatAdd: _op(_sum),
    sp.Transpose: _op(np.transpose),
    sp.HadamardProduct: _op(_prod),
    sp.HadamardPower: _op(np.power),
    sp.MatPow: _matpow,
    sp.Inverse: lambda b, expr, env: b.emit(_inverse, [b.slot(expr.arg, env)], expr),
    sp.Trace: _op(np.trace),
    sp.Determinant: _op(np.linalg.det),
    MatrixElement: _element,
    # read-only broadcast views: no allocation, and nothing writes into a register
    sp.OneMatrix: _sized(lambda r, c: np.broadcast_to(1.0, (r, c))),
    sp.ZeroMatrix: _sized(lambda r, c: np.broadcast_to(0.0, (r, c))),
    sp.Identity: _sized(np.eye),
    sp.MatrixSlice: _slice,
    sp.BlockMatrix: _block,
    sp.ImmutableDenseMatrix: _explicit,
    sp.Sum: _summation,
    ElementwiseApplyFunction: _elementwise,
    Softmax: _softmax_rule,
    # scalars
    sp.Symbol: _symbol,
    sp.Number: _constant,
    sp.NumberSymbol: _constant,
    type(sp.I): _constant,
    BooleanTrue: _boolean,
    BooleanFalse: _boolean,
    sp.Add: _ufunc(_sum),
    sp.Mul: _ufunc(_prod),
    sp.Pow: _pow,
    sp.log: _ufunc(np.log),
    sp.exp: _ufunc(np.exp),
    sp.sin: _ufunc(np.sin),
    sp.cos: _ufunc(np.cos),
    sp.tan: _ufunc(np.tan),
    sp.sinh: _ufunc(np.sinh),
    sp.cosh: _ufunc(np.cosh),
    sp.tanh: _ufunc(np.tanh),
    sp.asin: _ufunc(np.arcsin),
    sp.acos: _ufunc(np.arccos),
    sp.atan: _ufunc(np.arctan),
    sp.floor: _ufunc(lambda x: np.floor(np.real(x))),  # sizes of stepped slices
    sp.ceiling: _ufunc(lambda x: np.ceil(np.real(x))),
    sp.Abs: _ufunc(lambda x: np.where(np.real(x) < 0, -x, x) if np.iscomplexobj(x) else np.abs(x)),
    magnitude: _ufunc(lambda x: np.where(np.real(x) < 0, -x, x) if np.iscomplexobj(x) else np.abs(x)),
    sp.re: _ufunc(np.real),
    sp.sign: _ufunc(lambda x: np.sign(np.real(x))),
    sp.Max: _ufunc(_pick_real(operator.ge)),
    sp.Min: _ufunc(_pick_real(operator.le)),
    sp.StrictGreaterThan: _ufunc(_where_real(operator.gt)),
    sp.GreaterThan: _ufunc(_where_real(operator.ge)),
    sp.StrictLessThan: _ufunc(_where_real(operator.lt)),
    sp.LessThan: _ufunc(_where_real(operator.le)),
    sp.Equality: _ufunc(_where_real(operator.eq)),
    sp.Unequality: _ufunc(_where_real(operator.ne)),
    sp.And: _logic(lambda *ts: functools.reduce(np.logical_and, ts)),
    sp.Or: _logic(lambda *ts: functools.reduce(np.logical_or, ts)),
    sp.Not: _logic(np.logical_not),
    sp.Piecewise: _piecewise,
    sp.KroneckerDelta: lambda b, expr, env: b.emit(
        _where_real(operator.eq), [b.scalar(a, env) for a in expr.args[:2]], expr),
    sigmoid: _ufunc(_sigmoid),
    relu: _ufunc(lambda x: np.where(np.real(x) > 0, x, 0)),
    step: _ufunc(lambda x: np.where(np.real(x) > 0, 1.0, 0.0)),
    sp.Heaviside: _heaviside,
})


class CompiledGroup:
    """``fn(values)`` evaluates every expression of ``fn.exprs`` in one pass (a tuple of results):
    equal subexpressions of different expressions are computed once.  ``definitions``, pairs
    (symbol, expression) in order, make a straight-line program: each symbol stands for the value
    of its expression wherever later definitions or the expressions use it.  ``extend`` adds
    outputs later, sharing every node compiled so far; a state from ``run`` then ``resume``s."""

    def __init__(self, exprs, definitions=()):
        self._builder = b = _Builder()
        try:
            for symbol, expr in definitions:
                b.memo[(symbol, ())] = b.slot(expr, {})
        except RecursionError:
            raise TracegradError("cannot evaluate: expression nested too deeply") from None
        self.exprs, self._outs, self._producer, self._needed = (), (), {}, {}
        self._code = ()
        self._defined = {b.memo[(symbol, ())] for symbol, _ in definitions}
        self.extend(exprs)

    def extend(self, exprs):
        """Add the outputs ``exprs`` (sharing what is compiled already): their output indices.
        A node without a rule raises, and leaves the program as it was."""
        b = self._builder
        code, count, scalars, matrices = len(b.code), b.count, len(b.scalars), len(b.matrices)
        outs = []
        try:
            for expr in exprs:
                out = b.slot(expr, {})
                if expr.is_Matrix:
                    shape = [b.size(d, {}, expr) for d in expr.shape]
                    out = b.emit(_result_check(expr), [out] + shape, expr)
                outs.append(out)
        except (TracegradError, RecursionError) as e:
            # everything this extension added has a slot numbered from ``count`` on
            del b.code[code:], b.scalars[scalars:], b.matrices[matrices:]
            for key in [key for key, slot in b.memo.items() if slot >= count]:
                del b.memo[key]
            b.count, b.indices = count, {slot for slot in b.indices if slot < count}
            if isinstance(e, RecursionError):
                raise TracegradError("cannot evaluate: expression nested too deeply") from None
            raise
        first = len(self._outs)
        self.exprs, self._outs = self.exprs + tuple(exprs), self._outs + tuple(outs)
        self._producer.update({out: k for k, (out, _, _, _) in enumerate(b.code[len(self._code):], len(self._code))})
        self._size, self._code = b.count, tuple(b.code)
        self._scalars, self._matrices = tuple(b.scalars), tuple(b.matrices)
        self._needed.pop(None, None)
        return range(first, len(self._outs))

    def node(self, k):
        """The expression instruction ``k`` computes (for profiles), or None."""
        if len(self.__dict__.get("_nodes", ())) != self._builder.count:
            self._nodes = dict.fromkeys(range(self._builder.count))
            self._nodes.update({slot: key[0] for key, slot in self._builder.memo.items() if len(key) == 2 and not key[1]})
        return self._nodes[self._code[k][0]]

    @property
    def instructions(self):
        """Number of numpy steps one call runs (equal subexpressions count once)."""
        return len(self._code)

    def __call__(self, values):
        return self.outputs(self.run(values))

    def needed(self, which=None):
        """Indices of the instructions that the outputs ``which`` (indices; all if None) need."""
        key = None if which is None else tuple(sorted(which))
        if key not in self._needed:
            if key is None:
                self._needed[key] = range(len(self._code))
            else:
                seen, todo = set(), [self._outs[k] for k in key]
                while todo:
                    k = self._producer.get(todo.pop())
                    if k is not None and k not in seen:
                        seen.add(k)
                        todo.extend(self._code[k][2])
                self._needed[key] = sorted(seen)
        return self._needed[key]

    def run(self, values, which=None):
        """Every register after one pass (``outputs`` reads the results off it); with ``which``
        (output indices), only the instructions those outputs need (``resume`` does the rest)."""
        state = ([None] * self._size, set(), _finder(values))
        return self._execute(*self._bind(state), None, self.needed(which))

    def _bind(self, state):
        """(registers, inputs) of ``state`` with every input symbol compiled so far bound to its
        value (a program that was extended since may have new ones)."""
        regs, inputs, find = state
        regs.extend([None] * (self._size - len(regs)))
        for slot, sym in self._scalars:
            if regs[slot] is None:
                v = find(sym)
                if v is not _MISSING:
                    regs[slot] = _scalar_value(sym, v)
        for slot, sym, dims in self._matrices:
            if regs[slot] is None:
                v = find(sym)
                if v is _MISSING:
                    raise TracegradError(f"missing value for matrix symbol {sym.name}")
                regs[slot] = a = _matrix_value(sym, v)
                inputs.add(id(a))
                for axis, d in dims:
                    if regs[d] is None:
                        regs[d] = np.float64(a.shape[axis])
        for slot, sym in self._scalars:
            if regs[slot] is None:
                raise TracegradError(f"missing value for symbol {sym.name}")
        return regs, inputs, find

    def resume(self, state, which=None):
        """``state`` (from ``run``) with the instructions the outputs ``which`` need done as well."""
        regs, inputs, find = self._bind(state)
        return self._execute(regs, inputs, find, None, [k for k in self.needed(which) if regs[self._code[k][0]] is None])

    def release(self, state):
        """``state`` with its registers dropped but the inputs' and the defined names' (``resume``
        recomputes what a later output needs): a state kept while outputs are added does not
        grow with them."""
        regs = state[0]
        keep = self._defined | {slot for slot, _ in self._scalars} | {slot for slot, _, _ in self._matrices}
        for k in range(len(regs)):
            if k not in keep:
                regs[k] = None
        return state

    def rerun(self, state, changes, which=None, first_order=False):
        """Results of ``run`` with some symbols given new values: only the instructions downstream
        of them (and needed by the outputs ``which``) run again (a complex step in one block
        leaves the rest real).  Returns the outputs ``which`` (all if None).  ``first_order``:
        the changes are the state's values plus infinitesimal imaginary parts (a complex step),
        so a matrix product keeps its real part and forms only the first-order imaginary part."""
        regs, inputs, find = self._bind(state)
        regs, inputs, touched = list(regs), set(inputs), set()
        for slot, sym, _ in self._matrices:
            if sym in changes:
                regs[slot] = a = _matrix_value(sym, changes[sym])
                inputs.add(id(a))
                touched.add(slot)
        for slot, sym in self._scalars:
            if sym in changes:
                regs[slot] = _scalar_value(sym, changes[sym])
                touched.add(slot)
        return self.outputs(self._execute(regs, inputs, find, touched, self.needed(which), first_order), which)

    def _execute(self, regs, inputs, find, touched, order, first_order=False):
        """Run the instructions ``order`` (only what reads a ``touched`` slot, when given)."""
        name = type(self.exprs[0]).__name__ if self.exprs else ""
        code = self._code
        try:
            # log 0, overflow, 0/0 give inf or nan, never a warning: callers judge finiteness
            with np.errstate(all="ignore"):
                for k in order:
                    out, fn, args, name = code[k]
                    if touched is None or not touched.isdisjoint(args):
                        if first_order and hasattr(fn, "first_order") and regs[out] is not None and \
                                not np.iscomplexobj(regs[out]):
                            regs[out] = fn.first_order(regs[out], *[regs[a] for a in args])
                        else:
                            regs[out] = fn(*[regs[a] for a in args])
                        if touched is not None:
                            touched.add(out)
        except (ValueError, TypeError, IndexError, np.linalg.LinAlgError) as e:
            raise TracegradError(f"cannot evaluate {name}: {str(e).splitlines()[0]}") from None
        return regs, inputs, find

    def outputs(self, state, which=None):
        """The results (of the outputs ``which``, by index, if given) from a state."""
        regs, inputs, _ = state
        picked = range(len(self._outs)) if which is None else which
        return tuple(_result(regs[self._outs[k]], self.exprs[k], inputs) for k in picked)


def _result(value, expr, inputs):
    result = np.asarray(value)
    if not expr.is_Matrix:
        return result[()]
    if id(result) in inputs or not result.flags.owndata:
        result = result.copy()  # never hand out an input or a view of one
    return result


class CompiledExpression(CompiledGroup):
    """``fn(values)`` evaluates ``fn.expr``; see the module docstring for values and results."""

    def __init__(self, expr):
        super().__init__((expr,))
        self.expr, self.is_matrix = expr, bool(expr.is_Matrix)

    def outputs(self, state, which=None):
        return super().outputs(state, which)[0]


def _result_check(expr):
    def check(a, rows, cols):
        want = (_as_int(rows, expr), _as_int(cols, expr))
        if np.shape(a) != want:
            raise _fail(expr, f"result has shape {np.shape(a)}, expected {want}")
        return a
    return check


def _finder(values):
    if not isinstance(values, Mapping):
        raise TracegradError(f"values must be a mapping from symbols to values, "
                             f"not {type(values).__name__}")
    by_name = {}
    for key in values:
        name = key if isinstance(key, str) else getattr(key, "name", None)
        if not isinstance(name, str):
            raise TracegradError(f"value key {key!r} is neither a symbol nor a name")
        by_name.setdefault(name, values[key])

    def find(sym):
        v = values.get(sym, _MISSING)
        return by_name.get(sym.name, _MISSING) if v is _MISSING else v
    return find


def _numeric_array(sym, v):
    try:
        a = np.asarray(v)
    except Exception:  # ragged lists and the like
        a = np.asarray(None)
    if a.dtype.kind not in "biufc":
        raise TracegradError(f"value for {sym.name} is not numeric: {type(v).__name__}")
    return a.astype(np.float64) if a.dtype.kind in "biu" else a


def _scalar_value(sym, v):
    a = _numeric_array(sym, v)
    if a.ndim != 0:
        raise TracegradError(f"value for {sym.name} must be a number, got an array of shape "
                             f"{a.shape}")
    return a[()]


def _matrix_value(sym, v):
    a = _numeric_array(sym, v)
    if a.ndim != 2:
        raise TracegradError(f"value for {sym.name} must be a 2-D array of shape "
                             f"({sym.shape[0]}, {sym.shape[1]}), got shape {a.shape}")
    return a


def _as_expr(expr):
    if isinstance(expr, sp.MatrixBase) and not isinstance(expr, sp.ImmutableDenseMatrix):
        return sp.ImmutableDenseMatrix(expr)
    if isinstance(expr, sp.Basic):
        return expr
    if isinstance(expr, (int, float, complex)):
        return sp.sympify(expr)
    raise TracegradError(f"cannot evaluate {type(expr).__name__}: not a SymPy expression")


@functools.lru_cache(maxsize=256)
def _compiled(expr):
    return CompiledExpression(expr)


def compile_group(exprs, definitions=()):
    """Compile several SymPy expressions into one pass that shares their common parts
    (``definitions``: the straight-line program they are written over, see ``CompiledGroup``)."""
    return CompiledGroup(tuple(_as_expr(e) for e in exprs), tuple(definitions))


def compile_expression(expr):
    """Compile a SymPy scalar or matrix expression once; the result is cached by ``expr``."""
    return _compiled(_as_expr(expr))


def evaluate(expr, values):
    """Value of ``expr`` for ``values`` (symbols or names -> numbers, arrays, dimension ints)."""
    return compile_expression(expr)(values)


# max along an axis (symbolic/functions.py AxisMax)
from tracegrad.symbolic.functions import AxisMax  # noqa: E402  (a self-contained block)


def _axis_max(a, axis):
    """The entry of largest real part along ``axis`` (kept 2-D), itself: complex steps pass through."""
    index = np.expand_dims(np.argmax(np.real(a), axis=axis), axis)
    return np.take_along_axis(a, index, axis)


RULES.register(AxisMax)(lambda b, expr, env: b.emit(
    lambda a, axis=expr.axis: _axis_max(a, axis), [b.slot(expr.arg, env)], expr))
