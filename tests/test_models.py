"""The built-in models (DESIGN §6): each loads, follows the model-file contract, and every
published claim gets the verdict it deserves — the correct formulas hold, the famous wrong ones
(the seed question's Δ³ typo, δ⁴ under the other loss) fail with the right diagnosis."""
from functools import cache

import pytest
import sympy as sp

import tracegrad

BUILTIN = {"vardhan", "ng", "sudeep", "dlai", "pytorch", "seed-question"}

# Every claim of every built-in model, with its verdict under the model's own loss.
H, F = "holds", "fails"
EXPECTED = {
    "vardhan": {n: H for n in ("dZ4 dW4 db4 dA3 dZ3 dW3 db3 dA2 dZ2 dW2 db2 dA1 dZ1 dW1 db1 "
                               "gradW3 gradb3").split()},
    "ng": {n: H for n in "delta4 delta3 delta2 Delta3 Delta2 Delta1 D3 D2 D1".split()},
    "sudeep": {n: H for n in "delta3 delta2 delta1 dE_dW3 dE_dW2 dE_dW1".split()},
    "dlai": {n: H for n in "dAL dZ3 dW3 db3 dA2 dZ2 dW2 db2 dA1 dZ1 dW1 db1".split()},
    "pytorch": {n: H for n in "dlogits dW2 db2 dH1 dW1 db1 dX".split()},
    "seed-question": {"delta4": H, "delta3": H, "Delta3": F,
                      "sudeep_delta4": F, "sudeep_delta3": H, "sudeep_Delta3": F},
}
OWN_LOSS = {"vardhan": "bce", "ng": "bce", "sudeep": "mse", "dlai": "bce", "pytorch": "ce",
            "seed-question": "bce"}


@cache
def model(name):
    return tracegrad.load(name)


@cache
def report(name, loss=None, claims=None):
    """One check of the named claims (all of them when None): results by claim name."""
    m = model(name)
    chosen = None if claims is None else {c: m.claims[c] for c in claims}
    return {r.name: r for r in m.check(claims=chosen, loss=loss).results}


def test_builtin_names():
    assert set(tracegrad.builtin_names()) == BUILTIN


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_model_follows_the_contract(name):
    m = model(name)
    assert m.name == name and m.title and m.source
    # distinct sizes: a transpose or a swapped product cannot type-check by accident
    sizes = [m.sizes[d] for d in m.dims.values()]
    assert len(m.sizes) == len(m.dims) and len(set(sizes)) == len(sizes)
    assert all(s > 1 for s in sizes)
    assert set(m.loss) >= {"name", "prediction", "target", "scale"}
    assert m.loss["name"] == OWN_LOSS[name]
    assert set(m.claims) <= set(m.meanings), "every claim needs a [meaning]"
    assert set(m.claims) == set(EXPECTED[name]), "update EXPECTED when claims change"
    assert m.program.cost.name in {"J", "E"}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_one_example_only_where_the_source_has_one(name):
    m = model(name)
    single = {"sudeep"}                      # Sudeep Raja's derivation is for one example x0
    example_dims = {d for d in m.dims if d in ("m", "N")}
    assert bool(example_dims) != (name in single)


@pytest.mark.parametrize("name,claim", [(n, c) for n in sorted(EXPECTED) for c in EXPECTED[n]])
def test_published_claim_verdict(name, claim):
    result = report(name)[claim]
    assert result.verdict == EXPECTED[name][claim], str(result)
    if result.verdict == H:
        assert result.diagnosis == () and result.suggestion is None
        assert result.evidence.startswith(("symbolic identity", "numeric: equal"))


def test_models_without_intended_failures_are_ok():
    for name in sorted(BUILTIN - {"seed-question"}):
        assert all(r.verdict == H for r in report(name).values()), name


# ------------------------------------------------------------------ the seed question

@pytest.mark.parametrize("claim,delta", [("Delta3", "delta4"), ("sudeep_Delta3", "sudeep_delta4")])
def test_seed_question_Delta3_typo_is_a_shape_error_with_the_fix(claim, delta):
    r = report("seed-question")[claim]
    assert r.formula == f"{delta} @ a4.T"
    assert r.verdict == F
    assert r.evidence.startswith("shape mismatch")
    assert "(K, K)" in r.evidence and "(K, s3)" in r.evidence
    assert r.suggestion == f"{delta} @ a3.T"


