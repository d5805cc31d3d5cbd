"""Seeded test points: distinct sizes for every dimension, data of the kind each input holds;
for gradient checks, points chosen for coverage (every ReLU unit both on and off)."""
import math

import numpy as np
import sympy as sp

from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.shapes import shape_of

DEFAULT_SIZES = (5, 4, 3, 6, 7, 2, 8, 9, 10, 11, 12, 13)
SEEDS_PER_SIZE_SET = 2
ATTEMPTS = 400              # candidate points drawn (seeded) before settling for partial coverage
ATTEMPT_NUMBERS = 4e7       # ... fewer for big points: at most this many random numbers drawn
MAX_CONDITIONING = 1e8      # κ_J above this (u·κ_J > 1e-8): an output is saturated


def size_sets(model, sizes=None):
    """Two size assignments: the model's (or the user's), and every size one larger."""
    chosen = {model.dims[k] if isinstance(k, str) else k: v for k, v in (sizes or {}).items()}
    first = {}
    for d in model.dims.values():
        if d in chosen:
            first[d] = chosen[d]
        elif d in model.sizes:
            first[d] = model.sizes[d]
        else:
            first[d] = next(v for v in DEFAULT_SIZES if v not in first.values())
    return [first, {d: v + 1 for d, v in first.items()}]


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
    or wide layers do not saturate; bias vectors small but never zero, so that units switch on
    for some examples and off for others."""
    point = dict(dims)
    for name, symbol in model.symbols.items():
        if isinstance(symbol, sp.MatrixSymbol):
            rows, cols = (int(sp.sympify(d).xreplace(dims)) for d in symbol.shape)
            if rows * cols > 50_000_000:
                raise TracegradError(f"'{name}' would have {rows}×{cols} entries: sizes too large")
            scale = 1.0
            if symbol in model.params:
                scale = min(1.0, np.sqrt(3 / max(rows, cols))) if min(rows, cols) > 1 else 0.25
            point[symbol] = draw(model.kinds.get(name, "real"), rows, cols, rng, scale)
        else:
            point[symbol] = float(rng.uniform(0.5, 1.5))
    return point


def draw_points(model, seed, sizes=None):
    """Points as {symbol: value} mappings (dimension symbols included), reproducible from ``seed``."""
    return [draw_point(model, dims, np.random.default_rng([seed, k, j]))
            for k, dims in enumerate(size_sets(model, sizes)) for j in range(SEEDS_PER_SIZE_SET)]


def coverage_problem(checker, point, examples):
    """Why ``point`` is a weak test point ('' when it is a good one): a ReLU unit on for every
    example or for none, an example with no active unit, a saturated output, a kink."""
    landscape = checker.landscape(point)
    branches = checker.branches(point, landscape)
    for expr, (z, _) in zip(checker.branch_exprs, branches):
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
    if checker.conditioning(point, landscape) > MAX_CONDITIONING:
        return "an output is saturated"
    return checker.on_kink(point, branches)


def covered_point(model, checker, dims, seed, *where):
    """The first of ``ATTEMPTS`` seeded candidates at sizes ``dims`` with no coverage problem:
    (point, attempts, problem or '')."""
    examples = example_dims(model)
    single = [d for d in examples if dims.get(d) == 1]
    if single:
        point = draw_point(model, dims, np.random.default_rng([seed, *where, 0]))
        return point, 1, f"one example ({single[0]} = 1) hides a missing 1/{single[0]}"
    numbers = sum(math.prod(int(sp.sympify(d).xreplace(dims)) for d in s.shape)
                  for s in model.symbols.values() if isinstance(s, sp.MatrixSymbol))
    for attempt in range(int(min(ATTEMPTS, max(10, ATTEMPT_NUMBERS // max(numbers, 1))))):
        point = draw_point(model, dims, np.random.default_rng([seed, *where, attempt]))
        problem = coverage_problem(checker, point, examples)
        if not problem:
            break
    return point, attempt + 1, problem


def coverage_points(model, checker, seed, sizes=None):
    """``SEEDS_PER_SIZE_SET`` covered points for each of three size sets: the model's (or the
    user's), one larger, and one with square layers."""
    first, larger = size_sets(model, sizes)
    return [covered_point(model, checker, dims, seed, k, j)
            for k, dims in enumerate((first, larger, square_sizes(model, first)))
            for j in range(SEEDS_PER_SIZE_SET)]
