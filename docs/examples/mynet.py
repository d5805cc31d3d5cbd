"""My two-layer net, rows are examples: the same network as mynet.toml, written as code."""
import numpy as np

SHAPES = {"X": "N, D", "y": "N, 1", "W1": "D, H", "b1": "H", "W2": "H, 1", "b2": "1"}
DATA = {"X": "real", "y": "binary"}
SIZES = {"N": 7, "D": 5, "H": 4}
SOURCE = "docs/tutorial.md"


def forward(X, y, W1, b1, W2, b2):
    a1 = X @ W1 + b1
    h = np.tanh(a1)
    s = h @ W2 + b2
    p = 1 / (1 + np.exp(-s))
    loss = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / X.shape[0]
    return loss


def backward(X, y, W1, b1, W2, b2):
    ds = (p - y) / X.shape[0]
    dW2 = h.T @ ds
    db2 = ds.sum(axis=0)
    dh = ds @ W2.T
    da1 = dh * (1 - h ** 2)
    dW1 = X.T @ da1
    db1 = da1.sum(axis=0)
    return dW1, db1, dW2, db2
