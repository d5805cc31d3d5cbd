"""A first-order rounding-error model, built as an expression: ``rounding_bound(e)`` is an
expression ε(e) with  |fl(e) − e| ≲ u·ε(e)  entry by entry (u = 2⁻⁵³, inputs exact).

It is the running-error analysis of Higham (Accuracy and Stability of Numerical Algorithms,
§3) written once per operation, so a check's tolerance follows from how the checked formula is
computed at the checked point instead of a fixed atol/rtol.  ``None`` stands for "exact".
The result is an ordinary SymPy expression, evaluated by the same compiler as the formula.

A sum of k terms contributes √(k − 1)·(Σ|terms|), not (k − 1)·(Σ|terms|): the probabilistic
bound of Higham & Mary (SIAM J. Sci. Comput. 41, 2019), which holds with probability
≥ 1 − 2e^{−λ²/2} for the constant λ the checker applies (``gradcheck.SAFETY``).  The worst
case is thousands of times too pessimistic for wide layers and would hide real bugs.

``ProgramBounds`` applies the model to a straight-line program (each defined name gets an error
symbol, defined by the rule of its definition) and also bounds what a complex step computes:
the tangent ṅ of every node along a direction with |v| ≤ 1 (``tangents``), with T(n) ≥ |ṅ| and
the rounding error D(n) of the computed tangent (the same rules applied to the tangent's
expression, the magnitudes of tangents replaced by T).
"""
import functools
import math

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.symbolic.algebra import dag_nodes
from tracegrad.symbolic.dispatch import Dispatch
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.functions import ELEMENT, AxisMax, Softmax, elementwise, relu, scalar_body, sigmoid, step
from tracegrad.symbolic.rules import at_max
from tracegrad.symbolic.shapes import is_matrix, shape_of

UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
EXACT_FUNCTIONS = (relu, step, sp.Heaviside, sp.Abs, sp.sign, sp.floor, sp.ceiling,
                   sp.KroneckerDelta, sp.Max, sp.Min)
BRANCHES = (relu, step, sp.Heaviside, sp.Abs, sp.sign, sp.Max, sp.Min, sp.Piecewise,
            sp.core.relational.Relational)
LIBRARY_ROUNDINGS = 2   # a libm/numpy function is within 1 ulp = 2u (exp, log, tanh measured ≤ 1.6u)
OWN_ROUNDINGS = {sigmoid: 3}   # 1/(1 + e^−x): three roundings (measured ≤ 2.8u)


class NoErrorModel(TracegradError):
    """An operation without a rule here; the checker then falls back to a relative tolerance."""


class magnitude(sp.Function):
    """|x| of a real x, inert (SymPy's ``Abs`` rewrites |b| of a 1×1 matrix b as √(b b*))."""


def absval(x):
    """|x|, entry by entry."""
    if isinstance(x, (sp.OneMatrix, sp.Identity, sp.ZeroMatrix)):
        return x
    if isinstance(x, sp.Transpose):
        return transpose(absval(x.arg))
    if isinstance(x, sp.MatMul) and _outer(x):
        return sp.MatMul(*map(absval, x.args))
    if not is_matrix(x):
        return _abs(x)
    if isinstance(x, ElementwiseApplyFunction) and _nonnegative(scalar_body(x)):
        return x
    return elementwise(magnitude, x)


def _outer(x):
    """A product whose every inner size is 1 (an outer product, a vector times a scalar): each
    entry is one product of entries, so |x| = |A₁|⋯|Aₙ| exactly."""
    mats = [a for a in x.args if is_matrix(a)]
    return all(shape_of(a)[1] == 1 for a in mats[:-1])


NONNEGATIVE = (step, relu, sigmoid, sp.exp, sp.Heaviside, magnitude, sp.Abs)


