"""A first-order rounding-error model, built as an expression: ``rounding_bound(e)`` is an
expression ε(e) with  |fl(e) − e| ≲ u·ε(e)  entry by entry (u = 2⁻⁵³, inputs exact).

It is the running-error analysis of Higham (Accuracy and Stability of Numerical Algorithms,
§3) written once per operation, so a check's tolerance follows from how the checked formula is
computed at the checked point instead of a fixed atol/rtol.  ``None`` stands for "exact".
The result is an ordinary SymPy expression, evaluated by the same compiler as the formula.

A sum of k terms contributes √k·(Σ|terms|), not k·(Σ|terms|): the probabilistic bound of
Higham & Mary (SIAM J. Sci. Comput. 41, 2019), which holds with probability ≥ 1 − 2e^{−λ²/2}
for the constant λ the checker applies (``gradcheck.SAFETY``).  The worst-case k is
thousands of times too pessimistic for wide layers and would hide real bugs behind the bound.
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
from tracegrad.symbolic.functions import ELEMENT, Softmax, elementwise, relu, scalar_body, step
from tracegrad.symbolic.shapes import is_matrix, shape_of

UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
EXACT_FUNCTIONS = (relu, step, sp.Heaviside, sp.Abs, sp.sign, sp.floor, sp.ceiling,
                   sp.KroneckerDelta, sp.Max, sp.Min)
BRANCHES = (relu, step, sp.Heaviside, sp.Abs, sp.sign, sp.Max, sp.Min, sp.Piecewise,
            sp.core.relational.Relational)


class NoErrorModel(TracegradError):
    """An operation without a rule here; the checker then falls back to a relative tolerance."""


class magnitude(sp.Function):
    """|x| of a real x, inert (SymPy's ``Abs`` rewrites |b| of a 1×1 matrix b as √(b b*))."""


def absval(x):
    """|x|, entry by entry."""
    if isinstance(x, (sp.OneMatrix, sp.Identity, sp.ZeroMatrix)):
        return x
    return elementwise(magnitude, x) if is_matrix(x) else sp.Abs(x)


def total(terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else (sp.MatAdd if is_matrix(terms[0]) else sp.Add)(*terms)


def times(c, x):
    if x is None or c is None or c == 0:
        return None
    return x if c == 1 else (sp.MatMul(c, x) if is_matrix(x) else c * x)


class RoundingModel:
    """ε(e) for the nodes of one expression DAG (memoised: shared nodes are modelled once)."""

    def __init__(self, leaf_errors=None):
        self.memo = dict(leaf_errors or {})

    def __call__(self, e):
        if e not in self.memo:
            self.memo[e] = self.rule(e)
        return self.memo[e]

    def rule(self, e):
        found = RULES(e)
        if found is None:
            raise NoErrorModel(f"no rounding-error model for {type(e).__name__}")
        return found(self, e)

    def product(self, factors, combine, inner_size):
        """ε(PQ) = (ε(P) + √k|P|)|Q| + |P|ε(Q), folded left to right (k: length of each sum)."""
        p, err = factors[0], self(factors[0])
        for q in factors[1:]:
            left = total([err, times(sp.sqrt(inner_size(p, q)), absval(p))])
            err = total([combine(left, absval(q)),
                         combine(absval(p), self(q)) if self(q) is not None else None])
            p = combine(p, q)
        return err

    def function(self, e):
        """ε(f(x)) = |f′(x)| ε(x) + |f(x)|  (the function itself correctly rounded)."""
        if len(e.args) != 1:
            raise NoErrorModel(f"no rounding-error model for {type(e).__name__} of {len(e.args)} arguments")
        (x,) = e.args
        derivative = _derivative(e.func).xreplace({REAL: x})
        propagated = None if self(x) is None else sp.Abs(derivative) * self(x)
        return total([propagated, None if isinstance(e, EXACT_FUNCTIONS) else sp.Abs(e)])


@functools.lru_cache(maxsize=256)
def _derivative(f):
    return sp.diff(f(REAL), REAL)


def _exact(model, e):
    return None


def _number(model, e):
    """A constant is rounded once: ε(c) = |c|, unless it is an integer."""
    return None if e.is_Integer or e.is_zero else sp.Abs(e)


def _sum(model, e):
    """ε(a₁ + … + aₙ) = Σ ε(aᵢ) + √(n − 1) Σ |aᵢ|."""
    return total([model(a) for a in e.args] + [times(sp.sqrt(len(e.args) - 1), total([absval(a) for a in e.args]))])


def _scalar_product(model, e):
    """ε(a₁⋯aₙ) = Σᵢ ε(aᵢ) Πⱼ≠ᵢ |aⱼ| + (n − 1)|a₁⋯aₙ|."""
    return model.product(list(e.args), lambda a, b: a * b, lambda p, q: 1) if len(e.args) > 1 else model(e.args[0])


def _hadamard(model, e):
    """ε(A ∘ B) = ε(A)∘|B| + |A|∘ε(B) + |A ∘ B|."""
    return model.product(list(e.args), sp.HadamardProduct, lambda p, q: 1)


def _matmul(model, e):
    """ε(PQ) = ε(P)|Q| + |P|ε(Q) + k|P||Q| (k = columns of P); a scalar c: ε(cM) as a product."""
    coeff, mats = e.as_coeff_matrices()
    err = model.product(list(mats), lambda a, b: sp.MatMul(a, b), lambda p, q: shape_of(q)[0])
    if coeff == 1:
        return err
    m = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return total([times(sp.Abs(coeff), err), times(model(coeff), absval(m)), absval(e)])


def _transpose(model, e):
    """ε(Xᵀ) = ε(X)ᵀ."""
    err = model(e.arg)
    return None if err is None else sp.Transpose(err)


def _trace(model, e):
    """ε(tr X) = tr ε(X) + √n tr|X|."""
    n = shape_of(e.arg)[0]
    return total([None if model(e.arg) is None else sp.Trace(model(e.arg)), sp.sqrt(n) * sp.Trace(absval(e.arg))])


def _power(model, e):
    """ε(bᵖ) = |p bᵖ⁻¹| ε(b) + |bᵖ| for a constant p."""
    b, p = e.args
    if p.free_symbols:
        raise NoErrorModel("no rounding-error model for a power with a variable exponent")
    if p == 1:
        return model(b)
    propagated = None if model(b) is None else sp.Abs(p * b ** (p - 1)) * model(b)
    return total([propagated, sp.Abs(e)])


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
    """ε(softmax X) ≤ (2 Σ ε(X) + n + 3) softmax X: |∂sᵢ/∂xⱼ| ≤ sᵢ(δᵢⱼ + sⱼ)."""
    rows, cols = shape_of(e)
    n = rows if e.axis == 0 else cols
    spread = sp.Integer(0) if model(e.arg) is None else 2 * sp.Trace(sp.MatMul(sp.OneMatrix(cols, rows), model(e.arg)))
    return sp.MatMul(spread + n + 3, e)


def _inverse(model, e):
    """ε(X⁻¹) = |X⁻¹| ε(X) |X⁻¹| + n |X⁻¹||X||X⁻¹| (a backward-stable solve)."""
    n, inv = shape_of(e)[0], absval(e)
    own = sp.MatMul(n, inv, absval(e.arg), inv)
    return own if model(e.arg) is None else sp.MatAdd(sp.MatMul(inv, model(e.arg), inv), own)


def _determinant(model, e):
    """ε(det X) = |det X| (tr(|X⁻¹| ε(X)) + n tr(|X⁻¹||X|) + 1)."""
    n, inv = shape_of(e.arg)[0], absval(sp.Inverse(e.arg))
    relative = n * sp.Trace(sp.MatMul(inv, absval(e.arg))) + 1
    if model(e.arg) is not None:
        relative += sp.Trace(sp.MatMul(inv, model(e.arg)))
    return sp.Abs(e) * relative


def _matpow(model, e):
    """ε(Xᵏ) as the product X⋯X (k ≥ 1 an integer)."""
    k = e.exp
    if not (k.is_Integer and 1 <= k <= 64):
        raise NoErrorModel(f"no rounding-error model for a matrix power {k}")
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
    """ε(Σₖ aₖ) = Σₖ ε(aₖ) + √count Σₖ |aₖ|."""
    count = math.prod(hi - lo + 1 for _, lo, hi in e.limits)
    err = model(e.function)
    return total([None if err is None else sp.Sum(err, *e.limits), sp.sqrt(count) * sp.Sum(sp.Abs(e.function), *e.limits)])


def _choice(model, e):
    """ε(max(a, b)), ε(piecewise): at most Σ ε(branches) (the choice itself is exact)."""
    parts = [a for a, _ in e.args] if isinstance(e, sp.Piecewise) else list(e.args)
    return total([model(a) for a in parts])


def _explicit(model, e):
    errs = [model(x) for x in e]
    if all(x is None for x in errs):
        return None
    return sp.ImmutableDenseMatrix(e.rows, e.cols, [x if x is not None else 0 for x in errs])


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
    sp.Piecewise: _choice, sp.ImmutableDenseMatrix: _explicit,
})


