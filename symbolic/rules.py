"""The rule table: one reverse-mode rule per operation, in trace-differential form.

For a node N with adjoint G (dJ = tr(G dN), G has the shape of Nᵀ) a rule returns the
adjoint contribution of each child that depends on what is differentiated (``active``).
Scalar nodes carry a scalar adjoint g (dJ = g dN).  Each rule's docstring is its statement.
"""
from dataclasses import dataclass
from typing import Callable

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from .algebra import T, add, hadamard, matmul, power, scale, submatrix, trace_of
from .dispatch import Dispatch
from .entrywise import derivative_of, differentiate
from .errors import NoRuleError
from .functions import Softmax, elementwise, scalar_body
from .shapes import is_matrix, same_dim, shape_of


def operands(node):
    """The children a rule sends adjoints to, by default the node's SymPy arguments."""
    return [a for a in node.args if isinstance(a, sp.Basic)]


@dataclass(frozen=True)
class Rule:
    """A differentiation rule: its name, its statement (the math), how it pushes an adjoint to
    the operands (``apply``), and which operands it pushes to (``children``)."""
    name: str
    statement: str
    apply: Callable
    children: Callable = operands


def factors(node):
    """The scalar coefficient and the matrix factors of a product k A₁⋯Aₙ."""
    coeff, mats = node.as_coeff_matrices()
    return [coeff, *mats]


RULES = Dispatch("differentiation")


def rule(*classes, children=operands):
    def register(fn):
        r = Rule(fn.__name__.replace("_", " "), " ".join(fn.__doc__.split()), fn, children)
        RULES.update(dict.fromkeys(classes, r))
        return r
    return register


def rule_for(node):
    """The rule of a node; scalar expressions that are not atoms use the scalar chain rule."""
    found = RULES(node)
    if found is not None:
        return found
    if not is_matrix(node):
        return scalar_chain_rule
    raise NoRuleError(f"no differentiation rule for {type(node).__name__} in '{node}'")


@rule(sp.MatMul, children=factors)
def matrix_product(node, G, active):
    """N = k A₁⋯Aₙ:  G_Aᵢ = k (Aᵢ₊₁⋯Aₙ) G (A₁⋯Aᵢ₋₁);  dJ/dk = tr(G A₁⋯Aₙ)"""
    coeff, mats = node.as_coeff_matrices()
    out = [(a, scale(coeff, matmul(*mats[i + 1:], G, *mats[:i])))
           for i, a in enumerate(mats) if active(a)]
    if active(coeff):
        out.append((coeff, trace_of(matmul(G, *mats))))
    return out


@rule(sp.MatAdd)
def matrix_sum(node, G, active):
    """N = A + B:  G_A = G,  G_B = G"""
    return [(a, G) for a in node.args if active(a)]


@rule(sp.Transpose)
def transpose(node, G, active):
    """N = Aᵀ:  G_A = Gᵀ"""
    return [(node.arg, T(G))]


@rule(sp.HadamardProduct)
def hadamard_product(node, G, active):
    """N = A ∘ B:  G_A = G ∘ Bᵀ,  G_B = G ∘ Aᵀ"""
    args = node.args
    return [(a, hadamard(G, T(hadamard(*args[:i], *args[i + 1:]))))
            for i, a in enumerate(args) if active(a)]


@rule(sp.HadamardPower)
def hadamard_power(node, G, active):
    """N = A^∘p:  G_A = G ∘ (p A^∘(p−1))ᵀ;  dJ/dp = tr(G (N ∘ log A))"""
    base, p = node.args
    out = [(base, hadamard(G, T(scale(p, power(base, p - 1)))))] if active(base) else []
    if active(p):
        out.append((p, trace_of(matmul(G, hadamard(node, elementwise(sp.log, base))))))
    return out


@rule(ElementwiseApplyFunction, children=lambda node: [node.expr, *parameters(node)])
def elementwise_function(node, G, active):
    """N = f(A) entry-wise:  G_A = G ∘ f′(A)ᵀ;  dJ/dc = tr(G ∂f(A)/∂c) for a parameter c of f"""
    out = [(node.expr, hadamard(G, T(derivative_of(node))))] if active(node.expr) else []
    for c in parameters(node):
        if active(c):
            out.append((c, trace_of(matmul(G, derivative_of(node, c)))))
    return out


@rule(sp.Trace)
def trace(node, g, active):
    """N = tr(A):  G_A = g I"""
    return [(node.arg, scale(g, sp.Identity(shape_of(node.arg)[0])))]


@rule(sp.Inverse)
def inverse(node, G, active):
    """N = A⁻¹:  G_A = −A⁻¹ G A⁻¹"""
    return [(node.arg, scale(-1, matmul(node, G, node)))]


@rule(sp.MatPow)
def matrix_power(node, G, active):
    """N = Aᵏ (integer k ≥ 1):  G_A = Σᵢ Aᵏ⁻¹⁻ⁱ G Aⁱ"""
    base, k = node.args
    if not (k.is_Integer and k > 0):
        raise NoRuleError(f"no differentiation rule for the power {k} in '{node}'")
    power = lambda i: sp.Identity(shape_of(base)[0]) if i == 0 else base if i == 1 else sp.MatPow(base, i)
    return [(base, add(*[matmul(power(int(k) - 1 - i), G, power(i)) for i in range(int(k))]))]


@rule(sp.Determinant)
def determinant(node, g, active):
    """N = det A:  G_A = g det(A) A⁻¹"""
    return [(node.arg, scale(g * node, sp.Inverse(node.arg)))]


