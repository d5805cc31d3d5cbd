"""Why a claim fails: a search over a family of edits, each named reason verified.

The family: other readings of the claim's text (a transpose, swapped operands, the other axis, an
extra term, exchanged blocks, a layer index — ``readings.py``), each also scaled by a monomial in
the dimensions and scalars (n, n − 1, 1/m, λ, ½, −1 …); edits of the TRUE value: an activation
derivative missing or extra, the contribution of one use of a node used more than once left out
(a missing ``+=``); another quantity's value (two gradients exchanged); an assumption on the data
(targets one-hot, or probabilities that sum to 1); another loss.

Rule: a reason is named only when the edited formula HOLDS by the checker's own verdict
(symbolic identity or agreement within rounding bounds at the checker's points, as for any
claim); candidates are screened first by their values (cheap), and only a candidate that passes
the screen is verified.  The search stops at the first verified edit; a diagnosis never changes
the verdict.  It is deterministic: its budget counts work (BUDGET units: a screened candidate
costs 1, a verification VERIFY, a loss swap LOSS_COST), with a wall-clock cap (SECONDS) only as
a safety net; when the budget runs out first, the diagnosis says so.
"""
import copy
import time

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from tracegrad.symbolic.algebra import T, add, hadamard, scale
from tracegrad.symbolic.entrywise import derivative_of
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.printing import to_text
from tracegrad.symbolic.rewrites import naming_table
from tracegrad.symbolic.shapes import same_shape, shape_of

from tracegrad.checking.identity import as_scalars, symbolically_equal
from tracegrad.checking.points import draw
from tracegrad.checking.readings import atomic, readings, tree
from tracegrad.checking.scaling import monomial, phrase, scaled_text
from tracegrad.language.formula import parse_formula
from tracegrad.losses import LOSSES

BUDGET, VERIFY, LOSS_COST, SECONDS = 80, 3, 8, 8.0
SPENT = "diagnosis budget spent: no verified reason found in the edits tried"
DATA_KINDS = {"probability columns": "each column of {x} sums to 1 (probabilities)",
              "probability rows": "each row of {x} sums to 1 (probabilities)",
              "one-hot columns": "each column of {x} is one-hot",
              "one-hot rows": "each row of {x} is one-hot"}


class Budget:
    def __init__(self, units=None, seconds=None):
        self.left = BUDGET if units is None else units
        self.deadline, self.spent = time.monotonic() + (SECONDS if seconds is None else seconds), False

    def pay(self, units=1):
        if self.left < units or time.monotonic() > self.deadline:
            self.spent = True
            return False
        self.left -= units
        return True