def rounding_bound(expr):
    """ε(expr), or None when ``expr`` is computed exactly from exact inputs."""
    return RoundingModel()(expr)


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
                    found.append(elementwise(sp.Lambda(ELEMENT, arg), node.expr))
    return list(dict.fromkeys(found + tie_indicators(expr)))


# max along an axis (symbolic/functions.py AxisMax)
from tracegrad.symbolic.functions import AxisMax  # noqa: E402  (a self-contained block)


@RULES.register(AxisMax)
def _axis_max(model, e):
    """ε(max A) ≤ max ε(A) along the same axis: the choice is exact."""
    err = model(e.arg)
    return None if err is None else AxisMax(err, e.axis)


def tie_indicators(expr):
    """For each max along an axis in ``expr``: a 1×1 value that is 0 where two entries tie for
    some maximum (the kink of max) and 1 elsewhere, as a branch argument whose kink is 0."""
    from tracegrad.symbolic.rules import at_max
    found = []
    for node in dag_nodes(expr):
        if isinstance(node, AxisMax):
            rows, cols = shape_of(node.arg)
            ties = at_max(node)
            count = ties * sp.OneMatrix(cols, 1) if node.axis == 1 else sp.OneMatrix(1, rows) * ties
            most = AxisMax(count, 0 if node.axis == 1 else 1)
            found.append(elementwise(step, sp.Rational(3, 2) * sp.OneMatrix(1, 1) - most))
    return found