def _nonnegative(x):
    """Whether x ≥ 0 is evident: step, relu, σ, exp, |·|, 1 − σ, and products and sums of them."""
    if isinstance(x, NONNEGATIVE) or x.is_nonnegative:
        return True
    if isinstance(x, (sp.Mul, sp.Add)):
        if isinstance(x, sp.Add) and len(x.args) == 2 and sp.Integer(1) in x.args:
            other = x.args[1] if x.args[0] == 1 else x.args[0]
            return isinstance(-other, sigmoid)      # 1 − σ(x)
        return all(_nonnegative(a) for a in x.args)
    return isinstance(x, sp.Pow) and x.exp.is_even or isinstance(x, sp.Pow) and _nonnegative(x.base)


def _abs(x):
    """|x| of a scalar, without an Abs where x ≥ 0 is evident."""
    if _nonnegative(x):
        return x
    return abs(x) if x.is_number else magnitude(x)     # SymPy's Abs would rewrite what it holds


def total(terms):
    """The sum of the terms that are not None (None if none is); multiples of one all-ones matrix
    merge into one, so that a product with it stays a sum (see ``compile``), and block matrices
    of one partition add block by block."""
    terms = [t for t in terms if t is not None]
    nonzero = [t for t in terms if not isinstance(t, sp.ZeroMatrix)]
    terms = nonzero or terms[:1]
    if len(terms) > 1 and all(isinstance(t, sp.BlockMatrix) for t in terms) and \
            len({tuple(shape_of(b) for b in t.blocks) + (t.blocks.shape,) for t in terms}) == 1:
        return _blocks(terms[0], [total(parts) for parts in zip(*(t.blocks for t in terms))])
    ones = [(c, o) for c, o in map(_scaled_ones, terms) if o is not None]
    if len(ones) > 1 and len({o for _, o in ones}) == 1:
        terms = [t for t in terms if _scaled_ones(t)[1] is None] + [times(sp.Add(*(c for c, _ in ones)), ones[0][1])]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else (sp.MatAdd if is_matrix(terms[0]) else sp.Add)(*terms)


def _scaled_ones(x):
    """(c, 1) for c·1 (1 all ones), else (None, None)."""
    if isinstance(x, sp.OneMatrix):
        return sp.Integer(1), x
    if isinstance(x, sp.MatMul):
        coeff, mats = x.as_coeff_matrices()
        if len(mats) == 1 and isinstance(mats[0], sp.OneMatrix):
            return coeff, mats[0]
    return None, None


def times(c, x):
    """c·x; a multiple of an all-ones matrix stays one (c·(d·1) = (cd)·1), and of a block
    matrix a block matrix, so that products with it compile to sums (``compile``)."""
    if x is None or c is None or c == 0:
        return None
    if c == 1 or isinstance(x, sp.ZeroMatrix):
        return x
    if not is_matrix(x):
        return c * x
    if isinstance(x, sp.BlockMatrix):
        return _blocks(x, [times(c, b) for b in x.blocks])
    d, ones = _scaled_ones(x)
    return sp.MatMul(c, x) if ones is None else sp.MatMul(c * d, ones)


def transpose(x):
    """Xᵀ; (c·1)ᵀ = c·1ᵀ is again a multiple of all ones."""
    if x is None:
        return None
    if isinstance(x, (sp.OneMatrix, sp.ZeroMatrix)):
        return type(x)(x.shape[1], x.shape[0])
    d, ones = _scaled_ones(x)
    if ones is not None:
        return times(d, sp.OneMatrix(ones.shape[1], ones.shape[0]))
    return x if isinstance(x, sp.Identity) else sp.Transpose(x)


def _blocks(like, parts):
    """A block matrix partitioned as ``like`` with the blocks ``parts`` (row by row)."""
    rows, cols = like.blocks.shape
    return sp.BlockMatrix([list(parts[i * cols:(i + 1) * cols]) for i in range(rows)])


def structural(x):
    """Whether ``x`` is made of zero and (scaled) all-ones blocks only: kept as an expression,
    never named, so that a product with it stays a sum."""
    if isinstance(x, sp.BlockMatrix):
        return all(structural(b) for b in x.blocks)
    return isinstance(x, (sp.ZeroMatrix, sp.OneMatrix)) or _scaled_ones(x)[1] is not None


