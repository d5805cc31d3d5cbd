"""The claims checker (derivations/checking/claims.py) pinned exactly: each path of ``check`` gives
one verdict and one evidence text, and the rounding decision ``within_rounding`` is pinned at each
of its thresholds with numbers chosen so that the compared quantities are EQUAL in floating point
(8u = 2⁻⁵⁰ scales exactly): a mutant that moves a threshold or flips a comparison changes a
verdict here.  Never "either" — holds is not inconclusive, fails is not error."""
import numpy as np
import pytest
import sympy as sp

import tracegrad
from tracegrad.checking.claims import Checker, ClaimResult, CheckReport, as_scalars, symbolically_equal
from tracegrad.numeric.gradcheck import RESOLUTION, SAFETY
from tracegrad.numeric.errorbound import UNIT_ROUNDOFF
from tracegrad.symbolic.shapes import shape_of

assert SAFETY * UNIT_ROUNDOFF == 2.0 ** -50      # the exact-threshold cases below rely on it
E = 2.0 ** 50                                   # a bound of E·t gives a tolerance of exactly t


def wr(*pairs):
    """within_rounding for [(x, ex, y, ey)] as float arrays (it reads no checker state)."""
    a = [(np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(ex, float))) for x, ex, _, _ in pairs]
    b = [(np.atleast_1d(np.asarray(y, float)), np.atleast_1d(np.asarray(ey, float))) for _, _, y, ey in pairs]
    return Checker.within_rounding(None, a, b)


def test_within_rounding_at_its_thresholds():
    d = 2.0 ** -40
    assert wr((1.0, 0.0, 1.0, 0.0)) == "yes"                          # equal, exact
    assert wr((1.0 + d, E * d, 1.0, 0.0)) == "yes"                    # gap == tolerance: within
    assert wr((1.0 + d, 0.0, 1.0, E * d)) == "yes"                    # the other side's bound counts too
    assert wr((1.0 + d, E * d / 4, 1.0, E * d / 4)) == "no"           # gap = 2 × tolerance, resolved
    assert wr((1.0 + 2 * d, E * d, 1.0, 0.0)) == "no"                 # gap just over: a difference
    # the loose threshold: tolerance == RESOLUTION·|y| is not loose, just above it is
    y = 2.0 ** 3
    t = RESOLUTION * y
    assert wr((y, E * t, y, 0.0)) == "yes"
    assert wr((y, 2 * E * t, y, 0.0)) == "unclear"                   # loose: never 'yes'
    assert wr((y, E * t / 2, y, E * t / 2)) == "yes"
    # loose and a gap beyond the bound: 'no' only beyond 100 × the bound
    t = 2.0 ** -10                                                     # loose at |y| = 1
    assert wr((1.0 + 100 * t, E * t, 1.0, 0.0)) == "unclear"         # exactly 100×
    assert wr((1.0 + 100.5 * t, E * t, 1.0, 0.0)) == "no"
    assert wr((1.0 + 99.5 * t, E * t, 1.0, 0.0)) == "unclear"
    assert wr((1.0 + 1.5 * t, E * t, 1.0, 0.0)) == "unclear"
    assert wr((1.0 + 0.5 * t, E * t, 1.0, 0.0)) == "unclear"         # within, but loose
    # tiny values: the maxima start at 0, not 1
    assert wr(([1e-8, 1e-8], [1e-10 * E, 0.0], [1e-8, 1e-8], [0.0, 0.0])) == "unclear"
    assert wr(([1e-8, 1e-8], [1e-22 * E, 0.0], [1e-8, 1e-8], [0.0, 0.0])) == "yes"
    assert wr(([0.0], [0.0], [0.0], [0.0])) == "yes"


