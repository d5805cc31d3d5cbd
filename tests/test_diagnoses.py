"""Diagnoses on a set of wrong claims written as real sources write their backprop (issue 13 §4,
issue 14 §1): each wrong claim is one slip a person makes — a transpose, swapped operands, the
1/m or the n − 1, the wrong axis, a dropped activation derivative, a missing ``+=`` (one use of a
node used twice), two quantities exchanged, a layer index, blocks exchanged, an assumption on
the data, another loss.  ``slip`` is the KIND of slip (the words the diagnosis must use when it
names it); ``None`` marks slips no edit of the family describes (they must say no more than
"values differ").

Soundness is checked independently of the diagnosis code: every suggestion is re-checked as a
claim of its own by a fresh checker and must hold; the verdict of the wrong claim itself is never
'holds'.  The share of correctly named slips is asserted to stay above a floor, and a named reason
of the wrong kind counts as a wrong reason (none allowed).
"""
from functools import cache
from itertools import zip_longest

import pytest

import tracegrad

SOFTMAX_REAL_Y = """
name = "softmax-real-targets"
[dims]
N = "examples"
D = "inputs"
K = "classes"
[inputs]
X = "N, D"
Y = "N, K"
[params]
W = "D, K"
[sizes]
N = 6
D = 4
K = 3
[forward]
S = "X @ W"
P = "softmax(S, axis=1)"
J = "-sum(Y * log(P)) / N"
[meaning]
dS = "grad(S)"
dW = "grad(W)"
"""

