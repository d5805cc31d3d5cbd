"""Bounds over a straight-line program: the rounding error ε of every defined name, and what a
complex step computes — the tangent of every node along a direction v with |v| ≤ 1, an upper
bound T of its size and a bound D of its rounding error — all as definitions (expressions).

The complex step Im J(θ + i·h·v)/h evaluates J in complex arithmetic; as h → 0 the imaginary
parts are forward-mode tangents, Ṅ = Σ ∂f/∂A Ȧ for N = f(A, …), one rule per operation
(``TANGENTS``).  Complex arithmetic forms them with the roundings of the real expression of the
tangent (Im(AB) = Re A Im B + Im A Re B, Im f(a + ib) = f′(a) b, …), so D(N) = ε(Ṅ) by the rules
of ``errorbound``, with ε of the values and T, D of the inputs' tangents as leaves.  A moved input
X has Ẋ = v, |v| ≤ 1 and D = |v| (h·v is rounded once): T and D depend on v only through that
bound, so one evaluation serves every direction at a point.
"""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.symbolic.dispatch import Dispatch
from tracegrad.symbolic.functions import ELEMENT, Softmax, elementwise, scalar_body, step
from tracegrad.symbolic.shapes import is_matrix, shape_of

from .errorbound import REAL, NoErrorModel, RoundingModel, chain, structural, times, total, transpose


def like(x, name):
    """A symbol of the shape of ``x`` (a matrix symbol, or a scalar symbol)."""
    return sp.MatrixSymbol(name, *x.shape) if is_matrix(x) else sp.Symbol(name)


def ones_like(x):
    return sp.OneMatrix(*x.shape) if is_matrix(x) else sp.Integer(1)


class Tangents:
    """Ṅ for the nodes of an expression DAG (memoised), given the tangents of some symbols."""

    def __init__(self, leaves):
        self.memo = dict(leaves)

    def __call__(self, e):
        if e not in self.memo:
            found = TANGENTS(e)
            if found is None:
                raise NoErrorModel(f"no tangent rule for {type(e).__name__}")
            self.memo[e] = found(self, e)
        return self.memo[e]


def _none(tm, e):
    return None


def _sum(tm, e):
    """(A + B)˙ = Ȧ + Ḃ."""
    return total([tm(a) for a in e.args])


def _product_terms(tm, factors, combine):
    """Σᵢ A₁⋯Ȧᵢ⋯Aₙ."""
    return total([combine(factors[:i] + [tm(a)] + factors[i + 1:]) for i, a in enumerate(factors)
                  if tm(a) is not None])


def _mul(tm, e):
    """(a₁⋯aₙ)˙ = Σᵢ a₁⋯ȧᵢ⋯aₙ."""
    return _product_terms(tm, list(e.args), lambda fs: sp.Mul(*fs))


def _hadamard(tm, e):
    """(A ∘ B)˙ = Ȧ ∘ B + A ∘ Ḃ."""
    return _product_terms(tm, list(e.args), lambda fs: sp.HadamardProduct(*fs))


def _matmul(tm, e):
    """(c A₁⋯Aₙ)˙ = ċ A₁⋯Aₙ + Σᵢ c A₁⋯Ȧᵢ⋯Aₙ."""
    coeff, mats = e.as_coeff_matrices()
    inner = _product_terms(tm, list(mats), chain)
    terms = [None if inner is None else (inner if coeff == 1 else sp.MatMul(coeff, inner)),
             None if tm(coeff) is None else sp.MatMul(tm(coeff), chain(list(mats)))]
    return total(terms)


def _transpose(tm, e):
    """(Aᵀ)˙ = Ȧᵀ."""
    return transpose(tm(e.arg))


def _trace(tm, e):
    """(tr A)˙ = tr Ȧ."""
    return None if tm(e.arg) is None else sp.Trace(tm(e.arg))


def _power(tm, e):
    """(bᵖ)˙ = p bᵖ⁻¹ ḃ for a constant p."""
    b, p = e.args
    if tm(p) is not None:
        raise NoErrorModel("no tangent rule for a power with a variable exponent")
    return None if tm(b) is None else p * b ** (p - 1) * tm(b)


