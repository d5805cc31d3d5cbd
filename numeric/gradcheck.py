"""Gradient checks that never cry wolf: complex-step directional derivatives, a tolerance from a
rounding-error model, and three verdicts (pass / fail / inconclusive).

At a point θ and a direction v, the derived gradients predict ⟨∇J, v⟩ = Σ_X ⟨G_X, v_X⟩ and the
complex step measures Im J(θ + i·h·v)/h (h = 1e-30: no cancellation, no truncation).  The two
may differ by rounding only, bounded by

    C·u·( ⟨ε(G), |v|⟩ + (√N + κ_J)·⟨|G|, |v|⟩ )

ε(G): the rounding model of the gradient formula (``errorbound``); √N: the dot product of
length N (probabilistic, as in ``errorbound``); κ_J: how many relative roundings the cost
passes to its derivative (its node count plus the relative error of every element-wise
derivative in it, which is where saturation shows).  A check is ``inconclusive`` — never
``fail`` — when a value is not finite, a branch argument (a ReLU pre-activation) is within its
rounding error of the kink, or the bound is too loose to resolve a relative error of
``RESOLUTION``.  Where the cost cannot run on complex numbers, central differences with one
Richardson step stand in, and a ReLU switching inside the stencil is a ``Kink``.
"""
import copy
from dataclasses import dataclass

import numpy as np
import sympy as sp

from tracegrad.symbolic.algebra import dag_nodes, oriented
from tracegrad.symbolic.entrywise import derivative_of
from tracegrad.symbolic.errors import TracegradError

from .compile import compile_expression, compile_group
from .errorbound import UNIT_ROUNDOFF, NoErrorModel, absval, branch_arguments, elementwise_nodes, rounding_bound

SAFETY = 8              # C = λ: covers library functions' few ulps and the complex-step side
RESOLUTION = 5e-4       # a looser bound (relative to the value) could let a 0.2 % bug pass
FALLBACK_RTOL = 1e-9    # only when a formula has no rounding model
H = 1e-30


@dataclass(frozen=True)
class Measurement:
    """⟨∇J, v⟩ along one direction at one point."""
    block: str            # the parameter the direction moves, or "all"
    point: int
    predicted: float
    measured: float
    bound: float
    verdict: str          # pass | fail | inconclusive
    reason: str = ""

    @property
    def error(self):
        return abs(self.predicted - self.measured)

    @property
    def ratio(self):
        """error / bound: ≤ 1 is within rounding."""
        return self.error / self.bound if self.bound > 0 else (0.0 if self.error == 0 else np.inf)

    def as_dict(self):
        return {"block": self.block, "point": self.point, "predicted": self.predicted,
                "measured": self.measured, "error": self.error, "bound": self.bound,
                "ratio": self.ratio, "verdict": self.verdict, "reason": self.reason}


def verdict_of(measurements):
    """fail if any measurement fails; else inconclusive if any is; else pass."""
    verdicts = {m.verdict for m in measurements}
    return "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts or not verdicts else "pass"


class Kink(TracegradError):
    """A branch switches inside a finite-difference stencil: the difference means nothing."""


class Landscape:
    """What a point looks like to a cost: its branch arguments (ReLU pre-activations) and the
    derivatives of its smooth element-wise functions, with rounding bounds, in one compiled
    pass.  Decides kinks, saturation (κ_J) and coverage."""

    def __init__(self, cost):
        self.cost_size = sum(1 for _ in dag_nodes(cost))
        self.branch_exprs = tuple(branch_arguments(cost))
        slopes = _smooth_derivatives(cost)
        self.landscape = compile_group([*self.branch_exprs, *map(bound_of, self.branch_exprs),
                                        *slopes, *map(bound_of, slopes)])
        self.kinks, self.slopes = len(self.branch_exprs), len(slopes)

    def branches(self, point, landscape=None):
        """[(branch argument, its rounding bound)] at ``point``."""
        out, k = landscape or self.landscape(point), self.kinks
        return list(zip(out[:k], out[k:2 * k]))

    def on_kink(self, point, branches=None):
        """A reason when some branch argument is within its rounding error of 0, else ''."""
        for value, bound in self.branches(point) if branches is None else branches:
            if np.any(np.abs(np.real(value)) <= SAFETY * UNIT_ROUNDOFF * bound):
                return "a branch argument (e.g. a ReLU pre-activation) sits on its kink"
        return ""

    def conditioning(self, point, landscape=None):
        """κ_J: relative roundings the complex step's derivative may carry."""
        out, k, n = landscape or self.landscape(point), 2 * self.kinks, self.slopes
        kappa = float(self.cost_size)
        with np.errstate(divide="ignore", invalid="ignore"):
            for slope, bound in zip(out[k:k + n], out[k + n:]):
                s = np.abs(slope)
                rel = np.where(s > 0, bound / s, 0.0)
                kappa += float(np.max(rel, initial=0.0)) if np.all(np.isfinite(rel)) else np.inf
        return kappa


