"""Gradient checks that never cry wolf: complex-step directional derivatives, a tolerance from a
rounding-error model, and three verdicts (pass / fail / inconclusive).

At a point θ and a direction v (|vᵢ| ∈ [½, 1), random signs), the derived gradients predict
⟨∇J, v⟩ = Σ_X ⟨G_X, v_X⟩ and the complex step measures Im J(θ + i·h·v)/h (h = 1e-30: no
cancellation, no truncation).  The two may differ by rounding only, bounded by

    C·u·( ⟨ε(G), |v|⟩ + √N·⟨|G|, |v|⟩ + D(J) + T(J) )

ε(G): the rounding model of the gradient formula (``errorbound``), evaluated over the model's
named program as the generated code computes it; √N: the dot product of length N
(probabilistic, as in ``errorbound``); D(J): the rounding error of the complex step's own tangent
computation and T(J) ≥ |J̇| (``tangents``), for any |v| ≤ 1, so computed once per point.
κ = D(J)/T(J) is how many relative roundings the cost passes to its derivative: where it is huge
an output is saturated.  A check is ``inconclusive`` — never ``fail`` — when a value is not
finite, a branch argument (a ReLU pre-activation) is within its rounding error of the kink, or
the bound is too loose to resolve a relative error of ``RESOLUTION``.

Directions: ``GLOBAL_DIRECTIONS`` moving every block at once.  A block passes at a point through
a global direction that passes and resolves it (bound ≤ RESOLUTION·|⟨G_X, v_X⟩|: a 0.2 % error in
that block alone would exceed the bound); a block no global direction resolves, and every block
at a point where a global direction fails, gets a direction of its own.  Where the cost cannot
run on complex numbers, central differences with one Richardson step stand in, and a ReLU
switching inside the stencil is a ``Kink``.
"""
import copy
from dataclasses import dataclass

import numpy as np
import sympy as sp

from tracegrad.symbolic.algebra import oriented
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.shapes import is_matrix

from .compile import compile_expression, compile_group
from .errorbound import UNIT_ROUNDOFF, absval, branch_arguments, entry_total
from .tangents import ProgramBounds

SAFETY = 8              # C = λ: covers library functions' few ulps and the complex-step side
RESOLUTION = 5e-4       # a looser bound (relative to the value) could let a 0.2 % bug pass
FALLBACK_RTOL = 1e-9    # only when a formula has no rounding model
GLOBAL_DIRECTIONS = 2
H = 1e-30


@dataclass(frozen=True)
class Measurement:
    """⟨∇J, v⟩ along one direction at one point."""
    block: str            # the parameter the verdict is about, or "all"
    point: int
    predicted: float
    measured: float
    bound: float
    verdict: str          # pass | fail | inconclusive
    reason: str = ""
    direction: str = ""   # the block the direction moves, or "all"

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
                "ratio": self.ratio, "verdict": self.verdict, "reason": self.reason,
                "direction": self.direction or self.block}


def verdict_of(measurements):
    """fail if any measurement fails; else inconclusive if any is; else pass."""
    verdicts = {m.verdict for m in measurements}
    return "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts or not verdicts else "pass"


class Kink(TracegradError):
    """A branch switches inside a finite-difference stencil: the difference means nothing."""


def _leaves(expr, definitions):
    defined = {s for s, _ in definitions}
    found = set().union(expr.free_symbols, *(e.free_symbols for _, e in definitions))
    return sorted((s for s in found - defined if isinstance(s, sp.MatrixSymbol)
                   or (isinstance(s, sp.Symbol) and not s.is_integer)), key=str)


def _leaf_dependencies(definitions):
    """{defined name: the symbols (not defined) its value depends on}, through the definitions."""
    deps = {}
    for name, expr in definitions:
        deps[name] = _leaves_of(expr, deps)
    return deps


def _leaves_of(expr, deps):
    """The undefined symbols ``expr`` depends on, defined names replaced by their dependencies."""
    out = set()
    for s in expr.free_symbols:
        out |= deps[s] if s in deps else {s}
    return frozenset(out)


def depends_on(landscape, expr, variables):
    """Whether the branch argument ``expr`` of ``landscape`` depends on one of ``variables``."""
    return bool(landscape.branch_leaves[expr] & set(variables))