def _function(tm, e):
    """f(x)˙ = f′(x) ẋ."""
    if len(e.args) != 1:
        raise NoErrorModel(f"no tangent rule for {type(e).__name__} of {len(e.args)} arguments")
    x = e.args[0]
    return None if tm(x) is None else sp.diff(e.func(REAL), REAL).xreplace({REAL: x}) * tm(x)


def _elementwise(tm, e):
    """f(X)˙ = f′(X) ∘ Ẋ."""
    if tm(e.expr) is None:
        return None
    slope = sp.diff(scalar_body(e).xreplace({ELEMENT: REAL}), REAL)
    return None if slope == 0 else sp.HadamardProduct(elementwise(sp.Lambda(REAL, slope), e.expr), tm(e.expr))


def _hadamard_power(tm, e):
    return _elementwise(tm, elementwise(sp.Lambda(ELEMENT, ELEMENT ** e.exp), e.base))


def _softmax(tm, e):
    """S = softmax(X) per column: Ṡ = S ∘ (Ẋ − 1 1ᵀ(S ∘ Ẋ)) (per row: (S ∘ Ẋ) 1 1ᵀ)."""
    dx = tm(e.arg)
    if dx is None:
        return None
    rows, cols = shape_of(e)
    weighted = sp.HadamardProduct(e, dx)
    mean = sp.MatMul(sp.OneMatrix(rows, rows), weighted) if e.axis == 0 else sp.MatMul(weighted, sp.OneMatrix(cols, cols))
    return sp.HadamardProduct(e, sp.MatAdd(dx, sp.MatMul(-1, mean)))


def _inverse(tm, e):
    """(A⁻¹)˙ = −A⁻¹ Ȧ A⁻¹."""
    return None if tm(e.arg) is None else sp.MatMul(-1, e, tm(e.arg), e)


def _determinant(tm, e):
    """(det A)˙ = det A · tr(A⁻¹ Ȧ)."""
    return None if tm(e.arg) is None else e * sp.Trace(sp.MatMul(sp.Inverse(e.arg), tm(e.arg)))


def _matpow(tm, e):
    """(Xᵏ)˙ = Σᵢ Xⁱ Ẋ Xᵏ⁻¹⁻ⁱ (k ≥ 1 an integer)."""
    k = e.exp
    if not (k.is_Integer and k >= 1):
        raise NoErrorModel(f"no tangent rule for a matrix power {k}")
    return _product_terms(tm, [e.base] * int(k), chain)


def _part(tm, e):
    """An entry or a slice of A: the same part of Ȧ."""
    d = tm(e.args[0])
    return None if d is None else e.func(d, *e.args[1:])


def _block(tm, e):
    parts = [tm(b) for b in e.blocks]
    rows, cols = e.blocks.shape
    filled = [d if d is not None else sp.ZeroMatrix(*shape_of(b)) for d, b in zip(parts, e.blocks)]
    return sp.BlockMatrix([filled[i * cols:(i + 1) * cols] for i in range(rows)])


def _choice(tm, e):
    """max, min, piecewise: the chosen branch's tangent, bounded by the sum over the branches
    (an expression for bounds only: T and D of the sum bound those of any one branch)."""
    parts = [a for a, _ in e.args] if isinstance(e, sp.Piecewise) else list(e.args)
    return total([tm(a) for a in parts])


def _explicit(tm, e):
    parts = [tm(x) for x in e]
    return sp.ImmutableDenseMatrix(e.rows, e.cols, [d if d is not None else 0 for d in parts])


def _index_sum(tm, e):
    """(Σₖ aₖ)˙ = Σₖ ȧₖ."""
    d = tm(e.function)
    return None if d is None else sp.Sum(d, *e.limits)


