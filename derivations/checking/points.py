"""Seeded test points: distinct sizes for every dimension, data of the kind each input holds;
for gradient checks, points chosen for coverage (every ReLU unit both on and off).

Size sets: the model's (or the user's) sizes, then a small set in which every dimension moves
independently of every other: no two dimensions (nor two dimension expressions such as
``s1 + 1``) keep their difference or their ratio from the first set, so a formula that divides by
the wrong dimension, or is off by d1 − d2 + c, cannot hold at both.
"""
import functools
import itertools
import math

import numpy as np
import sympy as sp

from tracegrad.numeric.gradcheck import depends_on
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.shapes import shape_of

DEFAULT_SIZES = (5, 4, 3, 6, 7, 2, 8, 9, 10, 11, 12, 13)
SEEDS_PER_SIZE_SET = 2
SMALL_POINT = 50_000        # numbers in a point up to which each size set gets SEEDS_PER_SIZE_SET points
ATTEMPTS = 400              # candidate points drawn (seeded) before settling for partial coverage
ATTEMPT_NUMBERS = 4e7       # ... fewer for big points: at most this many random numbers drawn
MAX_CONDITIONING = 1e8      # κ above this (u·κ > 1e-8): an output is saturated
SIZE_SEED = 20_260_101      # the independent size set is the same for every seed


def first_sizes(model, sizes=None):
    """The user's sizes, else the model's [sizes], else distinct small defaults."""
    chosen = {model.dims[k] if isinstance(k, str) else k: v for k, v in (sizes or {}).items()}
    first = {}
    for d in model.dims.values():
        if d in chosen:
            first[d] = chosen[d]
        elif d in model.sizes:
            first[d] = model.sizes[d]
        else:
            first[d] = next(v for v in DEFAULT_SIZES if v not in first.values())
    return first


def size_expressions(model):
    """The dimensions and every other dimension expression a shape uses (``s1 + 1``)."""
    found = dict.fromkeys(model.dims.values())
    for s in model.symbols.values():
        if isinstance(s, sp.MatrixSymbol):
            for d in s.shape:
                d = sp.sympify(d)
                if d.free_symbols:
                    found.setdefault(d)
    return list(found)


def independent_sizes(model, first):
    """Small sizes in which no two dimension expressions keep the difference or the ratio they
    have in ``first`` and no two of them coincide: layers from 8 up, examples above them (so
    that every unit can be on for some examples and off for others); found by a seeded search,
    the same for every call."""
    return dict(_independent(model, tuple(first.items())))


def polynomial(dims, e):
    """``e`` (a polynomial in ``dims``) as a plain Python function of their values: the same
    numbers ``sp.lambdify`` gives, without its start-up cost (about 0.3 s, once per process)."""
    try:
        terms = [(m, int(c) if c.is_Integer else float(c)) for m, c in sp.Poly(e, *dims).terms()]
    except (sp.PolynomialError, sp.GeneratorsNeeded):
        return sp.lambdify(dims, e)
    return lambda *v: sum(c * math.prod(x ** k for x, k in zip(v, m)) for m, c in terms)


@functools.lru_cache(maxsize=64)
def _independent(model, first):
    first = dict(first)
    examples = example_dims(model)
    dims = [d for d in model.dims.values() if d not in examples] + [d for d in model.dims.values() if d in examples]
    exprs = [polynomial(dims, e) for e in size_expressions(model)]
    pairs = [(f1, f2) for (e1, f1), (e2, f2) in itertools.combinations(zip(size_expressions(model), exprs), 2)
             if not (e1 - e2).is_number]
    at_first = [first[d] for d in dims]
    pairs = [(f1(*at_first), f2(*at_first), f1, f2) for f1, f2 in pairs]   # the first sizes' values, once
    layers = len(dims) - len(examples)
    top = 8 + layers + 4
    rng = np.random.default_rng(SIZE_SEED)
    best, fewest = None, math.inf
    for _ in range(2000):
        values = [int(v) for v in (*rng.choice(range(8, top), layers, replace=False),
                                   *rng.choice(range(top, top + 4), len(examples), replace=False))]
        bad = 0
        for x1, x2, f1, f2 in pairs:
            y1, y2 = f1(*values), f2(*values)
            bad += (x1 - x2 == y1 - y2) + (x1 * y2 == x2 * y1) + (y1 == y2)
        if bad < fewest:
            best, fewest = values, bad
            if not bad:
                break
    chosen = dict(zip(dims, best))
    return tuple((d, chosen[d]) for d in model.dims.values())


