"""Why a claim fails: a transpose, a factor, a sign, an activation derivative, another loss —
and a nearby formula that does hold, found by small edits of the claim's text."""
import re

import numpy as np
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from tracegrad.symbolic.algebra import T, hadamard
from tracegrad.symbolic.entrywise import derivative_of
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.printing import to_text
from tracegrad.symbolic.rewrites import naming_table
from tracegrad.symbolic.shapes import same_shape, shape_of

from tracegrad.losses import LOSSES

MAX_EDITS = 80


def diagnose(checker, name, formula, claim, truth):
    notes = []
    truth_values = checker.values(truth)
    if same_shape(shape_of(T(claim)), shape_of(truth)) and \
            checker.agree(checker.values(T(claim)), truth_values) == "yes":
        notes.append("off by a transpose: the formula's transpose holds")
    if same_shape(shape_of(claim), shape_of(truth)):
        claim_values = checker.values(claim)
        factor = constant_factor(claim_values, truth_values)
        if factor is not None:
            notes.append(describe_factor(factor, checker))
        notes.extend(activation_notes(checker, claim, truth, claim_values, truth_values))
    notes.extend(other_losses(checker, name, formula))
    return notes, nearby(checker, name, formula)


def constant_factor(claim_values, truth_values):
    """k with truth = k · claim at every point, or None."""
    ratios = []
    for c, t in zip(claim_values, truth_values):
        mask = np.abs(c) > 1e-12 * max(1.0, np.max(np.abs(c), initial=0))
        if np.any(np.abs(t[~mask]) > 1e-9 * max(1.0, np.max(np.abs(t), initial=0))):
            return None
        if not mask.any():
            continue
        r = t[mask] / c[mask]
        if np.ptp(r) > 1e-8 * max(1.0, np.max(np.abs(r))):
            return None
        ratios.append(r[0])
    return ratios or None


def describe_factor(ratios, checker):
    if all(abs(r + 1) < 1e-8 for r in ratios):
        return "sign flipped: the formula is the negative of the true value"
    if len(ratios) < len(checker.points):
        return f"off by a constant factor: the true value is {ratios[0]:.6g} times the formula" \
            if np.ptp(ratios) < 1e-8 * max(1.0, abs(ratios[0])) else "off by a factor that changes with the data"
    for d in checker.model.dims.values():
        sizes = [p[d] for p in checker.points]
        if all(abs(r - s) < 1e-8 * s for r, s in zip(ratios, sizes)):
            return f"off by a factor {d}: the true value is {d} times the formula (a missing factor {d}, or an extra 1/{d})"
        if all(abs(r * s - 1) < 1e-8 for r, s in zip(ratios, sizes)):
            return f"off by a factor 1/{d}: the true value is the formula divided by {d} (a missing 1/{d})"
    if np.ptp(ratios) < 1e-8 * max(1.0, abs(ratios[0])):
        return f"off by a constant factor: the true value is {ratios[0]:.6g} times the formula"
    return "off by a factor that changes with the data"


def activation_notes(checker, claim, truth, claim_values, truth_values):
    notes, names = [], naming_table(checker.program)
    for symbol, expr in checker.program.definitions:
        if not isinstance(expr, ElementwiseApplyFunction):
            continue
        slope = derivative_of(expr)
        for s in (slope, T(slope)):
            if not same_shape(shape_of(s), shape_of(claim)):
                continue
            named = slope.xreplace(names)
            label = f"f′({to_text(expr.expr, 'unicode')}) = {to_text(named, 'unicode')} (from {symbol} = {to_text(expr, 'unicode')})"
            if checker.agree(checker.values(hadamard(claim, s)), truth_values) == "yes":
                notes.append(f"missing activation derivative: multiplying by {label} entry-wise makes it hold")
            elif checker.agree(claim_values, checker.values(hadamard(truth, s))) == "yes":
                notes.append(f"extra activation derivative: the formula has a factor {label} too many")
            break
    return notes


def other_losses(checker, name, formula):
    notes = []
    own = checker.loss or checker.model.loss.get("name")
    for loss in LOSSES:
        if loss == own:
            continue
        try:
            other = checker.under(loss)
            if other.check(name, formula).verdict == "holds":
                notes.append(f"holds under another loss: {loss} ({LOSSES[loss][0]})")
        except TracegradError:
            continue
    return notes


def edits(formula, names):
    """Small edits of a formula's text: layer index ±1, a transpose added or dropped, a sign."""
    out = []
    for match in re.finditer(r"\b([A-Za-z_]\w*?)(\d+)\b", formula):
        base, index = match.group(1), int(match.group(2))
        for new in (index - 1, index + 1):
            if f"{base}{new}" in names:
                out.append(formula[:match.start()] + f"{base}{new}" + formula[match.end():])
    for match in re.finditer(r"\b[A-Za-z_]\w*\b(\.T)?", formula):
        word = match.group(0).removesuffix(".T")
        if word not in names:
            continue
        if match.group(1):
            out.append(formula[:match.end() - 2] + formula[match.end():])
        else:
            out.append(formula[:match.end()] + ".T" + formula[match.end():])
    out.append(f"-({formula})")
    for d in names.model.dims:
        out += [f"({formula}) * {d}", f"({formula}) / {d}"]
    return list(dict.fromkeys(out))[:MAX_EDITS]


def nearby(checker, name, formula):
    """The first small edit of the formula that holds, or None."""
    for candidate in edits(formula, checker.truth):
        try:
            claim = checker.truth.parse(candidate)
            truth = checker.truth[name]
            if same_shape(shape_of(claim), shape_of(truth)) and \
                    checker.agree(checker.values(claim), checker.values(truth)) == "yes":
                return candidate
        except TracegradError:
            continue
    return None
