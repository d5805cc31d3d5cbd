"""Campaigns that measure the gradient checker itself: false alarms on correct gradients at
points it did not choose, and detection of classic backprop bugs at points it did choose."""
from collections import Counter
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from tracegrad.numeric.gradcheck import GradientChecker, verdict_of
from tracegrad.symbolic.functions import scalar_body, step

from tracegrad.checking.points import coverage_points, covered_point, draw_point, example_dims, square_sizes


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


def drop_activation_derivative(model, x, g):
    """1[z > 0] ∘ A  →  A : the mask forgotten."""
    masks = {n: sp.OneMatrix(*n.shape) for n in sp.preorder_traversal(g)
             if isinstance(n, ElementwiseApplyFunction) and scalar_body(n).has(step)}
    return g.xreplace(masks) if masks else None


def scaled(factor):
    def bug(model, x, g):
        return sp.MatMul(factor, g)
    return bug


def transposed(model, x, g):
    return sp.Transpose(g)


def wrong_layer(model, x, g):
    """dW[l] = dZ[l] A[l]ᵀ for dZ[l] A[l−1]ᵀ: a factor of the named gradient (an activation, a
    layer's input) replaced by the same name one layer on (A1 → A2), where that name exists."""
    named = model.derivation.gradient(x, "named")
    if not isinstance(named, sp.MatMul):
        return None
    names = {s.name: s for s in [*model.symbols.values(), *model.forward_names().values()]}
    for f in named.args:
        base = f.arg if isinstance(f, sp.Transpose) else f
        stem = getattr(base, "name", "").rstrip("0123456789")
        digits = getattr(base, "name", "")[len(stem):]
        if base in model.params or not digits:
            continue
        for other in (f"{stem}{int(digits) + 1}", f"{stem}{int(digits) - 1}"):
            if other in names and names[other] not in model.params:
                return model.program.expand(named.xreplace({base: names[other]}))
    return None


def wrong_bias_axis(model, x, g):
    """db = Σ over the units for Σ over the examples (numpy's axis=0 for axis=1): a bias
    gradient G·1 computed as (1ᵀG)ᵀ — the same shape only where the batch is as wide as the layer."""
    named = model.derivation.gradient(x, "named")
    if not isinstance(named, sp.MatMul) or 1 not in x.shape:
        return None
    coeff, mats = named.as_coeff_matrices()
    if isinstance(mats[-1], sp.OneMatrix) and mats[-1].shape[1] == 1:
        rest = mats[:-1]
        rows = (rest[0] if len(rest) == 1 else sp.MatMul(*rest)).shape[0]
        wrong = sp.Transpose(sp.MatMul(coeff, sp.OneMatrix(1, rows), *rest))
    elif isinstance(mats[0], sp.OneMatrix) and mats[0].shape[0] == 1:
        rest = mats[1:]
        cols = (rest[0] if len(rest) == 1 else sp.MatMul(*rest)).shape[1]
        wrong = sp.Transpose(sp.MatMul(coeff, *rest, sp.OneMatrix(cols, 1)))
    else:
        return None
    return model.program.expand(wrong)


@dataclass(frozen=True)
class Bug:
    name: str
    plant: object          # (model, x, gradient) -> a wrong gradient, or None where it does not apply
    at: str = "points"     # the points it is checked at: points | square (layers) | all-square (batch too)


def bugs(model):
    (m,) = example_dims(model) or (sp.Integer(1),)
    return [Bug("missing 1/m", scaled(m)), Bug("m - 1 for m", scaled(m / (m - 1))),
            Bug("0.2% scaling", scaled(sp.Rational(1002, 1000))),
            Bug("dropped activation derivative", drop_activation_derivative),
            Bug("transpose in a square layer", transposed, "square"),
            Bug("wrong layer index", wrong_layer, "square"),
            Bug("wrong db axis", wrong_bias_axis, "all-square")]


@dataclass(frozen=True)
class Detection:
    bug: str
    block: str
    detected: bool
    verdict: str


def fits(point, x, wrong):
    """Whether ``wrong`` has the shape of block ``x`` at ``point`` (so it can be compared)."""
    dims = {d: v for d, v in point.items() if isinstance(d, sp.Symbol) and d.is_integer}
    want = tuple(int(sp.sympify(d).xreplace(dims)) for d in x.shape)
    return tuple(int(sp.sympify(d).xreplace(dims)) for d in wrong.shape) == want


def square_points(model, checker, seed, dims, with_examples):
    """Covered points with every layer one size (and the batch too, ``with_examples``)."""
    side = square_sizes(model, dims)
    if with_examples:
        side = {d: max(v for k, v in side.items() if k not in example_dims(model)) for d in side}
    return [covered_point(model, checker, side, seed, 5 + with_examples, j)[0] for j in range(2)]


def detections(model, seed=0, sizes=None, points=None, square=None, all_square=None):
    """Every bug in every block it applies to, checked at the checker's own coverage points
    (``points``, ``square``, ``all_square``: lists of points to use instead)."""
    results = []
    truth = checker_for(model)
    if points is None:
        chosen = [p for p, _, _ in coverage_points(model, truth, seed, sizes)]
        points, square = chosen, chosen[-2:]
    first = {d: v for d, v in points[0].items() if d in model.dims.values()}
    if all_square is None:
        all_square = square_points(model, truth, seed, first, True)
    places = {"points": points, "square": square, "all-square": all_square}
    for bug in bugs(model):
        for x in [x for x in model.derivation.wrt if isinstance(x, sp.MatrixSymbol)]:
            wrong = bug.plant(model, x, model.derivation.gradient(x))
            at = places[bug.at]
            if wrong is None or not at or not all(fits(p, x, wrong) for p in at) or \
                    (bug.at != "points" and min(np.shape(at[0][x])) == 1 and bug.name != "wrong db axis"):
                continue
            checker = truth.with_gradient(x, wrong)
            ms = [m for k, p in enumerate(at)
                  for m in checker.measure(p, k, np.random.default_rng([seed, k])) if m.block in (x.name, "all")]
            verdict = verdict_of(ms)
            results.append(Detection(bug.name, x.name, verdict == "fail", verdict))
    return results
