"""Named simplifications of results; each application is recorded as a step.

Rewrites never change a value: they replace a subexpression by an equal, shorter one.
"""
import sympy as sp

from .algebra import T, memoised_walk, rebuild
from .entrywise import TooLarge, is_entrywise, map_atoms, simplify_entrywise
from .rules import Rule

NAME_INTERMEDIATES = Rule(
    "name intermediates",
    "a subexpression equal to a definition's right-hand side (or its transpose) is written as "
    "that name: σ(Z) = A when A := σ(Z)", None)
ENTRYWISE = Rule(
    "entry-wise algebra",
    "a region of entry-wise operations is simplified as the scalar expression of one entry, "
    "e.g. (−Y/A + (1 − Y)/(1 − A)) ∘ A ∘ (1 − A) = A − Y", None)
SKIPPED = Rule(
    "entry-wise algebra skipped",
    "a region beyond the simplification budget (integer powers of total degree over 24, or over "
    "400 operations, where cancelling can take minutes) is kept as derived: equal, not simplified", None)
SUBSTITUTE = Rule(
    "substitute adjoints",
    "each adjoint G_N is replaced by its own expression, the sum of its uses", None)


def naming_table(program):
    """{right-hand side: name} for every matrix definition, with transposed pairs."""
    table = {}
    for symbol, expr in program.definitions:
        if isinstance(symbol, sp.MatrixSymbol) and not isinstance(expr, sp.MatrixSymbol):
            table[expr] = symbol
            table[T(expr)] = T(symbol)
    return table


TOO_LARGE = "regions beyond the budget"     # a memo key: the regions kept as derived


@memoised_walk
def simplify_regions(expr, memo):
    """Every maximal entry-wise region of ``expr`` replaced by its simpler form, if any."""
    if is_entrywise(expr):
        expr = map_atoms(expr, lambda a: simplify_regions(a, memo))
        try:
            return simplify_entrywise(expr) or expr
        except TooLarge:
            memo.setdefault(TOO_LARGE, []).append(expr)
            return expr
    return rebuild(expr, [simplify_regions(a, memo) for a in expr.args])


def rewrite(expr, target, names, steps, memo=None):
    """``expr`` after the named rewrites, each change appended to ``steps``.

    ``memo`` (a dict, optional) caches the entry-wise simplification across calls.
    """
    from .derivation import Step
    memo = {} if memo is None else memo
    skipped = len(memo.get(TOO_LARGE, []))
    for rule, apply in ((NAME_INTERMEDIATES, lambda e: e.xreplace(names)),
                        (ENTRYWISE, lambda e: simplify_regions(e, memo))):
        after = apply(expr)
        if after != expr:
            steps.append(Step(target, expr, rule, None, ((target, after),)))
            expr = after
    for region in memo.get(TOO_LARGE, [])[skipped:]:
        steps.append(Step(target, region, SKIPPED, None, ((target, region),)))
    return expr
