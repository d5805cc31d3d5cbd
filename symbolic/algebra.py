"""Constructors that keep adjoints in one normal form, so equal terms look equal.

Transposes sit on symbols only (``(AB)ᵀ = BᵀAᵀ`` is applied eagerly), scalar factors stand in
front of products, and all-ones factors of a Hadamard product are dropped.

Products, sums and Hadamard products take SymPy's canonical form (what ``doit`` gives), but are
built here: SymPy's constructors and canonicalisers re-derive each operand's shape from its
operands, down to the symbols, many times per node, so every node of an L-layer result would
cost O(L).  Here shapes come from ``shape_of`` (memoised per node) and nodes are made with
``node``; tests/test_algebra.py holds the results equal to SymPy's own.
"""
import functools
from collections import Counter

import sympy as sp
from sympy.core.operations import AssocOp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .functions import Softmax, elementwise
from .shapes import is_matrix, shape_of


@functools.lru_cache(maxsize=1 << 16)
def T(x):
    """xᵀ with the transpose pushed down to the symbols."""
    if not is_matrix(x):
        return x
    if isinstance(x, sp.Transpose):
        return x.arg
    if isinstance(x, (sp.OneMatrix, sp.ZeroMatrix)):
        return type(x)(x.shape[1], x.shape[0])
    if isinstance(x, sp.Identity):
        return x
    if isinstance(x, sp.MatMul):
        coeff, mats = x.as_coeff_matrices()
        return scale(coeff, matmul(*[T(a) for a in reversed(mats)]))
    if isinstance(x, sp.MatAdd):
        return add(*[T(a) for a in x.args])
    if isinstance(x, sp.HadamardProduct):
        return hadamard(*[T(a) for a in x.args])
    if isinstance(x, sp.HadamardPower):
        return node(sp.HadamardPower, T(x.base), x.exp)
    if isinstance(x, ElementwiseApplyFunction):
        return node(type(x), x.function, T(x.expr))
    if isinstance(x, sp.Inverse):
        return sp.Inverse(T(x.arg))
    if isinstance(x, sp.MatPow):
        return sp.MatPow(T(x.base), x.exp)
    if isinstance(x, Softmax):
        return Softmax(T(x.arg), 1 - x.axis)
    if isinstance(x, sp.BlockMatrix):
        b = x.blocks
        return sp.BlockMatrix([[T(b[i, j]) for i in range(b.rows)] for j in range(b.cols)])
    return node(sp.Transpose, x)


def node(cls, *args):
    """``cls(*args)`` for operands in normal form whose shapes ``shape_of`` checks, made without
    SymPy's constructor (which re-derives the operands' shapes down to the symbols).

    Equal nodes are one object (hash-consing), so comparing two deep results stops at their
    first shared operand instead of walking both to the symbols."""
    made = sp.Basic.__new__(cls, *args)
    if len(_NODES) > 1 << 18:
        _NODES.clear()
    return _NODES.setdefault(made, made)


_NODES = {}


UNCHECKED = (sp.MatMul, sp.MatAdd, sp.HadamardProduct, sp.HadamardPower, ElementwiseApplyFunction)


def rebuild(x, args):
    """``x.func(*args)``, the same node with new operands (matrix operations made by ``node``)."""
    if all(a is b for a, b in zip(args, x.args)):
        return x
    return node(type(x), *args) if isinstance(x, UNCHECKED) else x.func(*args)


def power(x, p):
    """X^∘p, with X^∘1 = X and X^∘0 = 1."""
    if p == 1:
        return x
    if p == 0:
        return sp.OneMatrix(*shape_of(x))
    return node(sp.HadamardPower, x, sp.sympify(p))


def scale(c, x):
    """c·X; a zero factor gives the zero matrix of X's shape."""
    if c == 1:
        return x
    if c == 0:
        return zeros_like(x) if is_matrix(x) else sp.Integer(0)
    if is_matrix(x):
        # c * x is MatMul(c, x).doit(): the same, with the deep part memoised
        return matrix_product([c, x if isinstance(x, sp.MatMul) else doit(x)])
    return c * x