def matrix_product(a, b):
    """A·B; a vertical stack B = [B₁; B₂; …] multiplies column blocks of A, A[:, k:l]·Bᵢ (zero
    blocks dropped), so that a block of all ones stays a sum (a bias row [1; X], say)."""
    if isinstance(b, sp.BlockMatrix) and b.blocks.shape[1] == 1 and structural(b) and not isinstance(a, sp.BlockMatrix):
        terms, start = [], 0
        for block in b.blocks:
            rows = shape_of(block)[0]
            if not isinstance(block, sp.ZeroMatrix):
                terms.append(sp.MatMul(a[:, start:start + rows], block))
            start += rows
        return total(terms) or sp.ZeroMatrix(shape_of(a)[0], shape_of(b)[1])
    return sp.MatMul(a, b)


def chain(factors):
    factors = [f for f in factors if f != 1]
    return factors[0] if len(factors) == 1 else sp.MatMul(*factors)


class RoundingModel:
    """ε(e) for the nodes of one expression DAG (memoised: shared nodes are modelled once).
    ``leaf_errors`` seeds the memo; ``magnitudes`` gives upper bounds of |x| for symbols that
    stand for tangents (``absval`` of any expression holding them is bounded by ``upper``)."""

    def __init__(self, leaf_errors=None, magnitudes=None):
        self.memo = dict(leaf_errors or {})
        self.magnitudes = dict(magnitudes or {})
        self.uppers, self.held = {}, {}

    def __call__(self, e):
        if e not in self.memo:
            self.memo[e] = self.rule(e)
        return self.memo[e]

    def rule(self, e):
        found = RULES(e)
        if found is None:
            raise NoErrorModel(f"no rounding-error model for {type(e).__name__}")
        return found(self, e)

    def holds(self, x):
        """Whether ``x`` holds a symbol of ``magnitudes`` (memoised over the DAG)."""
        if x not in self.held:
            self.held[x] = x in self.magnitudes or any(
                self.holds(a) for a in x.args if isinstance(a, sp.Basic))
        return self.held[x]

    def abs(self, x):
        """An upper bound of |x|: |x| itself, unless x holds a tangent."""
        if not self.magnitudes or not self.holds(x):
            return absval(x)
        if x not in self.uppers:
            found = UPPER(x)
            if found is None:
                raise NoErrorModel(f"no magnitude bound for a tangent through {type(x).__name__}")
            self.uppers[x] = found(self, x)
        return self.uppers[x]

    def product(self, factors, combine, inner_size):
        """ε(PQ) = ε(P)|Q| + |P|(√k|Q| + ε(Q)) for two factors (k: length of each sum); for more,
        a bound that holds in any order of evaluation (``multi_dot`` picks its own):
        ε(A₁⋯Aₙ) = Σᵢ |A₁|⋯ε(Aᵢ)⋯|Aₙ| + (Σₛ √kₛ)|A₁|⋯|Aₙ|, kₛ the inner size at each split."""
        errs, mags = [self(f) for f in factors], [self.abs(f) for f in factors]
        if len(factors) == 2:
            (p, q), (ep, eq), (ap, aq) = factors, errs, mags
            k = sp.sqrt(inner_size(p, q))
            if eq is None:
                return combine(total([ep, times(k, ap)]), aq)
            return total([None if ep is None else combine(ep, aq), combine(ap, total([times(k, aq), eq]))])
        splits = sum(sp.sqrt(inner_size(factors[i], factors[i + 1])) for i in range(len(factors) - 1))
        terms = [functools.reduce(combine, mags[:i] + [err] + mags[i + 1:])
                 for i, err in enumerate(errs) if err is not None]
        return total(terms + [times(splits, functools.reduce(combine, mags))])

    def function(self, e):
        """ε(f(x)) = |f′(x)| ε(x) + c|f(x)|: c = 0 for exact functions, 2 (one ulp) for libm."""
        if len(e.args) != 1:
            raise NoErrorModel(f"no rounding-error model for {type(e).__name__} of {len(e.args)} arguments")
        (x,) = e.args
        propagated = None if self(x) is None else _abs(_derivative(e.func).xreplace({REAL: x})) * self(x)
        own = 0 if isinstance(e, EXACT_FUNCTIONS) else OWN_ROUNDINGS.get(e.func, LIBRARY_ROUNDINGS)
        return total([propagated, times(own, _abs(e))])


