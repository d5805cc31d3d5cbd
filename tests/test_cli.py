"""The CLI in-process: exit codes 0/1/2, one-line errors, JSON shape, determinism."""
import contextlib
import functools
import io
import json

import pytest

from tracegrad.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "vardhan" in out


def test_derive_default_prints_every_layer(capsys):
    code, out, _ = run(capsys, "derive")
    assert code == 0
    for layer in "1234":
        for q in ("Z", "W", "b"):
            assert f"dJ/d{q}{layer} =" in out
    for layer in "123":
        assert f"dJ/dA{layer} =" in out
    assert "dJ/dZ4 = (G_A4ᵀ ∘ (𝟏₍1,m₎ − A4) ∘ A4)ᵀ" in out
    assert "= (1/m) (A4 − Y)ᵀ" in out
    assert "dJ/dW4 = G_Z4ᵀ A3ᵀ" in out


def test_derive_gradient_layout_and_formats(capsys):
    code, out, _ = run(capsys, "derive", "--layout", "gradient", "--wrt", "W4", "--format", "text")
    assert code == 0 and "= A3 @ G_Z4" in out and "(A4 - Y).T / m" in out
    code, out, _ = run(capsys, "derive", "--wrt", "Z4", "--format", "latex")
    assert code == 0 and "\\frac{1}{m}" in out
    code, out, _ = run(capsys, "derive", "--format", "json")
    data = json.loads(out)
    assert data["results"]["Z4"]["named"] == "(1/m) (A4 − Y)ᵀ"


def test_derive_steps_name_their_rules(capsys):
    code, out, _ = run(capsys, "derive", "--steps")
    assert code == 0
    assert "[Z3] transpose: N = Aᵀ: G_A = Gᵀ" in out
    assert "⇒ G[W3] = G_Z3ᵀ A2ᵀ" in out


def test_derive_steps_wrt_is_the_hand_derivation_of_that_path(capsys):
    """Only the way J → A4 → Z4 → A3 → Z3 → W3, each line a trace identity, as the note writes it."""
    code, out, _ = run(capsys, "derive", "--wrt", "W3", "--steps")
    assert code == 0
    blocks = [b.split(":\n", 1)[0] for b in out.split("\n\n")[2:]]
    assert blocks == ["dJ/dA4", "dJ/dZ4", "dJ/dA3", "dJ/dZ3", "dJ/dW3"]
    w3 = [line.split("  [") for line in out.split("dJ/dW3:\n")[1].splitlines()]
    assert [(math.strip(), why.rstrip("]").split(":")[0]) for math, why in w3] == [
        ("dJ = tr(G_Z3 dZ3)", "the adjoint of Z3"),
        ("= tr(G_Z3 d(b3 𝟏₍1,m₎ + W3ᵀ A2))", "definition of Z3"),
        ("= tr(G_Z3 d(W3ᵀ A2))", "linearity"),
        ("= tr(G_Z3 dW3ᵀ A2)", "product rule"),
        ("= tr(A2 G_Z3 dW3ᵀ)", "cyclic property"),
        ("= tr(dW3 (A2 G_Z3)ᵀ)", "transposition"),
        ("= tr(G_Z3ᵀ A2ᵀ dW3)", "cyclic property"),
        ("⇒ dJ/dW3 = G_Z3ᵀ A2ᵀ", "identification"),
        ("= (1/m) ((W4 (A4 − Y)) ∘ 1[Z3 > 0]) A2ᵀ", "substitute adjoints")]
    # the collapse of Ng's δ⁴ is a recorded step on this path
    z4 = out.split("dJ/dZ4:\n")[1].split("\n\n")[0]
    assert "= (1/m) (A4 − Y)ᵀ" in z4 and z4.rstrip().endswith("[entry-wise algebra]")
    assert "W1" not in out.split("Steps on the way")[1]


def test_verify_passes_and_is_deterministic(capsys):
    code, out, _ = run(capsys, "verify", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] and {c["name"] for c in data["checks"]} >= {"W1", "b4", "X"}
    assert run(capsys, "verify", "--json")[1] == out


def test_check_builtin_claims_hold(capsys):
    code, out, _ = run(capsys, "check", "vardhan")
    assert code == 0 and "FAILS" not in out


def test_check_user_claims(capsys):
    code, out, _ = run(capsys, "check", "vardhan", "--claim", "dW4 = dZ4.T @ A4.T", "--json")
    assert code == 1
    (result,) = json.loads(out)["results"]
    assert result["verdict"] == "fails" and "shape mismatch" in result["evidence"]
    assert result["suggestion"] == "dZ4.T @ A3.T"


