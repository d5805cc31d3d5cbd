"""`tracegrad verify`: every derived gradient against complex-step directional derivatives, at
coverage-selected points, with tolerances from a rounding-error model (``numeric.gradcheck``)."""
from dataclasses import dataclass

import numpy as np

from tracegrad.numeric.gradcheck import GLOBAL_DIRECTIONS, GradientChecker, explain, localise, verdict_of

from tracegrad.checking.points import SMALL_POINT, coverage_points, numbers


@dataclass(frozen=True)
class GradientCheck:
    name: str
    verdict: str          # pass | fail | inconclusive
    worst_ratio: float    # max over directions and points of |predicted − measured| / bound
    worst_error: float    # max relative error |predicted − measured| / |measured|
    directions: int
    reason: str = ""      # why inconclusive, or the diagnosis of a failure
    worst_entries: tuple = ()   # ((index, derived, true), ...) for a failure

    def as_dict(self):
        return {"name": self.name, "verdict": self.verdict, "worst_ratio": self.worst_ratio,
                "worst_error": self.worst_error, "directions": self.directions,
                "reason": self.reason,
                "worst_entries": [{"index": list(i), "derived": a, "true": b} for i, a, b in self.worst_entries]}


@dataclass(frozen=True)
class VerifyReport:
    model: str
    seed: int
    sizes: tuple          # one {dim: size} per point
    attempts: tuple       # candidate points drawn to reach coverage, per point
    coverage: tuple       # '' or what a point still lacks, per point
    checks: tuple

    @property
    def ok(self):
        return all(c.verdict == "pass" for c in self.checks)

    def as_dict(self):
        return {"model": self.model, "seed": self.seed,
                "points": [{"sizes": dict(s), "attempts": a, "coverage": c or "full"}
                           for s, a, c in zip(self.sizes, self.attempts, self.coverage)],
                "checks": [c.as_dict() for c in self.checks], "ok": self.ok}

    def __repr__(self):
        from tracegrad.render.notebook import verify_repr
        return verify_repr(self)

    def _repr_html_(self):
        from tracegrad.render.notebook import verify_html
        return verify_html(self)

    def _repr_latex_(self):
        from tracegrad.render.notebook import verify_latex
        return verify_latex(self)

    def __str__(self):
        unique = [s for i, s in enumerate(self.sizes) if s not in self.sizes[:i]]
        lines = [f"model {self.model}: derived gradients vs complex-step directional derivatives "
                 f"(seed {self.seed}; {len(self.sizes)} points, sizes "
                 + "; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in unique) + ")"]
        weak = [c for c in self.coverage if c]
        if weak:
            lines.append(f"  note: {len(weak)} point(s) without full coverage: {weak[0]}")
        for c in self.checks:
            lines.append(f"  ∇{c.name:<8} {c.verdict:<12} worst error/bound {c.worst_ratio:.2g}, "
                         f"relative error {c.worst_error:.1e} ({c.directions} directions)")
            if c.reason:
                lines.append(f"  {'':<9} {c.reason}")
            for index, derived, true in c.worst_entries:
                lines.append(f"  {'':<9} entry {index}: derived {derived:.6g}, true {true:.6g}")
        passed = sum(c.verdict == "pass" for c in self.checks)
        lines.append(f"  {passed} of {len(self.checks)} pass")
        return "\n".join(lines)


def checker_of(model):
    """The model's GradientChecker, built once per derivation (SymPy work, valid for any sizes)."""
    derivation = model.derivation
    if _CHECKERS.get(id(derivation), (None,))[0] is not derivation:
        _CHECKERS[id(derivation)] = (derivation, GradientChecker.of(derivation))
    return _CHECKERS[id(derivation)][1]


_CHECKERS = {}


def verify_model(model, seed=0, sizes=None):
    checker = checker_of(model)
    chosen = coverage_points(model, checker, seed, sizes)
    measurements = []
    for k, (point, _, _) in enumerate(chosen):
        directions = GLOBAL_DIRECTIONS if numbers(model, point) <= SMALL_POINT else 1
        measurements += checker.measure(point, k, _rng(seed, k), global_directions=directions)
    checks = [summarise(checker, chosen, model, x.name, [m for m in measurements if m.block == x.name], x)
              for x in checker.blocks]
    together = [m for m in measurements if m.block == "all"]
    if together:
        checks.append(summarise(checker, chosen, model, "all", together, None))
    dims = [{k.name: v for k, v in p.items() if k in model.dims.values()} for p, _, _ in chosen]
    return VerifyReport(model.name, seed, tuple(dims), tuple(a for _, a, _ in chosen),
                        tuple(c for _, _, c in chosen), tuple(checks))


def _rng(seed, k):
    return np.random.default_rng([seed, k, 7])


def summarise(checker, chosen, model, name, ms, x):
    verdict = verdict_of(ms)
    worst = max(ms, key=lambda m: m.ratio)
    relative = max(m.error / max(abs(m.measured), 1e-300) for m in ms)
    reason, entries = "", ()
    if verdict == "inconclusive":
        reason = next(m.reason for m in ms if m.verdict == "inconclusive")
    elif verdict == "fail" and x is not None:
        failed = next(m for m in ms if m.verdict == "fail")
        point = chosen[failed.point][0]
        entries, derived, true = localise(checker, point, x)
        dims = {k.name: v for k, v in point.items() if k in model.dims.values()}
        reason = explain(derived, true, dims, np.shape(point[x]))
        entries = tuple((tuple(int(i) for i in idx), a, b) for idx, a, b in entries)
    return GradientCheck(name, verdict, float(worst.ratio), float(relative), len(ms), reason, entries)