class GradientChecker(Landscape):
    """Derived gradients of one cost, compiled once, checked at any number of points: one pass
    gives G and ε(G) for every block (common parts shared), one the landscape."""

    @classmethod
    def of(cls, derivation):
        """The checker of every matrix gradient a derivation holds."""
        gradients = {x: derivation.gradient(x) for x in derivation.wrt if isinstance(x, sp.MatrixSymbol)}
        return cls(derivation.program.expanded_cost, gradients)

    def __init__(self, cost, gradients):
        super().__init__(cost)
        self.blocks = tuple(gradients)
        self.cost = compile_expression(cost)
        gs = [oriented(gradients[x]) for x in self.blocks]
        self.together = compile_group([*gs, *map(bound_of, gs)])
        self.replaced = {}

    def with_gradient(self, x, expr):
        """The same checker with the gradient of ``x`` replaced (to plant a bug)."""
        other = copy.copy(self)
        other.replaced = {**self.replaced, x: compile_expression(expr)}
        return other

    def gradient(self, x, point):
        return np.asarray(self.replaced[x](point) if x in self.replaced else self.values(point)[0][x])

    def values(self, point):
        """({x: G}, {x: ε(G)}, {x: |G|}) at ``point``."""
        out, n = self.together(point), len(self.blocks)
        grads, bounds = ({x: np.asarray(v) for x, v in zip(self.blocks, out[k * n:(k + 1) * n])}
                         for k in range(2))
        grads.update({x: np.asarray(f(point)) for x, f in self.replaced.items()})
        return grads, bounds, {x: np.abs(g) for x, g in grads.items()}


    def measure(self, point, index, rng, global_directions=2):
        """Measurements at one point: one direction per block, then ``global_directions``.
        Overflow, log 0 and the like give non-finite values, hence ``inconclusive``."""
        with np.errstate(all="ignore"):
            return self._measure(point, index, rng, global_directions)

    def _measure(self, point, index, rng, global_directions):
        landscape = self.landscape(point)
        kink = self.on_kink(point, self.branches(point, landscape))
        values, errors, sizes = self.values(point)
        kappa = self.conditioning(point, landscape)
        plans = [(x.name, {x: rng.standard_normal(point[x].shape)}) for x in self.blocks]
        plans += [("all", {x: rng.standard_normal(point[x].shape) for x in self.blocks})
                  for _ in range(global_directions if len(self.blocks) > 1 else 0)]
        out = []
        base = self.cost.run(point)
        for name, v in plans:
            predicted = float(np.real(sum(np.sum(values[x] * d) for x, d in v.items())))
            try:
                measured, own = self.along(point, v, base)
            except Kink as e:
                measured, own, kink = np.nan, 0.0, str(e)
            scale = sum(float(np.sum(sizes[x] * np.abs(d))) for x, d in v.items())
            n = sum(d.size for d in v.values())
            modelled = sum(float(np.sum(errors[x] * np.abs(d))) for x, d in v.items())
            bound = SAFETY * UNIT_ROUNDOFF * (modelled + own + (np.sqrt(n) + kappa) * scale)
            out.append(self.judge(name, index, predicted, measured, bound, kink))
        return out

    def along(self, point, v, base=None):
        """(⟨∇J, v⟩ measured, its own error bound) for a direction given block by block:
        Im J(θ + i·h·v)/h, or central differences where J cannot run on complex numbers.
        ``base``: ``self.cost.run(point)``, so only what depends on the moved blocks is redone."""
        shifted = {x: point[x] + 1j * H * d for x, d in v.items()}
        try:
            value = self.cost.rerun(base, shifted) if base else self.cost({**point, **shifted})
            value = np.asarray(value).reshape(())
        except TracegradError:
            value = None
        if value is not None and np.iscomplexobj(value):
            return float(np.imag(value)) / H, 0.0
        return self.central(point, v)

    def central(self, point, v):
        """Central differences with one Richardson step, R = (4 D(h/2) − D(h))/3; the
        truncation estimate |R − D(h/2)| and the rounding of J/h join the bound.  A ReLU that
        switches inside the stencil makes the result meaningless: ``Kink``."""
        h = np.cbrt(np.finfo(float).eps) * max(1.0, *(float(np.max(np.abs(point[x]))) for x in v))

        def J(t):
            moved = {**point, **{x: point[x] + t * d for x, d in v.items()}}
            signs = [np.real(z) > 0 for z, _ in self.branches(moved)]
            return float(np.real(np.asarray(self.cost(moved)).reshape(()))), signs
        (j0, s0), *others = [J(t) for t in (0.0, h, -h, h / 2, -h / 2)]
        if any(any(np.any(a != b) for a, b in zip(s0, s)) for _, s in others):
            raise Kink("a ReLU switches within the finite-difference stencil")
        (up, _), (down, _), (up2, _), (down2, _) = others
        coarse, fine = (up - down) / (2 * h), (up2 - down2) / h
        richardson = (4 * fine - coarse) / 3
        return richardson, abs(richardson - fine) / (SAFETY * UNIT_ROUNDOFF) + abs(j0) / h

    def judge(self, name, index, predicted, measured, bound, kink):
        def result(verdict, reason=""):
            return Measurement(name, index, predicted, measured, bound, verdict, reason)
        if kink:
            return result("inconclusive", kink)
        if not (np.isfinite(predicted) and np.isfinite(measured) and np.isfinite(bound)):
            return result("inconclusive", "a value or its rounding bound is not finite")
        if bound > RESOLUTION * max(abs(measured), abs(predicted)) and bound > 0:
            return result("inconclusive", "ill-conditioned here (a saturated output or heavy "
                                          "cancellation): rounding could hide a real error")
        return result("pass" if abs(predicted - measured) <= bound else "fail")

    def entries(self, point, x, indices):
        """(derived, measured) gradient entries of block ``x`` at ``indices``, one step each."""
        derived = self.gradient(x, point)
        measured = []
        for k in indices:
            e = np.zeros(point[x].shape)
            e[k] = 1.0
            measured.append(self.along(point, {x: e})[0])
        return np.array([derived[k] for k in indices]), np.array(measured)