@pytest.mark.parametrize("argv", [
    ["check", "no-such-model"],
    ["derive", "--wrt", "W9"],
    ["derive", "--format", "pdf"],
    ["verify", "--sizes", "m=0"],
    ["verify", "--sizes", "m=x"],
    ["verify", "--sizes", "q=3"],
    ["verify", "--seed", "abc"],
    ["check", "vardhan", "--claim", "no equals sign"],
    ["check", "/nonexistent/model.toml"],
    ["frobnicate"],
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv):
    """(A bare ``tracegrad`` is not bad input: it prints the help, tests/test_packaging.py.)"""
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("tracegrad: error:")
    assert "Traceback" not in err


def test_unreadable_model_file(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    code, _, err = run(capsys, "check", str(bad))
    assert code == 2 and "not valid TOML" in err and err.count("\n") == 1


def test_verify_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra (installed with 'test')")
    target = tmp_path / "fd.png"
    code, _, err = run(capsys, "verify", "--plot", str(target))
    assert code == 0 and target.read_bytes()[:4] == b"\x89PNG" and "wrote" in err


def test_compare_answers_the_seed_question(capsys):
    code, out, _ = run(capsys, "compare", "ng", "sudeep", "--json")
    data = json.loads(out)
    assert data["ng"]["delta4"]["verdicts"] == {"bce": "holds", "mse": "fails", "ce": "fails"}
    assert data["sudeep"]["delta3"]["verdicts"]["mse"] == "holds"
    assert data["sudeep"]["delta3"]["verdicts"]["bce"] == "fails"


def test_codegen_writes_a_module_that_computes_the_gradients(capsys, tmp_path):
    import importlib.util

    import numpy as np

    import tracegrad
    from tracegrad.checking.points import draw_points
    from tracegrad.numeric import evaluate
    target = tmp_path / "net.py"
    code, out, _ = run(capsys, "codegen", "-o", str(target), "--wrt", "W1,b4")
    assert code == 0 and out.strip() == f"wrote {target}"
    spec = importlib.util.spec_from_file_location("net", target)
    net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(net)
    model = tracegrad.load("vardhan")
    point = draw_points(model, 3)[0]
    grads = net.backward({s.name: v for s, v in point.items() if hasattr(s, "shape")})
    assert set(grads) == {"W1", "b4"}
    for name in grads:
        want = evaluate(model.derivation.gradient(model.symbols[name]), point)
        assert np.allclose(grads[name], want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("argv", [["codegen", "-o", "x.txt"], ["codegen", "--wrt", "W9"], ["codegen", "nosuch"]])
def test_codegen_bad_input_is_one_line(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1


@functools.cache
def compare_ng_sudeep():
    """The text of `compare ng sudeep` (computed once for the tests that read it)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["compare", "ng", "sudeep"]) == 0
    return out.getvalue()


def test_compare_says_why_delta4_differs_in_the_engines_own_steps():
    import tracegrad
    from tracegrad.symbolic.printing import to_text
    out = compare_ng_sudeep()
    why = out.split("why the verdicts differ")[1]
    ng = why.split("ng delta4 = a4 - Y")[1].split("sudeep delta3")[0]
    bce, mse = ng.split("  bce (holds):")[1].split("  mse (fails):")
    mse = mse.split("  ce (")[0]
    ng_model = tracegrad.load("ng")
    for loss, text in (("bce", bce), ("mse", mse)):
        d = ng_model.derive(loss)
        z4 = ng_model.forward_names()["z4"]
        assert "G_a4ᵀ ∘ (𝟏₍K,m₎ − σ(z4)) ∘ σ(z4)" in text           # dJ/da4 ∘ σ′(z4), as derived
        assert text.strip().splitlines()[-1].split("  [")[0].strip() == "= " + to_text(d.adjoint(z4, "named"), "unicode")
    assert bce.strip().endswith("= (1/m) (a4 − Y)ᵀ                                                   [entry-wise algebra]")
    assert "= (1/m) ((a4 − Y) ∘ (𝟏₍K,m₎ − a4) ∘ a4)ᵀ" in mse and "entry-wise algebra]" not in mse.split("dJ/dz4")[1]


def test_chains_say_given_the_true_value(capsys):
    code, out, _ = run(capsys, "check", "ng", "--loss", "mse")
    delta3 = out.split("delta3 = ")[1].split("delta2 = ")[0]
    assert "given the true delta4: its own formula (a4 - Y) fails here" in delta3
    assert out.rstrip().endswith("8 holds (8 only given the true value of a claim that fails), 1 fails")
    code, out, _ = run(capsys, "check", "ng", "--json")     # under its own loss every link holds
    assert "given the true" not in out and all(r["given"] == [] for r in json.loads(out)["results"])
    out = compare_ng_sudeep()
    assert "ng under mse: delta3, delta2, Delta3, Delta2, Delta1, D3, D2, D1 hold given the true delta4" in out
    assert "  delta3 holds    holds*   holds*  " in out
