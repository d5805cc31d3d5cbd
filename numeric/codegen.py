"""Generate a standalone numpy module with ``forward`` and ``backward`` from a derivation.

``generate_module(derivation, title=None, wrt=None)`` returns the source text of a Python
module that imports only numpy:

* ``forward(values)`` computes every forward name in program order, one line per definition,
  and returns them in a dict (plus the intermediate values ``backward`` reuses).
* ``backward(values, cache=None)`` returns ``{name: ∇_X J}`` for every ``X`` of ``wrt``: the
  gradient, an array of the shape of ``X`` (a number for a scalar).  ``cache`` is what
  ``forward(values)`` returned (computed when ``None``).

Rules of the generated code:

* Backprop, read off the compact forms: each adjoint of a forward name is computed once, in
  reverse program order, from forward values and later adjoints.  In the module ``dN`` is the
  gradient ∇_N J (shape of N), the transpose of the derivation's numerator-layout ``G_N``; the
  transpose is pushed down to the symbols (``symbolic.algebra.T``), so ``dZ1 = dA1 * step(Z1)``.
* Sizes are read off the arrays' shapes (``m = X.shape[1]``); only a size that is no whole
  side of any input or parameter has to be passed in ``values``.
* Shared subexpressions: a non-trivial subexpression used twice in a function is bound to a
  temporary ``tK`` at its first use; a forward subexpression that ``backward`` needs is kept
  by ``forward`` and read from the cache, never recomputed.
* Idioms: ``1ᵀ M`` with a row of ones prints ``M.sum(axis=0, keepdims=True)``, ``M 1`` prints
  ``M.sum(axis=1, keepdims=True)``; ``b 1ᵀ`` next to a full matrix in a sum or element-wise
  product prints ``b`` (numpy broadcasting); ``1`` there prints the number 1.
* Helpers (numerically stable ``sigmoid``, ``relu``, ``step``, ``softmax``) are defined at the
  top of the module only when the code uses them.

The generator is a printer: one rule per SymPy node type (``MATRIX_RULES``, ``SCALAR_RULES``),
each returning Python source text.  Nothing here evaluates or executes the generated text.
An expression with a node no rule covers raises ``TracegradError`` naming the node.
"""
import keyword
import re
from dataclasses import dataclass

import sympy as sp
from sympy.logic.boolalg import BooleanFalse, BooleanTrue
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from symbolic.algebra import T
from symbolic.errors import TracegradError
from symbolic.functions import Softmax, relu, sigmoid, step
from symbolic.printing import to_text

# precedence of the printed Python expression (higher binds tighter)
CMP, ADD, MUL, UNARY, POW, ATOM = 30, 50, 60, 70, 80, 100
LINE = 99   # longest generated line before a sum is broken over lines

HELPERS = {
    "sigmoid": '''\
def sigmoid(x):
    """Logistic function, stable for large |x|: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))''',
    "relu": '''\
def relu(x):
    """max(x, 0) entry by entry."""
    return np.maximum(x, 0)''',
    "step": '''\
def step(x):
    """Unit step 1[x > 0] (the derivative of relu) as floats."""
    return (x > 0).astype(float)''',
    "softmax": '''\
def softmax(a, axis=0):
    """exp(a) normalised along axis (0: each column sums to 1), with the max subtracted."""
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)''',
}

RESERVED = set(keyword.kwlist) | set(HELPERS) | {
    "np", "values", "cache", "forward", "backward", "sum", "range", "int", "float", "abs",
    "max", "min", "len", "dict", "True", "False", "None"}


@dataclass(frozen=True)
class Code:
    """Python source of an expression and its precedence."""
    text: str
    prec: int = ATOM
    pieces: tuple = ()   # a sum's terms with their signs, where a long line may break


def _fail(node, why="no code generation rule for this node"):
    return TracegradError(f"cannot generate code for {type(node).__name__} ({node}): {why}")


