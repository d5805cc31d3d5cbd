"""Gradient descent with the module `tracegrad codegen docs/examples/mynet.toml -o mynet_backprop.py` wrote."""
import numpy as np

import mynet_backprop as net

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 5))
y = (X[:, :1] * X[:, 1:2] > 0).astype(float)          # a target a linear model cannot fit
values = {"X": X, "y": y, "W1": rng.normal(size=(5, 4)), "b1": np.zeros((1, 4)),
          "W2": rng.normal(size=(4, 1)), "b2": np.zeros((1, 1))}
for step in range(1001):
    cache = net.forward(values)
    if step % 250 == 0:
        print(f"step {step:4d}: J = {cache['J'].item():.4f}")
    for name, gradient in net.backward(values, cache).items():
        values[name] -= 0.5 * gradient