def test_within_rounding_over_several_points():
    good, loose, bad = (1.0, 0.0, 1.0, 0.0), (1.0, E, 1.0, 0.0), (2.0, 0.0, 1.0, 0.0)
    nan = (np.nan, 0.0, 1.0, 0.0)
    assert wr(good, good) == "yes"
    assert wr(good, loose) == "unclear" and wr(loose, good) == "unclear"   # an unclear point stays unclear
    assert wr(loose, bad) == "no" and wr(bad, loose) == "no" and wr(good, bad) == "no"
    assert wr(nan, good) == "unclear" and wr(good, nan) == "unclear"
    assert wr(nan, bad) == "no"                                        # a later difference still counts
    assert wr((1.0, np.inf, 1.0, 0.0)) == "unclear" and wr((1.0, 0.0, np.inf, 0.0)) == "unclear"
    assert wr((1.0, 0.0, 1.0, np.nan)) == "unclear"
    shapes = [(np.ones((2, 1)), np.zeros((2, 1))), (np.ones((2, 1)), np.zeros((2, 1)))]
    other = [(np.ones((1, 2)), np.zeros((1, 2))), (np.ones((1, 2)), np.zeros((1, 2)))]
    assert Checker.within_rounding(None, shapes, other) == "no"
    assert Checker.within_rounding(None, [(np.ones(2), np.full(2, E))], [(np.ones((1, 2)), np.zeros((1, 2)))]) == "no"
    assert wr() == "yes"


def test_agree_for_diagnoses():
    ag = lambda xs, ys: Checker.agree(None, [np.asarray(x, float) for x in xs], [np.asarray(y, float) for y in ys])
    assert ag([[1.0]], [[1.0]]) == "yes"
    assert ag([[1.0 + 5e-9]], [[1.0]]) == "yes" and ag([[1.0 + 2e-8]], [[1.0]]) == "no"
    assert ag([[1e-3 + 5e-9]], [[1e-3]]) == "yes"             # relative to max(1, |y|)
    assert ag([[1e3 + 5e-6]], [[1e3]]) == "yes" and ag([[1e3 + 2e-5]], [[1e3]]) == "no"
    assert ag([[np.nan]], [[1.0]]) == "unclear" and ag([[1.0]], [[np.inf]]) == "unclear"
    assert ag([[1.0]], [[1.0, 1.0]]) == "no"
    assert ag([[1.0], [2.0]], [[1.0], [3.0]]) == "no"
    assert ag([[np.nan], [2.0]], [[1.0], [3.0]]) == "unclear"   # first point decides first
    assert ag([], []) == "yes"


@pytest.fixture(scope="module")
def vardhan():
    return tracegrad.load("vardhan")


@pytest.fixture(scope="module")
def checker(vardhan):
    return Checker(vardhan)


NUMERIC = "numeric: equal within rounding at 4 covered random points (seed 0; sizes n0=5, n1=4, n2=3, n3=2, m=7; "
NOISY = "(A4 - Y).T / m + 1e-6 * (ones(1, n1) @ softmax(Z1) - 1).T"   # zero exactly, not symbolically
PINNED = [   # (name, formula, verdict, evidence or its start)
    ("dZ4", NOISY, "holds", NUMERIC),
    ("dZ4", "(A4 - Y).T / m", "holds", "symbolic identity"),
    ("dZ4", "jac(Z4)", "holds", "symbolic identity"),
    ("dW4", "dZ4.T @ A3.T", "holds", "symbolic identity"),
    ("dZ4", "(A4 - Y).T / (m + 1)", "fails", "values differ"),
    ("dZ4", "-(A4 - Y).T / m", "fails", "values differ"),
    ("dZ4", "(A4 - Y) / m", "fails", "shape mismatch: the formula is (1, m), dZ4 is (m, 1)"),
    ("dZ4", "(A4 - Y).T / m + 1e14 * (ones(1, n1) @ softmax(Z1) - 1).T", "inconclusive",
     "a value is not finite, or rounding is too large to decide, at a test point"),
    ("dZ4", "1 / relu(-A4.T)", "inconclusive",
     "a value is not finite, or rounding is too large to decide, at a test point"),
    ("nope", "A4", "error", "'nope' has no [meaning] in the model"),
    ("dZ4", "A4 +", "error", ""),
    ("dZ4", "undefined_name.T", "error", ""),
    ("dZ4", "grad(m)", "error", "grad(m): 'm' is not a symbol or forward name"),
    ("dZ4", "X @ ones(m, m)", "fails", "shape mismatch: the formula is (n0, m), dZ4 is (m, 1)"),
]


@pytest.mark.parametrize("name, formula, verdict, evidence", PINNED, ids=[f"{n}={f}" for n, f, _, _ in PINNED])
def test_each_path_of_check(vardhan, checker, name, formula, verdict, evidence):
    r = checker.check(name, formula)
    assert (r.name, r.formula, r.verdict) == (name, formula, verdict), r.evidence
    assert r.evidence.startswith(evidence), r.evidence
    assert "\n" not in r.evidence and r.evidence
    if evidence == "values differ":
        assert r.diagnosis                                      # explained
        assert checker.under(None).check(name, formula).diagnosis == ()   # explain=False: none
    elif verdict != "fails":
        assert r.diagnosis == () and r.suggestion is None