def doit(x):
    """``x.doit()``, memoised per subexpression (SymPy's own recursion re-walks shared tails).

    The operations the engine builds are handled by mirrors of SymPy's own ``doit`` methods,
    memoised; a tree holding anything else goes to SymPy's ``doit`` whole.
    """
    out = _doit(x)
    return x.doit() if out is None else out


@functools.lru_cache(maxsize=1 << 16)
def _doit(x):
    """SymPy's ``x.doit()`` (deep) step by step, or None where it is not mirrored here."""
    method = type(x).doit
    if method is _DOIT["atom"]:
        return x
    if method is _DOIT["transpose"]:
        arg = _doit(x.arg)
        if arg is None:
            return None
        transpose = getattr(arg, "_eval_transpose", None)
        result = transpose() if transpose is not None else None
        return result if result is not None else sp.Transpose(arg)
    if method is _DOIT["elementwise"]:
        expr = _doit(x.expr)
        if expr is None or isinstance(expr, (sp.MatrixBase, ElementwiseApplyFunction)):
            return None
        return expr if isinstance(x.function, sp.Lambda) and x.function.is_identity else x
    if method not in _MIRRORED:
        return None
    args = [_doit(a) if isinstance(a, sp.Basic) else a for a in x.args]
    if any(a is None for a in args):
        return None
    if method is _DOIT["basic"]:
        return x.func(*args)
    if method is _DOIT["assoc"] or method is _DOIT["ones"]:
        return x.func(*args, evaluate=True)
    if any(isinstance(a, sp.MatrixBase) for a in args):   # explicit matrices: SymPy's own rules
        return None
    return {"matmul": matrix_product, "matadd": matrix_sum, "hadamard": entrywise_product}[_MIRRORED[method]](args)


_DOIT = {"atom": sp.Atom.doit, "basic": sp.Basic.doit, "assoc": AssocOp.doit, "ones": sp.OneMatrix.doit,
         "matmul": sp.MatMul.doit, "matadd": sp.MatAdd.doit, "hadamard": sp.HadamardProduct.doit,
         "transpose": sp.Transpose.doit, "elementwise": ElementwiseApplyFunction.doit}
_MIRRORED = {_DOIT[k]: k for k in ("basic", "assoc", "ones", "matmul", "matadd", "hadamard")}


def matrix_product(args):
    """SymPy's canonical ``MatMul(*args).doit(deep=False)``: the scalar coefficient in front,
    nested products flattened, identities dropped, a zero factor giving the zero matrix,
    1₍a,k₎ 1₍k,b₎ = k 1₍a,b₎, A A = A² and A A⁻¹ = I for square A, and a rational multiple of
    a sum distributed over its terms — the rules applied in SymPy's order."""
    if any(isinstance(a, sp.MatrixBase) for a in args):     # explicit matrices: SymPy multiplies them
        return sp.MatMul(*args).doit(deep=False)
    coeff = sp.Mul(*[a for a in args if not is_matrix(a)])
    mats = [a for a in args if is_matrix(a)]
    rows, cols = shape_of(mats[0])[0], shape_of(mats[-1])[1]
    while True:
        if len(mats) == 1 and coeff != 1 and coeff.is_Rational and isinstance(mats[0], sp.MatAdd):
            return node(sp.MatAdd, *[matrix_product([coeff, t]) for t in mats[0].args])
        if coeff == 0 or any(isinstance(a, sp.ZeroMatrix) for a in mats):
            return sp.ZeroMatrix(rows, cols)
        kept = [a for a in mats if not isinstance(a, sp.Identity)] or mats[:1]
        kept, k = _combine_ones(kept)
        kept = _combine_powers(kept)
        if kept != mats:
            coeff, mats = coeff * k, kept
            continue
        flat = []
        for a in mats:
            if isinstance(a, sp.MatMul):
                c, ms = a.as_coeff_matrices()
                coeff, flat = coeff * c, flat + list(ms)
            else:
                flat.append(a)
        if flat == mats:
            break
        mats = flat
    if coeff == 1 and len(mats) == 1:
        return mats[0]
    return node(sp.MatMul, *([coeff] if coeff != 1 else []), *mats)