# (model, loss, claim, wrong formula, the kinds of slip: every one must be named, or None)
WRONG = [
    # vardhan: the note's numerator layout, Z = Wᵀ A + b 1ᵀ
    ("vardhan", None, "dZ4", "A4 - Y", ("transposed", "1/m")),
    ("vardhan", None, "dZ4", "(A4 - Y).T", ("1/m",)),
    ("vardhan", None, "dW4", "dZ4 @ A3", ("transpose",)),
    ("vardhan", None, "dZ3", "dA3", ("missing activation derivative",)),
    ("vardhan", None, "dW3", "dZ3.T @ A1.T", ("layer index",)),
    ("vardhan", None, "dA2", "dZ3 @ W3", ("transpose of W3",)),
    ("vardhan", None, "gradW3", "A2 @ dZ3 / m", ("factor m",)),
    ("vardhan", None, "dZ4", "(Y - A4).T / m", ("sign",)),
    # dlai: W[l] (n[l], n[l-1]), the 1/m applied in dW and db
    ("dlai", None, "dW2", "np.dot(dZ2, A1.T)", ("1/m",)),
    ("dlai", None, "db2", "1. / m * np.sum(dZ2, axis=0, keepdims=True)", ("axis",)),
    ("dlai", None, "dA1", "np.dot(W2, dZ2)", ("transpose of W2",)),
    ("dlai", None, "dZ1", "np.multiply(dA1, (A2 > 0))", ("layer index",)),
    ("dlai", None, "dW3", "1. / m * np.dot(A2, dZ3.T)", ("transpose",)),
    ("dlai", "mse", "dZ3", "A3 - Y", ("missing activation derivative", "another loss: bce")),
    # ng: Θ with bias columns, δ without 1/m
    ("ng", None, "Delta3", "delta4 @ a3", ("transpose of a3",)),
    ("ng", None, "delta3", "(Theta3.T @ delta4)[1:, :] * sigmoid_prime(z4)", ("layer index",)),
    ("ng", None, "Delta2", "delta3 @ a1.T", ("layer index",)),
    ("ng", "mse", "delta4", "a4 - Y", ("missing activation derivative", "another loss: bce")),
    ("ng", None, "D3", "Delta3 / m + (lam / m) * hstack(Theta3[:, 1:], zeros(K, 1))", ("blocks",)),
    ("ng", None, "D3", "Delta3 / m + lam * hstack(zeros(K, 1), Theta3[:, 1:])", None),
    # sudeep: x_i = f(W_i x_(i-1)), ½‖x3 − t‖²
    ("sudeep", None, "dE_dW3", "delta3 @ x2", ("transpose of x2",)),
    ("sudeep", None, "delta2", "(W3 @ delta3) * sigmoid_prime(z2)", ("transpose of W3",)),
    ("sudeep", None, "delta3", "x3 - t", ("missing activation derivative",)),
    ("sudeep", None, "delta1", "(W2.T @ delta2) * sigmoid_prime(z2)", ("layer index",)),
    ("sudeep", None, "dE_dW2", "x1 @ delta2.T", ("transpose",)),
    ("sudeep", None, "delta3", "2 * (x3 - t) * sigmoid_prime(z3)", ("factor 1/2",)),
    ("sudeep", "bce", "delta3", "(x3 - t) * sigmoid_prime(W3 @ x2)", ("extra activation derivative",)),
    # pytorch: nn.Linear, rows are examples
    ("pytorch", None, "dW2", "H1.T @ dlogits", ("transpose",)),
    ("pytorch", None, "dlogits", "P - Y", ("1/N",)),
    ("pytorch", None, "db2", "sum(dlogits, axis=1, keepdims=True)", ("axis",)),
    ("pytorch", None, "dW1", "(dH1 * (H1 > 0)).T @ X / N", ("factor N",)),
    ("pytorch", None, "dX", "dH1 @ W1", None),
    # batchnorm (Kratzert's staged graph)
    ("batchnorm", None, "dbeta", "np.sum(dout, axis=1)", ("axis",)),
    ("batchnorm", None, "dgamma", "np.sum(dout, axis=0)", ("exchanged with dbeta",)),
    ("batchnorm", None, "dx1", "dxmu1", ("one use of xmu",)),
    ("batchnorm", None, "dx", "dx1", ("one use of x",)),
    ("batchnorm", None, "dsq", "np.ones((N,D)) * dvar", ("1/N",)),
    ("batchnorm", None, "dvar", "-0.5 * 1. /np.sqrt(var+1e-5) * dsqrtvar", ("sign",)),
    ("batchnorm", None, "dxhat", "dgammax", ("exchanged with dgammax",)),   # γ missing: the value of dgammax
    # layernorm (statistics per row)
    ("layernorm", None, "dbeta", "dout.sum(axis=1)", ("axis",)),
    ("layernorm", None, "dvar", "np.sum(dxhat * xmu, axis=0, keepdims=True) * -0.5 * std**-3", ("axis",)),
    ("layernorm", None, "dx", "(1. / N) / std * (D * dxhat - dxhat.sum(axis=1, keepdims=True) - xhat * "
                              "np.sum(dxhat * xhat, axis=1, keepdims=True))", ("factor N/D",)),
    # attention (FlashAttention's standard backward)
    ("attention", None, "dV", "P @ dO", ("transpose of P",)),
    ("attention", None, "dQ", "dS @ K", ("1/sqrt(dk)",)),
    ("attention", None, "dK", "dS @ Q / np.sqrt(dk)", ("transpose of dS",)),
    ("attention", None, "dP", "dO @ V", ("transpose of V",)),
    ("attention", None, "dWq", "X.T @ dK", ("exchanged with dWk",)),
    # rnn (min-char-rnn, unrolled)
    ("rnn", None, "dh2", "np.dot(Why.T, dy2)", ("one use of h2",)),
    ("rnn", None, "dWhh", "np.dot(dhraw3, h2.T)", ("other uses of Whh",)),
    ("rnn", None, "dby", "dy1 + dy2", ("one use of by",)),
    ("rnn", None, "dWxh", "np.dot(dhraw1, x1.T) + np.dot(dhraw2, x2.T) + np.dot(dhraw3, x2.T)", ("layer index",)),
    ("rnn", None, "dhraw3", "(1 - h3) * dh3", None),
    # ninja (a code file: makemore's backprop exercise, Bessel's n − 1)
    ("ninja", None, "dbndiff2", "(1.0 / n) * torch.ones_like(bndiff2) * dbnvar", ("factor n/(n - 1)",)),
    ("ninja", None, "db2", "dlogits.sum(1)", ("axis",)),
    ("ninja", None, "dW2", "h @ dlogits.T", ("transpose",)),
    ("ninja", None, "dlogits_fast", "F.softmax(logits, 1) - F.one_hot(Yb, num_classes=vocab_size)", ("1/n",)),
    # data assumptions: the softmax + CE collapse needs targets that sum to 1
    ("softmax-real-targets", None, "dS", "(P - Y) / N", ("each row of Y sums to 1",)),
    ("softmax-real-targets", None, "dW", "X.T @ (P - Y) / N", ("each row of Y sums to 1",)),
]
FLOOR = 0.8


