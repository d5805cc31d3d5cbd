"""Generated backprop (numeric.codegen) against a hand-written numpy backprop, same run.

    python benchmarks/codegen_vs_numpy.py [--m 512] [--repeat 31] [--show]

The network is 784-256-128-10 in the deeplearning.ai convention (columns are examples,
Z = W A + b), ReLU hidden layers, softmax output, cross-entropy / m, with m = 512.  The model is
the TOML below; its derivation (parameters only) is turned into a numpy module by
``generate_module``, imported from a temporary file, and timed against the idiomatic hand-written
forward+backward in this file.  Both compute the cost and every parameter gradient in float64;
the times are medians of interleaved runs.  Target: generated / hand-written ≤ 1.2.
If ``import torch`` works, torch CPU autograd (float64) is timed as well; skipped otherwise.
"""
import argparse
import importlib.util
import platform
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

from tracegrad.model import Model  # noqa: E402
from tracegrad.numeric.codegen import generate_module  # noqa: E402
from tracegrad.symbolic import derive  # noqa: E402

MODEL = """
name  = "mlp784"
title = "784-256-128-10, columns are examples, ReLU hidden, softmax output, cross-entropy / m"

[dims]
n0 = "inputs"
n1 = "units in layer 1"
n2 = "units in layer 2"
K  = "classes"
m  = "examples"

[inputs]
X = "n0, m"
Y = { shape = "K, m", values = "one-hot columns" }

[params]
W1 = "n1, n0"
b1 = "n1, 1"
W2 = "n2, n1"
b2 = "n2, 1"
W3 = "K, n2"
b3 = "K, 1"

[forward]
Z1 = "W1 @ X + b1"
A1 = "relu(Z1)"
Z2 = "W2 @ A1 + b2"
A2 = "relu(Z2)"
Z3 = "W3 @ A2 + b3"
P  = "softmax(Z3, axis=0)"
J  = "-sum(Y * log(P)) / m"
"""
SIZES = (784, 256, 128, 10)
TARGET = 1.2


def hand_written(X, Y, W1, b1, W2, b2, W3, b3):
    """The usual numpy forward + backward: cost and parameter gradients."""
    m = X.shape[1]
    Z1 = W1 @ X + b1
    A1 = np.maximum(Z1, 0)
    Z2 = W2 @ A1 + b2
    A2 = np.maximum(Z2, 0)
    Z3 = W3 @ A2 + b3
    e = np.exp(Z3 - Z3.max(axis=0, keepdims=True))
    P = e / e.sum(axis=0, keepdims=True)
    J = -np.sum(Y * np.log(P)) / m
    dZ3 = (P - Y) / m
    dW3 = dZ3 @ A2.T
    db3 = dZ3.sum(axis=1, keepdims=True)
    dZ2 = (W3.T @ dZ3) * (Z2 > 0)
    dW2 = dZ2 @ A1.T
    db2 = dZ2.sum(axis=1, keepdims=True)
    dZ1 = (W2.T @ dZ2) * (Z1 > 0)
    dW1 = dZ1 @ X.T
    db1 = dZ1.sum(axis=1, keepdims=True)
    return J, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "W3": dW3, "b3": db3}


def point(m, seed=0):
    rng = np.random.default_rng(seed)
    n0, n1, n2, k = SIZES
    values = {"X": rng.normal(size=(n0, m)),
              "Y": np.eye(k)[:, rng.integers(0, k, m)]}
    for l, (a, b) in enumerate(zip(SIZES, SIZES[1:]), start=1):
        values[f"W{l}"] = rng.normal(0, np.sqrt(2 / a), size=(b, a))   # He init
        values[f"b{l}"] = rng.normal(0, 0.1, size=(b, 1))
    return values


def load(text, directory):
    path = Path(directory) / "mlp784_backprop.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_runner(values):
    try:
        import torch
    except ImportError:
        return None
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}
    params = ["W1", "b1", "W2", "b2", "W3", "b3"]
    for k in params:
        t[k].requires_grad_(True)

    def run():
        for k in params:
            t[k].grad = None
        A1 = torch.relu(t["W1"] @ t["X"] + t["b1"])
        A2 = torch.relu(t["W2"] @ A1 + t["b2"])
        logp = torch.log_softmax(t["W3"] @ A2 + t["b3"], dim=0)
        J = -(t["Y"] * logp).sum() / t["X"].shape[1]
        J.backward()
        return J
    return run


def median_times(runs, repeat, budget=35.0):
    """Median seconds of each runner, the runners interleaved so that noise hits them alike;
    stops early (after at least 7 rounds) when the rounds take longer than ``budget`` seconds."""
    for fn in runs.values():
        fn()  # warm up
    times = {name: [] for name in runs}
    start = time.perf_counter()
    for k in range(repeat):
        if k >= 7 and time.perf_counter() - start > budget:
            break
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: (statistics.median(ts), ts) for name, ts in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=512, help="examples (default 512)")
    ap.add_argument("--repeat", type=int, default=31, help="timed runs of each (default 31)")
    ap.add_argument("--show", action="store_true", help="print the generated module")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = Model.from_dict(tomllib.loads(MODEL), "<benchmark>")
    derivation = derive(model.program, list(model.params))
    text = generate_module(derivation, title="the 784-256-128-10 benchmark network")
    t_gen = time.perf_counter() - t0
    if args.show:
        print(text)
    values = point(args.m)
    with tempfile.TemporaryDirectory() as tmp:
        mod = load(text, tmp)

    def generated():
        cache = mod.forward(values)
        return cache["J"], mod.backward(values, cache)

    def hand():
        return hand_written(**values)

    # the two agree before anything is timed
    (J_gen, g_gen), (J_hand, g_hand) = generated(), hand()
    assert abs(J_gen[0, 0] - J_hand) <= 1e-12 * abs(J_hand), (J_gen, J_hand)
    for k, want in g_hand.items():
        err = np.max(np.abs(g_gen[k] - want)) / np.max(np.abs(want))
        assert g_gen[k].shape == want.shape and err < 1e-10, (k, err)

    runs = {"generated": generated, "hand-written": hand}
    torch_run = torch_runner(values)
    if torch_run is not None:
        runs["torch autograd"] = torch_run
    t = median_times(runs, args.repeat)

    rounds = len(next(iter(t.values()))[1])
    t = {name: s for name, (s, _) in t.items()}
    print(f"codegen vs numpy: {'-'.join(map(str, SIZES))} network, m = {args.m}, float64, "
          f"median of {rounds} interleaved runs")
    print(f"  machine: {platform.machine()}, {platform.processor() or platform.system()}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"  derivation + code generation: {t_gen:.2f} s (once)")
    for name, s in t.items():
        print(f"  {name:<15} forward+backward: {s * 1e3:8.2f} ms")
    ratio = t["generated"] / t["hand-written"]
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"  generated / hand-written = {ratio:.3f}  (target ≤ {TARGET}: {verdict})")
    if torch_run is None:
        print("  torch: not installed, skipped")
    else:
        print(f"  generated / torch autograd = {t['generated'] / t['torch autograd']:.3f}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