def size_sets(model, sizes=None):
    """Two size assignments: the model's (or the user's), and small ones varying every
    dimension independently of the first (``independent_sizes``)."""
    first = first_sizes(model, sizes)
    return [first, independent_sizes(model, first)]


def example_dims(model):
    """Dimensions that every input has and no parameter has: the examples (none for one example)."""
    shapes = [set(s.shape) for n, s in model.symbols.items() if isinstance(s, sp.MatrixSymbol)]
    inputs = [set(s.shape) for s in model.symbols.values()
              if isinstance(s, sp.MatrixSymbol) and s not in model.params]
    in_params = set().union(*(set(s.shape) for s in model.params if isinstance(s, sp.MatrixSymbol)))
    common = set.intersection(*inputs) if inputs else set()
    return {d for d in common if d in model.dims.values() and d not in in_params} if shapes else set()


def square_sizes(model, first):
    """Every dimension but the examples set to one size (the lower median), so every weight
    matrix is square and a transposed formula type-checks: only values can expose it."""
    examples = example_dims(model)
    sides = sorted(v for d, v in first.items() if d not in examples and v > 1) or [3]
    side = sides[(len(sides) - 1) // 2]
    return {d: (v if d in examples else side) for d, v in first.items()}


def numbers(model, dims):
    """How many numbers a point at sizes ``dims`` holds."""
    return sum(math.prod(int(sp.sympify(d).xreplace(dims)) for d in s.shape)
               for s in model.symbols.values() if isinstance(s, sp.MatrixSymbol))


def draw(kind, rows, cols, rng, scale=1.0):
    if kind == "positive":
        return rng.uniform(0.5, 2.0, (rows, cols))
    if kind == "binary":
        return rng.integers(0, 2, (rows, cols)).astype(float)
    if kind.startswith("one-hot"):
        along_rows = kind.endswith("rows")
        n, k = (rows, cols) if along_rows else (cols, rows)
        out = np.zeros((n, k))
        out[np.arange(n), rng.integers(0, k, n)] = 1.0
        return out if along_rows else out.T
    if kind.startswith("probability"):
        along_rows = kind.endswith("rows")
        n, k = (rows, cols) if along_rows else (cols, rows)
        out = rng.dirichlet(np.ones(k), n)
        return out if along_rows else out.T
    return rng.normal(0.0, 0.8 * scale, (rows, cols))


def draw_point(model, dims, rng):
    """One point: weight matrices scaled by 1/√fan as in He/Glorot initialisation, so that deep
    or wide layers do not saturate, and most of their row and column means taken out (a random
    60–90 %, never all: no sum over a weight matrix vanishes), so that the units of a layer fed
    by nonnegative (ReLU) inputs do not share one large offset; bias vectors small but never
    zero — units switch on for some examples and off for others."""
    point = dict(dims)
    for name, symbol in model.symbols.items():
        if isinstance(symbol, sp.MatrixSymbol):
            rows, cols = (int(sp.sympify(d).xreplace(dims)) for d in symbol.shape)
            if rows * cols > 50_000_000:
                raise TracegradError(f"'{name}' would have {rows}×{cols} entries: sizes too large")
            scale = 1.0
            if symbol in model.params:
                scale = min(1.0, np.sqrt(3 / max(rows, cols))) if min(rows, cols) > 1 else 0.25
            value = draw(model.kinds.get(name, "real"), rows, cols, rng, scale)
            if symbol in model.params and min(rows, cols) > 1:
                a, b = rng.uniform(0.6, 0.9, 2)
                value = value - a * value.mean(axis=0, keepdims=True)
                value = value - b * value.mean(axis=1, keepdims=True)
            point[symbol] = value
        else:
            point[symbol] = float(rng.uniform(0.5, 1.5))
    return point


def draw_points(model, seed, sizes=None):
    """Points as {symbol: value} mappings (dimension symbols included), reproducible from ``seed``."""
    return [draw_point(model, dims, np.random.default_rng([seed, k, j]))
            for k, dims in enumerate(size_sets(model, sizes)) for j in range(SEEDS_PER_SIZE_SET)]


def counted_branches(model, landscape):
    """Indices of the landscape's branch arguments that depend on a differentiated symbol (the
    model's parameters and real inputs): a comparison on data alone (``Y >= 0``, ``Y > 0.5``) is
    no kink of the cost in any variable the checks move, so it never makes a point weak."""
    wrt = set(model.derivation.wrt)
    return tuple(i for i, b in enumerate(landscape.branch_exprs) if depends_on(landscape, b, wrt))


def unit_coverage(landscape, state, examples, counted=None):
    """'' or why the branch arguments in ``state`` make a weak test point: a ReLU unit on for
    every example or for none, an example with no active unit (``counted``: the indices of the
    branch arguments that count, default all)."""
    values = landscape.branch_values(state)
    counted = range(len(values)) if counted is None else counted
    for expr, z in ((landscape.branch_exprs[i], values[i]) for i in counted):
        active = np.real(z) > 0
        rows, cols = shape_of(expr)
        if cols in examples or rows in examples:
            per_unit = active if cols in examples else active.T      # units × examples
            if per_unit.shape[1] > 1 and not np.all(per_unit.any(axis=1) & ~per_unit.all(axis=1)):
                return "a hidden unit is active for every example or for none"
            if per_unit.shape[0] > 1 and not np.all(per_unit.any(axis=0)):
                return "an example has no active unit in a hidden layer"
        elif active.size > 1 and (active.all() or not active.any()):
            return "a hidden layer is all on or all off"
    return ""


def coverage_problem(landscape, point, examples, counted=None):
    """Why ``point`` is a weak test point ('' when it is a good one): a ReLU unit on for every
    example or for none, an example with no active unit, a saturated output, a kink (of the
    branch arguments ``counted``, default all).  The forward pass decides the first two; only a
    point that passes them pays for its bounds."""
    state = landscape.run_forward(point)
    problem = unit_coverage(landscape, state, examples, counted)
    if problem:
        return problem
    state = landscape.look(point, state)
    if landscape.conditioning(state) > MAX_CONDITIONING:
        return "an output is saturated"
    branches = landscape.branches(state)
    return landscape.on_kink(branches if counted is None else [branches[i] for i in counted])


def covered_point(model, landscape, dims, seed, *where):
    """The first of ``ATTEMPTS`` seeded candidates at sizes ``dims`` with no coverage problem:
    (point, attempts, problem or '')."""
    examples = example_dims(model)
    single = [d for d in examples if dims.get(d) == 1]
    if single:
        point = draw_point(model, dims, np.random.default_rng([seed, *where, 0]))
        return point, 1, f"one example ({single[0]} = 1) hides a missing 1/{single[0]}"
    counted = counted_branches(model, landscape)
    for attempt in range(int(min(ATTEMPTS, max(10, ATTEMPT_NUMBERS // max(numbers(model, dims), 1))))):
        point = draw_point(model, dims, np.random.default_rng([seed, *where, attempt]))
        problem = coverage_problem(landscape, point, examples, counted)
        if not problem:
            break
    return point, attempt + 1, problem


def verify_sets(model, sizes=None):
    """[(sizes, points)] for ``verify``: the first size set (two points, one when it is big), the
    independent small set and a square version of it (two points each)."""
    first, second = size_sets(model, sizes)
    seeds = SEEDS_PER_SIZE_SET if numbers(model, first) <= SMALL_POINT else 1
    return [(first, seeds), (second, SEEDS_PER_SIZE_SET), (square_sizes(model, second), SEEDS_PER_SIZE_SET)]


def coverage_points(model, checker, seed, sizes=None):
    """Covered points for each size set of ``verify_sets``: [(point, attempts, problem)]."""
    return [covered_point(model, checker, dims, seed, k, j)
            for k, (dims, seeds) in enumerate(verify_sets(model, sizes)) for j in range(seeds)]
