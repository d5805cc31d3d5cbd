"""Moving between entry-wise matrix algebra and scalar algebra.

``lower`` reads a region of entry-wise operations (sums, Hadamard products and powers,
element-wise functions, scalar multiples, all-ones matrices) as one scalar expression in
per-entry symbols; ``lift`` turns a scalar expression back into matrix form.  Together they
give element-wise derivatives (f′(A) from f) and the entry-wise simplification rewrite.
"""
import functools

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from .algebra import add, hadamard, rebuild, scale
from .dispatch import Dispatch
from .errors import NoRuleError
from .functions import ELEMENT, elementwise, scalar_body
from .shapes import shape_of


def is_entrywise(node):
    """True for the operations that act entry by entry."""
    if isinstance(node, sp.MatMul):
        _, mats = node.as_coeff_matrices()
        return len(mats) == 1
    return isinstance(node, (sp.MatAdd, sp.HadamardProduct, sp.HadamardPower,
                             ElementwiseApplyFunction, sp.OneMatrix))


def map_atoms(node, f):
    """``node`` with ``f`` applied to each atom of its entry-wise region."""
    if not is_entrywise(node):
        return f(node)
    return rebuild(node, [map_atoms(a, f) if isinstance(a, sp.MatrixExpr) else a for a in node.args])


def could_cancel(scalar):
    """Only sums and quotients can shorten: a plain product of atoms is already simplest."""
    return any(isinstance(a, sp.Add) or (isinstance(a, sp.Pow) and a.exp.is_negative)
               for a in sp.preorder_traversal(scalar))


def lower(node, atoms):
    """The scalar expression of one entry of ``node``; ``atoms`` maps matrix atoms to symbols."""
    if isinstance(node, sp.MatAdd):
        return sp.Add(*[lower(a, atoms) for a in node.args])
    if isinstance(node, sp.HadamardProduct):
        return sp.Mul(*[lower(a, atoms) for a in node.args])
    if isinstance(node, sp.HadamardPower):
        return lower(node.base, atoms) ** node.exp
    if isinstance(node, ElementwiseApplyFunction):
        return scalar_body(node).xreplace({ELEMENT: lower(node.expr, atoms)})
    if isinstance(node, sp.OneMatrix):
        return sp.Integer(1)
    if isinstance(node, sp.MatMul) and is_entrywise(node):
        coeff, (mat,) = node.as_coeff_matrices()
        return coeff * lower(mat, atoms)
    if node not in atoms:
        atoms[node] = sp.Dummy(f"e{len(atoms)}")
    return atoms[node]


def lift(expr, atoms, shape):
    """Matrix form of a scalar entry expression; ``atoms`` maps symbols to matrices of ``shape``."""
    if not expr.free_symbols & atoms.keys():
        return scale(expr, sp.OneMatrix(*shape))
    if expr in atoms:
        return atoms[expr]
    if isinstance(expr, sp.Add):
        return add(*[lift(a, atoms, shape) for a in expr.args])
    if isinstance(expr, sp.Mul):
        const = [a for a in expr.args if not a.free_symbols & atoms.keys()]
        varying = [lift(a, atoms, shape) for a in expr.args if a.free_symbols & atoms.keys()]
        return scale(sp.Mul(*const), hadamard(*varying))
    if isinstance(expr, sp.Pow) and not expr.exp.free_symbols & atoms.keys():
        return sp.HadamardPower(lift(expr.base, atoms, shape), expr.exp)
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        return elementwise(expr.func, lift(expr.args[0], atoms, shape))
    used = [s for s in atoms if s in expr.free_symbols]
    if len(used) == 1:
        return elementwise(sp.Lambda(ELEMENT, expr.xreplace({used[0]: ELEMENT})), atoms[used[0]])
    raise ValueError(f"cannot write {expr} entry-wise")


# f′ away from the jumps of functions SymPy leaves undifferentiated: one rule per function
ALMOST_EVERYWHERE = Dispatch("derivative almost everywhere")


@ALMOST_EVERYWHERE.register(sp.floor, sp.ceiling)
def piecewise_constant(u):
    """f = ⌊·⌋ or ⌈·⌉, constant between integers:  f′(u) = 0 for u ∉ ℤ"""
    return sp.Integer(0)


