"""The claims checker's results as objects: repr, rich display and text carry the verdicts."""
import pytest

import tracegrad
from tracegrad.checking.claims import ClaimResult
from tracegrad.errors import UsageError


def test_results_and_reports_display_their_verdicts():
    r = ClaimResult("dZ4", "(A4 - Y).T / m", "holds", "symbolic identity")
    assert repr(r) == "ClaimResult(dZ4 = '(A4 - Y).T / m': holds)"
    assert "dZ4 = (A4 - Y).T / m" in r._repr_html_() and "holds" in r._repr_html_()
    report = tracegrad.load("vardhan").check(claims={"dZ4": "(A4 - Y).T / m", "dW4": "dZ4.T"})
    assert repr(report) == "CheckReport(model='vardhan', seed=0: 1 holds, 1 fails)"
    assert "model vardhan" in report._repr_html_() and "fails" in report._repr_html_()
    assert report._repr_latex_().startswith("$$\\begin{array}") and "dZ4" in report._repr_latex_()
    text = str(report)
    assert text.startswith("model vardhan (seed 0)") and "fails" in text and "holds" in text


def test_a_broken_meaning_gives_the_same_error_every_time(tmp_path):
    """A meaning that cannot be read names its own problem for every claim that uses it (it is
    not left half-resolved, which would read as 'defined in terms of itself' the second time)."""
    with open(tracegrad.load("vardhan").path, encoding="utf-8") as f:
        text = f.read().replace('dZ4 = "jac(Z4)"', 'dZ4 = "jac(nope)"')
    path = tmp_path / "broken.toml"
    path.write_text(text)
    results = tracegrad.load(path).check(claims={"dZ4": "(A4 - Y).T / m", "dW4": "dZ4.T @ A3.T"}).results
    for r in results:
        assert r.verdict == "error" and "meaning 'dZ4'" in r.evidence and "itself" not in r.evidence, r.evidence


def test_a_too_large_claim_is_refused_by_its_name():
    formula = "exp(X.T @ ones(n0, 100000)) @ ones(100000, 1)"
    with pytest.raises(UsageError, match=r"^claim dZ4: the formula's values would hold \d+ numbers .* more than 4000000$"):
        tracegrad.load("vardhan").check(claims={"dZ4": formula})