def test_seed_question_ng_delta4_needs_cross_entropy():
    own = report("seed-question")
    assert own["delta4"].verdict == H and own["delta4"].evidence == "symbolic identity"
    mse = report("seed-question", "mse", ("delta4",))["delta4"]
    assert mse.verdict == F
    notes = " | ".join(mse.diagnosis)
    assert "missing activation derivative" in notes
    assert "holds under another loss: bce" in notes


def test_seed_question_sudeep_delta4_needs_squared_error():
    own = report("seed-question")["sudeep_delta4"]
    assert own.verdict == F
    notes = " | ".join(own.diagnosis)
    assert "extra activation derivative" in notes
    assert "holds under another loss: mse" in notes
    assert report("seed-question", "mse", ("sudeep_delta4",))["sudeep_delta4"].verdict == H


def test_seed_question_under_mse_swaps_which_delta4_holds():
    r = report("seed-question", "mse", ("delta4", "sudeep_delta4", "delta3", "sudeep_delta3"))
    assert {n: x.verdict for n, x in r.items()} == {
        "delta4": F, "sudeep_delta4": H, "delta3": H, "sudeep_delta3": H}


def test_seed_question_is_bias_free_and_quotes_delta3_verbatim():
    m = model("seed-question")
    assert m.claims["delta3"] == "Theta3.T @ delta4 * sigmoid_prime(z3)"
    assert m.symbols["Theta3"].shape == (m.dims["K"], m.dims["s3"])


# ------------------------------------------------------------------ loss swaps

def test_ng_delta4_fails_under_mse_and_ce_but_downstream_claims_still_hold():
    # δ³, Δ, D use δ⁴ at its true value, so they hold under any loss.
    mse = report("ng", "mse", ("delta4", "delta3", "Delta3", "D1"))
    assert {n: r.verdict for n, r in mse.items()} == {"delta4": F, "delta3": H, "Delta3": H, "D1": H}
    assert any("missing activation derivative" in note for note in mse["delta4"].diagnosis)
    assert report("ng", "ce", ("delta4",))["delta4"].verdict == F


def test_ng_explicit_own_loss_keeps_the_regularization():
    # --loss bce rebuilds the cost from [loss]: scale · bce + extra; D needs the λ term.
    r = report("ng", "bce", ("delta4", "D3", "D1"))
    assert all(x.verdict == H for x in r.values()), r


def test_ng_model_is_faithful():
    m = model("ng")
    s1, s2, s3, K, mm = (m.dims[d] for d in ("s1", "s2", "s3", "K", "m"))
    assert m.symbols["Theta1"].shape == (s2, s1 + 1)
    assert m.symbols["Theta2"].shape == (s3, s2 + 1)
    assert m.symbols["Theta3"].shape == (K, s3 + 1)
    assert m.symbols["X"].shape == (s1, mm) and m.kinds["Y"] == "one-hot columns"
    forward = m.forward_names()
    assert forward["a1"].shape == (s1 + 1, mm) and forward["a3"].shape == (s3 + 1, mm)
    assert isinstance(m.symbols["lam"], sp.Symbol)


def test_sudeep_delta3_holds_only_for_squared_error():
    bce = report("sudeep", "bce", ("delta3", "dE_dW3"))
    assert bce["delta3"].verdict == F and bce["dE_dW3"].verdict == H
    notes = " | ".join(bce["delta3"].diagnosis)
    assert "extra activation derivative" in notes and "holds under another loss: mse" in notes


def test_pytorch_dlogits_is_softmax_cross_entropy_only():
    for loss in ("bce", "mse"):
        r = report("pytorch", loss, ("dlogits", "dW2"))
        assert r["dlogits"].verdict == F and r["dW2"].verdict == H
        assert any("holds under another loss: ce" in note for note in r["dlogits"].diagnosis)


def test_dlai_dZ3_under_mse_misses_the_sigmoid_derivative():
    r = report("dlai", "mse", ("dZ3", "dW3"))
    assert r["dZ3"].verdict == F and r["dW3"].verdict == H
    assert any("missing activation derivative" in note for note in r["dZ3"].diagnosis)


def test_vardhan_dZ4_under_mse():
    r = report("vardhan", "mse", ("dZ4", "dW4"))
    assert r["dZ4"].verdict == F and r["dW4"].verdict == H
