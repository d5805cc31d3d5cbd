"""The built-in models (DESIGN §6): each loads, follows the model-file contract, and every
published claim gets the verdict it deserves — the correct formulas hold, the famous wrong ones
(the seed question's Δ³ typo, δ⁴ under the other loss) fail with the right diagnosis."""
from functools import cache

import pytest
import sympy as sp

import tracegrad

BUILTIN = {"vardhan", "ng", "sudeep", "dlai", "pytorch", "seed-question", "batchnorm", "layernorm",
           "attention", "rnn", "ninja"}
LAYERS = {"batchnorm", "layernorm", "attention"}      # a layer with an upstream gradient: no loss
NO_LOSS = LAYERS | {"rnn", "ninja"}                   # a cost of several terms, or a code file

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
    "batchnorm": {n: H for n in ("dbeta dgammax dgamma dxhat divar dxmu1 dsqrtvar dvar dsq dxmu2 dx1 dmu "
                                 "dx2 dx dx_alt").split()},
    "layernorm": {n: H for n in "dbeta dgamma dxhat dvar dmu dx".split()},
    "attention": {n: H for n in "dV dP dS dQ dK dWq dWk dWv dX".split()},
    "rnn": {n: H for n in ("dy3 dh3 dhraw3 dy2 dh2 dhraw2 dy1 dh1 dhraw1 dWhy dby dWxh dWhh dbh "
                           "dhprev").split()},
    "ninja": {n: H for n in ("dlogprobs dprobs dcounts_sum_inv dcounts dcounts_sum dnorm_logits dlogits "
                             "dlogit_maxes dh dW2 db2 dhpreact dbngain dbnraw dbnbias dbndiff dbnvar_inv "
                             "dbnvar dbndiff2 dhprebn dbnmeani dembcat dW1 db1 dC dlogits_fast "
                             "dhprebn_fast").split()},
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
    if name not in NO_LOSS:
        assert set(m.loss) >= {"name", "prediction", "target", "scale"}
        assert m.loss["name"] == OWN_LOSS[name]
    assert set(m.claims) <= set(m.meanings), "every claim needs a [meaning]"
    assert set(m.claims) == set(EXPECTED[name]), "update EXPECTED when claims change"
    assert m.program.cost.name in {"J", "E"} or name == "ninja"
    if name in LAYERS:                    # L = Σ G ∘ out: the claims are vector-Jacobian products
        upstream = [s for n, s in m.symbols.items() if n.startswith("d")]
        assert len(upstream) == 1 and m.program.definitions[-1][1].has(upstream[0])


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_one_example_only_where_the_source_has_one(name):
    m = model(name)
    single = {"sudeep", "rnn"}               # one example x0; one sequence of 3 characters
    example_dims = {d for d in m.dims if d in ("m", "N", "n")}
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


# ------------------------------------------------------------------ the models of DESIGN §6's second half

NEW = sorted(LAYERS | {"rnn", "ninja"})


@pytest.mark.parametrize("name", NEW)
def test_new_models_derive_step_by_step_and_verify(name):
    m = model(name)
    d = m.derivation
    assert len(d.steps) > 10
    report = m.verify()
    verdicts = {c.name: c.verdict for c in report.checks}
    if name == "ninja":      # b1 feeds batch norm, which removes it: its gradient is exactly 0
        assert verdicts.pop("b1") == "inconclusive"
    assert set(verdicts.values()) == {"pass"}, str(report)


def test_ninja_is_a_code_file_with_every_manual_gradient():
    m = model("ninja")
    assert m.path.endswith("ninja.py") and all(r.line for r in report("ninja").values())
    assert report("ninja")["dC"].formula.startswith("torch.zeros_like(C); dC.index_add_")
    assert report("ninja")["dlogprobs"].line < report("ninja")["dC"].line


def test_rnn_shares_its_weights_over_the_steps():
    m = model("rnn")
    uses = [e for s, e in m.program.definitions if e.has(m.symbols["Whh"])]
    assert len(uses) == 3


def test_attention_X_is_used_three_times():
    r = report("attention", claims=("dX",))["dX"]
    assert r.verdict == H
    wrong = model("attention").check(claims={"dX": "dQ @ Wq.T + dV @ Wv.T"}).results[0]
    assert wrong.verdict == F