class Search:
    """One failing claim's diagnosis: ``run`` returns (notes, suggestion)."""

    def __init__(self, checker, name, formula, claim, truth, budget=None):
        self.c, self.name, self.formula, self.claim, self.truth = checker, name, formula, claim, truth
        self.budget = budget or Budget()
        self.truth_values = checker.values(truth)
        fits = claim is not None and same_shape(shape_of(claim), shape_of(truth))
        self.claim_values = checker.values(claim) if fits else None

    def holds(self, text, name=None, checker=None):
        """The checker's own verdict on a candidate formula (no diagnosis of it)."""
        if not self.budget.pay(VERIFY):
            return False
        return (checker or self.c).check(name or self.name, text, explain=False).verdict == "holds"

    def same(self, a, b):
        """Two expressions equal by the verdict machinery (symbolic, or within rounding)."""
        if not self.budget.pay(VERIFY):
            return False
        return symbolically_equal(self.c.program, a, b) or \
            self.c.within_rounding(self.c.measured(a), self.c.measured(b)) == "yes"

    def run(self):
        for family in (self.scaled_claim, self.other_readings, self.activations, self.missing_use,
                       self.exchanged, self.data_assumption):
            found = family()
            if found:
                notes, suggestion = found
                return notes + self.other_losses(), suggestion
            if self.budget.spent:
                return [SPENT], None
        return self.other_losses() or ([SPENT] if self.budget.spent else []), None

    def scale_of(self, values):
        """A monomial k with truth = k · values at every point (1 when equal), or None."""
        if self.c.agree(values, self.truth_values) == "yes":
            return sp.Integer(1)
        return monomial(self.c, values, self.truth_values)

    def scaled_claim(self):
        if self.claim_values is None:
            return None
        k = self.scale_of(self.claim_values)
        if k is None or k == 1:
            return None
        text = scaled_text(self.formula, k)
        if self.holds(text):
            return [phrase(k)], text
        return None

    def other_readings(self):
        for edit, text, why in readings(self.formula, self.c.truth, pairs=self.claim is None):
            if not self.budget.pay():
                return None
            try:
                expr, _ = as_scalars(self.c.truth.parse(text), self.truth)
            except TracegradError:
                continue
            if not same_shape(shape_of(expr), shape_of(self.truth)) or self.c.too_large(expr):
                continue
            k = self.scale_of(self.c.values(expr))
            if k is None:
                continue
            candidate = scaled_text(text, k) if k != 1 else text
            if self.holds(candidate):
                if edit == "the formula transposed" and k == 1:
                    return ["off by a transpose: the formula's transpose holds",
                            f"`{candidate}` holds", f"why: {why}"], candidate
                words = edit if k == 1 else f"{edit}, and {phrase(k)}"
                return [f"{words}: `{candidate}` holds", f"why: {why}"], candidate
        return None

    def activations(self):
        if self.claim_values is None:
            return None
        names = naming_table(self.c.program)
        for symbol, expr in self.c.program.definitions:
            if not isinstance(expr, ElementwiseApplyFunction):
                continue
            slope = derivative_of(expr)
            for s, tail in ((slope, ""), (T(slope), ".T")):
                if not same_shape(shape_of(s), shape_of(self.claim)) or not self.budget.pay(2):
                    continue
                named = to_text(slope.xreplace(names), "numpy")
                label = (f"f′({to_text(expr.expr, 'unicode')}) = {to_text(slope.xreplace(names), 'unicode')} "
                         f"(from {symbol} = {to_text(expr, 'unicode')})")
                if self.c.agree(self.c.values(hadamard(self.claim, s)), self.truth_values) == "yes" and \
                        self.same(hadamard(self.claim, s), self.truth):
                    text = f"{wrap(self.formula)} * {wrap(named)}{tail}"
                    return ([f"missing activation derivative: multiplying by {label} entry-wise makes it hold"],
                            text if self.holds(text) else None)
                if self.c.agree(self.claim_values, self.c.values(hadamard(self.truth, s))) == "yes" and \
                        self.same(self.claim, hadamard(self.truth, s)):
                    return [f"extra activation derivative: the formula has a factor {label} too many"], None
                break
        return None

    def differentiated(self):
        seen = []

        def record(kind, x):
            seen.append(x)
            return self.c.truth.derivative(kind, x)
        parse_formula(self.c.model.meanings[self.name], self.c.truth, derivative=record)
        return list(dict.fromkeys(seen))

    def missing_use(self):
        """The true gradient of a node used k > 1 times is a sum of k terms (one per use,
        the engine's compact form); try the truth with each term left out."""
        if self.claim_values is None:
            return None
        d = self.c.derivation
        by_adjoint = {g: s for s, g in d.adjoint_symbols.items()}
        named = d.forms["named"]
        for x in self.differentiated():
            compact = d.adjoint(x, "compact")
            if not isinstance(compact, sp.MatAdd):
                continue
            uses = [sorted(str(by_adjoint[g]) for g in t.free_symbols if g in by_adjoint) for t in compact.args]
            all_uses = "; ".join(", ".join(u) or "the cost" for u in uses)
            for term, use in zip(compact.args, uses):
                if not self.budget.pay():
                    return None
                through = ", ".join(use) or "the cost"
                left_out = term.xreplace({g: named[s] for s, g in d.adjoint_symbols.items() if s in named})
                rest = add(d.adjoint(x, "named"), scale(-1, left_out))
                edits = [(rest, f"the formula leaves out the term through {through}")]
                if len(uses) > 2:
                    edits.append((left_out, f"the formula keeps only the term through {through}"))
                for value, words in edits:
                    edited = self.meaning_with(x, value)
                    if edited is not None and self.c.agree(self.claim_values, self.c.values(edited)) == "yes" \
                            and self.same(self.claim, edited):
                        return [f"missing the contribution of one use of {x}: {x} is used {len(uses)} times "
                                f"(through {all_uses}); {words} (a missing +=)" if words.endswith(through) and
                                "leaves" in words else
                                f"missing the contributions of the other uses of {x}: {x} is used {len(uses)} "
                                f"times (through {all_uses}); {words} (a missing +=)",
                                "why: dJ = Σ over uses tr(G_use dX_use): the gradient of a node used more than "
                                "once is the sum of one term per use"], None
        return None

    def meaning_with(self, x, adjoint):
        """The claim's meaning with the adjoint of ``x`` replaced by ``adjoint``."""
        def derivative(kind, y):
            return (T(adjoint) if kind == "grad" else adjoint) if y == x else self.c.truth.derivative(kind, y)
        try:
            return parse_formula(self.c.model.meanings[self.name], self.c.truth, derivative=derivative)
        except TracegradError:
            return None

    def exchanged(self):
        if self.claim_values is None:
            return None
        for other in self.c.model.meanings:
            if other == self.name or not self.budget.pay():
                continue
            try:
                value = self.c.truth[other]
            except TracegradError:
                continue
            if not same_shape(shape_of(value), shape_of(self.truth)) or \
                    self.c.agree(self.claim_values, self.c.values(value)) != "yes":
                continue
            if self.holds(self.formula, name=other):
                notes = [f"exchanged with {other}: the formula is the value of {other} "
                         f"({self.c.model.meanings[other]}), not of {self.name}"]
                theirs = self.c.model.claims.get(other)
                return notes, theirs if theirs and self.holds(theirs) else None
        return None

    def data_assumption(self):
        """Holds only for data of a narrower kind: redraw that input so, keep everything else."""
        model = self.c.model
        for n, kind in model.kinds.items():
            x = model.symbols[n]
            if kind not in ("real", "positive", "binary") or x in model.params or not hasattr(x, "shape"):
                continue
            rows, cols = x.shape
            for new, words in DATA_KINDS.items():
                if (new.endswith("columns") and rows == 1) or (new.endswith("rows") and cols == 1):
                    continue
                if not self.budget.pay(2):
                    return None
                other = copy.copy(self.c)
                other.points = [redrawn(p, x, new, self.c.seed, k) for k, p in enumerate(self.c.points)]
                if self.holds(self.formula, checker=other):
                    return [f"holds only if {words.format(x=n)}: with {n} drawn so the formula holds "
                            f"at every point; the model declares {n} {kind}"], None
        return None

    def other_losses(self):
        notes = []
        own = self.c.loss or self.c.model.loss.get("name")
        for loss in LOSSES:
            if loss == own or not self.c.model.loss:
                continue
            if not self.budget.pay(LOSS_COST):
                break
            try:
                if self.c.under(loss).check(self.name, self.formula).verdict == "holds":
                    notes.append(f"holds under another loss: {loss} ({LOSSES[loss][0]})")
            except TracegradError:
                continue
        return notes


def wrap(text):
    """``text`` in parentheses unless it is one operand (a name, a call, a comparison in parentheses)."""
    root = tree(text)
    return text if root is not None and atomic(root) else f"({text})"


def redrawn(point, x, kind, seed, k):
    rows, cols = (int(sp.sympify(d).xreplace(point)) for d in x.shape)
    out = dict(point)
    out[x] = draw(kind, rows, cols, np.random.default_rng([seed, 104729, k]))
    return out


def diagnose(checker, name, formula, claim, truth, budget=None):
    """(notes, suggestion) for a claim that fails (``claim`` None: its shapes do not compose)."""
    return Search(checker, name, formula, claim, truth, budget).run()