@rule(MatrixElement, children=lambda node: [node.parent])
def matrix_entry(node, g, active):
    """N = A[i, j]:  G_A = g Eⱼᵢ  (1 in entry (j, i), zero elsewhere)"""
    i, j = node.i, node.j
    return [(node.parent, scatter(scale(g, sp.OneMatrix(1, 1)), node.parent, (i, i + 1), (j, j + 1)))]


@rule(sp.MatrixSlice, children=lambda node: [node.parent])
def matrix_slice(node, G, active):
    """N = A[r₀:r₁, c₀:c₁]:  G_A = G placed at rows c₀:c₁, columns r₀:r₁ of a zero matrix of the shape of Aᵀ"""
    (r0, r1, rs), (c0, c1, cs) = node.rowslice, node.colslice
    if rs != 1 or cs != 1:
        raise NoRuleError(f"no differentiation rule for strided slice '{node}'")
    return [(node.parent, scatter(G, node.parent, (r0, r1), (c0, c1)))]


@rule(sp.BlockMatrix, children=lambda node: list(node.blocks))
def block_matrix(node, G, active):
    """N = [Bᵢⱼ] (stacking):  G_Bᵢⱼ = the block of G at column-block i, row-block j"""
    blocks = node.blocks
    rows = offsets([shape_of(blocks[i, 0])[0] for i in range(blocks.rows)])
    cols = offsets([shape_of(blocks[0, j])[1] for j in range(blocks.cols)])
    return [(blocks[i, j], submatrix(G, (cols[j], cols[j + 1]), (rows[i], rows[i + 1])))
            for i in range(blocks.rows) for j in range(blocks.cols) if active(blocks[i, j])]


@rule(Softmax)
def softmax(node, G, active):
    """S = softmax(A) per column:  G_A = (S ∘ (Gᵀ − 1 1ᵀ(S ∘ Gᵀ)))ᵀ;  per row: (S ∘ (Gᵀ − (S ∘ Gᵀ) 1 1ᵀ))ᵀ"""
    n, c = shape_of(node)
    weighted = hadamard(node, T(G))
    spread = matmul(sp.OneMatrix(n, n), weighted) if node.axis == 0 else matmul(weighted, sp.OneMatrix(c, c))
    return [(node.arg, T(hadamard(node, add(T(G), scale(-1, spread)))))]


@rule(children=lambda node: scalar_atoms(node))
def scalar_chain_rule(node, g, active):
    """N = f(s₁, …, sₖ) for scalars sᵢ (traces, determinants, entries, symbols):  gᵢ = g ∂f/∂sᵢ"""
    atoms = scalar_atoms(node)
    dummies = {a: sp.Dummy(f"s{i}", real=True) for i, a in enumerate(atoms)}
    f = node.xreplace(dummies)
    back = {d: a for a, d in dummies.items()}
    return [(a, g * differentiate(f, d).xreplace(back)) for a, d in dummies.items() if active(a)]


def parameters(node):
    """The scalar symbols in the body of an element-wise function f(·; c)."""
    return sorted(scalar_body(node).free_symbols, key=str)


SCALAR_ATOMS = (sp.Symbol, sp.Trace, sp.Determinant, MatrixElement)


def scalar_atoms(node):
    """The traces, determinants, entries and symbols a scalar expression is built from."""
    if isinstance(node, SCALAR_ATOMS) or is_matrix(node):
        return [node]
    found = []
    for a in node.args:
        for atom in scalar_atoms(a):
            if atom not in found:
                found.append(atom)
    return found


def offsets(sizes):
    out = [sp.Integer(0)]
    for s in sizes:
        out.append(out[-1] + s)
    return out


def scatter(G, parent, rows, cols):
    """Gᵀ-shaped adjoint of a slice (rows, cols) of ``parent``: G at (cols, rows), zeros elsewhere."""
    R, C = shape_of(parent)
    row_cuts = [x for x in ((0, cols[0]), cols, (cols[1], C)) if not same_dim(*x)]
    col_cuts = [x for x in ((0, rows[0]), rows, (rows[1], R)) if not same_dim(*x)]
    if len(row_cuts) == 1 and len(col_cuts) == 1:
        return G
    block = lambda rc, cc: G if (rc == cols and cc == rows) else sp.ZeroMatrix(rc[1] - rc[0], cc[1] - cc[0])
    return sp.BlockMatrix([[block(rc, cc) for cc in col_cuts] for rc in row_cuts])


# max along an axis (symbolic/functions.py AxisMax)
from .functions import ELEMENT, AxisMax, step  # noqa: E402  (a self-contained block)


@rule(AxisMax)
def axis_max(node, G, active):
    """N = max(A) per row (r × 1):  G_A = (1[A = N 1ᵀ] ∘ Gᵀ 1ᵀ)ᵀ;  per column (1 × c):  G_A = (1[A = 1 N] ∘ 1 Gᵀ)ᵀ
    — a subgradient: where entries tie for the maximum, max has a kink"""
    return [(node.arg, T(hadamard(at_max(node), spread(node, T(G)))))]


def spread(node, v):
    """A value of the shape of ``node`` (a max along an axis) repeated along that axis."""
    rows, cols = shape_of(node.arg)
    return matmul(v, sp.OneMatrix(1, cols)) if node.axis == 1 else matmul(sp.OneMatrix(rows, 1), v)


def at_max(node):
    """1[A = N] for N = max(A) along an axis, of the shape of A: 1 − 1[N − A > 0], since
    N − A ≥ 0 everywhere and is 0 exactly where A attains its maximum."""
    return elementwise(sp.Lambda(ELEMENT, 1 - step(ELEMENT)), add(spread(node, node), scale(-1, node.arg)))