def _combine_ones(mats):
    """1₍a,k₎ 1₍k,b₎ = k 1₍a,b₎: (the factors, the collected k)."""
    out, k = [mats[0]], sp.Integer(1)
    for b in mats[1:]:
        a = out[-1]
        if isinstance(a, sp.OneMatrix) and isinstance(b, sp.OneMatrix):
            out[-1], k = sp.OneMatrix(a.shape[0], b.shape[1]), k * a.shape[1]
        else:
            out.append(b)
    return out, k


def _combine_powers(mats):
    """Aᵖ A^q = A^(p+q) and A A⁻¹ = I for adjacent square factors (SymPy's combine_powers)."""
    out = [mats[0]]
    for b in mats[1:]:
        a = out[-1]
        if not (_square(a) and _square(b)):
            out.append(b)
            continue
        (a_base, a_exp), (b_base, b_exp) = _power_of(a), _power_of(b)
        if a_base == b_base:
            out[-1] = sp.MatPow(a_base, a_exp + b_exp).doit(deep=False)
        elif a_base == _inverse_of(b_base):
            out[-1] = sp.MatPow(a_base, a_exp - b_exp).doit(deep=False)
        else:
            out.append(b)
    return out


def _square(a):
    rows, cols = shape_of(a)
    return rows == cols


def _power_of(a):
    return (a.base, a.exp) if isinstance(a, sp.MatPow) else (a, sp.Integer(1))


def _inverse_of(a):
    """SymPy's ``a.inverse()`` for the factors it takes apart: a symbol and an inverse."""
    if isinstance(a, sp.Inverse):
        return a.arg
    return sp.Inverse(a) if isinstance(a, sp.MatrixSymbol) else None


def flattened(args, cls):
    """The operands of nested ``cls`` nodes (sums, Hadamard products) in order, as one list."""
    out, todo = [], list(reversed(args))
    while todo:
        a = todo.pop()
        if isinstance(a, cls):
            todo.extend(reversed(a.args))
        else:
            out.append(a)
    return out


def dag_nodes(expr):
    """Every node of the expression DAG of ``expr`` once (shared subexpressions once)."""
    seen, stack = set(), [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, sp.Basic) and node not in seen:
            seen.add(node)
            yield node
            stack.extend(node.args)


def matrix_sum(args):
    """SymPy's canonical ``MatAdd(*args).doit(deep=False)``: nested sums flattened, zeros dropped,
    like terms collected (2A − A = A), the terms in SymPy's sort order."""
    if any(isinstance(a, sp.MatrixBase) for a in args):     # explicit matrices: SymPy adds them
        return sp.MatAdd(*args).doit(deep=False)
    terms = flattened(args, sp.MatAdd)
    shape = shape_of(terms[0])
    counts = {}
    for t in terms:
        if isinstance(t, sp.ZeroMatrix):
            continue
        coeff, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.Integer(1), [t])
        key = tuple(mats)
        counts[key] = counts.get(key, 0) + coeff
    terms = [t for t in (matrix_product([c, *mats]) if c != 1 else (mats[0] if len(mats) == 1 else node(sp.MatMul, *mats))
                         for mats, c in counts.items()) if not isinstance(t, sp.ZeroMatrix)]
    if not terms:
        return sp.ZeroMatrix(*shape)
    if len(terms) == 1:
        return terms[0]
    return node(sp.MatAdd, *sorted(terms, key=sp.default_sort_key))