@functools.lru_cache(maxsize=256)
def _derivative(f):
    return sp.diff(f(REAL), REAL)


def _exact(model, e):
    return None


def representable(c):
    """Whether the number ``c`` is a float64 exactly."""
    try:
        return (c.is_Rational or c.is_Float) and sp.Rational(float(c)) == sp.Rational(c)
    except (OverflowError, TypeError, ValueError):
        return False


def _number(model, e):
    """A constant is rounded once, ε(c) = |c|, unless it is a float64 exactly."""
    return None if e.is_zero or representable(e) else sp.Abs(e)


def _sum(model, e):
    """ε(a₁ + … + aₙ) = Σ ε(aᵢ) + √(n − 1) Σ |aᵢ|."""
    return total([model(a) for a in e.args] + [times(sp.sqrt(len(e.args) - 1), total([model.abs(a) for a in e.args]))])


def exact_scale(c):
    """Whether multiplying by the number c is exact: c = ±2ᵏ."""
    if c.is_Float and representable(c):
        c = sp.Rational(c)
    if not (c.is_Rational and c != 0):
        return False
    p, q = abs(int(c.p)), int(c.q)
    return p & (p - 1) == 0 and q & (q - 1) == 0


def _scalar_product(model, e):
    """ε(a₁⋯aₙ) = Σᵢ ε(aᵢ) Πⱼ≠ᵢ |aⱼ| + (n − 1)|a₁|⋯|aₙ|; a factor ±2ᵏ is exact: ε(2ᵏa) = 2ᵏε(a)."""
    coeff, rest = e.as_coeff_Mul()
    if coeff != 1 and exact_scale(coeff):
        return times(abs(coeff), model(rest))
    return model.product(list(e.args), lambda a, b: a * b, lambda p, q: 1) if len(e.args) > 1 else model(e.args[0])


def _hadamard(model, e):
    """ε(A ∘ B) = ε(A)∘|B| + |A|∘ε(B) + |A|∘|B| (and so on for more factors)."""
    return model.product(list(e.args), sp.HadamardProduct, lambda p, q: 1)


def _matmul(model, e):
    """ε(PQ) = ε(P)|Q| + |P|ε(Q) + √k|P||Q| (k = columns of P); a scalar c: ε(cM) = |c|ε(M) +
    ε(c)|M| + |c||M|, or |c|ε(M) for c = ±2ᵏ."""
    coeff, mats = e.as_coeff_matrices()
    err = model(mats[0]) if len(mats) == 1 else model.product(
        list(mats), matrix_product, lambda p, q: shape_of(q)[0])
    if coeff == 1:
        return err
    if exact_scale(coeff):
        return times(abs(coeff), err)
    whole = model.abs(e)
    rounded = model(coeff)
    if rounded is not None:   # ε(c)|M| = (ε(c)/|c|)|cM| for c ≠ 0, without forming M
        rounded = times(rounded / model.abs(coeff), whole) if coeff.is_nonzero else \
            times(rounded, model.abs(mats[0] if len(mats) == 1 else sp.MatMul(*mats)))
    return total([times(model.abs(coeff), err), rounded, whole])


def _transpose(model, e):
    """ε(Xᵀ) = ε(X)ᵀ."""
    return transpose(model(e.arg))


def _trace(model, e):
    """ε(tr X) = tr ε(X) + √(n − 1) tr|X|."""
    n = shape_of(e.arg)[0]
    return total([None if model(e.arg) is None else sp.Trace(model(e.arg)),
                  times(sp.sqrt(n - 1), sp.Trace(model.abs(e.arg)))])


def _power(model, e):
    """ε(bᵖ) = |p bᵖ⁻¹| ε(b) + |bᵖ log b| ε(p) + c|bᵖ|  (p a number, a size or a variable;
    c = 1 for 1/b, b², √b, else one library call)."""
    b, p = e.args
    if p == 1:
        return model(b)
    through_base = None if model(b) is None else _abs(p * b ** (p - 1)) * model(b)
    through_exponent = None if model(p) is None else _abs(e * sp.log(_abs(b))) * model(p)
    own = 1 if p in (-1, 2, sp.S.Half) else LIBRARY_ROUNDINGS
    return total([through_base, through_exponent, own * _abs(e)])