class Landscape:
    """What a point looks like to a cost (one expression, or the last name of ``definitions``):
    its branch arguments (ReLU pre-activations) with rounding bounds, and T(J), D(J) of a complex
    step moving ``moved`` (default: every input), in one compiled program.  Decides kinks,
    saturation (κ) and coverage.  Subclasses add outputs (``extra``) to the same program."""

    def __init__(self, cost, definitions=(), moved=None, complex_step=True):
        self.definitions = tuple(definitions)
        self.moved = tuple(_leaves(cost, self.definitions) if moved is None else moved)
        # without a complex step (claims compare values), no tangent bounds: κ is then 0
        self.bounds = ProgramBounds(self.definitions, self.moved if complex_step else (), fallback=_fallback)
        exprs = [e for _, e in self.definitions] + [cost]
        leaves = _leaf_dependencies(self.definitions)
        found = dict.fromkeys(b for e in exprs for b in branch_arguments(e))
        # a branch on data alone (Y >= 0, Y > 0.5: nothing moved reaches it) is no kink of the cost
        # along any direction: only branch arguments that depend on a moved symbol count
        self.branch_leaves = {b: _leaves_of(b, leaves) for b in found}
        self.branch_exprs = tuple(b for b in found if self.branch_leaves[b] & set(self.moved))
        self.kinks = len(self.branch_exprs)
        step = self.bounds.step(cost)
        self.step_model = step is not None
        self.outputs = [cost, *self.branch_exprs, *map(self.bound_of, self.branch_exprs),
                        *(step or (sp.Integer(0), sp.Integer(0)))]
        self.cost_index, self.look_outputs = 0, range(len(self.outputs))
        self.step_outputs = [len(self.outputs) - 2, len(self.outputs) - 1]
        self.every_scale = {mu: 1.0 for mu in self.bounds.scales.values()}

    @property
    def program(self):
        """The compiled program of every output (built on first use)."""
        if "_program" not in self.__dict__:
            self._program = compile_group(self.outputs, self.definitions + tuple(self.bounds.definitions))
        return self._program

    def bound_of(self, expr):
        """ε(expr) over the program; exact is 0; with no rounding model, the fallback."""
        return _zero_if_exact(expr, self.bounds.error(expr))

    def run_forward(self, point):
        """The program run at ``point`` for the branch arguments only (no bounds)."""
        return self._remember(point, self.program.run({**point, **self.every_scale}, range(1, 1 + self.kinks)))

    def look(self, point, state=None):
        """The program run at ``point`` for what the landscape needs (a state to read or resume);
        ``state``: a run at the same point to continue from (default: the last run, if it was
        at this very point — the one point selection kept is then not run again)."""
        state = self._recalled(point) if state is None else state
        if state is None:
            return self._remember(point, self.program.run({**point, **self.every_scale}, self.look_outputs))
        return self.program.resume(state, self.look_outputs)

    def _remember(self, point, state):
        self._last = (dict(point), state)
        return state

    def _recalled(self, point):
        """The last state, if it was run at ``point`` (the same value objects: points are inputs,
        never changed in place)."""
        last = self.__dict__.get("_last")
        if last is None or last[0].keys() != point.keys() or any(last[0][k] is not v for k, v in point.items()):
            return None
        return last[1]

    def block_step(self, state, x):
        """(T(J), D(J)) for a direction that moves ``x`` alone (|v_x| ≤ 1, the rest fixed)."""
        if not self.step_model:
            return None
        alone = {mu: float(y == x) for y, mu in self.bounds.scales.items()}
        size, error = self.program.rerun(state, alone, self.step_outputs)
        return float(np.sum(np.real(size))), float(np.sum(np.real(error)))

    def branch_values(self, state):
        return self.program.outputs(state, range(1, 1 + self.kinks))

    def branches(self, state):
        """[(branch argument, its rounding bound)] in a state from ``look``."""
        out = self.program.outputs(state, range(1, 2 * self.kinks + 1))
        return list(zip(out[:self.kinks], out[self.kinks:]))

    def step(self, state):
        """(T(J), D(J)) in a state from ``look``: size and rounding error of a complex step's
        tangent, for any direction with |v| ≤ 1 (None without a tangent model)."""
        if not self.step_model:
            return None
        size, error = self.program.outputs(state, self.step_outputs)
        return float(np.sum(np.real(size))), float(np.sum(np.real(error)))

    def on_kink(self, branches):
        """A reason when some branch argument is within its rounding error of 0, else ''."""
        for value, bound in branches:
            if np.any(np.abs(np.real(value)) <= SAFETY * UNIT_ROUNDOFF * np.real(bound)):
                return "a branch argument (e.g. a ReLU pre-activation) sits on its kink"
        return ""

    def conditioning(self, state):
        """κ = D(J)/T(J): relative roundings the complex step's derivative may carry."""
        step = self.step(state)
        if step is None:
            return FALLBACK_RTOL / UNIT_ROUNDOFF
        size, error = step
        if not (np.isfinite(size) and np.isfinite(error)):
            return np.inf
        return error / size if size > 0 else (0.0 if error == 0 else np.inf)