def entrywise_product(args):
    """SymPy's canonical ``HadamardProduct(*args).doit(deep=False)``: flattened, all-ones
    factors dropped, a zero factor giving the zero matrix, A ∘ A = A^∘2, factors sorted."""
    factors = flattened(args, sp.HadamardProduct)
    shape = shape_of(factors[0])
    factors = [f for f in factors if not isinstance(f, sp.OneMatrix)] or factors[:1]
    if any(isinstance(f, sp.ZeroMatrix) for f in factors):
        return sp.ZeroMatrix(*shape)
    factors = [base if k == 1 else node(sp.HadamardPower, base, sp.Integer(k)) for base, k in Counter(factors).items()]
    if len(factors) == 1:
        return factors[0]
    return node(sp.HadamardProduct, *sorted(factors, key=sp.default_sort_key))


def matmul(*factors):
    """A₁⋯Aₙ in canonical form (an identity factor is dropped)."""
    factors = [f for f in factors if not isinstance(f, sp.Identity)] or factors[:1]
    return matrix_product(factors) if len(factors) > 1 else factors[0]


def is_zero(x):
    """Is ``x`` exactly zero: the zero matrix (of any shape) or the number 0?"""
    return isinstance(x, sp.ZeroMatrix) or (not is_matrix(x) and x == 0)


def add(*terms):
    """A + B + …, zero terms dropped; a sum of zero matrices is the zero matrix of their shape
    (not the number 0, which would lose the shape), a sum of no terms or of zero numbers is 0."""
    kept = [t for t in terms if not is_zero(t)]
    if not kept:
        return next((t for t in terms if isinstance(t, sp.ZeroMatrix)), sp.Integer(0))
    terms = kept
    if len(terms) == 1:
        return terms[0]
    return matrix_sum(terms) if is_matrix(terms[0]) else sp.Add(*terms)


def hadamard(*factors):
    """A ∘ B ∘ …, with scalar coefficients pulled in front and all-ones factors dropped."""
    coeff, mats = sp.Integer(1), []
    for f in factors:
        if isinstance(f, sp.MatMul):
            c, rest = f.as_coeff_matrices()
            coeff, f = coeff * c, matmul(*rest)
        if isinstance(f, sp.HadamardProduct):
            mats.extend(f.args)
        elif isinstance(f, sp.ZeroMatrix):
            return f
        elif not isinstance(f, sp.OneMatrix):
            mats.append(f)
    if not mats:
        body = sp.OneMatrix(*shape_of(factors[0]))
    else:
        body = mats[0] if len(mats) == 1 else node(sp.HadamardProduct, *mats)
    return scale(coeff, body)


def trace_of(x):
    """tr(X), with tr(0) = 0 (SymPy keeps ``Trace(0)`` unevaluated, a zero that does not compare
    equal to 0)."""
    return sp.Integer(0) if isinstance(x, sp.ZeroMatrix) else sp.Trace(x)


def submatrix(x, rows, cols):
    """x[r₀:r₁, c₀:c₁] (unit steps): the whole of x is x itself, and a part of a part is one
    part of the whole (SymPy cannot always order symbolic bounds to compose them)."""
    while isinstance(x, sp.MatrixSlice) and x.rowslice[2] == 1 and x.colslice[2] == 1:
        rows = (x.rowslice[0] + rows[0], x.rowslice[0] + rows[1])
        cols = (x.colslice[0] + cols[0], x.colslice[0] + cols[1])
        x = x.parent
    full_rows, full_cols = shape_of(x)
    rows, cols = tuple(sp.expand(b) for b in rows), tuple(sp.expand(b) for b in cols)
    if rows[0] == 0 and rows[1] == full_rows and cols[0] == 0 and cols[1] == full_cols:
        return x
    return sp.MatrixSlice(x, (*rows, 1), (*cols, 1))


