"""Code files written the way people write backprop (CS231n, min-char-rnn, the makemore notebook,
numpy tutorials) — our own, from those conventions — and a trusted way for the TESTS to run them
with numpy, so that every verdict can be held against finite differences of the file's own
forward.  tracegrad itself never runs any of them."""
import math
import sys
import types

import numpy as np

CS231N_NET = '''"""Two-layer net, CS231n style: rows are examples, integer labels, L2 regularisation."""
import numpy as np

SHAPES = {"X": "N, D", "y": "N", "W1": "D, H", "b1": "H", "W2": "H, C", "b2": "C"}
DATA = {"X": "real", "y": "labels of C"}
SCALARS = {"reg": "L2 strength"}
SIZES = {"N": 6, "D": 4, "H": 5, "C": 3}
SOURCE = "in the style of CS231n assignment 1 (neural_net.py)"


def forward(X, y, W1, b1, W2, b2, reg):
    N, D = X.shape
    hidden = np.maximum(0, X.dot(W1) + b1)
    scores = hidden.dot(W2) + b2
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    probs = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)
    data_loss = -np.sum(np.log(probs[range(N), y])) / N
    reg_loss = reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    loss = data_loss + reg_loss
    return loss


def backward(X, y, W1, b1, W2, b2, reg):
    grads = {}
    dscores = probs.copy()
    dscores[range(N), y] -= 1
    dscores /= N
    grads["W2"] = hidden.T.dot(dscores) + 2 * reg * W2
    grads["b2"] = np.sum(dscores, axis=0)
    dhidden = dscores.dot(W2.T)
    dhidden[hidden <= 0] = 0
    grads["W1"] = X.T.dot(dhidden) + 2 * reg * W1
    grads["b1"] = np.sum(dhidden, axis=0)
    return grads
'''

CS231N_LAYER = '''"""Affine + ReLU layer, CS231n layers.py style: forward returns (out, cache)."""
import numpy as np

SHAPES = {"x": "N, D", "w": "D, M", "b": "M"}
DATA = {"x": "real"}
SIZES = {"N": 4, "D": 5, "M": 3}


def affine_relu_forward(x, w, b):
    a = x.dot(w) + b
    out = np.maximum(0, a)
    cache = (x, w, b, a)
    return out, cache


def affine_relu_backward(dout, cache):
    x, w, b, a = cache
    da = dout.copy()
    da[a <= 0] = 0
    dx = da.dot(w.T)
    dw = x.T.dot(da)
    db = np.sum(da, axis=0)
    return dx, dw, db
'''

BATCHNORM_LAYER = '''"""Batch norm, train mode, CS231n assignment 2 style (the staged backward)."""
import numpy as np

SHAPES = {"x": "N, D", "gamma": "D", "beta": "D"}
DATA = {"x": "real"}
SIZES = {"N": 5, "D": 3}


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    xmu = x - mu
    var = (xmu ** 2).mean(axis=0)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    out = gamma * xhat + beta
    cache = (xhat, gamma, xmu, ivar, sqrtvar, var, eps)
    return out, cache


def batchnorm_backward(dout, cache):
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    N, D = dout.shape
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1.0 / (sqrtvar ** 2) * divar
    dvar = 0.5 * 1.0 / np.sqrt(var + eps) * dsqrtvar
    dsq = 1.0 / N * np.ones((N, D)) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -1 * np.sum(dxmu1 + dxmu2, axis=0)
    dx2 = 1.0 / N * np.ones((N, D)) * dmu
    dx = dx1 + dx2
    return dx, dgamma, dbeta
'''

MIN_CHAR_RNN = '''"""Vanilla RNN, min-char-rnn style: one-hot character columns, 3 steps, shared weights."""
import numpy as np

SHAPES = {"inputs": "T", "targets": "T", "hprev": "H, 1", "Wxh": "H, V", "Whh": "H, H",
          "Why": "V, H", "bh": "H, 1", "by": "V, 1"}
DATA = {"inputs": "labels of V", "targets": "labels of V", "hprev": "real"}
SIZES = {"H": 4, "V": 3, "T": 3}
SOURCE = "in the style of Karpathy's min-char-rnn.py (lossFun split in two)"


def forward(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((Wxh.shape[1], 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys[t] = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    return loss


def backward(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    return dWxh, dWhh, dWhy, dbh, dby
'''

