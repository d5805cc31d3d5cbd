"""Derivation time against depth, and against SymPy entry-wise differentiation (same run).

    python benchmarks/derive_depth.py [--max-depth 128] [--repeat 3]

Times ``derive`` of a Vardhan-style net with L = 2, 4, …, 128 layers, given as a program and as
one nested SymPy expression: every result in all three
forms (compact, named, expanded) and every step.  Each run is the first derivation after
import: it runs in a process forked from this one before anything was derived, so no memo
table or SymPy cache is warm.  Depths are interleaved over the repetitions and the best time
of each kept, so load from other processes spreads over all depths.  Prints
t(L), the ratio t(L)/t(L/2) (linear cost gives ≈ 2), the 4-layer derivation against the
baseline a SymPy user would write (the cost made explicit at tiny sizes and differentiated
entry by entry), and whether each target of issue 5 is met.
"""
import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tracegrad.symbolic import Program, derive, elementwise, relu, sigmoid  # noqa: E402
from tracegrad.symbolic.derivation import FORMS  # noqa: E402

TARGETS = {"4-layer": 0.2, "L = 64": 4.0, "ratio": 2.2, "vs SymPy": 25.0}


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


def derive_all(p, params):
    """One derivation, every result in every form read: (wall s, CPU s, number of steps)."""
    t, cpu = time.perf_counter(), time.process_time()
    d = derive(p, params)
    for form in FORMS:
        for x in d.results(form):
            d.adjoint(x, form)
    return time.perf_counter() - t, time.process_time() - cpu, len(d.steps)


def timed(fn, *args):
    t, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t, time.process_time() - cpu


def twice(fn, *args):
    """The first run (after import) and a second, warm run of ``fn`` in one process."""
    return fn(*args), fn(*args)


def in_fork(fn, *args):
    """``fn(*args)`` in a fork of this process, where nothing has been derived yet."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=lambda: send.send(fn(*args)))
    child.start()
    result = receive.recv()
    child.join()
    return result


def sympy_baseline(p, params, dims, m):
    """The cost at sizes n = 2 (output 1), m = 2, differentiated entry by entry with SymPy."""
    from oracle import entries, explicit
    sizes = {d: 2 for d in dims if isinstance(d, sp.Symbol)} | {m: 2}
    env = dict(sizes)
    grids = {}
    for s in p.expanded_cost.free_symbols:
        if isinstance(s, sp.MatrixSymbol):
            r, c = (int(sp.sympify(d).xreplace(sizes)) for d in s.shape)
            grids[s] = env[s] = entries(s, r, c)
    cost = explicit(p.expanded_cost, env)[0, 0]
    return [[sp.diff(cost, e) for e in grids[w]] for w in params]


def verdict(ok):
    return "met" if ok else "NOT met"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-depth", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per depth (best kept)")
    args = ap.parse_args()
    depths, depth = [], 2
    while depth <= args.max_depth:
        depths.append(depth)
        depth *= 2
    nets = {L: network(L)[:2] for L in depths}
    # the same network as ONE nested SymPy expression (built here, before the timed forks)
    ones = {L: (p.expanded_cost, params) for L, (p, params) in nets.items()}
    print(f"derivation of all results (3 forms) with steps, first after import, best of {args.repeat}, by depth L")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; CPU time of the process alongside)")
    ratios = {}
    for label, cases in (("as a program", nets), ("as one expression", ones)):
        best, cpu, steps = {L: float("inf") for L in depths}, {L: float("inf") for L in depths}, {}
        for _ in range(args.repeat):
            for L in depths:
                t, c, steps[L] = in_fork(derive_all, *cases[L])
                best[L], cpu[L] = min(best[L], t), min(cpu[L], c)
        print(f" {label}:")
        for L in depths:
            ratio = ""
            if L // 2 in best:
                ratios[(label, L)] = best[L] / best[L // 2]
                ratio = f"   t(L)/t(L/2) = {ratios[(label, L)]:.2f} (CPU {cpu[L] / cpu[L // 2]:.2f})"
            print(f"  L = {L:>3}: {best[L]:7.3f} s (CPU {cpu[L]:6.3f} s)  {steps[L]:>5} steps{ratio}")
        if label == "as a program":
            program_best = best
    best = program_best

    p, params, dims, m = network(4)
    runs = [in_fork(twice, derive_all, p, params) for _ in range(args.repeat)]
    ours, warm = min(r[0][0] for r in runs), min(r[1][0] for r in runs)
    base, _ = in_fork(timed, sympy_baseline, p, params, dims, m)
    print(f"4-layer, symbolic sizes: tracegrad {ours:.3f} s first after import ({warm:.3f} s for a second, "
          f"cache-warm derivation in the same process)")
    print(f"  vs SymPy entry-wise diff at n = m = 2, first after import: {base:.3f} s: {base / ours:.1f}x faster")

    print("targets (issue 5):")
    print(f"  4-layer ≤ {TARGETS['4-layer']} s after import: {ours:.3f} s — {verdict(ours <= TARGETS['4-layer'])}")
    if 64 in best:
        print(f"  L = 64 ≤ {TARGETS['L = 64']} s with steps: {best[64]:.3f} s — "
              f"{verdict(best[64] <= TARGETS['L = 64'])}")
    if ratios:
        worst = max(ratios, key=ratios.get)
        label, L = worst
        print(f"  t(2L)/t(L) ≤ {TARGETS['ratio']}: worst {ratios[worst]:.2f} ({label}, L = {L // 2} → {L}) — "
              f"{verdict(ratios[worst] <= TARGETS['ratio'])}")
    print(f"  ≥ {TARGETS['vs SymPy']:.0f}x SymPy entry-wise diff (both first after import): {base / ours:.1f}x — "
          f"{verdict(base / ours >= TARGETS['vs SymPy'])}")


if __name__ == "__main__":
    main()
