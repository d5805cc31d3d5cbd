"""Code files as people write them (tests/codefiles.py), right and wrong, held against two
independent truths: the engine (tracegrad's verdicts) and finite differences of the file's own
forward, run by this test with numpy.  tracegrad reads the files; only the test runs them."""
from functools import cache

import numpy as np
import pytest
import sympy as sp

import tracegrad
from tracegrad.language.codefile.gradients import Resolver
from tracegrad.language.labels import SingleLabel
from tracegrad.language.values import LabelSymbol, VectorSymbol
from tracegrad.numeric import evaluate

from codefiles import SLIPS, STYLES, Tensor, finite_difference, line_of, slipped, trusted_run

TORCH_STYLES = {"makemore"}


@cache
def loaded(text, tmp="/tmp"):
    import hashlib
    import pathlib
    path = pathlib.Path(tmp) / f"tracegrad_style_{hashlib.sha256(text.encode()).hexdigest()[:12]}.py"
    path.write_text(text, encoding="utf-8")
    return tracegrad.load(str(path))


def point(model, style, seed=0):
    """numpy values for the file (1-D as 1-D, labels as integers) and the same point for the
    engine ({symbol: 2-D array}): the model's sizes, seeded."""
    rng = np.random.default_rng(seed)
    sizes = {d.name: v for d, v in model.sizes.items()}
    sizes.update(model.fixed)
    text = STYLES[style]
    shapes = _literal(text, "SHAPES")
    data = _literal(text, "DATA")
    values, engine, dims = {}, {}, {**sizes}
    for name, shape in shapes.items():
        dims_of = [int(sp.sympify(part.strip(), locals={k: sp.Integer(v) for k, v in sizes.items()}))
                   for part in shape.split(",")]
        kind = data.get(name, "real")
        if kind.startswith("label"):
            classes = sizes[kind.split()[-1]]
            values[name] = rng.integers(0, classes, dims_of)
        elif kind == "binary":
            values[name] = rng.integers(0, 2, dims_of).astype(float)
        else:
            values[name] = rng.normal(0, 0.7, dims_of)
    for name, symbol in model.symbols.items():
        if isinstance(symbol, LabelSymbol):
            base, _, position = name.rpartition("_")
            if name in values:
                labels = values[name]
            else:
                labels = values[base][..., int(position)] if values[base].ndim == 2 else values[base][int(position)]
            classes = size(symbol.shape[1], sizes)
            engine[symbol] = np.eye(classes)[np.atleast_1d(labels)]
        elif isinstance(symbol, sp.MatrixSymbol) and name in values:
            engine[symbol] = np.atleast_2d(values[name])
        elif model.kinds.get(name) == "upstream":
            shape = tuple(size(d, sizes) for d in symbol.shape)
            G = rng.normal(0, 1, shape)
            engine[symbol] = G
            values["__G__"] = G[0] if isinstance(symbol, VectorSymbol) else G
        elif isinstance(symbol, sp.Symbol):
            values[name] = engine[symbol] = float(rng.uniform(0.5, 1.5))
    if style in TORCH_STYLES:
        values = {k: (np.ndarray.view(np.asarray(v), Tensor) if isinstance(v, np.ndarray) else v)
                  for k, v in values.items()}
    values["__dims__"] = dims
    return values, engine


def size(d, sizes):
    return int(sp.sympify(d).subs({s: sizes[s.name] for s in sp.sympify(d).free_symbols}))


def _literal(text, name):
    import ast
    for stmt in ast.parse(text).body:
        if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == name:
            return ast.literal_eval(stmt.value)
    return {}


def code_value(back, claim):
    """The value the file's backward computed for a claim (grads['W1'] or dW1)."""
    if "[" in claim:
        container, key = claim.split("[", 1)
        return np.asarray(back[container][key.strip("]'\"")])
    return np.asarray(back[claim])


def reproduced(model, claim, engine):
    """tracegrad's reading of the code's value of ``claim``, without true values pinned."""
    resolver = Resolver(model.records, {}, None)
    expr = model.program.expand(resolver.expression(model.code_claims[claim]))
    return np.asarray(evaluate(expr, engine), dtype=float)


def gradient_claims(model):
    """Claims about a parameter or an input, with that name (the ones finite differences see)."""
    out = {}
    for claim, meaning in model.meanings.items():
        name = meaning[len("grad("):-1] if meaning.startswith("grad(") else None
        if name in model.symbols and model.kinds.get(name) in (None, "real") and not \
                isinstance(model.symbols[name], LabelSymbol):
            out[claim] = name
    return out


@pytest.mark.parametrize("style", sorted(STYLES))
def test_right_files_hold_and_match_finite_differences(style):
    text = STYLES[style]
    model = loaded(text)
    report = model.check()
    assert report.ok and report.results, str(report)
    values, engine = point(model, style)
    _, _, back = trusted_run(text, values)
    for claim, name in gradient_claims(model).items():
        fd = finite_difference(text, values, name)
        got = code_value(back, claim)
        assert np.allclose(got.reshape(fd.shape), fd, atol=1e-6, rtol=1e-5), (claim, got, fd)
    for claim in model.code_claims:
        got = code_value(back, claim)
        mine = reproduced(model, claim, engine)
        assert np.allclose(mine.reshape(got.shape), got, atol=1e-10), (claim, mine, got)


@pytest.mark.parametrize("style, old, new, slip", SLIPS, ids=[s[3] for s in SLIPS])
def test_slips_fail_at_their_line_and_finite_differences_agree(style, old, new, slip):
    text = slipped(style, old, new)
    model = loaded(text)
    report = model.check()
    verdicts = {r.name: r for r in report.results}
    assert not report.ok, f"{slip}: {report}"
    values, engine = point(model, style)
    _, _, back = trusted_run(text, values)
    wrong = []
    for claim, name in gradient_claims(model).items():
        fd = finite_difference(text, values, name)
        got = code_value(back, claim)
        if got.size != fd.size or not np.allclose(got.reshape(fd.shape), fd, atol=1e-6, rtol=1e-5):
            wrong.append(claim)
    assert wrong, f"the slip '{slip}' must change a gradient the file returns"
    # every claim made at the slipped line fails, and the slip shows in a claim made there or
    # later (a slipped helper or mask: in the claims that read it)
    line = line_of(text, new)
    if "mask" not in slip:            # a mask that masks nothing leaves dh = grad(h) true
        assert all(r.verdict == "fails" for r in report.results if r.line == line), str(report)
    assert any(r.verdict == "fails" and r.line >= line for r in report.results), str(report)
    for claim in model.code_claims:                  # the reading still reproduces the code
        got = code_value(back, claim)
        assert np.allclose(reproduced(model, claim, engine).reshape(got.shape), got, atol=1e-10)
