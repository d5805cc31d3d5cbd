"""`tracegrad verify` at scale: every built-in model and the six benchmark MLPs (softmax and sigmoid
output, in the W@X, Wᵀ@A and rows-as-examples conventions) at 784-256-128-10, m = 512, each
against one hand-written numpy forward+backward of the same net, measured in the same run.

For each net it prints the verdicts, the time of ``model.verify`` (point selection, the
measurements, the report; median of 3) with the checker already built, the one-off checker set-up
(SymPy to numpy programs, once per model and valid for any sizes), the hand-written pass (median
of 7), and the ratios verify / hand-written in wall-clock and in CPU time (steadier when the
machine is shared; run with OPENBLAS_NUM_THREADS=1 so that CPU time is the work done).  Before anything is timed, the hand-written gradients are checked
against the derived ones at a drawn point.  Target (issue 12): pass with no inconclusive, ratio ≤ 10.

    python benchmarks/verify_big.py [--only NAME ...] [--seed 0]
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nets  # noqa: E402
from tracegrad.checking.points import draw_point  # noqa: E402
from tracegrad.numeric import evaluate  # noqa: E402

TARGET = 10


def median_time(f, repeat=7):
    """(wall, CPU) seconds of one call, medians over ``repeat`` calls.  CPU time is steadier on a
    shared machine (with OPENBLAS_NUM_THREADS=1 it is the work done)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        f()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def by_name(point):
    return {s.name: v for s, v in point.items() if isinstance(s, (sp.MatrixSymbol, sp.Symbol))
            and not (isinstance(s, sp.Symbol) and s.is_integer)}


def agree(model, point, hand):
    """The hand-written gradients equal the derived ones (relative 1e-10), else AssertionError."""
    _, grads = hand(by_name(point))
    for name, g in grads.items():
        want = np.asarray(evaluate(model.derivation.gradient(model.symbols[name]), point), dtype=float)
        err = np.max(np.abs(g - want)) / max(np.max(np.abs(want)), 1e-300)
        assert g.shape == want.shape and err < 1e-10, (model.name, name, g.shape, want.shape, err)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="labels (or parts of labels) to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--once", action="store_true", help="time the first call (set-up included)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, numpy {np.__version__}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'net':<24} {'verdicts':<24} {'verify':>8} {'set-up':>7} {'hand':>8} {'ratio':>7} {'CPU':>7}")
    worst = 0.0
    for label, model, sizes, hand in nets.benchmark_cases():
        if args.only and not any(o in label for o in args.only):
            continue
        point = draw_point(model, sizes, np.random.default_rng([args.seed, 99]))
        agree(model, point, hand)
        values = by_name(point)
        baseline, baseline_cpu = median_time(lambda: hand(values))
        t = time.perf_counter()
        report = model.verify(sizes={d.name: v for d, v in sizes.items()}, seed=args.seed)
        first = time.perf_counter() - t
        elapsed, cpu = first, None
        if not args.once:
            (elapsed, cpu), report = median_time(lambda: model.verify(sizes={d.name: v for d, v in sizes.items()},
                                                                      seed=args.seed), 3), report
        counts = {}
        for c in report.checks:
            counts[c.verdict] = counts.get(c.verdict, 0) + 1
        verdicts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        ratio = elapsed / baseline
        worst = max(worst, ratio if cpu is None else cpu / baseline_cpu)
        print(f"{label:<24} {verdicts:<24} {elapsed:7.3f}s {max(first - elapsed, 0):6.2f}s "
              f"{baseline * 1e3:6.1f}ms {ratio:6.1f}x" + ("" if cpu is None else f" {cpu / baseline_cpu:6.1f}x"),
              flush=True)
        for c in report.checks:
            if c.verdict != "pass":
                print(f"    ∇{c.name} {c.verdict}: {c.reason}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"worst ratio {worst:.1f}x (target ≤ {TARGET}x: {'met' if worst <= TARGET else 'MISSED'})")


if __name__ == "__main__":
    main()
