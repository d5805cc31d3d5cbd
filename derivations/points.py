"""Seeded test points: distinct sizes for every dimension, data of the kind each input holds."""
import numpy as np
import sympy as sp

from symbolic.errors import TracegradError

DEFAULT_SIZES = (5, 4, 3, 6, 7, 2, 8, 9, 10, 11, 12, 13)
SEEDS_PER_SIZE_SET = 2


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


def draw(kind, rows, cols, rng):
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
    return rng.normal(0.0, 0.8, (rows, cols))


def draw_points(model, seed, sizes=None):
    """Points as {symbol: value} mappings (dimension symbols included), reproducible from ``seed``."""
    points = []
    for k, dims in enumerate(size_sets(model, sizes)):
        for j in range(SEEDS_PER_SIZE_SET):
            rng = np.random.default_rng([seed, k, j])
            point = dict(dims)
            for name, symbol in model.symbols.items():
                if isinstance(symbol, sp.MatrixSymbol):
                    rows, cols = (int(sp.sympify(d).xreplace(dims)) for d in symbol.shape)
                    if rows * cols > 50_000_000:
                        raise TracegradError(f"'{name}' would have {rows}×{cols} entries: sizes too large")
                    point[symbol] = draw(model.kinds.get(name, "real"), rows, cols, rng)
                else:
                    point[symbol] = float(rng.uniform(0.5, 1.5))
            points.append(point)
    return points
