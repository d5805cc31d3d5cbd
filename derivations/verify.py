"""`tracegrad verify`: every derived gradient against complex-step directional derivatives."""
from dataclasses import dataclass

import numpy as np
import sympy as sp

from numeric import compile_expression, directional_complex_step

from .points import draw_points

TOLERANCE = 1e-9


@dataclass(frozen=True)
class GradientCheck:
    name: str
    verdict: str          # pass | fail | inconclusive
    worst_error: float    # relative error of ⟨∇J, v⟩ against Im J(θ + i h v)/h, over the points


@dataclass(frozen=True)
class VerifyReport:
    model: str
    seed: int
    sizes: tuple
    checks: tuple

    @property
    def ok(self):
        return all(c.verdict == "pass" for c in self.checks)

    def as_dict(self):
        return {"model": self.model, "seed": self.seed, "sizes": [dict(s) for s in self.sizes],
                "checks": [c.__dict__ for c in self.checks], "ok": self.ok}

    def __str__(self):
        lines = [f"model {self.model}: derived gradients vs complex-step directional derivatives "
                 f"(seed {self.seed}; sizes " + "; ".join(", ".join(f"{k}={v}" for k, v in s.items())
                                                         for s in self.sizes) + ")"]
        for c in self.checks:
            lines.append(f"  ∇{c.name:<8} {c.verdict:<12} worst relative error {c.worst_error:.1e}")
        passed = sum(c.verdict == "pass" for c in self.checks)
        lines.append(f"  {passed} of {len(self.checks)} pass")
        return "\n".join(lines)


def verify_model(model, seed=0, sizes=None):
    d = model.derivation
    cost = compile_expression(d.program.expand(d.program.cost))
    points = draw_points(model, seed, sizes)
    checks = []
    for x in d.wrt:
        if not isinstance(x, sp.MatrixSymbol):
            continue
        gradient = compile_expression(d.gradient(x))
        worst, finite = 0.0, True
        for k, point in enumerate(points):
            v = np.random.default_rng([seed, k, 99]).normal(size=point[x].shape)
            predicted = float(np.sum(np.asarray(gradient(point)) * v))

            def along(a, point=point):
                return cost({**point, x: a})

            measured = directional_complex_step(along, point[x], v)
            if not (np.isfinite(predicted) and np.isfinite(measured)):
                finite = False
                continue
            worst = max(worst, abs(predicted - measured) / max(abs(measured), abs(predicted), 1e-12))
        verdict = "inconclusive" if not finite else ("pass" if worst <= TOLERANCE else "fail")
        checks.append(GradientCheck(x.name, verdict, worst))
    dims = [{k.name: v for k, v in p.items() if k in model.dims.values()} for p in points]
    unique = [s for i, s in enumerate(dims) if s not in dims[:i]]
    return VerifyReport(model.name, seed, tuple(unique), tuple(checks))
