"""Campaigns that measure the gradient checker itself: false alarms on correct gradients at
points it did not choose, and detection of classic backprop bugs at points it did choose."""
from collections import Counter
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from tracegrad.numeric.gradcheck import GradientChecker, verdict_of
from tracegrad.symbolic.functions import scalar_body, step

from tracegrad.checking.points import coverage_points, draw_point, example_dims


def checker_for(model):
    """A GradientChecker of ``model``'s derived gradients."""
    return GradientChecker.of(model.derivation)


def initialise(model, point, scheme, rng):
    """Re-draw the parameters of ``point`` as a training run would start them."""
    point = dict(point)
    for p in model.params:
        if not isinstance(p, sp.MatrixSymbol):
            continue
        shape = point[p].shape
        if min(shape) == 1 and scheme == "zero biases":
            point[p] = np.zeros(shape)
        elif scheme == "small":
            point[p] = rng.normal(0, 0.01, shape)
        elif min(shape) == 1:
            point[p] = rng.normal(0, 0.1, shape)
        else:
            point[p] = rng.normal(0, np.sqrt(2 / max(shape)), shape)
    return point


SCHEMES = ("he", "zero biases", "small")


def false_alarms(model, cases, seed=0, examples=(7, 64, 512), width=(2, 12)):
    """``cases`` correct gradients at random sizes and inits; returns Counter of verdicts."""
    checker = checker_for(model)
    (m,) = example_dims(model) or (None,)
    verdicts = Counter()
    for k in range(cases):
        rng = np.random.default_rng([seed, k])
        dims = {d: int(rng.integers(*width)) for d in model.dims.values()}
        if m is not None:
            dims[m] = examples[k % len(examples)]
        point = initialise(model, draw_point(model, dims, rng), SCHEMES[k % len(SCHEMES)], rng)
        verdicts[verdict_of(checker.measure(point, 0, rng))] += 1
    return verdicts


def drop_activation_derivative(x, g):
    """1[z > 0] ∘ A  →  A : the mask forgotten."""
    masks = {n: sp.OneMatrix(*n.shape) for n in sp.preorder_traversal(g)
             if isinstance(n, ElementwiseApplyFunction) and scalar_body(n).has(step)}
    return g.xreplace(masks) if masks else None


def scaled(factor):
    def bug(x, g):
        return sp.MatMul(factor, g)
    return bug


def transposed(x, g):
    return sp.Transpose(g)


def bugs(model):
    (m,) = example_dims(model) or (sp.Integer(1),)
    return {"missing 1/m": scaled(m), "m - 1 for m": scaled(m / (m - 1)),
            "0.2% scaling": scaled(sp.Rational(1002, 1000)),
            "dropped activation derivative": drop_activation_derivative,
            "transpose in a square layer": transposed}


@dataclass(frozen=True)
class Detection:
    bug: str
    block: str
    detected: bool
    verdict: str


def detections(model, seed=0, sizes=None, points=None, square=None):
    """Every bug in every block it applies to, checked at the checker's own coverage points
    (``points``, ``square``: lists of points to use instead, the latter with square layers)."""
    results = []
    truth = checker_for(model)
    if points is None:
        chosen = [p for p, _, _ in coverage_points(model, truth, seed, sizes)]
        points, square = chosen, chosen[-2:]
    for name, bug in bugs(model).items():
        for x in [x for x in model.derivation.wrt if isinstance(x, sp.MatrixSymbol)]:
            wrong = bug(x, model.derivation.gradient(x))
            at = square if name == "transpose in a square layer" else points
            if wrong is None or not at or (at is square and (at[0][x].shape[0] != at[0][x].shape[1]
                                                              or at[0][x].shape[0] == 1)):
                continue
            checker = truth.with_gradient(x, wrong)
            ms = [m for k, p in enumerate(at)
                  for m in checker.measure(p, k, np.random.default_rng([seed, k])) if m.block in (x.name, "all")]
            verdict = verdict_of(ms)
            results.append(Detection(name, x.name, verdict == "fail", verdict))
    return results