def test_numeric_holds_names_every_size_set(checker):
    r = checker.check("dZ4", NOISY)
    assert r.evidence.endswith(")") and r.evidence.count(";") == 2
    assert checker.size_sets()[0] == {"n0": 5, "n1": 4, "n2": 3, "n3": 2, "m": 7}
    assert len(checker.size_sets()) == 2 and len(checker.points) == 4


def test_a_too_large_formula_is_an_error_naming_its_size(checker):
    r = checker.check("dZ4", "exp(X.T @ ones(n0, 100000)) @ ones(100000, 1)")
    assert r.verdict == "error" and "would hold" in r.evidence and "more than 4000000" in r.evidence
    assert checker.too_large(sp.MatMul(checker.truth["A4"], checker.truth["A4"].T)) == ""


def test_truth_names(vardhan, checker):
    truth = checker.truth
    assert "dZ4" in truth and "A4" in truth and "m" in truth and "nope" not in truth
    assert len(truth) == len(list(truth)) and len(truth) > len(vardhan.meanings)
    with pytest.raises(KeyError):
        truth["nope"]
    assert truth["dZ4"] == truth["dZ4"]                              # memoised
    assert truth["A4"] is vardhan.forward_names()["A4"]


def test_scalars_and_symbolic_equality(vardhan, checker):
    W = vardhan.symbols["W4"]
    one = sp.MatMul(W.T, W) if sp.MatMul(W.T, W).shape == (1, 1) else None
    s = sp.Symbol("s")
    if one is not None:
        a, b = as_scalars(one, s)
        assert b == s and shape_of(a) is None
        a, b = as_scalars(s, one)
        assert a == s and shape_of(b) is None
        assert as_scalars(one, one) == (one, one)
    Z = vardhan.forward_names()["Z4"]
    assert symbolically_equal(checker.program, Z, Z)
    assert symbolically_equal(checker.program, sp.MatAdd(Z, Z), sp.MatMul(2, Z))
    assert not symbolically_equal(checker.program, Z, sp.MatMul(2, Z))


def test_report_and_result_shapes(vardhan):
    report = vardhan.check(claims={"dZ4": "(A4 - Y).T / m", "dW4": "dZ4.T @ A3.T"})
    assert report.ok and isinstance(report, CheckReport)
    d = report.as_dict()
    assert d["model"] == "vardhan" and d["loss"] is None and d["seed"] == 0
    assert d["sizes"][0] == {"n0": 5, "n1": 4, "n2": 3, "n3": 2, "m": 7} and len(d["sizes"]) == 2
    assert [r["verdict"] for r in d["results"]] == ["holds", "holds"]
    assert set(d["results"][0]) == {"name", "formula", "verdict", "evidence", "diagnosis", "suggestion", "given"}
    bad = vardhan.check(claims={"dZ4": "(A4 - Y).T", "dW4": "dZ4.T @ A3.T"})
    assert not bad.ok and [r.verdict for r in bad.results] == ["fails", "holds"]
    assert bad.results[1].given == ("dZ4",) and bad.results[0].given == ()
    assert ClaimResult("a", "b", "holds", "e", line=3).as_dict()["line"] == 3
    assert "line" not in ClaimResult("a", "b", "holds", "e").as_dict()


def test_under_another_loss_keeps_the_points(vardhan, checker):
    other = checker.under("mse") if "mse" in str(vardhan.loss) or True else None
    assert other.points is checker.points and other.explain is False and other.loss == "mse"
    assert other.check("dZ4", "(A4 - Y).T / m").verdict == "fails"
    assert other.check("nope", "A4").verdict == "error"


def test_a_meaning_defined_by_itself(tmp_path):
    with open(tracegrad.load("vardhan").path, encoding="utf-8") as f:
        text = f.read()
    text = text.replace('dZ4 = "jac(Z4)"', 'dZ4 = "dZ4 + jac(Z4)"')
    path = tmp_path / "self.toml"
    path.write_text(text)
    r = tracegrad.load(path).check(claims={"dZ4": "(A4 - Y).T / m"}).results[0]
    assert r.verdict == "error" and "defined in terms of itself" in r.evidence
