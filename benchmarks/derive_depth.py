"""Derivation time against depth, and against SymPy entry-wise differentiation (same run).

    python benchmarks/derive_depth.py [--max-depth 64]

Prints t(L) for L = 2, 4, …, the ratio t(2L)/t(L) (linear cost gives ≈ 2), and the 4-layer
derivation against the baseline a SymPy user would write: the cost made explicit at tiny sizes
and differentiated entry by entry.
"""
import argparse
import sys
import time
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from symbolic import Program, derive, elementwise, relu, sigmoid  # noqa: E402


def network(depth):
    """Vardhan-style net: Z = Wᵀ A + b 1ᵀ, ReLU hidden, sigmoid out, BCE / m."""
    m = sp.Symbol("m", integer=True, positive=True)
    dims = [sp.Symbol(f"n{l}", integer=True, positive=True) for l in range(depth)] + [sp.Integer(1)]
    p, A, params = Program(), sp.MatrixSymbol("X", dims[0], m), []
    for l in range(1, depth + 1):
        W, b = sp.MatrixSymbol(f"W{l}", dims[l - 1], dims[l]), sp.MatrixSymbol(f"b{l}", dims[l], 1)
        params += [W, b]
        Z = p.define(f"Z{l}", W.T * A + b * sp.OneMatrix(1, m))
        A = p.define(f"A{l}", elementwise(relu if l < depth else sigmoid, Z))
    Y, one = sp.MatrixSymbol("Y", 1, m), sp.OneMatrix(1, m)
    p.define("J", -(1 / m) * (sp.HadamardProduct(Y, elementwise(sp.log, A))
                              + sp.HadamardProduct(one - Y, elementwise(sp.log, one - A))) * sp.OneMatrix(m, 1))
    return p, params, dims, m


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def sympy_baseline(p, params, dims, m):
    """The cost at sizes n = 2 (output 1), m = 2, differentiated entry by entry with SymPy."""
    from oracle import entries, explicit
    sizes = {d: 2 for d in dims if isinstance(d, sp.Symbol)} | {m: 2}
    env = dict(sizes)
    grids = {}
    for s in p.expand(p.cost).free_symbols:
        if isinstance(s, sp.MatrixSymbol):
            r, c = (int(sp.sympify(d).xreplace(sizes)) for d in s.shape)
            grids[s] = env[s] = entries(s, r, c)
    cost = explicit(p.expand(p.cost), env)[0, 0]
    return [[sp.diff(cost, e) for e in grids[w]] for w in params]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-depth", type=int, default=64)
    args = ap.parse_args()
    print("derivation of all results with steps, by depth L")
    previous = None
    depth = 2
    while depth <= args.max_depth:
        p, params, _, _ = network(depth)
        t = timed(lambda: derive(p, params), repeat=1 if depth > 16 else 3)
        ratio = f"  t(L)/t(L/2) = {t / previous:.2f}" if previous else ""
        print(f"  L = {depth:>3}: {t:7.3f} s{ratio}")
        previous, depth = t, depth * 2
    p, params, dims, m = network(4)
    ours = timed(lambda: derive(p, params))
    base = timed(lambda: sympy_baseline(p, params, dims, m), repeat=1)
    print(f"4-layer: tracegrad {ours:.3f} s (symbolic sizes) vs SymPy entry-wise diff at n = m = 2 "
          f"{base:.3f} s: {base / ours:.1f}x faster")


if __name__ == "__main__":
    main()