def _hadamard_power(model, e):
    """ε(A^∘p) entry-wise as ε(bᵖ)."""
    return _elementwise(model, elementwise(sp.Lambda(ELEMENT, ELEMENT ** e.exp), e.base))


REAL, ERROR = sp.Symbol("r_", real=True), sp.Symbol("e_")


@functools.lru_cache(maxsize=1024)
def _entry_rule(body):
    """(a, b) with ε(f(x)) = a(x)·ε(x) + b(x) for the scalar body f of an element-wise node."""
    err = RoundingModel({REAL: ERROR})(body.xreplace({ELEMENT: REAL})) or sp.Integer(0)
    return sp.diff(err, ERROR), err.xreplace({ERROR: 0})


def _elementwise(model, e):
    """ε(f(X)) = a(X) ∘ ε(X) + b(X), where ε(f(x)) = a(x) ε(x) + b(x) by the scalar rules."""
    slope, offset = _entry_rule(scalar_body(e))
    terms = [None if offset == 0 else elementwise(sp.Lambda(REAL, offset), e.expr)]
    if slope != 0 and model(e.expr) is not None:
        terms.append(sp.HadamardProduct(elementwise(sp.Lambda(REAL, slope), e.expr), model(e.expr)))
    return total(terms)


def _softmax(model, e):
    """ε(sᵢ) = sᵢ(ε(xᵢ) + Σⱼ sⱼ ε(xⱼ) + |log sᵢ| + n + 3 + log n), j over the column (row) of i:
    δsᵢ = sᵢ(δxᵢ − Σⱼ sⱼ δxⱼ); computed as e^(x − max)/Σ e^(x − max), the shift rounds by
    |xᵢ − max| ≤ |log sᵢ| relative to sᵢ, exp and the division once, the sum n − 1 times, and its
    terms' errors add Σⱼ sⱼ(1 + |log sⱼ|) ≤ 1 + log n."""
    rows, cols = shape_of(e)
    n = rows if e.axis == 0 else cols
    own = [elementwise(ENTROPY, e), sp.MatMul(n + 3 + sp.log(n), e)]
    err = model(e.arg)
    if err is None:
        return sp.MatAdd(*own)
    weighted = sp.HadamardProduct(e, err)
    spread = sp.MatMul(sp.OneMatrix(rows, rows), weighted) if e.axis == 0 else \
        sp.MatMul(weighted, sp.OneMatrix(cols, cols))
    return sp.MatAdd(sp.HadamardProduct(e, sp.MatAdd(err, spread)), *own)


ENTROPY = sp.Lambda(ELEMENT, sp.Piecewise((-ELEMENT * sp.log(ELEMENT), ELEMENT > 0), (0, True)))


def _inverse(model, e):
    """ε(X⁻¹) = |X⁻¹| ε(X) |X⁻¹| + 3n |X⁻¹||X||X⁻¹| (LU with partial pivoting, Higham §14.3)."""
    n, inv = shape_of(e)[0], absval(e)
    own = sp.MatMul(3 * n, inv, absval(e.arg), inv)
    return own if model(e.arg) is None else sp.MatAdd(sp.MatMul(inv, model(e.arg), inv), own)


def _determinant(model, e):
    """ε(det X) = |det X| (tr(|X⁻¹| ε(X)) + n tr(|X⁻¹||X|) + n): δ det = det·tr(X⁻¹ δX), LU's
    backward error n|X|, and the product of n pivots."""
    n, inv = shape_of(e.arg)[0], absval(sp.Inverse(e.arg))
    relative = n * sp.Trace(sp.MatMul(inv, absval(e.arg))) + n
    if model(e.arg) is not None:
        relative += sp.Trace(sp.MatMul(inv, model(e.arg)))
    return sp.Abs(e) * relative


