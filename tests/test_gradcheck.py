"""The gradient checker: its rounding model bounds real errors (high-precision oracle), it never
fails a correct gradient (false-alarm campaign), it catches the classic bugs (detection campaign),
it says inconclusive at kinks, saturation and non-finite values, and it localises failures."""
import numpy as np
import pytest
import sympy as sp

import tracegrad
from campaigns import detections, false_alarms
from tracegrad.checking.points import coverage_points, draw_point, example_dims, size_sets
from tracegrad.checking.verify import verify_model
from tracegrad.numeric import evaluate
from tracegrad.numeric.errorbound import UNIT_ROUNDOFF, rounding_bound
from tracegrad.numeric.gradcheck import GradientChecker, explain, localise, verdict_of
from oracle import explicit

VARDHAN = tracegrad.load("vardhan")


def checker_of(model):
    return GradientChecker.of(model.derivation)


CHECKER = checker_of(VARDHAN)


def explicit_value(expr, point, digits=40):
    """expr at point in 40-digit arithmetic (the float inputs taken exactly), by the oracle."""
    env = {s: sp.Matrix(v.shape[0], v.shape[1], [sp.Rational(float(a)) for a in v.ravel()])
           if isinstance(s, sp.MatrixSymbol) else sp.Integer(v) for s, v in point.items()}
    return np.array(sp.Matrix(explicit(expr, env)).evalf(digits).tolist(), dtype=float)


@pytest.mark.parametrize("name", ["W1", "b2", "W3", "W4", "X"])
def test_rounding_model_bounds_the_true_error(name):
    x = VARDHAN.symbols[name]
    g = VARDHAN.derivation.gradient(x)
    dims = {VARDHAN.dims[k]: v for k, v in dict(n0=3, n1=2, n2=3, n3=2, m=3).items()}
    point = draw_point(VARDHAN, dims, np.random.default_rng(5))
    computed = np.asarray(evaluate(g, point))
    exact = explicit_value(g, point)
    bound = UNIT_ROUNDOFF * np.asarray(evaluate(rounding_bound(g), point))
    assert np.all(np.abs(computed - exact) <= bound + 1e-300)
    assert np.max(bound) < 1e-12 * max(1.0, np.max(np.abs(exact)))  # and is not vacuous


# the gradient of ninja's b1 is zero exactly (a bias before batch norm): computed as rounding
# noise on both sides, no relative error can be resolved, so it is inconclusive (never pass)
ZERO_GRADIENTS = {("ninja", "b1")}


def test_builtin_models_verify_at_covered_points():
    for name in tracegrad.builtin_names():
        report = verify_model(tracegrad.load(name), seed=1)
        for c in report.checks:
            if (name, c.name) in ZERO_GRADIENTS:
                assert c.verdict == "inconclusive" and "zero to within rounding" in c.reason, str(report)
            else:
                assert c.verdict == "pass", str(report)
        assert all(c.worst_ratio <= 1 for c in report.checks)


def test_coverage_points_switch_every_unit_on_and_off():
    chosen = coverage_points(VARDHAN, CHECKER, seed=0)
    assert len(chosen) == 6 and all(problem == "" for _, _, problem in chosen)
    m = next(iter(example_dims(VARDHAN)))
    for point, _, _ in chosen:
        assert point[m] > 1
        for z in CHECKER.branch_values(CHECKER.run_forward(point)):
            active = np.asarray(z) > 0
            assert active.any(axis=1).all() and (~active).any(axis=1).all()
    square = chosen[-1][0]
    assert square[VARDHAN.dims["n1"]] == square[VARDHAN.dims["n2"]]


def test_no_false_alarms_on_correct_gradients():
    verdicts = false_alarms(VARDHAN, cases=200, seed=3)      # m ∈ {7, 64, 512}, three inits
    assert verdicts["fail"] == 0
    assert verdicts["pass"] >= 140


def test_every_bug_class_is_detected():
    results = detections(VARDHAN, seed=0)
    assert {r.bug for r in results} == {"missing 1/m", "m - 1 for m", "0.2% scaling",
                                        "dropped activation derivative", "transpose in a square layer",
                                        "wrong layer index", "wrong db axis"}
    assert len(results) == 42
    missed = [r for r in results if not r.detected]
    assert not missed


def test_kink_saturation_and_non_finite_values_are_inconclusive():
    dims = {VARDHAN.dims[k]: v for k, v in dict(n0=3, n1=4, n2=3, n3=2, m=5).items()}
    point = draw_point(VARDHAN, dims, np.random.default_rng(0))
    on_kink = {**point, VARDHAN.symbols["X"]: np.zeros((3, 5)), VARDHAN.symbols["b1"]: np.zeros((4, 1))}
    saturated = {**point, VARDHAN.symbols["b4"]: np.array([[60.0]])}
    infinite = {**point, VARDHAN.symbols["b4"]: np.array([[np.inf]])}
    for bad in (on_kink, saturated, infinite):
        ms = CHECKER.measure(bad, 0, np.random.default_rng(1))
        assert verdict_of(ms) == "inconclusive"
        assert all(m.verdict != "fail" and m.reason for m in ms if m.verdict != "pass")