def _fallback(expr):
    # a matrix product, not float * MatrixExpr (SymPy refuses that mix)
    return (sp.MatMul if is_matrix(expr) else sp.Mul)(sp.Float(FALLBACK_RTOL / UNIT_ROUNDOFF), absval(expr))


def _zero_if_exact(expr, bound):
    if bound is None:
        return sp.ZeroMatrix(*expr.shape) if is_matrix(expr) else sp.Integer(0)
    return bound


class GradientChecker(Landscape):
    """Derived gradients of one cost, compiled once with the cost's program, checked at any
    number of points: one pass gives the landscape, G and ε(G) for every block (common parts
    shared), complex steps re-run only what depends on the moved blocks."""

    @classmethod
    def of(cls, derivation):
        """The checker of every gradient a derivation holds (matrices and scalars), evaluated
        over its program in the named form."""
        program = derivation.program
        blocks = [x for x in derivation.wrt if isinstance(x, (sp.MatrixSymbol, sp.Symbol))]
        return cls(program.cost, {x: derivation.gradient(x, "named") for x in blocks}, program.definitions)

    def __init__(self, cost, gradients, definitions=()):
        self.blocks = tuple(gradients)
        super().__init__(cost, definitions, self.blocks)
        gs = [oriented(gradients[x]) for x in self.blocks]
        first = len(self.outputs)
        # only ⟨ε(G), |v|⟩ ≤ Σ ε(G) (|v| ≤ 1) is used: the total, never ε(G) entry by entry
        self.outputs += [*gs, *(entry_total(self.bound_of(g)) for g in gs)]
        self.gradient_outputs = range(first, len(self.outputs))
        self.replaced = {}

    def with_gradient(self, x, expr):
        """The same checker with the gradient of ``x`` replaced (to plant a bug)."""
        other = copy.copy(self)
        other.replaced = {**self.replaced, x: compile_expression(expr)}
        return other

    def prepare(self, point):
        """The program run at ``point``: landscape, cost, gradients and their bounds."""
        return self.program.resume(self.look(point), self.gradient_outputs)

    def values(self, point, state=None):
        """({x: G}, {x: Σ ε(G)}, {x: |G|}) at ``point``."""
        state = self.prepare(point) if state is None else state
        out, n = self.program.outputs(state, self.gradient_outputs), len(self.blocks)
        grads = {x: np.asarray(v) for x, v in zip(self.blocks, out[:n])}
        bounds = {x: float(np.sum(np.real(v))) for x, v in zip(self.blocks, out[n:])}
        grads.update({x: np.asarray(f(point)) for x, f in self.replaced.items()})
        return grads, bounds, {x: np.abs(g) for x, g in grads.items()}

    def gradient(self, x, point):
        return self.values(point)[0][x]

    def measure(self, point, index, rng, global_directions=GLOBAL_DIRECTIONS, every_block=False):
        """Measurements at one point: ``global_directions`` moving every block, then a direction
        per block where needed (``every_block``: for every block).  Overflow, log 0 and the like
        give non-finite values, hence ``inconclusive``."""
        with np.errstate(all="ignore"):
            return self._measure(point, index, rng, global_directions, every_block)

    def _measure(self, point, index, rng, global_directions, every_block):
        state = self.prepare(point)
        kink = self.on_kink(self.branches(state))
        values, errors, sizes = self.values(point, state)
        step = self.step(state)

        def one(blocks, name):
            v = {x: _direction(rng, np.shape(point[x])) for x in blocks}
            shares = {x: float(np.real(np.vdot(values[x], d))) for x, d in v.items()}
            predicted = sum(shares.values())
            try:
                measured, own = self.along(point, v, state)
            except Kink as e:
                measured, own, why = np.nan, 0.0, str(e)
            else:
                why = kink
            magnitude = {x: np.abs(d) for x, d in v.items()}
            scale = sum(float(np.vdot(sizes[x], a)) for x, a in magnitude.items())
            modelled = sum(errors[x] for x in v)
            n = sum(np.size(d) for d in v.values())
            own_step = step if len(blocks) > 1 or step is None else self.block_step(state, blocks[0])
            measuring = sum(own_step) if own_step is not None else FALLBACK_RTOL / UNIT_ROUNDOFF * abs(measured)
            bound = SAFETY * UNIT_ROUNDOFF * (modelled + np.sqrt(n) * scale + measuring + own)
            return self.judge(name, index, predicted, measured, bound, why, name), shares

        if len(self.blocks) == 1:
            (x,) = self.blocks
            return [one(self.blocks, x.name)[0] for _ in range(max(global_directions, 1))]
        together = [one(self.blocks, "all") for _ in range(global_directions)]
        out = [m for m, _ in together]
        failed = any(m.verdict == "fail" for m in out)
        for x in self.blocks:
            via = [] if failed or every_block else \
                [m for m, shares in together if m.verdict != "fail" and m.bound <= RESOLUTION * abs(shares[x])]
            if via and all(m.verdict == "pass" for m in via):
                out += [Measurement(x.name, index, m.predicted, m.measured, m.bound, "pass", "", "all") for m in via]
            elif via:
                out += [Measurement(x.name, index, m.predicted, m.measured, m.bound, m.verdict, m.reason, "all")
                        for m in via if m.verdict != "pass"]
            else:
                m, _ = one([x], x.name)
                out.append(Measurement(x.name, index, m.predicted, m.measured, m.bound, m.verdict, m.reason, x.name))
        return out

    def along(self, point, v, state=None):
        """(⟨∇J, v⟩ measured, its own error bound) for a direction given block by block:
        Im J(θ + i·h·v)/h, or central differences where J cannot run on complex numbers.
        ``state``: a run of the program at ``point``, so only what depends on the moved blocks
        is redone."""
        shifted = {x: point[x] + 1j * H * d for x, d in v.items()}
        try:
            state = self.look(point) if state is None else state
            (value,) = self.program.rerun(state, shifted, [self.cost_index], first_order=True)
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
            state = self.look(moved)
            signs = [np.real(z) > 0 for z, _ in self.branches(state)]
            (cost,) = self.program.outputs(state, [self.cost_index])
            return float(np.real(np.asarray(cost).reshape(()))), signs
        (j0, s0), *others = [J(t) for t in (0.0, h, -h, h / 2, -h / 2)]
        if any(any(np.any(a != b) for a, b in zip(s0, s)) for _, s in others):
            raise Kink("a ReLU switches within the finite-difference stencil")
        (up, _), (down, _), (up2, _), (down2, _) = others
        coarse, fine = (up - down) / (2 * h), (up2 - down2) / h
        richardson = (4 * fine - coarse) / 3
        return richardson, abs(richardson - fine) / (SAFETY * UNIT_ROUNDOFF) + abs(j0) / h

    def judge(self, name, index, predicted, measured, bound, kink, direction=""):
        def result(verdict, reason=""):
            return Measurement(name, index, predicted, measured, bound, verdict, reason, direction)
        if kink:
            return result("inconclusive", kink)
        if not (np.isfinite(predicted) and np.isfinite(measured) and np.isfinite(bound)):
            return result("inconclusive", "a value or its rounding bound is not finite")
        if predicted == 0 and measured == 0:     # exactly: no relative error can hide in a zero
            return result("pass")
        if bound > RESOLUTION * max(abs(measured), abs(predicted)) and bound > 0:
            if max(abs(measured), abs(predicted)) <= bound:
                return result("inconclusive", "the derivative is zero to within rounding here (e.g. a bias "
                                              "before a normalisation): no relative error can be resolved")
            return result("inconclusive", "ill-conditioned here (a saturated output or heavy "
                                          "cancellation): rounding could hide a real error")
        return result("pass" if abs(predicted - measured) <= bound else "fail")

    def entries(self, point, x, indices):
        """(derived, measured) gradient entries of block ``x`` at ``indices``, one step each."""
        state = self.look(point)
        derived = self.gradient(x, point)
        measured = []
        for k in indices:
            e = np.zeros(np.shape(point[x]))
            e[k] = 1.0
            measured.append(self.along(point, {x: e}, state)[0])
        return np.array([derived[k] for k in indices]), np.array(measured)