TUTORIAL = '''"""One hidden tanh layer, columns are examples, a numpy tutorial's conventions."""
import numpy as np

SHAPES = {"X": "n_x, m", "Y": "n_y, m", "W1": "n_h, n_x", "b1": "n_h, 1", "W2": "n_y, n_h",
          "b2": "n_y, 1"}
DATA = {"X": "real", "Y": "binary"}
SIZES = {"n_x": 3, "n_h": 4, "n_y": 1, "m": 6}
MEANING = {"dZ2": "m * grad(Z2)", "dZ1": "m * grad(Z1)"}   # the course's dZ: per example, no 1/m


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward(X, Y, W1, b1, W2, b2):
    m = X.shape[1]
    Z1 = np.dot(W1, X) + b1
    A1 = np.tanh(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = sigmoid(Z2)
    logprobs = np.multiply(np.log(A2), Y) + np.multiply(np.log(1 - A2), 1 - Y)
    cost = -np.sum(logprobs) / m
    return cost


def backward(X, Y, W1, b1, W2, b2):
    m = X.shape[1]
    dZ2 = A2 - Y
    dW2 = (1 / m) * np.dot(dZ2, A1.T)
    db2 = (1 / m) * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = (1 / m) * np.dot(dZ1, X.T)
    db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)
    grads = {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}
    return grads
'''

MAKEMORE = '''"""A makemore-style MLP in PyTorch: embedding rows by integer labels, tanh, cross-entropy."""
import torch
import torch.nn.functional as F

SHAPES = {"Xb": "n, B", "Yb": "n", "C": "V, E", "W1": "B * E, H", "b1": "H", "W2": "H, V", "b2": "V"}
DATA = {"Xb": "labels of V", "Yb": "labels of V"}
SIZES = {"n": 5, "B": 2, "V": 4, "E": 3, "H": 6}


def forward(Xb, Yb, C, W1, b1, W2, b2):
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hpreact = embcat @ W1 + b1
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    probs = counts / counts_sum
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    return loss


def backward(Xb, Yb, C, W1, b1, W2, b2):
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h ** 2) * dh
    dW1 = embcat.T @ dhpreact
    db1 = dhpreact.sum(0)
    dembcat = dhpreact @ W1.T
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(C)
    dC.index_add_(0, Xb.view(-1), demb.view(-1, E))
'''

STYLES = {"cs231n_net": CS231N_NET, "cs231n_layer": CS231N_LAYER, "batchnorm": BATCHNORM_LAYER,
          "min_char_rnn": MIN_CHAR_RNN, "tutorial": TUTORIAL, "makemore": MAKEMORE}

# wrong versions: (style, the line as written, the line with the slip, what the slip is); the
# claims made at the slipped line fail, except where a slipped mask shows in the lines reading it
SLIPS = [
    ("cs231n_net", "    dscores /= N", "    dscores /= 1", "a missing 1/N"),
    ("cs231n_net", '    grads["W2"] = hidden.T.dot(dscores) + 2 * reg * W2',
     '    grads["W2"] = hidden.T.dot(dscores) + reg * W2', "a missing factor 2 on the regulariser"),
    ("cs231n_net", "    dhidden[hidden <= 0] = 0", "    dhidden[hidden < 0] = 0", "a mask that masks nothing"),
    ("cs231n_net", "    dscores[range(N), y] -= 1", "    dscores[range(N), y] -= 2", "a wrong label term"),
    ("cs231n_net", '    grads["b1"] = np.sum(dhidden, axis=0)', '    grads["b1"] = np.sum(dscores, axis=0)',
     "the wrong layer"),
    ("cs231n_layer", "    dw = x.T.dot(da)", "    dw = x.T.dot(dout)", "a missing ReLU mask"),
    ("cs231n_layer", "    db = np.sum(da, axis=0)", "    db = np.sum(da, axis=1)", "the wrong axis"),
    ("batchnorm", "    dgamma = np.sum(dout * xhat, axis=0)", "    dgamma = np.sum(dout, axis=0)",
     "a missing factor xhat"),
    ("batchnorm", "    dx2 = 1.0 / N * np.ones((N, D)) * dmu", "    dx2 = 0 * dmu", "a dropped contribution"),
    ("min_char_rnn", "        dh = np.dot(Why.T, dy) + dhnext", "        dh = np.dot(Why.T, dy)",
     "the missing contribution through time"),
    ("min_char_rnn", "        dWhh += np.dot(dhraw, hs[t - 1].T)", "        dWhh = np.dot(dhraw, hs[t - 1].T)",
     "a missing +="),
    ("tutorial", "    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))", "    dZ1 = np.dot(W2.T, dZ2)",
     "a missing activation derivative"),
    ("tutorial", "    dW2 = (1 / m) * np.dot(dZ2, A1.T)", "    dW2 = np.dot(dZ2, A1.T)", "a missing 1/m"),
    ("makemore", "    dlogits /= n", "    dlogits /= n - 1", "n − 1 for n"),
]


def slipped(style, old, new):
    text = STYLES[style]
    assert text.count(old + "\n") == 1, (style, old)
    return text.replace(old + "\n", new + "\n")


def line_of(text, line):
    return text.splitlines().index(line) + 1


# ---------------------------------------------------------------- the tests' trusted runner


def _t(x):
    return np.ndarray.view(np.asarray(x), Tensor)