def _matpow(model, e):
    """ε(Xᵏ) as the product X⋯X (k ≥ 1 an integer; any order of evaluation)."""
    k = e.exp
    if not (k.is_Integer and 1 <= k <= 64):
        raise NoErrorModel(f"no rounding-error model for a matrix power {k}")
    if k == 1:
        return model(e.base)
    return model.product([e.base] * int(k), lambda a, b: sp.MatMul(a, b), lambda p, q: shape_of(q)[0])


def _part(model, e):
    """ε of an entry, a slice or a block is the same part of ε."""
    err = model(e.args[0])
    return None if err is None else e.func(err, *e.args[1:])


def _block(model, e):
    """ε([A B; C D]) = [ε(A) ε(B); ε(C) ε(D)]."""
    errs = [model(b) for b in e.blocks]
    if all(x is None for x in errs):
        return None
    rows, cols = e.blocks.shape
    filled = [x if x is not None else sp.ZeroMatrix(*shape_of(b)) for x, b in zip(errs, e.blocks)]
    return sp.BlockMatrix([filled[i * cols:(i + 1) * cols] for i in range(rows)])


def _summation(model, e):
    """ε(Σₖ aₖ) = Σₖ ε(aₖ) + √(count − 1) Σₖ |aₖ|."""
    count = math.prod(hi - lo + 1 for _, lo, hi in e.limits)
    err = model(e.function)
    return total([None if err is None else sp.Sum(err, *e.limits),
                  times(sp.sqrt(count - 1), sp.Sum(model.abs(e.function), *e.limits))])


def _choice(model, e):
    """ε(max(a, b)), ε(piecewise): at most Σ ε(branches) (the choice itself is exact)."""
    parts = [a for a, _ in e.args] if isinstance(e, sp.Piecewise) else list(e.args)
    return total([model(a) for a in parts])


def _explicit(model, e):
    """ε of an explicit matrix, entry by entry."""
    errs = [model(x) for x in e]
    if all(x is None for x in errs):
        return None
    return sp.ImmutableDenseMatrix(e.rows, e.cols, [x if x is not None else 0 for x in errs])


def _axis_max(model, e):
    """ε(max A) ≤ max ε(A) along the same axis: the choice is exact."""
    err = model(e.arg)
    return None if err is None else AxisMax(err, e.axis)


RULES = Dispatch("rounding-error model", {
    sp.Function: RoundingModel.function,
    sp.MatrixSymbol: _exact, sp.Symbol: _exact, sp.Dummy: _exact, sp.OneMatrix: _exact,
    sp.Identity: _exact, sp.ZeroMatrix: _exact, sp.core.relational.Relational: _exact,
    sp.logic.boolalg.BooleanAtom: _exact, step: _exact, sp.Heaviside: _exact, sp.sign: _exact,
    sp.Number: _number, sp.NumberSymbol: _number,
    sp.Add: _sum, sp.MatAdd: _sum,
    sp.Mul: _scalar_product, sp.HadamardProduct: _hadamard, sp.MatMul: _matmul,
    sp.Transpose: _transpose, sp.Trace: _trace, sp.Pow: _power, sp.HadamardPower: _hadamard_power,
    ElementwiseApplyFunction: _elementwise, Softmax: _softmax, sp.Inverse: _inverse,
    sp.Determinant: _determinant, sp.MatPow: _matpow, MatrixElement: _part, sp.MatrixSlice: _part,
    sp.BlockMatrix: _block, sp.Sum: _summation, sp.Max: _choice, sp.Min: _choice,
    sp.Piecewise: _choice, sp.ImmutableDenseMatrix: _explicit, AxisMax: _axis_max,
})


def rounding_bound(expr):
    """ε(expr), or None when ``expr`` is computed exactly from exact inputs."""
    return RoundingModel()(expr)


def _upper_args(model, e):
    """|a ∘ b| ≤ |a| ∘ |b|, |a + b| ≤ |a| + |b|, |ab| ≤ |a||b|, |Aᵀ| = |A|ᵀ, |tr A| ≤ tr |A|."""
    if isinstance(e, sp.Transpose):
        return transpose(model.abs(e.arg))
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        product = functools.reduce(matrix_product, [model.abs(a) for a in mats])
        return product if coeff == 1 else times(model.abs(coeff), product)
    return e.func(*[model.abs(a) for a in e.args])