def known_almost_everywhere(e):
    """Is ``e`` the unevaluated first derivative d f(u)/dv of a function f that SymPy cannot
    differentiate but whose derivative away from its jumps is in ``ALMOST_EVERYWHERE``?"""
    return isinstance(e, sp.Derivative) and e.derivative_count == 1 and \
        isinstance(e.expr, sp.Function) and len(e.expr.args) == 1 and ALMOST_EVERYWHERE(e.expr) is not None


def almost_everywhere(e):
    """d f(u)/dv = f′(u) ∂u/∂v with f′ from ``ALMOST_EVERYWHERE``."""
    (u,), (v,) = e.expr.args, e.variables
    return ALMOST_EVERYWHERE(e.expr)(u) * sp.diff(u, v)


def differentiate(f, x):
    """∂f/∂x by SymPy, almost everywhere: the Dirac deltas of step-like functions (sign, |x|′,
    Heaviside) are 0 away from their kinks, where checks are inconclusive, and so are the
    derivatives of piecewise-constant functions (⌊x⌋, ⌈x⌉: ``ALMOST_EVERYWHERE``), which SymPy
    leaves unevaluated; any other derivative SymPy leaves unevaluated is an error naming the
    function."""
    try:
        out = sp.diff(f, x)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise NoRuleError(f"cannot differentiate '{f}': {' '.join(str(e).split())}") from None
    out = out.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))
    if out.has(sp.Derivative):
        out = out.replace(known_almost_everywhere, almost_everywhere)
        # f′ at u = g(x) is Subs(f′(ξ), ξ, g(x)) in SymPy's chain rule: evaluated once f′ is known
        out = out.replace(lambda e: isinstance(e, sp.Subs) and not e.expr.has(sp.Derivative), lambda e: e.doit())
    if out.has(sp.Derivative, sp.Subs):
        raise NoRuleError(f"no rule for the derivative of '{f}' (SymPy leaves it unevaluated)")
    return out


def derivative_of(node, symbol=ELEMENT):
    """∂f(A)/∂(symbol) entry-wise, as a matrix of A's shape, for an element-wise node f(A)."""
    body = differentiate(scalar_body(node), symbol)
    var = sp.Dummy("a")
    return lift(body.xreplace({ELEMENT: var}), {var: node.expr}, shape_of(node))


MAX_DEGREE, MAX_OPS = 24, 400     # beyond these SymPy's cancel/factor can take minutes


class TooLarge(Exception):
    """A region beyond the simplification budget: it is kept as derived."""


def within_budget(scalar):
    """Is ``scalar`` small enough for cancel/factor to finish quickly? (total degree of its
    integer powers ≤ MAX_DEGREE and at most MAX_OPS operations)"""
    degree = sum(abs(int(p.exp)) for p in scalar.atoms(sp.Pow) if p.exp.is_Integer)
    return degree <= MAX_DEGREE and sp.count_ops(scalar) <= MAX_OPS


@functools.lru_cache(maxsize=4096)
def simplify_entrywise(node):
    """An equal, shorter form of an entry-wise region, or None when none is found; TooLarge
    when the region is beyond the budget."""
    atoms = {}
    scalar = lower(node, atoms)
    # Traces, determinants and entries in coefficients hold matrices that cancel must not touch.
    hidden = {t: sp.Dummy(f"t{i}") for i, t in enumerate(scalar.atoms(sp.Trace, sp.Determinant, MatrixElement, sp.Sum))}
    scalar = scalar.xreplace(hidden)
    if not atoms or not could_cancel(scalar):
        return None
    if not within_budget(scalar):
        raise TooLarge(node)
    cancelled = sp.cancel(scalar)
    factored = sp.factor(cancelled)
    simpler = factored if sp.count_ops(factored) <= sp.count_ops(cancelled) else cancelled
    if sp.count_ops(simpler) >= sp.count_ops(scalar):
        return None
    inverse = {s: m for m, s in atoms.items()}
    simpler = simpler.xreplace({d: t for t, d in hidden.items()})
    try:
        return lift(simpler, inverse, shape_of(node))
    except ValueError:
        return None