TANGENTS = Dispatch("tangent of a complex step", {
    sp.Function: _function, sp.MatrixSymbol: _none, sp.Symbol: _none, sp.Number: _none,
    sp.NumberSymbol: _none, sp.OneMatrix: _none, sp.Identity: _none, sp.ZeroMatrix: _none,
    sp.core.relational.Relational: _none, sp.logic.boolalg.BooleanAtom: _none, step: _none,
    sp.Heaviside: _none, sp.sign: _none, sp.floor: _none, sp.ceiling: _none, sp.KroneckerDelta: _none,
    sp.Add: _sum, sp.MatAdd: _sum, sp.Mul: _mul, sp.HadamardProduct: _hadamard, sp.MatMul: _matmul,
    sp.Transpose: _transpose, sp.Trace: _trace, sp.Pow: _power, sp.HadamardPower: _hadamard_power,
    ElementwiseApplyFunction: _elementwise, Softmax: _softmax, sp.Inverse: _inverse,
    sp.Determinant: _determinant, sp.MatPow: _matpow, MatrixElement: _part, sp.MatrixSlice: _part,
    sp.BlockMatrix: _block, sp.Max: _choice, sp.Min: _choice, sp.Piecewise: _choice,
    sp.ImmutableDenseMatrix: _explicit, sp.Sum: _index_sum,
})


class ProgramBounds:
    """Bounds over the program ``definitions`` (pairs (symbol, expression), in order), with the
    complex step moving the symbols ``moved``.  ``definitions`` afterwards holds, in order, the
    definitions of ε·N, τ·N = T(N) and δ·N = D(N) for every defined name N that has them;
    ``error(expr)`` is ε of an expression over the program, ``step(expr)`` its (T, D) for a
    direction with |v_X| ≤ μ_X (``scales``: the symbols μ_X, inputs of the bounds' program).
    ``fallback(expr)`` stands in for ε where an operation has no rule; the step has none."""

    def __init__(self, definitions, moved=(), fallback=None):
        self.model, self.fallback = RoundingModel(), fallback
        leaves, self.scales = {}, {}
        for x in moved:
            # |v_X| ≤ μ_X: T and D are linear in the μ, so μ = 1 for X and 0 elsewhere gives the
            # bounds of a direction that moves X alone
            leaves[x] = v = like(x, f"v·{x}")
            self.scales[x] = mu = sp.Symbol(f"μ·{x}", positive=True)
            self.model.memo[v] = self.model.magnitudes[v] = times(mu, ones_like(x))
        self.tangent = Tangents(leaves)
        self.definitions, self.no_step = [], ""
        for symbol, expr in definitions:
            self.define(symbol, expr)

    def define(self, symbol, expr):
        self.model.memo[symbol] = self._name(f"ε·{symbol}", symbol, self.error(expr))
        if self.no_step:
            return
        try:
            d = self.tangent(expr)
            if d is not None:
                dot = like(symbol, f"d·{symbol}")
                size, error = self.model.abs(d), self.model(d)
        except NoErrorModel as e:
            self.no_step = str(e)
            return
        self.tangent.memo[symbol] = None if d is None else dot
        if d is not None:
            self.model.magnitudes[dot] = self._name(f"τ·{symbol}", symbol, size)
            self.model.memo[dot] = self._name(f"δ·{symbol}", symbol, error)

    def _name(self, name, like_symbol, expr):
        if expr is None or structural(expr):
            return expr      # zeros and blocks of all ones stay visible to the products using them
        s = like(like_symbol, name)
        self.definitions.append((s, expr))
        return s

    def error(self, expr):
        """ε(expr), None when exact; the fallback where an operation has no rule."""
        try:
            return self.model(expr)
        except NoErrorModel:
            if self.fallback is None:
                raise
            self.model.memo[expr] = self.fallback(expr)
            return self.model.memo[expr]

    def step(self, expr):
        """(T, D) of a complex step's tangent of ``expr`` (zeros if it does not move), or None
        when some operation on the way has no tangent or rounding rule."""
        if self.no_step:
            return None
        try:
            d = self.tangent(expr)
            if d is None:
                return sp.Integer(0), sp.Integer(0)
            return self.model.abs(d), self.model(d) or sp.Integer(0)
        except NoErrorModel as e:
            self.no_step = str(e)
            return None
