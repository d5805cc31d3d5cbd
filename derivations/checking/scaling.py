"""Scale slips: the true value is k times the formula, k a monomial in dims and scalars.

Candidates k = c · f^a · g^b with c in {±1, ±2, ±½}, f, g among the dimensions d, d − 1, √d and
the scalar parameters, a, b in {−1, 1} (at most two factors), simplest first.  A candidate is
kept when truth / formula equals k at every point (relative 1e-8) — a screen only: the
diagnosis names k after the scaled formula holds by the checker's own verdict.
"""
from itertools import combinations, product

import numpy as np
import sympy as sp

COEFFICIENTS = (1, -1, 2, -2, sp.Rational(1, 2), -sp.Rational(1, 2))
RTOL = 1e-8


def ratios(values, truth_values):
    """r with truth = r · formula at each point, or None (not one constant per point)."""
    out = []
    for c, t in zip(values, truth_values):
        if c.shape != t.shape or not (np.all(np.isfinite(c)) and np.all(np.isfinite(t))):
            return None
        top = max(1.0, float(np.max(np.abs(c), initial=0)))
        mask = np.abs(c) > 1e-12 * top
        if np.any(np.abs(t[~mask]) > 1e-9 * max(1.0, float(np.max(np.abs(t), initial=0)))):
            return None
        if not mask.any():
            return None
        r = t[mask] / c[mask]
        if np.ptp(r) > RTOL * max(1.0, float(np.max(np.abs(r)))):
            return None
        out.append(float(r[0]))
    return out


def factors(checker):
    model = checker.model
    dims = list(model.dims.values())
    scalars = [s for s in model.symbols.values() if isinstance(s, sp.Symbol) and not isinstance(s, sp.MatrixSymbol)]
    return dims + [d - 1 for d in dims] + [sp.sqrt(d) for d in dims] + scalars


def candidates(checker):
    """(k, k at every point) for every candidate, simplest first (values computed numerically)."""
    subs = [{s: v for s, v in p.items() if not hasattr(v, "shape")} for p in checker.points]
    fs = [(f, np.array([float(f.xreplace(s)) for s in subs])) for f in factors(checker)]
    singles = [(f ** a, v ** a) for f, v in fs for a in (-1, 1)]
    doubles = [(f ** a * g ** b, v ** a * w ** b) for (f, v), (g, w) in combinations(fs, 2)
               for a, b in product((-1, 1), repeat=2)]
    one = (sp.Integer(1), np.ones(len(subs)))
    for base, at in [one, *singles, *doubles]:
        for c in COEFFICIENTS:
            if c * base != 1:
                yield c * base, float(c) * at


def monomial(checker, values, truth_values):
    """The simplest candidate k with truth = k · formula at every point, or None."""
    r = ratios(values, truth_values)
    if r is None:
        return None
    r = np.array(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, at in candidates(checker):
            if np.all(np.isfinite(at)) and np.all(np.abs(at - r) <= RTOL * np.maximum(1.0, np.abs(r))):
                return k
    return None


def paren(e):
    text = sp.sstr(e)
    return text if e.is_Symbol or e.is_Number else f"({text})"


def scaled_text(text, k):
    """The formula ``text`` times k, as a formula (``(A).T / m``, ``-(A)``, ``2 * (A)``)."""
    num, den = sp.fraction(sp.factor(k))
    if num == -1:
        head = "-"
    elif num == 1:
        head = ""
    else:
        head = f"{paren(num)} * "
    return f"{head}({text})" + ("" if den == 1 else f" / {paren(den)}")


def phrase(k):
    """The slip in words."""
    if k == -1:
        return "sign flipped: the formula is the negative of the true value"
    num, den = sp.fraction(sp.factor(k))
    if num == 1 and den.is_Symbol:
        return f"off by a factor 1/{den}: the true value is the formula divided by {den} (a missing 1/{den})"
    if den == 1 and k.is_Symbol:
        return f"off by a factor {k}: the true value is {k} times the formula (a missing factor {k}, or an extra 1/{k})"
    return f"off by a factor {sp.sstr(k)}: the true value is {sp.sstr(k)} times the formula"
