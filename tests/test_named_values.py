"""A compiled program that grows (``CompiledGroup.extend``), and claims measured over the named
program (``NamedValues``): the same values as evaluating each formula expanded, bounds that hold
against a 40-digit oracle, and states that stay correct when outputs are added or registers
dropped."""
import numpy as np
import pytest
import sympy as sp

import tracegrad
from oracle import explicit
from tracegrad.checking.claims import Checker
from tracegrad.numeric import evaluate
from tracegrad.numeric.compile import compile_group
from tracegrad.numeric.errorbound import UNIT_ROUNDOFF
from tracegrad.numeric.gradcheck import SAFETY, NamedValues
from tracegrad.symbolic.errors import TracegradError

n, m = sp.Symbol("n", integer=True, positive=True), sp.Symbol("m", integer=True, positive=True)
W, X, V = sp.MatrixSymbol("W", n, n), sp.MatrixSymbol("X", n, m), sp.MatrixSymbol("V", m, n)
Z = sp.MatrixSymbol("Z", n, m)
c = sp.Symbol("c")


def _values(rng):
    return {W: rng.standard_normal((3, 3)), X: rng.standard_normal((3, 4)), V: rng.standard_normal((4, 3)),
            c: 0.7, n: 3, m: 4}


def test_extended_outputs_equal_a_fresh_compile_and_share_nodes():
    rng = np.random.default_rng(0)
    values = _values(rng)
    definitions = [(Z, W * X)]
    program = compile_group([sp.Trace(Z * V)], definitions)
    state = program.run(values)
    before = program.instructions
    exprs = [sp.HadamardProduct(Z, Z) * V, Z.T * W, sp.Trace(Z * V) * 2]
    which = program.extend(exprs)
    assert list(which) == [1, 2, 3]
    # Z·V's trace and Z itself are not compiled again: the trace output adds a product only
    assert program.instructions - before < 3 * 4
    got = program.outputs(program.resume(state, which), which)
    fresh = compile_group(exprs, definitions)(values)
    for a, b in zip(got, fresh):
        np.testing.assert_array_equal(a, b)


def test_an_extension_may_bring_new_inputs_and_a_failing_one_changes_nothing():
    rng = np.random.default_rng(1)
    values = _values(rng)
    program = compile_group([W * X])
    state = program.run(values)
    (k,) = program.extend([c * V * W])           # V and c were not inputs of the program before
    np.testing.assert_allclose(program.outputs(program.resume(state, [k]), [k])[0], 0.7 * values[V] @ values[W])
    size, code = program.instructions, program._builder.count

    class Unknown(sp.Function):
        pass
    with pytest.raises(TracegradError, match="Unknown"):
        program.extend([W * X + Unknown(c) * W * X])
    assert (program.instructions, program._builder.count) == (size, code)
    (j,) = program.extend([W * X * 3])
    np.testing.assert_allclose(program.outputs(program.resume(state, [j]), [j])[0], 3 * values[W] @ values[X])


def test_release_keeps_inputs_and_names_and_recomputes_the_rest():
    rng = np.random.default_rng(2)
    values = _values(rng)
    program = compile_group([sp.Trace(Z * V)], [(Z, W * X)])
    state = program.run(values)
    program.release(state)
    regs = state[0]
    assert sum(r is not None for r in regs) < len(regs)
    (k,) = program.extend([Z * V])
    np.testing.assert_allclose(program.outputs(program.resume(state, [k]), [k])[0],
                               values[W] @ values[X] @ values[V])


@pytest.mark.parametrize("name", tracegrad.builtin_names())
def test_claims_over_the_names_equal_the_expanded_formulas(name):
    """For every claim (and its truth) of every built-in model, at every test point: the value
    from the named program equals the formula expanded and evaluated on its own, within the
    rounding bound the named program gives."""
    model = tracegrad.load(name)
    checker = Checker(model, explain=False)
    for claim_name, formula in model.claims.items():
        try:
            claim = checker.truth.parse(formula)
        except TracegradError:
            continue
        for expr in (claim, checker.truth[claim_name]):
            if checker.too_large(expr):
                continue
            measured = checker.measured(expr)
            full = checker.program.expand(expr)
            for (value, bound), point in zip(measured, checker.points):
                alone = np.asarray(evaluate(full, point), dtype=float)
                gap = np.abs(value - alone)
                # both are rounded results of the same exact value: within the two bounds
                assert np.all(gap <= 2 * SAFETY * UNIT_ROUNDOFF * bound + 1e-300), (name, claim_name, np.max(gap))


def test_named_bounds_hold_against_the_oracle():
    """ε of a formula over the names bounds |computed − exact| (40 digits) at points with
    distinct sizes, names standing for their exact values' rounded computation."""
    model = tracegrad.load("vardhan")
    dims = {model.dims[k]: v for k, v in dict(n0=3, n1=2, n2=4, n3=2, m=5).items()}
    from tracegrad.checking.points import draw_point
    point = draw_point(model, dims, np.random.default_rng(4))
    program = model.derivation.program
    named = NamedValues(program.cost, program.definitions)
    (state,) = named.states([point])
    env = {s: sp.Matrix(v.shape[0], v.shape[1], [sp.Rational(float(a)) for a in v.ravel()])
           if isinstance(s, sp.MatrixSymbol) else sp.Integer(v) for s, v in point.items()}
    for x in (model.symbols["W1"], model.symbols["b2"], model.symbols["X"]):
        g = model.derivation.gradient(x, "named")
        ((value, bound),) = named.measure([g], [state])
        exact = np.array(sp.Matrix(explicit(program.expand(g), env)).evalf(40).tolist(), dtype=float)
        assert np.all(np.abs(np.asarray(value) - exact) <= UNIT_ROUNDOFF * np.asarray(bound) + 1e-300), x
        assert np.max(np.asarray(bound)) * UNIT_ROUNDOFF < 1e-12 * max(1.0, np.max(np.abs(exact)))


def test_a_big_point_keeps_only_names_between_formulas_and_a_small_one_keeps_all():
    from tracegrad.checking.points import draw_point
    from tracegrad.numeric.gradcheck import BIG_POINT
    model = tracegrad.load("vardhan")
    program = model.derivation.program
    named = NamedValues(program.cost, program.definitions)
    small = draw_point(model, {d: 3 for d in model.dims.values()}, np.random.default_rng(0))
    big = draw_point(model, {**{d: 3 for d in model.dims.values()}, model.dims["m"]: BIG_POINT}, np.random.default_rng(0))
    states = named.states([small, big])
    held = [sum(r is not None for r in s[0]) for s in states]
    g = model.derivation.gradient(model.symbols["W1"], "named")
    (a, _), (b, _) = [out for out in named.measure([g], states)]
    after = [sum(r is not None for r in s[0]) for s in states]
    assert after[0] > held[0] and after[1] == held[1]
    # and the big point's value is right although its registers were dropped
    np.testing.assert_allclose(b, evaluate(program.expand(g), big), rtol=1e-12, atol=1e-300)