class Tensor(np.ndarray):
    """Just enough of a torch tensor, on numpy, for the makemore-style file."""

    def view(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], type):
            return np.ndarray.view(self, shape[0])
        return _t(np.reshape(np.asarray(self), shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape))

    def exp(self):
        return _t(np.exp(np.asarray(self)))

    def log(self):
        return _t(np.log(np.asarray(self)))

    def sum(self, dim=None, keepdims=False, keepdim=False, **numpy_keywords):
        dim = numpy_keywords.pop("axis", dim)
        return _t(np.sum(np.asarray(self), axis=dim, keepdims=keepdims or keepdim))

    def mean(self, dim=None, **numpy_keywords):
        return _t(np.mean(np.asarray(self), axis=numpy_keywords.pop("axis", dim)))

    def max(self, dim=None, keepdim=False, **numpy_keywords):
        if dim is None:
            return np.max(np.asarray(self), **numpy_keywords)
        values = _t(np.max(np.asarray(self), axis=dim, keepdims=keepdim))
        return types.SimpleNamespace(values=values, indices=np.argmax(np.asarray(self), axis=dim))

    def index_add_(self, dim, index, source):
        np.add.at(np.asarray(self), np.asarray(index), np.asarray(source))
        return self


def _torch_shim():
    torch = types.ModuleType("torch")
    torch.tanh = lambda a: _t(np.tanh(np.asarray(a)))
    torch.zeros_like = lambda a: _t(np.zeros_like(np.asarray(a)))
    functional = types.ModuleType("torch.nn.functional")

    def softmax(a, dim):
        a = np.asarray(a)
        e = np.exp(a - np.max(a, axis=dim, keepdims=True))
        return _t(e / e.sum(axis=dim, keepdims=True))
    functional.softmax = softmax
    torch.nn = types.SimpleNamespace(functional=functional)
    return torch, functional


_MODULES = {}


def trusted_module(text, dims):
    """The test's own file executed once (torch as a numpy shim): its forward and backward."""
    key = (text, tuple(sorted(dims.items())))
    if key not in _MODULES:
        torch, functional = _torch_shim()
        saved = {k: sys.modules.get(k) for k in ("torch", "torch.nn", "torch.nn.functional")}
        sys.modules.update({"torch": torch, "torch.nn": torch.nn, "torch.nn.functional": functional})
        try:
            scope = dict(dims)
            exec(compile(text, "<trusted>", "exec"), scope)          # the test's own file
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        forward = next(f for n, f in scope.items() if n == "forward" or n.endswith("_forward"))
        backward = next((f for n, f in scope.items() if n == "backward" or n.endswith("_backward")), None)
        _MODULES[key] = scope, forward, backward
    return _MODULES[key]


def _cost(forward, values):
    names = forward.__code__.co_varnames[:forward.__code__.co_argcount]
    returned = forward(*[values[n] for n in names if n in values])
    out, rest = (returned[0], returned[1:]) if isinstance(returned, tuple) else (returned, ())
    layer = np.ndim(out) > 0 and np.size(out) > 1
    cost = float(np.sum(values["__G__"] * out)) if layer else float(np.asarray(out).reshape(()))
    return cost, layer, rest


def trusted_run(text, values):
    """(the cost, the forward's and the backward's local variables) of the file run by the test
    on ``values``; a layer's cost is sum(G * out) with G = values["__G__"]."""
    scope, forward, backward = trusted_module(text, values.get("__dims__", {}))
    frames = {}

    def tracer(frame, event, arg):
        if event == "return" and frame.f_code in (forward.__code__, getattr(backward, "__code__", None)):
            frames[frame.f_code] = dict(frame.f_locals)
        return tracer
    sys.settrace(tracer)
    try:
        cost, layer, rest = _cost(forward, values)
    finally:
        sys.settrace(None)
    local = frames[forward.__code__]
    back_local = {}
    if backward is not None:
        params = backward.__code__.co_varnames[:backward.__code__.co_argcount]
        given = []
        for k, p in enumerate(params):
            if layer and k == 0:
                given.append(values["__G__"])
            elif p in local:
                given.append(local[p])
            elif p in values:
                given.append(values[p])
            else:
                given.append(rest[0])
        run = types.FunctionType(backward.__code__, {**scope, **local})
        sys.settrace(tracer)
        try:
            run(*given)
        finally:
            sys.settrace(None)
        back_local = frames.get(backward.__code__, {})
    return cost, local, back_local


def finite_difference(text, values, name, h=1e-6):
    """∂cost/∂values[name] by central differences, entry by entry."""
    base = values[name]
    grad = np.zeros(np.shape(base))
    for index in np.ndindex(grad.shape):
        moved = []
        for sign in (1, -1):
            changed = np.array(base, dtype=float, copy=True)
            changed[index] += sign * h
            forward = trusted_module(text, values.get("__dims__", {}))[1]
            moved.append(_cost(forward, {**values, name: _like(base, changed)})[0])
        grad[index] = (moved[0] - moved[1]) / (2 * h)
    return grad


def _like(base, array):
    return _t(array) if isinstance(base, Tensor) else array
