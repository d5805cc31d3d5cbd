"""`derive --wrt X --steps`: the steps on the way from J to X, written as a hand derivation.

A view over ``Derivation.steps``; nothing is derived here.  For each quantity on the way, last
definition first, the recorded rule applications are replayed as a chain of trace identities:

    dJ = tr(G_Z3 dZ3)
       = tr(G_Z3 d(b3 𝟏 + W3ᵀ A2))        [definition]
       = tr(G_Z3 dW3ᵀ A2)                 [product rule]
       = tr(A2 G_Z3 dW3ᵀ)                 [cyclic property]
       ...
    ⇒ dJ/dW3 = G_Z3ᵀ A2ᵀ                  [identification]

Each line is the sum of the terms tr(G dN) still to be expanded, as the reverse sweep holds
them: a step replaces the term of its node by the terms of the operands that lead to X, and
two terms of the same node are added (linearity of the trace).
"""
from dataclasses import dataclass

import sympy as sp

from tracegrad.symbolic.algebra import is_zero
from tracegrad.symbolic.printing import to_text
from tracegrad.symbolic.rewrites import SUBSTITUTE
from tracegrad.symbolic.sweep import SUM_OVER_USES
from tracegrad.symbolic.shapes import is_matrix, shape_of

IDENTIFY = "identification: dJ = tr(G dX) ⇒ dJ/dX = G"
CYCLIC = "cyclic property: tr(P Q) = tr(Q P)"
ZERO = "a zero adjoint: tr(0 dA) = 0, the term contributes nothing"
WHY = {
    "matrix sum": "linearity: d(P + Q) = dP + dQ; terms without the quantity are held (d = 0)",
    "matrix product": "product rule: d(P A Q) = P dA Q, the other factors held",
    "transpose": "transposition: tr(P) = tr(Pᵀ), so tr(M dAᵀ) = tr(dA Mᵀ)",
    "hadamard product": "tr(G (P ∘ dA)) = tr((G ∘ Pᵀ) dA): an entry-wise product moves into G",
    "elementwise function": "entry-wise function: d f(A) = f′(A) ∘ dA, and tr(G (P ∘ dA)) = tr((G ∘ Pᵀ) dA)",
}
STYLES = {"unicode": dict(d="d", implies="⇒ ", jac="dJ/d{}", join=" + "),
          "numpy": dict(d="d", implies="=> ", jac="dJ/d{}", join=" + "),
          "latex": dict(d="\\mathrm{d}", implies="\\Rightarrow ", jac="\\frac{{\\partial J}}{{\\partial {}}}",
                        join=" + ")}
STYLES["text"] = STYLES["numpy"]


@dataclass(frozen=True)
class Line:
    math: str          # "= tr(A2 G_Z3 dW3ᵀ)", or the first line of a block "dJ = ..."
    why: str = ""      # the identity this line uses


@dataclass(frozen=True)
class Block:
    """How dJ/dX is identified: one chain per definition that uses X, then the rewrites."""
    quantity: str
    lines: tuple


def on_the_way(program, targets):
    """Defined names whose value depends on a target, and the targets."""
    found = set(targets)
    for symbol, expr in program.definitions:
        if expr.free_symbols & found:
            found.add(symbol)
    return found


def path(derivation, targets, style="unicode"):
    """The blocks that identify dJ/dX for every X on the way from the cost to ``targets``: last
    definition first, each input or parameter after the definition that uses it first."""
    program = derivation.program
    way = on_the_way(program, targets)
    first_use = {}
    for symbol, expr in program.definitions:
        for leaf in expr.free_symbols:
            first_use.setdefault(leaf, symbol)
    rank = {t: i for i, t in enumerate(targets)}
    order = []
    for symbol, _ in reversed(program.definitions):
        if symbol in way and symbol != program.cost:
            order.append(symbol)
        order += sorted((t for t in targets if first_use.get(t) == symbol and t not in program.defined()),
                        key=rank.get)
    return tuple(Block(to_text(x, style), tuple(identify(derivation, x, style))) for x in order)