@cache
def load(name, tmp):
    if name == "softmax-real-targets":
        path = tmp / "softmax_real.toml"
        path.write_text(SOFTMAX_REAL_Y)
        return tracegrad.load(str(path))
    return tracegrad.load(name)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    groups = {}
    for model, loss, name, formula, _ in WRONG:
        groups.setdefault((model, loss), []).append((name, formula))
    out = {}
    for (model, loss), claims in groups.items():
        m = load(model, tmp)
        by_name = {}
        for n, f in claims:
            by_name.setdefault(n, []).append(f)
        for round_ in zip_longest(*by_name.values()):
            batch = {n: f for n, f in zip(by_name, round_) if f is not None}
            for r in m.check(claims=batch, loss=loss).results:
                out[model, loss, r.name, r.formula] = (m, r)
    return out


def named(r):
    """The diagnosis without its 'why' lines and budget notes: what it says the slip is."""
    return [d for d in r.diagnosis if not d.startswith(("why:", "diagnosis budget spent"))]


def test_the_set_is_large_and_real():
    assert len(WRONG) >= 40
    for model, _, name, formula, _ in WRONG:
        if model != "softmax-real-targets":
            assert name in tracegrad.load(model).meanings, (model, name)


@pytest.mark.parametrize("case", WRONG, ids=[f"{c[0]}:{c[2]}={c[3][:30]}" for c in WRONG])
def test_a_wrong_claim_never_holds_and_its_suggestion_does(results, case):
    model, loss, name, formula, _ = case
    m, r = results[model, loss, name, formula]
    assert r.verdict in ("fails", "error"), str(r)
    if r.suggestion is not None:
        again = m.check(claims={name: r.suggestion}, loss=loss).results[0]
        assert again.verdict == "holds", (r.suggestion, str(again))


def test_diagnosis_share_and_no_wrong_reason(results):
    correct, wrong, silent = [], [], []
    for model, loss, name, formula, slips in WRONG:
        _, r = results[model, loss, name, formula]
        text = " | ".join(named(r))
        if slips is None:
            if text:
                wrong.append((model, name, formula, slips, text))
        elif all(s in text for s in slips):
            correct.append((model, name))
        elif text:
            wrong.append((model, name, formula, slips, text))
        else:
            silent.append((model, name, formula))
    share = len(correct) / len(WRONG)        # the slips no edit describes count as not named
    print(f"\ndiagnosis share: {len(correct)}/{len(WRONG)} named correctly, {len(wrong)} wrong, "
          f"{len(silent)} without a reason")
    assert wrong == [], "\n".join(map(str, wrong))
    assert share >= FLOOR, silent


def test_diagnoses_are_deterministic(results):
    model, loss, name, formula, _ = WRONG[0]
    m, r = results[model, loss, name, formula]
    again = m.check(claims={name: formula}, loss=loss).results[0]
    assert (again.diagnosis, again.suggestion) == (r.diagnosis, r.suggestion)


def test_a_correct_claim_gets_no_diagnosis_and_the_verdict_ignores_the_budget(monkeypatch):
    from tracegrad.checking import diagnose
    m = tracegrad.load("sudeep")
    full = m.check(claims={"dE_dW3": "delta3 @ x2", "delta3": "x3 - t"}).results
    monkeypatch.setattr(diagnose, "BUDGET", 0)
    starved = m.check(claims={"dE_dW3": "delta3 @ x2", "delta3": "x3 - t"}).results
    assert [r.verdict for r in full] == [r.verdict for r in starved] == ["error", "fails"]
    assert all(r.diagnosis == (diagnose.SPENT,) and r.suggestion is None for r in starved)
    assert m.check(claims={"dE_dW3": "delta3 @ x2.T"}).results[0].diagnosis == ()