@functools.lru_cache(maxsize=1 << 16)
def transposes(x):
    """How many transposes ``x`` holds (shared subexpressions counted once per occurrence)."""
    if not isinstance(x, sp.Basic):
        return 0
    return isinstance(x, sp.Transpose) + sum(transposes(a) for a in x.args)


def fewer_transposes(x):
    """Of X and Xᵀ written out, the one with fewer transposes: X itself on a tie.  Printing
    and compiling a matrix by the orientation with fewer transposes reads and computes better:
    the normal form pushes transposes down, so W1ᵀX + b1 1ᵀ also appears as XᵀW1 + 1 b1ᵀ."""
    if not is_matrix(x) or isinstance(x, sp.MatrixSymbol):
        return x
    flipped = T(x)
    return flipped if transposes(flipped) < transposes(x) else x


def oriented(expr):
    """``expr`` with every product, sum, Hadamard product and element-wise node in the
    orientation with fewer transposes (``fewer_transposes``), written Transpose(X) where
    needed — so a compiled pass computes a value and its transpose once."""
    memo = {}

    def walk(e):
        if e in memo:
            return memo[e]
        if not isinstance(e, sp.Basic) or not e.args or isinstance(e, (sp.MatrixSymbol, sp.Lambda)):
            out = e
        elif isinstance(e, (sp.MatMul, sp.MatAdd, sp.HadamardProduct, ElementwiseApplyFunction)) and \
                fewer_transposes(e) is not e:
            out = sp.Transpose(walk(fewer_transposes(e)))
        else:
            out = rebuild(e, [walk(a) for a in e.args])
        memo[e] = out
        return out
    return walk(expr)


def zeros_like(x):
    return sp.ZeroMatrix(*shape_of(x))


def ones(rows, cols):
    return sp.OneMatrix(rows, cols)


def memoised_walk(step):
    """``walk(x, memo=None)``: ``step(x, memo)`` once per distinct matrix subexpression of ``x``
    (``memo``, a dict, may be shared across calls), since the results of a deep network share
    their tails; scalars and atoms are returned as they are.  ``step`` is idempotent, so a
    result is its own result too: a later expression built on it is not walked again below it."""
    @functools.wraps(step)
    def walk(x, memo=None):
        if not is_matrix(x) or not x.args:
            return x
        memo = {} if memo is None else memo
        if x not in memo:
            out = memo[x] = step(x, memo)
            memo.setdefault(out, out)
        return memo[x]
    return walk


@memoised_walk
def normal(x, memo):
    """``x`` rebuilt bottom-up with the constructors above (after a substitution)."""
    args = [normal(a, memo) if isinstance(a, sp.Basic) else a for a in x.args]
    if isinstance(x, sp.Transpose):
        return T(args[0])
    if isinstance(x, sp.MatMul):
        coeff = sp.Mul(*[a for a in args if not is_matrix(a)])
        return scale(coeff, matmul(*[a for a in args if is_matrix(a)]))
    if isinstance(x, sp.MatAdd):
        return add(*args)
    if isinstance(x, sp.HadamardProduct):
        return hadamard(*args)
    return rebuild(x, args)


def substitute(expr, rule, memo=None):
    """``expr.xreplace(rule)`` (the same result), each subexpression rebuilt once per ``memo``.

    SymPy's ``xreplace`` walks a shared subexpression once per occurrence; the results of a
    deep network share long tails, so walking each once keeps their expansion linear.  The
    walk is iterative: an expanded result of a deep network nests deeper than Python recurses.
    """
    if not rule:
        return expr
    memo = {} if memo is None else memo

    def known(x):
        return x in rule or x in memo or not x.args

    def result(x):
        return rule[x] if x in rule else memo.get(x, x)
    stack = [expr]
    while stack:
        x = stack[-1]
        if known(x):
            stack.pop()
            continue
        todo = [a for a in x.args if not known(a)]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        memo[x] = rebuild(x, [result(a) for a in x.args])
    return result(expr)