def test_failures_are_localised_and_explained():
    w2 = VARDHAN.symbols["W2"]
    point = coverage_points(VARDHAN, CHECKER, seed=0)[0][0]
    m = point[next(iter(example_dims(VARDHAN)))]
    doubled = CHECKER.with_gradient(w2, sp.MatMul(m, VARDHAN.derivation.gradient(w2)))
    worst, derived, true = localise(doubled, point, w2)
    assert "factor" in explain(derived, true, {"m": m}) and "(m)" in explain(derived, true, {"m": m})
    flipped = CHECKER.with_gradient(w2, sp.MatMul(-1, VARDHAN.derivation.gradient(w2)))
    assert "sign" in explain(*localise(flipped, point, w2)[1:])
    big, _, _ = localise(CHECKER, point, w2, limit=4)   # bisection path on a correct gradient
    assert all(abs(a - b) <= 1e-12 * max(1, abs(b)) for _, a, b in big)


def test_a_single_wrong_entry_is_found_by_bisection():
    w1 = VARDHAN.symbols["W1"]
    point = coverage_points(VARDHAN, CHECKER, seed=0)[0][0]
    rows, cols = point[w1].shape
    bump = np.zeros((rows, cols))
    bump[rows - 1, 1] = 1e-3
    planted = CHECKER.with_gradient(w1, sp.MatAdd(VARDHAN.derivation.gradient(w1),
                                                  sp.MatrixSymbol("Bump", *w1.shape)))
    worst, _, _ = localise(planted, {**point, sp.MatrixSymbol("Bump", *w1.shape): bump}, w1, limit=3)
    assert worst[0][0] == (rows - 1, 1)


def test_verify_report_is_deterministic_and_prints_its_seed():
    a, b = verify_model(VARDHAN, seed=4), verify_model(VARDHAN, seed=4)
    assert str(a) == str(b) and a.as_dict() == b.as_dict()
    assert "seed 4" in str(a) and a.as_dict()["seed"] == 4


def test_central_difference_fallback_agrees_and_detects_kinks():
    point = coverage_points(VARDHAN, CHECKER, seed=0)[0][0]
    rng = np.random.default_rng(2)
    v = {x: rng.standard_normal(point[x].shape) for x in CHECKER.blocks}
    grads, _, _ = CHECKER.values(point)
    predicted = sum(float(np.sum(grads[x] * d)) for x, d in v.items())
    measured, own = CHECKER.central(point, v)
    assert abs(measured - predicted) <= 8 * UNIT_ROUNDOFF * own + 1e-9 * abs(predicted)
    assert abs(measured - predicted) > 0          # a real finite difference, not the complex step
    assert CHECKER.branch_exprs[0] == VARDHAN.forward_names()["Z1"]
    z = np.asarray(CHECKER.branch_values(CHECKER.run_forward(point))[0])   # Z1 = W1ᵀX + b1 1ᵀ
    b1 = VARDHAN.symbols["b1"]
    near = {**point, b1: point[b1] - z[:, :1] + 1e-9}           # Z1[:, 0] just above the kink
    from tracegrad.numeric.gradcheck import Kink
    with pytest.raises(Kink):
        CHECKER.central(near, v)


def test_explain_names_transposes_and_masks():
    rng = np.random.default_rng(0)
    true = rng.standard_normal((4, 4))
    assert "transpose" in explain(true.T.ravel(), true.ravel(), shape=(4, 4))
    masked = true * (rng.random((4, 4)) > 0.5)
    assert "missing 1[z > 0]" in explain(true.ravel(), masked.ravel())
    assert "extra 1[z > 0]" in explain(masked.ravel(), true.ravel())
    assert "(m/(m − 1))" in explain(true.ravel() * 7 / 6, true.ravel(), {"m": 7})


def test_size_sets_vary_every_dimension_independently():
    """No two dimension expressions keep their difference or ratio from one size set to the next,
    none coincide in the second, and the second stays small — for every built-in model, whatever
    the first sizes (the model's, distinct ones, or equal ones)."""
    from tracegrad.checking.points import size_expressions
    for name in tracegrad.builtin_names():
        model = tracegrad.load(name)
        exprs = size_expressions(model)
        for chosen in (None, {d: 7 for d in model.dims}, {d: 100 + 3 * i for i, d in enumerate(model.dims)}):
            first, second = size_sets(model, chosen)
            assert max(second.values()) <= 8 + 2 * len(model.dims) + 8
            for i, e1 in enumerate(exprs):
                for e2 in exprs[i + 1:]:
                    if (e1 - e2).is_number:
                        continue
                    a1, a2, b1, b2 = (int(e.xreplace(s)) for s in (first, second) for e in (e1, e2))
                    # a fixed ratio (n_embd, 3·n_embd) is the same at every size: only the difference moves
                    fixed_ratio = sp.simplify(e1 / e2).is_number
                    assert a1 - a2 != b1 - b2 and (fixed_ratio or a1 * b2 != a2 * b1) and b1 != b2, \
                        (name, e1, e2, first, second)


