"""Bounded work (issue 11 §3–4): short inputs that used to run for minutes, allocate gigabytes or
recurse too deeply finish quickly, or say what was too large.  (No timing assertions: the inputs
are chosen so that the old behaviour would not finish at all within the suite.)"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import tracegrad
from tracegrad.cli import main
from tracegrad.numeric import evaluate
from tracegrad.symbolic import derive, elementwise, relu, sigmoid

POWERS = """
name = "powers"
[dims]
n = "n"
[inputs]
X = "n, n"
[params]
W = "n, n"
[forward]
J = "sum((X + W) ** 200 / (X + W + 1) ** 199)"
[meaning]
dW = "grad(W)"
[claims]
dW = "200 * (X + W) ** 199 / (X + W + 1) ** 199 - 199 * (X + W) ** 200 / (X + W + 1) ** 200"
"""


def test_simplification_has_a_budget(tmp_path):
    path = tmp_path / "powers.toml"
    path.write_text(POWERS)
    model = tracegrad.load(path)
    steps = [s.rule.name for s in model.derivation.steps]
    assert "entry-wise algebra skipped" in steps
    # the result is still the derivative, just not simplified (checked at a tame point)
    W, X = model.symbols["W"], model.symbols["X"]
    point = {X: np.full((2, 2), 0.1), W: np.full((2, 2), 0.2)}
    g = evaluate(model.derivation.gradient(W), point)
    s = 0.3
    assert np.allclose(g, 200 * s ** 199 / (s + 1) ** 199 - 199 * s ** 200 / (s + 1) ** 200)


def test_a_claims_intermediates_count(capsys):
    code = main(["check", "vardhan", "--claim", "dZ4 = ones(m, m) @ (A4 - Y).T / m / m", "--sizes", "m=12000"])
    err = capsys.readouterr().err
    assert code == 2 and "claim dZ4: the formula's values would hold 144" in err and "ones(m, m) alone 144000000" in err


def test_a_models_intermediates_count(tmp_path):
    path = tmp_path / "outer.toml"
    path.write_text(POWERS.replace('J = "sum((X + W) ** 200 / (X + W + 1) ** 199)"',
                                   'J = "sum(exp(ones(3000, n) @ (X * W) @ ones(n, 3000) / 1000000))"')
                    .split("[meaning]")[0])
    with pytest.raises(tracegrad.ModelError, match="ones"):
        tracegrad.load(path)


def one_expression(depth):
    """A Vardhan-style network of ``depth`` layers as ONE nested SymPy expression (built the
    way SymPy users build deep expressions: with room to recurse)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 40 * depth + 2000))
    try:
        m = sp.Symbol("m", integer=True, positive=True)
        dims = [sp.Symbol(f"n{l}", integer=True, positive=True) for l in range(depth)] + [sp.Integer(1)]
        A, params = sp.MatrixSymbol("X", dims[0], m), []
        for l in range(1, depth + 1):
            W, b = sp.MatrixSymbol(f"W{l}", dims[l - 1], dims[l]), sp.MatrixSymbol(f"b{l}", dims[l], 1)
            params += [W, b]
            Z = sp.MatAdd(sp.MatMul(sp.Transpose(W), A), sp.MatMul(b, sp.OneMatrix(1, m)))
            A = elementwise(relu if l < depth else sigmoid, Z)
        Y, one = sp.MatrixSymbol("Y", 1, m), sp.OneMatrix(1, m)
        cost = sp.MatMul(sp.MatAdd(sp.HadamardProduct(Y, elementwise(sp.log, A)),
                                   sp.HadamardProduct(sp.MatAdd(one, -Y), elementwise(sp.log, sp.MatAdd(one, -A)))),
                         sp.OneMatrix(m, 1))
    finally:
        sys.setrecursionlimit(limit)
    return cost, params, dims, m


@pytest.mark.parametrize("depth", [64, 256])
def test_a_deep_network_as_one_expression(depth):
    """Derived at the default recursion limit, every gradient of the right shape; the 64-layer
    one is checked against the same network derived as a program."""
    cost, params, dims, m = one_expression(depth)
    limit = sys.getrecursionlimit()
    d = derive(cost, params)
    assert sys.getrecursionlimit() == limit           # derived without more room to recurse
    for w in (params[0], params[-2]):
        assert d.gradient(w, "compact").shape == w.shape
    if depth == 64:
        sizes = {n: 2 for n in dims if isinstance(n, sp.Symbol)} | {m: 3}
        rng = np.random.default_rng(0)
        point = dict(sizes)
        for s in cost.free_symbols:
            if isinstance(s, sp.MatrixSymbol):
                point[s] = rng.normal(size=tuple(int(sp.sympify(x).xreplace(sizes)) for x in s.shape))
        point[sp.MatrixSymbol("Y", 1, m)] = np.array([[0.0, 1.0, 1.0]])
        g = evaluate(d.gradient(params[-2]), point)       # the last weight: exact through the cut
        from tracegrad.symbolic import Program
        p = Program()
        p.define("J", cost)
        assert np.allclose(g, evaluate(derive(p, [params[-2]]).gradient(params[-2]), point))


@pytest.mark.skipif(shutil.which("pdflatex") is None and os.environ.get("CI") != "true",
                    reason="pdflatex is not installed here (.ci/run installs it)")
def test_a_unicode_identifier_compiles(tmp_path):
    path = tmp_path / "greek.toml"
    path.write_text('name = "greek"\n[dims]\nn = "n"\n[inputs]\nX = "n, n"\n[params]\n"θ" = "n, n"\n'
                    '[scalars]\n"λ" = "strength"\n[forward]\n"Δ" = "X * θ"\nJ = "sum(tanh(Δ)) + λ * sum(θ * θ)"\n')
    done = subprocess.run([sys.executable, "-m", "tracegrad", "latex", str(path), "-o", str(tmp_path / "g.tex"),
                           "--pdf"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    tex = (tmp_path / "g.tex").read_text()
    assert "\\theta" in tex and "\\lambda" in tex and "\\Delta" in tex and tex.isascii()