def _direction(rng, shape):
    """Random signs times magnitudes uniform in [½, 1): |v| ≤ 1, and no atom at 0."""
    u = rng.random(shape)
    return np.where(u < 0.5, -0.5 - u, u)


def bound_of(expr):
    """ε(expr); exact is 0; with no rounding model, the fallback relative tolerance."""
    return _zero_if_exact(expr, ProgramBounds((), (), fallback=_fallback).error(expr))


BIG_POINT = 1 << 16      # numbers in a point's inputs beyond which NamedValues keeps only names


def _numbers(point):
    return sum(np.size(v) for v in point.values())


class NamedValues(Landscape):
    """A landscape whose program grows: formulas written over the names the program defines are
    added to it (``extend``), so each is evaluated, and bounded, from the names' values as its
    author computes it — the forward program and the parts formulas share run once per point."""

    def __init__(self, cost, definitions):
        # values are compared, not differentiated: kinks matter (a claim's 1[z > 0] and the
        # truth's may differ at 0), saturation of a complex step does not
        super().__init__(cost, definitions, complex_step=False)
        self._big = set()

    def states(self, points):
        """A state per point, to pass to ``measure`` and ``values``: the inputs and the value of
        every defined name (and of its ε)."""
        names = self.program.extend([s for s, _ in self.definitions + tuple(self.bounds.definitions)])
        out = [self.program.release(self.program.resume(self.look(p), names)) for p in points]
        # a big point's other registers are dropped after each formula (they would grow with
        # every formula added); a small point's are kept, so shared parts run once
        self._big |= {id(state[0]) for state, p in zip(out, points) if _numbers(p) > BIG_POINT}
        return out

    def measure(self, exprs, states):
        """[(value, ε) of each of ``exprs``] in each state."""
        return self.values([x for e in exprs for x in (e, self.bound_of(e))], states)

    def values(self, exprs, states):
        """[the values of ``exprs``] in each state."""
        which = self.program.extend(exprs)
        out = [self.program.outputs(self.program.resume(state, which), which) for state in states]
        for state in states:
            if id(state[0]) in self._big:
                self.program.release(state)
        return out


