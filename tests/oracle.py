"""Independent oracle: expressions made explicit with SymPy matrices at small sizes.

Shares no code with the engine's rules or the numeric compiler: each node is rebuilt entry by
entry, and derivatives come from SymPy's scalar ``diff`` of the explicit cost.
"""
import itertools
import random

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.symbolic.functions import Softmax


def explicit(x, env):
    """The explicit value of ``x``; ``env`` maps symbols (matrix, scalar, dimension) to values."""
    memo = {}

    def ev(node):
        if node in memo:
            return memo[node]
        out = _ev(node)
        memo[node] = out
        return out

    def dim(d):
        return int(sp.sympify(d).xreplace(env))

    def _ev(n):
        if n in env:
            return env[n]
        if isinstance(n, sp.MatrixExpr):
            if isinstance(n, sp.MatMul):
                out = None
                for a in n.args:
                    v = ev(a)
                    out = v if out is None else out * v
                return out
            if isinstance(n, sp.MatAdd):
                out = ev(n.args[0])
                for a in n.args[1:]:
                    out = out + ev(a)
                return out
            if isinstance(n, sp.Transpose):
                return ev(n.arg).T
            if isinstance(n, sp.HadamardProduct):
                out = ev(n.args[0])
                for a in n.args[1:]:
                    out = out.multiply_elementwise(ev(a))
                return out
            if isinstance(n, sp.HadamardPower):
                e = ev(n.exp)
                return ev(n.base).applyfunc(lambda v: v ** e)
            if isinstance(n, ElementwiseApplyFunction):
                # a scalar parameter of f, f(x) = step(x − c), takes its value too
                f = n.function.xreplace({s: env[s] for s in n.function.free_symbols if s in env})
                return ev(n.expr).applyfunc(lambda v: f(v))
            if isinstance(n, sp.Inverse):
                return ev(n.arg).inv()
            if isinstance(n, sp.MatPow):
                return ev(n.base) ** int(n.exp)
            if isinstance(n, sp.OneMatrix):
                return sp.ones(dim(n.shape[0]), dim(n.shape[1]))
            if isinstance(n, sp.Identity):
                return sp.eye(dim(n.shape[0]))
            if isinstance(n, sp.ZeroMatrix):
                return sp.zeros(dim(n.shape[0]), dim(n.shape[1]))
            if isinstance(n, sp.MatrixSlice):
                (r0, r1, _), (c0, c1, _) = n.rowslice, n.colslice
                return ev(n.parent)[dim(r0):dim(r1), dim(c0):dim(c1)]
            if isinstance(n, sp.BlockMatrix):
                b = n.blocks
                return sp.Matrix.vstack(*[sp.Matrix.hstack(*[ev(b[i, j]) for j in range(b.cols)])
                                          for i in range(b.rows)])
            if isinstance(n, Softmax):
                a = ev(n.arg).applyfunc(sp.exp)
                if n.axis == 0:
                    return sp.Matrix(a.rows, a.cols, lambda i, j: a[i, j] / sum(a[:, j]))
                return sp.Matrix(a.rows, a.cols, lambda i, j: a[i, j] / sum(a[i, :]))
            raise TypeError(f"oracle cannot make {type(n).__name__} explicit")
        if isinstance(n, sp.Trace):
            return ev(n.arg).trace()
        if isinstance(n, sp.Determinant):
            return ev(n.arg).det()
        if isinstance(n, MatrixElement):
            return ev(n.parent)[int(n.i), int(n.j)]
        if isinstance(n, sp.Sum):
            # SymPy writes an entry of a product, (A B)[0, 0], as a Sum over symbolic ranges
            indices = [i for i, _, _ in n.limits]
            ranges = [range(dim(lo), dim(hi) + 1) for _, lo, hi in n.limits]
            return sp.Add(*[ev(n.function.xreplace(dict(zip(indices, map(sp.Integer, values)))))
                            for values in itertools.product(*ranges)])
        if not n.args:
            return n
        return n.func(*[ev(a) for a in n.args])

    return ev(x)


def entries(symbol, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{symbol.name}_{i}_{j}"))


class OnAJump(Exception):
    """The random point puts an argument of a locally constant function on one of its jumps."""


JUMP_PROBE = sp.Rational(1, 10 ** 12)


def frozen(total, point, functions):
    """``total`` with every application f(u) of a function in ``functions`` (step-like:
    constant near every point but its jumps) replaced by its value at ``point``: near the point
    f(u) is that constant, so the derivative there is that of the frozen expression.  A point
    where f(u − δ) ≠ f(u + δ) for a tiny δ sits on a jump: OnAJump."""
    def freeze(e):
        u = e.args[0].xreplace(point)
        value, below, above = (e.func(v, *e.args[1:]) for v in (u, u - JUMP_PROBE, u + JUMP_PROBE))
        if not (value.is_number and below == value == above):
            raise OnAJump(f"{e} at {u}")
        return value
    return total.replace(lambda e: isinstance(e, functions), freeze) if functions else total


def exact_gradient_check(cost, derivation, wrt, sizes, seed=0, positive=(), dominant=(), locally_constant=()):
    """Compare derived gradients with SymPy's entry-wise diff at a random rational point.

    ``sizes`` maps dimension symbols to small integers; entries of symbols named in ``positive``
    are drawn positive, square symbols named in ``dominant`` get a large diagonal (so inverses
    and log-dets exist).  Functions in ``locally_constant`` (classes such as ``step``,
    ``sp.floor``) are frozen at their values at the point before SymPy differentiates (see
    ``frozen``; OnAJump when the point sits on a jump).  Returns the number of entries compared.
    """
    rng = random.Random(seed)
    symbolic_env, numeric_env, point, grids = dict(sizes), dict(sizes), {}, {}
    for s in sorted(cost.free_symbols | set(wrt), key=str):
        if s in sizes:
            continue
        if isinstance(s, sp.MatrixSymbol):
            rows, cols = (int(sp.sympify(d).xreplace(sizes)) for d in s.shape)
            grid = entries(s, rows, cols)
            for i in range(rows):
                for j in range(cols):
                    lo = 1 if s.name in positive else -21
                    value = sp.Rational(rng.randint(lo, 21), 7)
                    if s.name in dominant and i == j:
                        value += 3 * rows
                    point[grid[i, j]] = value
            grids[s], symbolic_env[s] = grid, grid
            numeric_env[s] = grid.xreplace(point)
        elif isinstance(s, sp.Symbol):
            point[s] = sp.Rational(rng.randint(1, 9), 5)
            numeric_env[s] = point[s]
    total = explicit(cost, symbolic_env)
    if isinstance(total, sp.MatrixBase):
        total = total[0, 0]
    total = frozen(total, point, tuple(locally_constant))
    checked = 0
    for x in wrt:
        got = explicit(derivation.gradient(x), numeric_env)
        if isinstance(x, sp.MatrixSymbol):
            for (i, j), e in zip(((i, j) for i in range(grids[x].rows) for j in range(grids[x].cols)), grids[x]):
                assert_equal(got[i, j], sp.diff(total, e).xreplace(point), f"{x}[{i},{j}]")
                checked += 1
        else:
            assert_equal(got, sp.diff(total, x).xreplace(point), str(x))
            checked += 1
    return checked


def assert_equal(got, want, where):
    diff = sp.sympify(got - want)
    if sp.expand(diff) == 0:
        return
    value = sp.N(diff, 40)
    assert abs(value) < sp.Float("1e-30"), f"exact check failed at {where}: derived − true = {value}"