def identify(derivation, x, style):
    """The chains of every definition that uses X, then dJ/dX identified and rewritten."""
    lines = []
    for d, e in reversed(uses(derivation, x)):
        lines += Chain(derivation, d, e, x, style).lines
    return lines + identification(derivation, x, style)


def uses(derivation, x):
    program = derivation.program
    return [(d, e) for d, e in program.definitions
            if x in e.free_symbols and (d in derivation.adjoint_symbols or d == program.cost)]


def identification(derivation, x, style="unicode"):
    """dJ/dX identified (⇒ dJ/dX = …), then each rewrite the engine recorded (= …)."""
    (first, why), *rest = recorded_forms(derivation, x)
    s = STYLES[style]
    return [Line(f"{s['implies']}{s['jac'].format(to_text(x, style))} = {to_text(first, style)}", why)] + \
        [Line(f"= {to_text(e, style)}", why) for e, why in rest]


def recorded_forms(derivation, x):
    """[(expression, why)]: dJ/dX as the sweep left it (the sum of its uses), then the result of
    each rewrite the engine recorded for X, in order."""
    own = [st for st in derivation.steps if st.definition == x and st.G is None]
    if own and own[0].rule is SUM_OVER_USES:
        n = len(uses(derivation, x))
        forms = [(own[0].results[0][1], f"{own[0].rule.name}: the contributions of the {n} uses add up")]
        own = own[1:]
    else:
        forms = [(own[0].node if own else derivation.adjoint(x, "compact"), IDENTIFY)]
    for st in own:
        why = f"{st.rule.name}: G_N := dJ/dN found above" if st.rule is SUBSTITUTE else st.rule.name
        forms.append((st.results[0][1], why))
    return forms