def _wrap(code, prec):
    """Parenthesise ``code`` unless it binds at least as tightly as ``prec``."""
    return code.text if code.prec >= prec else f"({code.text})"


# ---------------------------------------------------------------------------------------------
# names

class _Names:
    """Unique Python identifiers for symbols, gradients and temporaries."""

    def __init__(self):
        self.taken = set(RESERVED)

    def new(self, wanted):
        base = re.sub(r"\W", "_", wanted) or "v"
        if not base.isidentifier():
            base = f"v_{base}"
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


# ---------------------------------------------------------------------------------------------
# the printer

class _Printer:
    """Prints one function body: statements in ``lines``, names it reads in ``used``.

    ``bound``: expression -> Python name already available (symbols, forward values, earlier
    results); ``shared``: expressions to bind to a temporary at their first use.
    """

    def __init__(self, names, bound, shared, temps):
        self.names, self.bound, self.shared, self.temps = names, dict(bound), set(shared), temps
        self.lines, self.used, self.helpers = [], [], set()
        self.env = {}        # Lambda variable or Sum index -> Code

    def use(self, name):
        if name not in self.used:
            self.used.append(name)
        return Code(name)

    def __call__(self, expr):
        expr = sp.sympify(expr)
        if expr in self.env:
            return self.env[expr]
        local = bool(self.env) and bool(expr.free_symbols & self.env.keys())
        if not local and expr in self.bound:
            return self.use(self.bound[expr])
        if not local and _is_matrix(expr) and T(expr) in self.bound:
            return Code(f"{self.use(self.bound[T(expr)]).text}.T")
        if not local and _oriented(expr) in self.shared and _oriented(expr) != expr:
            return Code(f"{_wrap(self(_oriented(expr)), ATOM)}.T")
        code = _rule(expr)(self, expr)
        if not local and _oriented(expr) in self.shared:
            name = self.temps.new()
            self.line(name, code)
            self.bound[expr] = name
            return self.use(name)
        return code

    def assign(self, name, expr):
        self.line(name, self(expr))

    def line(self, name, code):
        line = f"{name} = {code.text}"
        if len(line) > LINE - 4 and len(code.pieces) > 1:   # break a long sum before + / -
            pad = " " * (len(name) + 4)
            line = f"{name} = ({code.pieces[0]}" + "".join(
                f"\n{pad}{piece}" for piece in code.pieces[1:]) + ")"
        self.lines.append(line)

    def helper(self, name, *args):
        self.helpers.add(name)
        return Code(f"{name}({', '.join(a.text for a in args)})")

    def call(self, fn, *args):
        return Code(f"{fn}({', '.join(a.text for a in args)})")

    def size(self, expr):
        """An integer size or index: integer arithmetic stays int, anything else is int(...)."""
        expr = sp.sympify(expr)
        code = self(expr)
        if all(isinstance(a, (sp.Add, sp.Mul, sp.Symbol, sp.Integer)) or
               (isinstance(a, sp.Pow) and a.exp.is_Integer and a.exp >= 0)
               for a in sp.preorder_traversal(expr)):
            return code
        return Code(f"int({code.text})")

    def scalar(self, expr):
        """``expr`` used as a number: a matrix argument (1×1) gives its single entry."""
        code = self(expr)
        if getattr(expr, "is_Matrix", False):
            return Code(f"{_wrap(code, ATOM)}[0, 0]")
        return code


def _is_matrix(x):
    return bool(getattr(x, "is_Matrix", False))


def _oriented(x):
    """One representative of {X, Xᵀ}: a value and its transpose are shared as one."""
    if not _is_matrix(x) or isinstance(x, sp.MatrixSymbol):
        return x
    return min(x, T(x), key=lambda y: (_transposes(y), sp.default_sort_key(y)))


def _transposes(x):
    """Number of transposes in x: the orientation with fewer is the one printed."""
    return sum(isinstance(y, sp.Transpose) for y in sp.preorder_traversal(x))


