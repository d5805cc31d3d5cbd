"""Generated numpy modules (numeric/codegen/): for every built-in model the generated
forward/backward agree with the engine's expanded gradients evaluated by numeric.evaluate, and
with complex steps of the cost for one model; the text is standalone, compiles and is
deterministic; random programs exercise the printer rules one by one."""
import hashlib
import importlib.util
import warnings
from functools import cache

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad
from tracegrad.checking.points import draw_points
from tracegrad.numeric import complex_step, evaluate
from tracegrad.numeric.codegen import generate_module
from tracegrad.symbolic import Program, TracegradError, derive, elementwise

RTOL = 1e-10


@cache
def model(name):
    return tracegrad.load(name)


@cache
def source(name):
    return generate_module(model(name).derivation, title=f"model '{name}'")


def load_module(text, directory):
    """Import generated source from a file in ``directory`` (named by its hash)."""
    path = directory / f"gen_{hashlib.sha256(text.encode()).hexdigest()[:16]}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def by_name(point):
    """The generated module's input: names -> arrays only (sizes come from the shapes)."""
    return {s.name: v for s, v in point.items() if not isinstance(s, sp.Symbol) or
            not (s.is_integer and s.is_positive)}


def close(got, want, what, floor=1e-300):
    """Relative error at most RTOL; ``floor`` is the smallest scale (a gradient that is 0 in
    exact arithmetic, such as a bias before batch norm, is rounding noise on both sides)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = max(np.max(np.abs(want)), floor)
    err = np.max(np.abs(got - want)) / scale
    assert err <= RTOL, f"{what}: relative error {err:.3g}"


@pytest.mark.parametrize("name", tracegrad.builtin_names())
def test_generated_module_matches_the_engine(name, tmp_path):
    m = model(name)
    d = m.derivation
    mod = load_module(source(name), tmp_path)
    point = draw_points(m, seed=7)[1]   # the larger size set: sizes distinct, m > 1
    values = by_name(point)
    cache_ = mod.forward(values)
    for s, _ in m.program.definitions:
        close(cache_[s.name], evaluate(m.program.expand(s), point), f"{name}: forward {s.name}")
    grads = mod.backward(values, cache_)
    assert list(grads) == [x.name for x in d.wrt]
    truth = {x: np.asarray(evaluate(d.gradient(x, "expanded"), point)) for x in d.wrt}
    largest = max(float(np.max(np.abs(g))) for g in truth.values())
    for x in d.wrt:
        close(grads[x.name], truth[x], f"{name}: ∇{x.name}", floor=1e-4 * largest)
    # without a cache, backward runs forward itself
    again = mod.backward(values)
    for x in d.wrt:
        np.testing.assert_array_equal(again[x.name], grads[x.name])


def test_vardhan_gradients_against_complex_step(tmp_path):
    m = model("vardhan")
    mod = load_module(source("vardhan"), tmp_path)
    point = draw_points(m, seed=3)[0]
    grads = mod.backward(by_name(point))
    cost = m.program.expanded_cost
    for x in m.derivation.wrt:
        want = complex_step(lambda v: evaluate(cost, {**point, x: v}), point[x])
        close(grads[x.name], want, f"∇{x.name} vs complex step")


@pytest.mark.parametrize("name", tracegrad.builtin_names())
def test_generated_text_is_standalone_and_deterministic(name):
    text = source(name)
    assert "sympy" not in text and "tracegrad" in text.splitlines()[0]
    compile(text, f"<{name}>", "exec")
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import numpy as np"]
    assert generate_module(tracegrad.load(name).derivation, title=f"model '{name}'") == text
    # helpers are defined only when used
    for helper in ("sigmoid", "relu", "step", "softmax"):
        defined = f"def {helper}(" in text
        used = f"{helper}(" in text.replace(f"def {helper}(", "")
        assert defined == used, helper


def test_readable_backprop_lines():
    text = source("vardhan")
    for line in ("m = X.shape[1]", "Z1 = b1 + W1.T @ X", "A4 = sigmoid(Z4)",
                 "dZ3 = dA3 * step(Z3)", "dW3 = A2 @ dZ3.T", "db3 = dZ3.sum(axis=1, keepdims=True)",
                 "dA2 = W3 @ dZ3"):
        assert f"    {line}\n" in text, line
    # each adjoint is computed once, in reverse program order
    order = [line.split("=")[0].strip() for line in text.splitlines()
             if line.startswith("    dZ") or line.startswith("    dA")]
    # dZ4 is printed in the form the engine's entry-wise algebra found, (A4 − Y)/m: dA4, which
    # is 0/0 at a saturated output, is needed by no gradient and not computed
    assert order == ["dZ4", "dA3", "dZ3", "dA2", "dZ2", "dA1", "dZ1"]
    assert "    dZ4 = 1 / m * (A4 - Y)\n" in text and "dA4" not in text


def test_backward_reuses_forward_subexpressions():
    # pytorch's pre-activation X W1ᵀ + b1 has no name: forward keeps it, backward reads it
    text = source("pytorch")
    backward = text[text.index("def backward"):]
    assert "X @ W1.T" not in backward and "W1 @ X.T" not in backward
    assert "(dP * P).sum(axis=1, keepdims=True)" in backward


def test_wrt_subset_computes_only_what_it_needs(tmp_path):
    m = model("vardhan")
    text = generate_module(m.derivation, wrt=["W3", "b4"])
    assert "dW1" not in text and "dZ1" not in text and "dX" not in text
    mod = load_module(text, tmp_path)
    point = draw_points(m, seed=1)[0]
    grads = mod.backward(by_name(point))
    assert list(grads) == ["W3", "b4"]
    for x in (m.symbols["W3"], m.symbols["b4"]):
        close(grads[x.name], evaluate(m.derivation.gradient(x), point), x.name)
    with pytest.raises(TracegradError, match="W9"):
        generate_module(m.derivation, wrt=["W9"])


def test_helpers_are_stable(tmp_path):
    # warnings are errors in this suite: no overflow in exp for large |x|
    sig = load_module(source("dlai"), tmp_path).sigmoid(np.array([[-1000.0, 0.0, 1000.0]]))
    np.testing.assert_array_equal(sig, [[0.0, 0.5, 1.0]])
    soft = load_module(source("pytorch"), tmp_path).softmax(np.array([[1000.0, 0.0, -1000.0]]),
                                                           axis=1)
    np.testing.assert_array_equal(soft, [[1.0, 0.0, 0.0]])


def test_unsupported_node_is_named():
    X, W = sp.MatrixSymbol("X", 3, 2), sp.MatrixSymbol("W", 2, 3)
    p = Program()
    A = p.define("A", elementwise(sp.erf, W * X))
    p.define("J", sp.Trace(A))
    with pytest.raises(TracegradError, match="erf"):
        generate_module(derive(p, [W]))


def test_size_only_in_a_compound_shape_is_solved(tmp_path):
    # n appears only as n + 1: the module reads it as A.shape[0] - 1
    n, k = sp.symbols("n k", integer=True, positive=True)
    A, B = sp.MatrixSymbol("A", n + 1, k), sp.MatrixSymbol("B", k, n + 1)
    p = Program()
    p.define("J", sp.OneMatrix(1, n) * (A * B)[1:, :] * sp.OneMatrix(n + 1, 1) / n)
    d = derive(p, [A, B])
    text = generate_module(d)
    assert "n = A.shape[0] - 1" in text or "n = B.shape[1] - 1" in text
    mod = load_module(text, tmp_path)
    rng = np.random.default_rng(0)
    point = {n: 4, k: 3, A: rng.normal(size=(5, 3)), B: rng.normal(size=(3, 5))}
    grads = mod.backward({"A": point[A], "B": point[B]})
    for x in (A, B):
        close(grads[x.name], evaluate(d.gradient(x), point), x.name)


# ---- random programs: every printer rule the engine's results use, against the evaluator ----

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from test_properties import leaves, programs, values_for  # noqa: E402


@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cost=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_programs_against_the_evaluator(cost, seed, tmp_path_factory):
    wrt = leaves(cost)
    d = derive(cost, wrt)
    mod = load_module(generate_module(d), tmp_path_factory.getbasetemp())
    point = values_for(wrt, np.random.default_rng(seed))
    values = {s.name: v for s, v in point.items()}
    grads = mod.backward(values)
    for x in wrt:
        close(grads[x.name], evaluate(d.gradient(x), point), f"∇{x} of {cost}")


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("name, weight, bias", [("vardhan", "W4", "b4"), ("dlai", "W3", "b3"),
                                                ("ng", "Theta3", None), ("seed-question", "Theta3", None)])
def test_generated_code_trains_with_saturated_outputs(name, weight, bias, direction, tmp_path):
    """Every output saturated, σ(z) exactly 1 (or exactly 0): the textbook cost and dA are inf or
    NaN there; the generated forward and backward stay finite, and the gradients agree with
    central differences of the generated cost."""
    m = model(name)
    params = [p for p in m.params if isinstance(p, sp.MatrixSymbol)]
    mod = load_module(generate_module(m.derivation, wrt=params), tmp_path)
    for seed in range(3, 40):        # the first drawn point whose outputs all saturate exactly
        values = by_name(draw_points(m, seed=seed)[1])
        values[weight] = direction * 2000 * np.abs(values[weight])      # the layer below is ≥ 0
        if bias:
            values[bias] = values[bias] + direction * 800
        cache_ = mod.forward(values)
        if np.all(cache_[m.loss["prediction"]] == (1.0 if direction > 0 else 0.0)):
            break
    else:
        pytest.fail("no drawn point saturates every output")
    grads = mod.backward(values, cache_)
    assert np.isfinite(cache_[m.program.cost.name]).all()
    rng = np.random.default_rng(0)
    for x in params:
        assert np.isfinite(grads[x.name]).all(), x
        v = rng.normal(size=values[x.name].shape)
        cost = lambda h: float(np.squeeze(mod.forward({**values, x.name: values[x.name] + h * v})[m.program.cost.name]))
        h = 1e-6 * max(1.0, np.max(np.abs(values[x.name])))
        slope = (cost(h) - cost(-h)) / (2 * h)
        assert np.isclose(np.sum(grads[x.name] * v), slope, rtol=1e-5, atol=1e-8), (x, np.sum(grads[x.name] * v), slope)