class Chain:
    """dJ = tr(G_D dD) expanded through the steps of definition D down to the terms in dX."""

    def __init__(self, derivation, d, expr, x, style):
        self.style, self.x, self.s = style, x, STYLES[style]
        self.names, self.lines = {}, []
        seed = derivation.adjoint_symbols.get(d)
        self.terms = [[expr, [seed]]]
        if seed is not None:
            self.lines.append(Line(f"{self.s['d']}J = {self.term(d, seed)}",
                                   f"the adjoint of {d.name}: dJ = tr(G dN)"))
        elif is_matrix(d):
            cost = sp.MatrixSymbol("J", 1, 1)
            self.lines.append(Line(f"{self.s['d']}J = {self.term(cost, seed)}", "J is 1×1: J = tr(J)"))
        if self.lines:
            self.emit(f"definition of {d.name}")
        else:
            self.lines.append(Line(f"{self.s['d']}J = {self.term(expr, seed)}", f"definition of {d.name}"))
        if seed is not None and is_zero(derivation.adjoint(d, "compact")):    # the sweep stopped at D
            self.terms = [[expr, [derivation.adjoint(d, "compact")]]]
            self.drop_zeros(f"G_{d.name} = 0 (found above): the term contributes nothing")
        for step in derivation.steps:
            if step.definition == d and step.G is not None and self.leads(step.node) and step.node != x:
                self.expand(step)
                self.drop_zeros()

    def leads(self, node):
        return node == self.x or self.x in getattr(node, "free_symbols", ())

    def expand(self, step):
        k = next((i for i, t in enumerate(self.terms) if t[0] == step.node), None)
        if k is None:
            return
        children = [(c, g) for c, g in step.results if self.leads(c)]
        name = step.rule.name
        if name == "matrix product" and isinstance(step.node, sp.MatMul):
            coeff, mats = step.node.as_coeff_matrices()
            inner = [self.trace(step.G, [coeff, *mats[:i], self.differential(m), *mats[i + 1:]])
                     for i, m in enumerate(mats) if self.leads(m)]
            if len(mats) == 1:
                self.replace(k, children)
                self.emit("a number varies: d(k A) = dk A, and tr(G dk A) = dk tr(G A)" if self.leads(coeff)
                          else "a scalar factor: d(k A) = k dA")
                return
            if inner:
                self.emit(WHY[name], k, " + ".join(inner))
            self.replace(k, children)
            self.emit(CYCLIC if inner else WHY[name])
            return
        if name == "transpose":
            (child, g), = children
            self.emit(WHY[name], k, self.trace(None, [self.differential(child), sp.Transpose(step.G)]))
            self.replace(k, children)
            self.emit(CYCLIC)
            return
        self.replace(k, children)
        self.emit(WHY.get(name, f"{name}: {step.rule.statement}"))

    def drop_zeros(self, why=ZERO):
        """A term whose adjoint is exactly zero (a step's or a comparison's derivative) is 0:
        the sweep sends nothing on from it, so the chain drops it too."""
        kept = [t for t in self.terms if not all(is_zero(g) for g in t[1])]
        if len(kept) < len(self.terms):
            self.terms[:] = kept
            self.emit(why)

    def replace(self, k, children):
        """Term k becomes the terms of the children; a child already held gets one more part."""
        del self.terms[k]
        for offset, (c, g) in enumerate(children):
            held = next((t for t in self.terms if t[0] == c), None)
            if held is not None:
                held[1].append(g)
            else:
                self.terms.insert(k + offset, [c, [g]])

    def emit(self, why, k=None, replacement=None):
        parts = [replacement if i == k else self.term(node, *gs) for i, (node, gs) in enumerate(self.terms)]
        if any(len(gs) > 1 for _, gs in self.terms):
            why += "; the terms of one quantity add up (linearity)"
        math = "= " + (self.s["join"].join(parts) or "0")
        if math != self.lines[-1].math.replace(f"{self.s['d']}J = ", "= ", 1):   # a move that changed nothing
            self.lines.append(Line(math, why))

    def term(self, node, *gs):
        adjoint = gs[0]
        if len(gs) > 1:
            adjoint = sp.MatAdd(*gs) if is_matrix(gs[0]) else sp.Add(*gs, evaluate=False)
        return self.trace(adjoint, [self.differential(node)])

    def trace(self, G, factors):
        """tr(G F₁⋯Fₙ) printed (G omitted for the cost's own seed), products flattened."""
        if G is not None and G != sp.Identity(1) and G != 1:
            factors = [G, *factors]
        flat = []
        for f in factors:
            if isinstance(f, sp.MatMul):
                coeff, mats = f.as_coeff_matrices()
                flat += [coeff, *mats]
            else:
                flat.append(f)
        coeff = sp.Mul(*[f for f in flat if not is_matrix(f)])
        mats = [f for f in flat if is_matrix(f)]
        if not mats:
            return to_text(coeff, self.style, self.names)
        product = sp.MatMul(coeff, *mats) if (coeff != 1 or len(mats) > 1) else mats[0]
        return to_text(sp.Trace(product), self.style, self.names)

    def differential(self, node):
        """A matrix symbol that prints as dN (or d(N) for a compound N), of N's shape (1×1 for a
        number, so that the printer's name table applies)."""
        text = to_text(node, self.style)
        simple = isinstance(node, (sp.MatrixSymbol, sp.Symbol)) or \
            (isinstance(node, sp.Transpose) and isinstance(node.arg, sp.MatrixSymbol))
        shown = f"{self.s['d']}{text}" if simple else f"{self.s['d']}({text})"
        name = self.placeholder(shown)
        return sp.MatrixSymbol(name, *(shape_of(node) if is_matrix(node) else (1, 1)))

    def placeholder(self, shown):
        name = f"_d{len(self.names)}"
        self.names[name] = shown
        return name


def format_path(blocks, header):
    """The blocks as aligned text: the math, then the identity in brackets."""
    lines = [header]
    for b in blocks:
        lines += ["", f"dJ/d{b.quantity}:"]
        width = min(max(len(ln.math) for ln in b.lines) + 8, 80)
        indent = 2
        for ln in b.lines:
            if ln.math.startswith("= "):
                text = " " * indent + ln.math
            else:
                text = "  " + ln.math
                indent = 2 + ln.math.index(" = ") + 1
            lines.append(f"{text:<{width}}  [{ln.why}]" if ln.why else text)
    return "\n".join(lines)