def localise(checker, point, x, limit=400, worst=3):
    """The worst entries of block ``x``: every entry for small blocks, else bisection on halves."""
    shape = np.shape(point[x])
    indices = list(np.ndindex(shape))
    state = checker.look(point)
    while len(indices) > limit:
        halves = (indices[: len(indices) // 2], indices[len(indices) // 2:])
        gaps = []
        for half in halves:
            v = np.zeros(shape)
            for k in half:
                v[k] = 1.0
            predicted = float(np.sum(checker.gradient(x, point) * v))
            gaps.append(abs(predicted - checker.along(point, {x: v}, state)[0]))
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
    if shape and len(shape) == 2 and shape[0] == shape[1] and derived.size == shape[0] * shape[1] and \
            np.allclose(derived.reshape(shape).T, measured.reshape(shape), rtol=1e-9, atol=1e-12 * top):
        return "off by a transpose: the formula's transpose is the gradient"
    close = np.isclose(derived, measured, rtol=1e-9, atol=1e-12 * top)
    if np.all(close | ~nonzero):
        return "a mask: the formula is non-zero where the true gradient is zero (a missing 1[z > 0]?)"
    if np.all(close | zero_derived):
        return "a mask: the formula is zero where the true gradient is not (an extra 1[z > 0]?)"
    return "entries differ without a simple pattern"