def _rule(expr):
    for cls in type(expr).__mro__:
        if cls in RULES:
            return RULES[cls]
    raise _fail(expr)


# --- matrices --------------------------------------------------------------------------------

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


def _negative(x):
    if isinstance(x, sp.MatMul):
        return x.as_coeff_matrices()[0].could_extract_minus_sign()
    return not getattr(x, "is_Matrix", False) and x.could_extract_minus_sign()


def _sum_text(p, terms):
    """a + b - c: negative terms are printed as subtraction, a positive term first."""
    terms = sorted(terms, key=_negative)  # stable: only moves negative terms back
    first = terms[0]
    out = p(first)
    pieces = [out.text if out.prec >= ADD else f"({out.text})"]
    for t in terms[1:]:
        if _negative(t):
            pieces.append(f"- {_wrap(p(-t), ADD + 1)}")
        else:
            pieces.append(f"+ {_wrap(p(t), ADD + 1)}")
    return Code(" ".join(pieces), ADD, tuple(pieces))


def _matadd(p, e):
    return _sum_text(p, _reduced(e.args))


def _scaled(p, coeff, code):
    """coeff · code for a scalar coefficient."""
    if coeff == 1:
        return code
    if coeff == -1:
        return Code(f"-{_wrap(code, UNARY)}", UNARY)
    c = p(coeff)
    return Code(f"{_wrap(c, MUL)} * {_wrap(code, UNARY)}", MUL)


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
        code = Code(" @ ".join(_wrap(c, POW) for c in codes), MUL)
    if left and right:
        code = Code(f"{_wrap(code, ATOM)}.sum(keepdims=True)")
    elif left:
        code = Code(f"{_wrap(code, ATOM)}.sum(axis=0, keepdims=True)")
    elif right:
        code = Code(f"{_wrap(code, ATOM)}.sum(axis=1, keepdims=True)")
    return _scaled(p, coeff, code)


def _hadamard(p, e):
    factors = _reduced(e.args)
    scalars = [f for f in factors if not getattr(f, "is_Matrix", False) and f != 1]
    mats = [f for f in factors if getattr(f, "is_Matrix", False)]
    num = [m for m in mats if not (isinstance(m, sp.HadamardPower) and m.exp == -1)]
    den = [m.base for m in mats if isinstance(m, sp.HadamardPower) and m.exp == -1]
    codes = [p(m) for m in num]
    text = " * ".join([_wrap(codes[0], MUL)] + [_wrap(c, UNARY) for c in codes[1:]]) \
        if codes else "1"
    text += "".join(f" / {_wrap(p(m), UNARY)}" for m in den)
    return _scaled(p, sp.Mul(*scalars), Code(text, MUL if (den or len(codes) > 1) else
                                             codes[0].prec))


def _hadamard_power(p, e):
    base, k = p(e.base), e.exp
    if k == -1:
        return Code(f"1 / {_wrap(base, UNARY)}", MUL)
    if k == sp.S.Half:
        return p.call("np.sqrt", base)
    return Code(f"{_wrap(base, ATOM)} ** {_wrap(p.scalar(k), UNARY)}", POW)


def _transpose(p, e):
    return Code(f"{_wrap(p(e.arg), ATOM)}.T")


def _shape(p, e):
    return ", ".join(p.size(d).text for d in e.shape)


def _elementwise(p, e):
    (var,) = e.function.variables
    body, arg = e.function.expr, p(e.expr)
    if var not in body.free_symbols:  # constant body: still a full matrix
        return Code(f"np.full({_wrap(arg, ATOM)}.shape, {p.scalar(body).text})")
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
    return Code(f"{_wrap(p(e.parent), ATOM)}[{', '.join(parts)}]")