def bound_of(expr):
    """ε(expr); exact is 0; with no rounding model, the fallback relative tolerance."""
    try:
        bound = rounding_bound(expr)
    except NoErrorModel:
        bound = (sp.MatMul if expr.is_Matrix else sp.Mul)(sp.Float(FALLBACK_RTOL / UNIT_ROUNDOFF), absval(expr))
    if bound is None:
        return sp.ZeroMatrix(*expr.shape) if expr.is_Matrix else sp.Integer(0)
    return bound


def _smooth_derivatives(cost):
    """f′(X) for every element-wise application f(X) in the cost whose f is smooth."""
    return [d for d in map(derivative_of, elementwise_nodes(cost))
            if not isinstance(d, sp.ZeroMatrix) and d.free_symbols]


def localise(checker, point, x, limit=400, worst=3):
    """The worst entries of block ``x``: every entry for small blocks, else bisection on halves."""
    shape = point[x].shape
    indices = list(np.ndindex(shape))
    while len(indices) > limit:
        halves = (indices[: len(indices) // 2], indices[len(indices) // 2:])
        gaps = []
        for half in halves:
            v = np.zeros(shape)
            for k in half:
                v[k] = 1.0
            predicted = float(np.sum(checker.gradient(x, point) * v))
            gaps.append(abs(predicted - checker.along(point, {x: v})[0]))
        indices = halves[int(np.argmax(gaps))]
    derived, measured = checker.entries(point, x, indices)
    order = np.argsort(-np.abs(derived - measured))[:worst]
    return [(indices[k], float(derived[k]), float(measured[k])) for k in order], derived, measured


FACTORS = {2: "2", 0.5: "1/2", -1: "−1 (a sign)"}


def explain(derived, measured, dims=None, shape=None):
    """What the derived/true mismatch looks like: a constant factor (named after a size when
    it is one), a sign, a transpose, a mask.  ``shape``: the block's, when every entry is given."""
    if derived.shape != measured.shape:
        return "shapes differ"
    top = max(1.0, float(np.max(np.abs(measured), initial=0)))
    nonzero = np.abs(measured) > 1e-12 * top
    zero_derived = np.abs(derived) <= 1e-12 * max(1.0, float(np.max(np.abs(derived), initial=0)))
    if np.any(nonzero) and np.all(zero_derived[~nonzero]):
        ratios = derived[nonzero] / measured[nonzero]
        if np.ptp(ratios) <= 1e-8 * max(1.0, abs(float(np.mean(ratios)))) and abs(np.mean(ratios) - 1) > 1e-9:
            c = float(np.mean(ratios))
            names = [n for k, n in FACTORS.items() if abs(c - k) < 1e-9]
            for name, k in (dims or {}).items():
                names += [name] if abs(c - k) < 1e-9 else []
                names += [f"1/{name}"] if abs(c * k - 1) < 1e-9 else []
                names += [f"{name}/({name} − 1)"] if k > 1 and abs(c - k / (k - 1)) < 1e-9 else []
                names += [f"({name} − 1)/{name}"] if k > 1 and abs(c - (k - 1) / k) < 1e-9 else []
            return f"off by a constant factor {c:.6g}" + (f" ({', '.join(names)})" if names else "")
    if shape and shape[0] == shape[1] and derived.size == shape[0] * shape[1] and \
            np.allclose(derived.reshape(shape).T, measured.reshape(shape), rtol=1e-9, atol=1e-12 * top):
        return "off by a transpose: the formula's transpose is the gradient"
    close = np.isclose(derived, measured, rtol=1e-9, atol=1e-12 * top)
    if np.all(close | ~nonzero):
        return "a mask: the formula is non-zero where the true gradient is zero (a missing 1[z > 0]?)"
    if np.all(close | zero_derived):
        return "a mask: the formula is zero where the true gradient is not (an extra 1[z > 0]?)"
    return "entries differ without a simple pattern"
