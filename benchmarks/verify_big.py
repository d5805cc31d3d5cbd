"""Full verification of a 784-256-128-10(-1) network, m = 512, at three coverage points, against
one hand-written numpy forward+backward measured in the same run.

Targets (issue 5): ≤ 1 s for the three points, ≤ 20× one hand-written forward+backward.
Run: python benchmarks/verify_big.py
"""
import platform
import statistics
import time

import numpy as np
import sympy as sp

import tracegrad
from tracegrad.checking.points import covered_point
from tracegrad.numeric.gradcheck import GradientChecker, verdict_of

SIZES = dict(n0=784, n1=256, n2=128, n3=10, m=512)


def hand_written(X, Y, W1, b1, W2, b2, W3, b3, W4, b4):
    """The Vardhan network's forward and backward pass, written the idiomatic numpy way."""
    m = X.shape[1]
    Z1 = W1.T @ X + b1; A1 = np.maximum(Z1, 0)
    Z2 = W2.T @ A1 + b2; A2 = np.maximum(Z2, 0)
    Z3 = W3.T @ A2 + b3; A3 = np.maximum(Z3, 0)
    Z4 = W4.T @ A3 + b4; A4 = 1 / (1 + np.exp(-Z4))
    J = -np.sum(Y * np.log(A4) + (1 - Y) * np.log(1 - A4)) / m
    dZ4 = (A4 - Y) / m
    dW4, db4 = A3 @ dZ4.T, dZ4.sum(1, keepdims=True)
    dZ3 = (W4 @ dZ4) * (Z3 > 0)
    dW3, db3 = A2 @ dZ3.T, dZ3.sum(1, keepdims=True)
    dZ2 = (W3 @ dZ3) * (Z2 > 0)
    dW2, db2 = A1 @ dZ2.T, dZ2.sum(1, keepdims=True)
    dZ1 = (W2 @ dZ2) * (Z1 > 0)
    dW1, db1 = X @ dZ1.T, dZ1.sum(1, keepdims=True)
    return J, (dW1, db1, dW2, db2, dW3, db3, dW4, db4)


def median_time(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    model = tracegrad.load("vardhan")
    d = model.derivation
    t = time.perf_counter()
    checker = GradientChecker.of(d)
    setup = time.perf_counter() - t
    sizes = {model.dims[k]: v for k, v in SIZES.items()}
    t = time.perf_counter()
    points = [covered_point(model, checker, sizes, 0, 0, j) for j in range(3)]
    selection = time.perf_counter() - t
    values = [{s.name: v for s, v in p.items() if isinstance(s, sp.MatrixSymbol)} for p, _, _ in points]
    args = [values[0][n] for n in ("X", "Y", "W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4")]
    baseline = median_time(lambda: hand_written(*args), 7)

    def verify():
        return [m for k, (p, _, _) in enumerate(points) for m in checker.measure(p, k, np.random.default_rng([0, k]))]
    t = time.perf_counter()
    ms = verify()
    elapsed = time.perf_counter() - t
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"network 784-256-128-10-1, m = 512; {len(ms)} directional checks at 3 points "
          f"(coverage: {[a for _, a, _ in points]} candidate(s) drawn)")
    print(f"  verdict: {verdict_of(ms)}; worst error/bound {max(m.ratio for m in ms):.2g}")
    print(f"  checker set-up (SymPy, once per model, any sizes): {setup:.2f} s; point selection {selection:.2f} s")
    print(f"  hand-written numpy forward+backward: {baseline * 1e3:.1f} ms")
    print(f"  verification of 3 points: {elapsed:.2f} s = {elapsed / baseline:.1f}x the hand-written pass "
          f"(targets: <= 1 s {'met' if elapsed <= 1 else 'MISSED'}, "
          f"<= 20x {'met' if elapsed / baseline <= 20 else 'MISSED'})")


if __name__ == "__main__":
    main()