def _upper_part(model, e):
    """An entry or a slice of |A| bounds the same part of A."""
    return e.func(model.abs(e.args[0]), *e.args[1:])


def _upper_block(model, e):
    rows, cols = e.blocks.shape
    parts = [model.abs(b) for b in e.blocks]
    return sp.BlockMatrix([parts[i * cols:(i + 1) * cols] for i in range(rows)])


def _upper_sum(model, e):
    """|Σₖ aₖ| ≤ Σₖ |aₖ|."""
    return sp.Sum(model.abs(e.function), *e.limits)


def _upper_symbol(model, e):
    return model.magnitudes[e]


UPPER = Dispatch("magnitude bound of a tangent", {
    sp.MatAdd: _upper_args, sp.Add: _upper_args, sp.HadamardProduct: _upper_args, sp.Mul: _upper_args,
    sp.MatMul: _upper_args, sp.Transpose: _upper_args, sp.Trace: _upper_args,
    MatrixElement: _upper_part, sp.MatrixSlice: _upper_part, sp.BlockMatrix: _upper_block, sp.Sum: _upper_sum,
    sp.ImmutableDenseMatrix: lambda model, e: sp.ImmutableDenseMatrix(e.rows, e.cols, [model.abs(x) for x in e]),
    sp.MatrixSymbol: _upper_symbol, sp.Symbol: _upper_symbol,
})


def entry_total(x):
    """Σᵢⱼ xᵢⱼ as a 1×1 product, the all-ones vectors pushed into sums and products: the total of
    A B is (1ᵀA)(B1), two vectors and no matrix product (the compiler forms 1ᵀA and B1 as sums)."""
    if not is_matrix(x):
        return x
    if isinstance(x, sp.MatAdd):
        return sp.MatAdd(*map(entry_total, x.args))
    if isinstance(x, sp.Transpose):
        return entry_total(x.arg)
    if isinstance(x, sp.BlockMatrix):
        return sp.MatAdd(*map(entry_total, x.blocks))
    coeffs, mats = [], []
    for f in _factors(x):
        (mats if is_matrix(f) else coeffs).append(f)
    rows, cols = shape_of(mats[0])[0], shape_of(mats[-1])[1]
    return sp.MatMul(*coeffs, sp.OneMatrix(1, rows), *mats, sp.OneMatrix(cols, 1))


def _factors(x):
    """The factors of a product, nested products spliced in."""
    if not isinstance(x, sp.MatMul):
        return [x]
    return [f for a in x.args for f in _factors(a)]


def elementwise_nodes(expr):
    """Every element-wise application f(X) in the expression DAG, each once."""
    return [node for node in dag_nodes(expr) if isinstance(node, ElementwiseApplyFunction)]


def branch_arguments(expr):
    """The matrices whose signs decide a branch (relu, step, max, comparisons) in ``expr``."""
    found = []
    for node in elementwise_nodes(expr):
        for atom in scalar_body(node).atoms(*BRANCHES):
            for arg in atom.args:
                if isinstance(arg, sp.Expr) and arg.has(ELEMENT) and not arg.is_number:
                    found.append(node.expr if arg == ELEMENT else elementwise(sp.Lambda(ELEMENT, arg), node.expr))
    return list(dict.fromkeys(found + tie_indicators(expr)))


def tie_indicators(expr):
    """For each max along an axis in ``expr``: a 1×1 value that is 0 where two entries tie for
    some maximum (the kink of max) and 1 elsewhere, as a branch argument whose kink is 0."""
    found = []
    for node in dag_nodes(expr):
        if isinstance(node, AxisMax):
            rows, cols = shape_of(node.arg)
            ties = at_max(node)
            count = ties * sp.OneMatrix(cols, 1) if node.axis == 1 else sp.OneMatrix(1, rows) * ties
            most = AxisMax(count, 0 if node.axis == 1 else 1)
            found.append(elementwise(step, sp.Rational(3, 2) * sp.OneMatrix(1, 1) - most))
    return found