def _element(p, e):
    return Code(f"{_wrap(p(e.parent), ATOM)}[{p.size(e.i).text}, {p.size(e.j).text}]")


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
            had = min(pairs, key=_transposes)
            return _scaled(p, coeff, Code(f"{_wrap(p(had), ATOM)}.sum()"))
    return p.call("np.trace", p(e.arg))


def _sized(fn):
    return lambda p, e: Code(f"{fn}(({_shape(p, e)}))")


def _one_arg(fn):
    return lambda p, e: p.call(fn, p(e.args[0]))


MATRIX_RULES = {
    sp.MatrixSymbol: lambda p, e: _symbol(p, e),
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
}


# --- scalars (also element-wise bodies, where a variable stands for a whole array) ----------

def _symbol(p, e):
    if e in p.bound:
        return p.use(p.bound[e])
    raise _fail(e, "unknown symbol")


def _number(p, e):
    if e in (sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise _fail(e, "not a finite number")
    if e.is_Integer:
        return Code(str(int(e)), ATOM if e >= 0 else UNARY)
    if e.is_Rational:
        text = f"{abs(int(e.p))} / {int(e.q)}"
        return Code(f"-{text}" if e < 0 else text, MUL)
    value = float(e)
    return Code(repr(value), ATOM if value >= 0 else UNARY)


def _constant(p, e):
    named = {sp.pi: "np.pi", sp.E: "np.e"}
    return Code(named.get(e, repr(float(e))))


def _mul(p, e):
    coeff = e.as_coeff_Mul()[0]
    if coeff.could_extract_minus_sign():
        inner = p(-e)  # -a * b and -a / b equal -(a * b) and -(a / b) exactly
        if inner.prec == MUL:
            return Code(f"-{inner.text}", MUL)
        return Code(f"-{_wrap(inner, UNARY)}", UNARY)
    num, den = sp.fraction(e, exact=True)
    nums = sp.Mul.make_args(num)
    dens = sp.Mul.make_args(den)
    text = " * ".join([_wrap(p.scalar(nums[0]), MUL)] +
                      [_wrap(p.scalar(a), UNARY) for a in nums[1:]])
    if den != 1:
        dtext = " * ".join(_wrap(p.scalar(a), UNARY) for a in dens)
        text += f" / {dtext if len(dens) == 1 else f'({dtext})'}"
    return Code(text, MUL)


def _add(p, e):
    return _sum_text(p, list(e.as_ordered_terms()))


def _pow(p, e):
    base, k = e.base, e.exp
    if base == sp.E:
        return p.call("np.exp", p.scalar(k))
    if k == sp.S.Half:
        return p.call("np.sqrt", p.scalar(base))
    if k.is_Number and k < 0:
        return Code(f"1 / {_wrap(p(base ** -k), UNARY)}", MUL)
    return Code(f"{_wrap(p.scalar(base), ATOM)} ** {_wrap(p.scalar(k), UNARY)}", POW)


def _function(fn):
    return lambda p, e: p.call(fn, *(p.scalar(a) for a in e.args))


def _helper(name):
    return lambda p, e: p.helper(name, p.scalar(e.args[0]))


def _nary(fn):
    def rule(p, e):
        codes = [p.scalar(a) for a in e.args]
        out = codes[0]
        for c in codes[1:]:
            out = p.call(fn, out, c)
        return out
    return rule


def _compare(op):
    return lambda p, e: Code(f"np.where({_wrap(p.scalar(e.lhs), ADD)} {op} "
                             f"{_wrap(p.scalar(e.rhs), ADD)}, 1.0, 0.0)")


def _piecewise(p, e):
    out = Code("np.nan")  # SymPy's value where no condition holds
    for expr, cond in reversed(e.args):
        if cond == sp.true:
            out = p.scalar(expr)
        else:
            out = p.call("np.where", p.scalar(cond), p.scalar(expr), out)
    return out


def _heaviside(p, e):
    h0 = e.args[1] if len(e.args) > 1 else sp.S.Half
    return p.call("np.heaviside", p.scalar(e.args[0]), p.scalar(h0))


SCALAR_RULES = {
    sp.Symbol: _symbol,
    sp.Number: _number,
    sp.NumberSymbol: _constant,
    type(sp.I): lambda p, e: Code("1j"),
    BooleanTrue: lambda p, e: Code("True"),
    BooleanFalse: lambda p, e: Code("False"),
    sp.Add: _add,
    sp.Mul: _mul,
    sp.Pow: _pow,
    sp.log: _function("np.log"),
    sp.exp: _function("np.exp"),
    sp.sin: _function("np.sin"),
    sp.cos: _function("np.cos"),
    sp.tan: _function("np.tan"),
    sp.sinh: _function("np.sinh"),
    sp.cosh: _function("np.cosh"),
    sp.tanh: _function("np.tanh"),
    sp.asin: _function("np.arcsin"),
    sp.acos: _function("np.arccos"),
    sp.atan: _function("np.arctan"),
    sp.floor: _function("np.floor"),
    sp.ceiling: _function("np.ceil"),
    sp.Abs: _function("np.abs"),
    sp.sign: _function("np.sign"),
    sp.re: _function("np.real"),
    sp.im: _function("np.imag"),
    sp.Max: _nary("np.maximum"),
    sp.Min: _nary("np.minimum"),
    sp.StrictGreaterThan: _compare(">"),
    sp.GreaterThan: _compare(">="),
    sp.StrictLessThan: _compare("<"),
    sp.LessThan: _compare("<="),
    sp.Equality: _compare("=="),
    sp.Unequality: _compare("!="),
    sp.And: _nary("np.logical_and"),
    sp.Or: _nary("np.logical_or"),
    sp.Not: _function("np.logical_not"),
    sp.Piecewise: _piecewise,
    sp.KroneckerDelta: lambda p, e: _compare("==")(p, sp.Eq(*e.args[:2], evaluate=False)),
    sp.Heaviside: _heaviside,
    sigmoid: _helper("sigmoid"),
    relu: _helper("relu"),
    step: _helper("step"),
}

RULES = {**MATRIX_RULES, **SCALAR_RULES}


# ---------------------------------------------------------------------------------------------
# common subexpressions

def _children(e):
    if isinstance(e, ElementwiseApplyFunction):
        return (e.expr,)
    if isinstance(e, (sp.MatrixSymbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity, sp.Sum)) or \
            not isinstance(e, sp.Basic) or e.is_Atom:
        return ()
    if isinstance(e, (sp.MatrixSlice, MatrixElement)):
        return (e.parent,)
    if isinstance(e, (sp.MatPow, sp.HadamardPower)):
        return (e.base,)
    if isinstance(e, Softmax):
        return (e.arg,)
    if isinstance(e, sp.BlockMatrix):
        return tuple(e.blocks)
    if isinstance(e, sp.ImmutableDenseMatrix):
        return tuple(e)
    return e.args


def _count(exprs):
    """Occurrences of every subexpression; below a repeated one its children count once."""
    counts = {}
    stack = list(reversed(exprs))
    while stack:
        e = stack.pop()
        key = _oriented(e)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            stack.extend(reversed(_children(e)))
    return counts


def _trivial(e, dims):
    """Not worth a temporary: names, views of names, and arithmetic of sizes."""
    if not isinstance(e, sp.Basic) or e.is_Atom or \
            isinstance(e, (sp.MatrixSymbol, sp.OneMatrix, sp.ZeroMatrix, sp.Identity)):
        return True
    if isinstance(e, sp.Transpose):
        return isinstance(e.arg, sp.MatrixSymbol)
    if isinstance(e, (sp.MatrixSlice, MatrixElement)):
        return isinstance(e.parent, sp.MatrixSymbol)
    return not getattr(e, "is_Matrix", False) and e.free_symbols <= dims


def _collapse(e):
    """Rebuild ``e`` with double transposes removed."""
    if isinstance(e, sp.Transpose) and isinstance(e.arg, sp.Transpose):
        return _collapse(e.arg.arg)
    if isinstance(e, sp.Transpose) and isinstance(e.arg, sp.MatrixSlice) and \
            isinstance(e.arg.parent, sp.Transpose):   # (Aᵀ[r, c])ᵀ = A[c, r]
        s = e.arg
        return sp.MatrixSlice(_collapse(s.parent.arg), s.colslice, s.rowslice)
    if not isinstance(e, sp.Basic) or not e.args or isinstance(e, sp.MatrixSymbol):
        return e
    args = [_collapse(a) for a in e.args]
    return e if all(a is b for a, b in zip(args, e.args)) else e.func(*args)


# ---------------------------------------------------------------------------------------------
# the module

class _Temps:
    def __init__(self, names):
        self.names, self.count = names, 0

    def new(self, wanted=None):
        if wanted is not None:
            return self.names.new(wanted)
        while True:
            self.count += 1
            if f"t{self.count}" not in self.names.taken:
                return self.names.new(f"t{self.count}")


def _choose_wrt(derivation, wrt):
    if wrt is None:
        return tuple(derivation.wrt)
    chosen = []
    for x in wrt:
        match = [w for w in derivation.wrt if w == x or w.name == getattr(x, "name", x)]
        if not match:
            raise TracegradError(f"no derivative with respect to '{x}' was derived")
        chosen.append(match[0])
    return tuple(chosen)


def _dim_sources(dims, leaves):
    """{dim: (leaf, axis, solution in terms of SIZE)}: where each size is read off an array."""
    size = sp.Symbol("size_")
    out = {}
    matrices = [s for s in leaves if isinstance(s, sp.MatrixSymbol)]
    for d in dims:
        found = [(s, k, size) for s in matrices for k in (0, 1) if s.shape[k] == d]
        if not found:
            for s in matrices:
                for k in (0, 1):
                    side = sp.sympify(s.shape[k])
                    if d in side.free_symbols and side.free_symbols == {d}:
                        sol = sp.solve(sp.Eq(side, size), d)
                        if len(sol) == 1:
                            found.append((s, k, sol[0]))
        out[d] = found
    return out, size


def _wrap_dict(entries, indent):
    """A dict display split over lines of at most ~95 characters."""
    lines, line = [], indent + "return {"
    for k, (key, name) in enumerate(entries):
        item = f'"{key}": {name}' + ("," if k < len(entries) - 1 else "}")
        if len(line) + len(item) + 1 > 95 and not line.endswith("{"):
            lines.append(line.rstrip())
            line = indent + "        "
        line += item + " "
    lines.append(line.rstrip())
    return lines


def generate_module(derivation, title=None, wrt=None):
    """Source text of a standalone numpy module with ``forward`` and ``backward``.

    ``title`` names the source in the module docstring (e.g. "model 'vardhan'");
    ``wrt`` (symbols or names, default all of ``derivation.wrt``) chooses the gradients
    ``backward`` returns; adjoints no chosen gradient needs are not computed.
    """
    program = derivation.program
    defs = list(program.definitions)
    wrt = _choose_wrt(derivation, wrt)
    compact = derivation.forms["compact"]
    names = _Names()
    dims = sorted(program.dimensions(), key=str)
    dimset = set(dims)
    leaves = list(program.leaves())
    for x in wrt:
        if x not in leaves:
            leaves.append(x)
    bound, kinds = {}, {}
    for s in leaves:
        bound[s] = names.new(s.name)
        kinds[bound[s]] = ("value", s)
    for d in dims:
        bound[d] = names.new(d.name)
        kinds[bound[d]] = ("dim", d)
    for s, _ in defs:
        bound[s] = names.new(s.name)
        kinds[bound[s]] = ("cache", s.name)

    # backward statements in gradient layout: dN = T(G_N) with every G_M -> dMᵀ
    grad_symbol, subs = {}, {}
    for s, _ in defs:
        G = derivation.adjoint_symbols.get(s)
        if G is None or s not in compact:
            continue
        if isinstance(s, sp.MatrixSymbol):
            grad_symbol[s] = sp.MatrixSymbol(f"\0d:{s.name}", *s.shape)
            subs[G] = sp.Transpose(grad_symbol[s])
        else:
            grad_symbol[s] = sp.Symbol(f"\0d:{s.name}")
            subs[G] = grad_symbol[s]

    def layout(expr):
        return _collapse(T(_collapse(sp.sympify(expr).xreplace(subs))))

    exprs = {s: layout(compact[s]) for s in grad_symbol}
    exprs.update({x: layout(compact[x]) for x in wrt})
    inverse = {g: s for s, g in grad_symbol.items()}
    deps = {k: {inverse[g] for g in e.free_symbols if g in inverse} for k, e in exprs.items()}
    needed, todo = set(), [d for x in wrt for d in deps[x]]
    while todo:
        s = todo.pop()
        if s not in needed:
            needed.add(s)
            todo.extend(deps[s])
    order, done = [], set()
    remaining = [s for s, _ in reversed(defs) if s in needed]
    waiting = [x for x in wrt if deps[x]]
    while remaining:
        ready = next((s for s in remaining if deps[s] <= done), None)
        if ready is None:
            raise TracegradError("the adjoints depend on each other in a cycle")
        remaining.remove(ready)
        order.append(ready)
        done.add(ready)
        for x in [x for x in waiting if deps[x] <= done]:
            waiting.remove(x)
            order.append(x)
    order += [x for x in wrt if not deps[x]]
    out_name = {}
    for k in order:
        out_name[k] = names.new(f"d{k.name}")
    for s in grad_symbol:
        if s in out_name:
            bound[grad_symbol[s]] = out_name[s]
            kinds[out_name[s]] = ("local", None)

    # forward: shared within it, or needed again by backward
    temps = _Temps(names)
    backward_exprs = [exprs[k] for k in order]
    counts = _count([e for _, e in defs])
    rhs = {_oriented(e) for _, e in defs}
    forced, stack = set(), list(backward_exprs)
    while stack:        # the largest forward subexpressions backward needs again
        e = stack.pop()
        key = _oriented(e)
        if key in rhs:
            continue
        if key in counts and not _trivial(e, dimset):
            forced.add(key)
            continue
        stack.extend(_children(e))
    shared = {e for e, n in counts.items()
              if (n > 1 or e in forced) and e not in rhs and not _trivial(e, dimset)}
    fwd = _Printer(names, bound, shared, temps)
    for s, e in defs:
        fwd.assign(bound[s], e)
        fwd.bound.setdefault(e, bound[s])
    saved = {}
    for e, name in fwd.bound.items():
        if name not in kinds:          # a temporary of forward
            kinds[name] = ("cache", name)
            saved[e] = name

    # backward: reuse forward values, share within it
    bwd_bound = dict(bound)
    bwd_bound.update({e: bound[s] for s, e in defs if e not in bwd_bound})
    bwd_bound.update(saved)
    bcounts = _count(backward_exprs)
    bshared = {e for e, n in bcounts.items() if n > 1 and not _trivial(e, dimset)}
    bwd = _Printer(names, bwd_bound, bshared, temps)
    for k in order:
        bwd.assign(out_name[k], exprs[k])
        if k in grad_symbol:
            bwd.bound[grad_symbol[k]] = out_name[k]

    cache_names = [bound[s] for s, _ in defs] + [n for n in saved.values()]
    used_by_backward = set(bwd.used)
    returned = [(s.name, bound[s]) for s, _ in defs] + \
        [(n, n) for n in saved.values() if n in used_by_backward]

    sources, size_ = _dim_sources(dims, leaves)
    forward_text = _function(
        "forward(values)",
        ["Every forward name, in program order, from the inputs and parameters in values."] +
        (["", "Also returned, for backward to reuse: " +
          ", ".join(n for n in saved.values() if n in used_by_backward) + "."]
         if any(n in used_by_backward for n in saved.values()) else []),
        fwd, kinds, leaves, dims, sources, size_, [],
        _wrap_dict(returned, "    "))
    backward_text = _function(
        "backward(values, cache=None)",
        ["Gradients ∇_X J (the shape of X) of " + ", ".join(x.name for x in wrt) + ".",
         "",
         "cache: what forward(values) returned (computed here when None)."],
        bwd, kinds, leaves, dims, sources, size_, cache_names,
        _wrap_dict([(x.name, out_name[x]) for x in wrt], "    "),
        prologue=["    if cache is None:", "        cache = forward(values)"])

    helpers = sorted(fwd.helpers | bwd.helpers)
    parts = [_docstring(derivation, title, defs, wrt, out_name, grad_symbol), "import numpy as np", ""]
    for h in helpers:
        parts += ["", HELPERS[h], ""]
    parts += ["", forward_text, "", "", backward_text]
    return "\n".join(parts) + "\n"


def _function(signature, doc, printer, kinds, leaves, dims, sources, size_, cache_order, ret,
              prologue=()):
    used = set(printer.used)
    dims_used = [d for d in dims if kinds.get(printer.bound.get(d)) and printer.bound[d] in used]
    dim_lines, extra_leaves = [], set()
    for d in dims_used:
        options = sources[d]
        if options:
            # prefer an array the function reads anyway
            s, k, sol = next((o for o in options if printer.bound[o[0]] in used), options[0])
            extra_leaves.add(s)
            p = _Printer(printer.names, {size_: f"{printer.bound[s]}.shape[{k}]"}, set(), None)
            dim_lines.append(f"    {printer.bound[d]} = {p.size(sol).text}")
        else:
            dim_lines.append(f'    {printer.bound[d]} = values["{d.name}"]')
    lines = [f"def {signature}:", f'    """{doc[0]}'] + \
        [f"    {line}".rstrip() for line in doc[1:]] + ['    """' if len(doc) > 1 else None]
    if len(doc) == 1:
        lines = lines[:-1]
        lines[-1] += '"""'
    lines += list(prologue)
    for s in leaves:
        name = printer.bound[s]
        if name in used or s in extra_leaves:
            lines.append(f'    {name} = values["{s.name}"]')
    lines += dim_lines
    for name in cache_order:
        if name in used:
            key = kinds[name][1]
            lines.append(f'    {name} = cache["{key}"]')
    lines += [f"    {line}" for text in printer.lines for line in text.split("\n")]
    lines += ret
    return "\n".join(lines)


def _docstring(derivation, title, defs, wrt, out_name, grad_symbol):
    source = title or "a tracegrad derivation"
    eqs = []
    for s, e in defs:
        eqs.append(f"    {s.name} = {to_text(e, 'unicode')}")
    lines = [
        f'"""Forward and backward pass of {source}, generated by tracegrad.',
        "",
        "Forward equations (program order; the last is the scalar cost):",
        "",
        *eqs,
        "",
        "Convention: values maps every input and parameter name to a 2-D numpy array (a scalar",
        "to a number); sizes are read off the arrays' shapes.  forward(values) returns every",
        "forward name; backward(values, cache) returns the gradient ∇_X J = (∂J/∂X)ᵀ, of the",
        "shape of X, for X in: " + ", ".join(x.name for x in wrt) + ".",
        "Inside backward, dN is ∇_N J (the shape of N): the transpose of the derivation's",
        "numerator-layout adjoint G_N, so each line is one step of backpropagation.",
        "",
        "Generated code: change the model and generate again rather than editing this file.",
        '"""',
    ]
    return "\n".join(lines)