@pytest.mark.parametrize("name", ["vardhan", "ng", "pytorch", "sudeep", "dlai", "seed-question"])
def test_a_claim_off_by_a_relation_of_two_dims_never_holds(name):
    """For seeded random pairs of dimensions d1 ≠ d2, a true meaning times (d1 − d2 + c) or
    d1·a2/(d2·a1) — factors that equal 1 at the first size set — fails at the second set."""
    model = tracegrad.load(name)
    first = {d.name: v for d, v in size_sets(model)[0].items()}
    names = list(model.dims)
    rng = np.random.default_rng(sum(map(ord, name)))
    meanings = list(model.meanings.items())
    claims = {}
    for k, (q, text) in enumerate(meanings[:8]):
        d1, d2 = rng.choice(names, 2, replace=False)
        a1, a2 = first[d1], first[d2]
        factor = f"({d1} - {d2} + {1 - (a1 - a2)})" if k % 2 else f"({d1} * {a2}) / ({d2} * {a1})"
        claims[q] = f"({text}) * {factor}"
    report = model.check(claims=claims)
    assert report.results and all(r.verdict == "fails" for r in report.results), str(report)


def _ones_multiple(a):
    """Whether ``a`` is a multiple of an all-ones matrix however it is written (c·1, (c·1)ᵀ, sums)."""
    if isinstance(a, sp.OneMatrix):
        return True
    if isinstance(a, sp.MatMul):
        mats = [x for x in a.args if x.is_Matrix]
        return len(mats) == 1 and _ones_multiple(mats[0])
    if isinstance(a, (sp.Transpose, sp.MatAdd)):
        return all(_ones_multiple(x) for x in a.args if x.is_Matrix)
    return False


@pytest.mark.parametrize("name", ["vardhan", "pytorch", "attention", "layernorm", "ng"])
def test_bounds_keep_all_ones_factors_recognisable(name):
    """A complex step moves an input X along |v| ≤ μ·1, so the tangent bounds are full of
    products with multiples of all ones; each such factor must be written c·1 (what ``compile``
    turns into a sum), never (c·1)ᵀ or c·1 + d·1, which would cost a full matrix product at
    every point (784 × 256 × 512 flops for the first layer of a wide net)."""
    from tracegrad.numeric.compile import _scaled_ones
    checker = checker_of(tracegrad.load(name))
    exprs = [e for _, e in checker.bounds.definitions] + list(checker.outputs)
    # a bound made only of zero and all-ones blocks is not named: a name would hide its structure
    assert not [s for s, e in checker.bounds.definitions
                if isinstance(e, sp.BlockMatrix) and all(isinstance(b, sp.ZeroMatrix) or _ones_multiple(b) for b in e.blocks)]
    seen = set()
    for expr in exprs:
        for node in sp.preorder_traversal(expr):
            if node in seen or not isinstance(node, sp.MatMul):
                continue
            seen.add(node)
            for a in (x for x in node.args if x.is_Matrix):
                if _ones_multiple(a):
                    assert _scaled_ones(a)[0] is not None or isinstance(a, sp.OneMatrix), (name, a)
                # a stack of zero and all-ones blocks ([0; μ·1]: the tangent of a bias row [1; X])
                # is split into column blocks of the other factor, never multiplied whole
                assert not (isinstance(a, sp.BlockMatrix) and all(
                    isinstance(b, sp.ZeroMatrix) or _ones_multiple(b) for b in a.blocks)), (name, a)


def test_the_point_selection_kept_is_not_run_again_and_never_goes_stale():
    """``measure`` resumes the state point selection left for the very point it kept; another
    point (even one with equal sizes) is run afresh, and measuring A, then B, then A gives A's
    measurements exactly."""
    model = VARDHAN
    chosen = coverage_points(model, CHECKER, seed=0)
    (a, _, _), (b, _, _) = chosen[1], chosen[-1]
    assert CHECKER._recalled(b) is not None and CHECKER._recalled(a) is None
    first = CHECKER.measure(a, 0, np.random.default_rng(3))
    CHECKER.measure(b, 1, np.random.default_rng(3))
    again = CHECKER.measure(dict(a), 0, np.random.default_rng(3))
    assert [(m.predicted, m.measured, m.bound) for m in first] == [(m.predicted, m.measured, m.bound) for m in again]
    moved = {**a, VARDHAN.symbols["W1"]: a[VARDHAN.symbols["W1"]] * 1.5}
    assert CHECKER._recalled(moved) is None
