"""The reverse sweep: one pass over the program, last definition first."""
from collections import defaultdict
from types import MappingProxyType

import sympy as sp

from .algebra import T, add, is_zero, normal, substitute
from .derivation import Derivation, Step
from .errors import ShapeError, TracegradError
from .program import Program
from .rewrites import SUBSTITUTE, naming_table, rewrite
from .rules import Rule, rule_for
from .shapes import fmt, is_matrix, same_shape, shape_of

SUM_OVER_USES = Rule(
    "sum over uses",
    "N is used by several nodes Mₖ: dJ = Σₖ tr(G_Mₖ dMₖ) = tr((Σₖ G_N⁽ᵏ⁾) dN), so G_N is the sum "
    "of the contributions", None)


def derive(cost, wrt=None):
    """Derive dJ/dX for every X in ``wrt`` (default: every input) and every defined name."""
    program = Program.of(cost).validate()
    leaves = program.leaves()
    wrt = tuple(leaves if wrt is None else wrt)
    defined, leaves = program.defined(), set(leaves)
    for x in wrt:
        if x not in defined and x not in leaves:
            raise TracegradError(f"cannot differentiate with respect to '{x}': the cost does not use it")
    active = Activity(wrt, program)
    steps, uses = [], defaultdict(list)
    symbols = {s: adjoint_symbol(s) for s, e in program.definitions[:-1] if active(s)}
    compact = {}
    for symbol, expr in reversed(program.definitions):
        if not active(symbol):
            continue
        if symbol == program.cost:
            seed = sp.Identity(1) if is_matrix(symbol) else sp.Integer(1)
        else:
            compact[symbol] = collect(symbol, uses.pop(symbol, []), steps)
            seed = symbols[symbol]
            if is_zero(compact[symbol]):      # only zeros reach it: it sends nothing on
                continue
        if active(expr):
            sweep(symbol, expr, seed, active, steps, uses)
    for x in wrt:
        if x not in defined:
            compact[x] = collect(x, uses.pop(x, []), steps)
    forms = finish(program, compact, symbols, steps)
    return Derivation(program, wrt, tuple(steps), MappingProxyType(symbols),
                      MappingProxyType({k: MappingProxyType(v) for k, v in forms.items()}))


class Activity:
    """Which nodes depend on what is differentiated (only those get adjoints)."""

    def __init__(self, wrt, program):
        self.leaves = set(wrt)
        self.memo = {}
        for symbol, expr in program.definitions:
            if self(expr):
                self.leaves.add(symbol)

    def __call__(self, node):
        if isinstance(node, (sp.MatrixSymbol, sp.Symbol)):
            return node in self.leaves
        if node not in self.memo:
            self.memo[node] = any(self(a) for a in node.args if isinstance(a, sp.Basic))
        return self.memo[node]


def adjoint_symbol(symbol):
    if is_matrix(symbol):
        rows, cols = symbol.shape
        return sp.MatrixSymbol(f"G_{symbol.name}", cols, rows)
    return sp.Symbol(f"g_{symbol.name}")


def zero_adjoint(x):
    """The adjoint of a quantity no contribution reaches: the zero matrix of the shape of Xᵀ."""
    return sp.ZeroMatrix(*shape_of(T(x))) if is_matrix(x) else sp.Integer(0)


def collect(x, contributions, steps):
    total = add(*contributions) if contributions else zero_adjoint(x)
    if is_zero(total):
        total = zero_adjoint(x)
    if len(contributions) > 1:
        steps.append(Step(x, x, SUM_OVER_USES, None, ((x, total),)))
    return total


def order(root, active):
    """Active nodes of the expression DAG, every node before the nodes it is built from."""
    seen, post = set(), []
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            post.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            if not isinstance(node, (sp.MatrixSymbol, sp.Symbol)):
                stack.extend((c, False) for c in rule_for(node).children(node) if active(c) and c not in seen)
    return post[::-1]


def sweep(definition, expr, seed, active, steps, uses):
    """Push ``seed`` (the adjoint of ``definition``) through ``expr`` node by node.

    A contribution that is exactly zero (a step's or a comparison's derivative, a constant
    branch) is dropped: dJ = tr(0 dA) = 0, so the branch below it contributes nothing, and a node
    that only zeros reach gets no rule application (an input that only they reach gets the zero
    adjoint of its shape when its uses are collected)."""
    pending = {expr: [seed]}
    for node in order(expr, active):
        G = add(*pending.pop(node, ()))
        if is_zero(G):
            continue
        if isinstance(node, (sp.MatrixSymbol, sp.Symbol)):
            uses[node].append(G)
            continue
        rule = rule_for(node)
        results = tuple(rule.apply(node, G, active))
        for child, contribution in results:
            check_adjoint(node, rule, child, contribution)
            if not is_zero(contribution):
                pending.setdefault(child, []).append(contribution)
        steps.append(Step(definition, node, rule, G, results))


def check_adjoint(node, rule, child, contribution):
    want = shape_of(T(child)) if is_matrix(child) else None
    got = shape_of(contribution)
    if (want is None) != (got is None) or (want is not None and not same_shape(want, got)):
        raise ShapeError(f"rule '{rule.name}' at '{node}' gave an adjoint of shape {fmt(got)} "
                         f"for '{child}', expected {fmt(want)}")


def finish(program, compact, symbols, steps):
    """The three forms of every result, with the rewrites recorded as steps.

    Results of a deep network share long tails (the named form of G_W1 holds that of G_Z2, …),
    so normalisation, simplification and expansion are memoised by subexpression across
    results: each shared tail is processed once and the cost stays linear in depth.
    """
    names = naming_table(program)
    simplified, normalised = {}, {}
    compact = {x: rewrite(g, x, names, steps, simplified) for x, g in compact.items()}
    named, adjoint_of = {}, {a: s for s, a in symbols.items()}
    # last definition first, an input or parameter right after the first definition that uses it:
    # each result then builds on tails already processed, and transposing them is memoised
    position = {}
    for i, (s, e) in enumerate(program.definitions):
        position[s] = i
        for leaf in e.free_symbols:
            position.setdefault(leaf, i)
    for x in sorted(compact, key=lambda x: position.get(x, -1), reverse=True):
        g = compact[x]
        subs = {a: named[adjoint_of[a]] for a in g.free_symbols if a in adjoint_of and adjoint_of[a] in named}
        if subs:
            g = normal(g.xreplace(subs), normalised)
            steps.append(Step(x, compact[x], SUBSTITUTE, None, ((x, g),)))
            g = rewrite(g, x, {}, steps, simplified)
        named[x] = g
        normalised.setdefault(g, g)     # later results hold it whole: not walked again
    expansion, expanded = program.expansions(), {}
    return {"compact": compact, "named": named,
            "expanded": {x: substitute(g, expansion, expanded) for x, g in named.items()}}
