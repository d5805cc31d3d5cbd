"""The benchmark networks: ReLU MLPs with a softmax + cross-entropy or a sigmoid + binary
cross-entropy output, in the three common conventions, as tracegrad models, with the idiomatic
hand-written numpy forward+backward that each benchmark times against.

    columns   Z = W @ A + b      W (out, in), columns are examples (deeplearning.ai)
    transpose Z = W.T @ A + b    W (in, out), columns are examples (the Vardhan note)
    rows      Z = A @ W + b      W (in, out), rows are examples (CS231n)

Imported by the scripts in this folder (``from nets import ...``); not a script itself.
"""
import tomllib

import numpy as np

from tracegrad.model import Model

WIDTHS = (784, 256, 128, 10)
M = 512
OUTPUTS = ("softmax", "sigmoid")
CONVENTIONS = ("columns", "transpose", "rows")


def dims_of(widths):
    return [f"n{k}" for k in range(len(widths))]


def toml(output, convention, widths=WIDTHS):
    """The model file of one net (as text)."""
    names, layers = dims_of(widths), len(widths) - 1
    rows = convention == "rows"
    lines = [f'name = "mlp-{output}-{convention}"',
             f'title = "{"-".join(map(str, widths))} ReLU MLP, {output} output, {convention} convention"',
             "[dims]", *(f'{d} = "layer width"' for d in names), 'm = "examples"',
             "[inputs]", f'X = "{"m, n0" if rows else "n0, m"}"']
    kind = f"one-hot {'rows' if rows else 'columns'}" if output == "softmax" else "binary"
    last = names[-1]
    lines.append(f'Y = {{ shape = "{f"m, {last}" if rows else f"{last}, m"}", values = "{kind}" }}')
    lines.append("[params]")
    for k in range(1, layers + 1):
        a, b = names[k - 1], names[k]
        w = {"columns": f"{b}, {a}", "transpose": f"{a}, {b}", "rows": f"{a}, {b}"}[convention]
        lines += [f'W{k} = "{w}"', f'b{k} = "{f"1, {b}" if rows else f"{b}, 1"}"']
    lines.append("[sizes]")
    lines += [f"{d} = {v}" for d, v in zip(names, widths)] + [f"m = {M}"]
    lines.append("[forward]")
    prev = "X"
    for k in range(1, layers + 1):
        z = {"columns": f"W{k} @ {prev} + b{k}", "transpose": f"W{k}.T @ {prev} + b{k}",
             "rows": f"{prev} @ W{k} + b{k}"}[convention]
        lines.append(f'Z{k} = "{z}"')
        if k < layers:
            lines.append(f'A{k} = "relu(Z{k})"')
            prev = f"A{k}"
    if output == "softmax":
        lines += [f'P = "softmax(Z{layers}, axis={1 if rows else 0})"', 'J = "-sum(Y * log(P)) / m"']
    else:
        lines += [f'P = "sigmoid(Z{layers})"', 'J = "-sum(Y * log(P) + (1 - Y) * log(1 - P)) / m"']
    return "\n".join(lines) + "\n"


def model(output, convention, widths=WIDTHS):
    return Model.from_dict(tomllib.loads(toml(output, convention, widths)), f"<{output}-{convention}>")


def sizes(model, widths=WIDTHS, m=M):
    """{dimension symbol: size} for ``model`` (built by ``model``) at these widths."""
    named = dict(zip(dims_of(widths), widths), m=m)
    return {model.dims[k]: v for k, v in named.items()}


BUGS = ("missing 1/m", "m - 1 for m", "0.2% scaling", "dropped activation derivative",
        "transpose in a square layer", "wrong layer index", "wrong db axis")


def forward(output, convention, values, xp=np):
    """(J, P, cache) of the net, in the array module ``xp`` (numpy, jax.numpy, autograd.numpy)."""
    rows, layers = convention == "rows", sum(1 for k in values if k.startswith("W"))
    X, Y = values["X"], values["Y"]
    m = X.shape[0] if rows else X.shape[1]
    A, cache = X, []
    for k in range(1, layers + 1):
        W, b = values[f"W{k}"], values[f"b{k}"]
        Z = A @ W + b if rows else (W @ A if convention == "columns" else W.T @ A) + b
        cache.append((A, Z))
        A = xp.maximum(Z, 0) if k < layers else Z
    if output == "softmax":
        axis = 1 if rows else 0
        e = xp.exp(A - A.max(axis=axis, keepdims=True))
        P = e / e.sum(axis=axis, keepdims=True)
        J = -xp.sum(Y * xp.log(P)) / m
    else:
        P = 1 / (1 + xp.exp(-A))
        J = -xp.sum(Y * xp.log(P) + (1 - Y) * xp.log(1 - P)) / m
    return J, P, cache


def hand_written(output, convention, values, bug=None, layer=2, xp=np):
    """The idiomatic numpy forward+backward: (J, {param name: gradient}); ``bug`` (one of
    ``BUGS``) planted in the backward of layer ``layer`` (or in dZ of the output)."""
    rows, layers = convention == "rows", sum(1 for k in values if k.startswith("W"))
    X, Y = values["X"], values["Y"]
    m = X.shape[0] if rows else X.shape[1]
    scale = {"missing 1/m": m, "m - 1 for m": m / (m - 1)}.get(bug, 1)
    J, P, cache = forward(output, convention, values, xp)
    dZ, grads = scale * (P - Y) / m, {}
    for k in range(layers, 0, -1):
        A, Z = cache[k - 1]
        if bug == "wrong layer index" and k == layer:
            A = cache[k][0]                          # A[l] for A[l-1]
        W = values[f"W{k}"]
        if k < layers and not (bug == "dropped activation derivative" and k == layer):
            dZ = dZ * (Z > 0)
        axis = (1 if rows else 0) if bug == "wrong db axis" and k == layer else (0 if rows else 1)
        if rows:
            grads[f"W{k}"], grads[f"b{k}"], dA = A.T @ dZ, dZ.sum(axis, keepdims=True), dZ @ W.T
        elif convention == "columns":
            grads[f"W{k}"], grads[f"b{k}"], dA = dZ @ A.T, dZ.sum(axis, keepdims=True), W.T @ dZ
        else:
            grads[f"W{k}"], grads[f"b{k}"], dA = A @ dZ.T, dZ.sum(axis, keepdims=True), W @ dZ
        if bug == "wrong db axis" and k == layer:
            grads[f"b{k}"] = grads[f"b{k}"].T
        if bug == "0.2% scaling" and k == layer:
            grads[f"W{k}"] = grads[f"W{k}"] * 1.002
        if bug == "transpose in a square layer" and k == layer:
            grads[f"W{k}"] = grads[f"W{k}"].T
        dZ = dA
    return J, grads


# The built-in models at the same widths: {model: {dimension name: size}} ...
BUILTIN_SIZES = {
    "vardhan": dict(n0=784, n1=256, n2=128, n3=10, m=M),
    "dlai": dict(n0=784, n1=256, n2=128, m=M),
    "ng": dict(s1=784, s2=256, s3=128, K=10, m=M),
    "seed-question": dict(s1=784, s2=256, s3=128, K=10, m=M),
    "pytorch": dict(D=784, H=256, K=10, N=M),
    "sudeep": dict(n0=784, n1=256, n2=128, n3=10),
}


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _bce(P, Y, m):
    return -np.sum(Y * np.log(P) + (1 - Y) * np.log(1 - P)) / m


def _vardhan(X, Y, W1, b1, W2, b2, W3, b3, W4, b4):
    m = X.shape[1]
    Z1 = W1.T @ X + b1; A1 = np.maximum(Z1, 0)
    Z2 = W2.T @ A1 + b2; A2 = np.maximum(Z2, 0)
    Z3 = W3.T @ A2 + b3; A3 = np.maximum(Z3, 0)
    Z4 = W4.T @ A3 + b4; A4 = _sigmoid(Z4)
    J = _bce(A4, Y, m)
    dZ4 = (A4 - Y) / m
    dW4, db4 = A3 @ dZ4.T, dZ4.sum(1, keepdims=True)
    dZ3 = (W4 @ dZ4) * (Z3 > 0)
    dW3, db3 = A2 @ dZ3.T, dZ3.sum(1, keepdims=True)
    dZ2 = (W3 @ dZ3) * (Z2 > 0)
    dW2, db2 = A1 @ dZ2.T, dZ2.sum(1, keepdims=True)
    dZ1 = (W2 @ dZ2) * (Z1 > 0)
    dW1, db1 = X @ dZ1.T, dZ1.sum(1, keepdims=True)
    return J, dict(W1=dW1, b1=db1, W2=dW2, b2=db2, W3=dW3, b3=db3, W4=dW4, b4=db4)


def _dlai(X, Y, W1, b1, W2, b2, W3, b3):
    m = X.shape[1]
    Z1 = W1 @ X + b1; A1 = np.maximum(Z1, 0)
    Z2 = W2 @ A1 + b2; A2 = np.maximum(Z2, 0)
    Z3 = W3 @ A2 + b3; A3 = _sigmoid(Z3)
    J = _bce(A3, Y, m)
    dZ3 = A3 - Y
    dW3, db3 = dZ3 @ A2.T / m, dZ3.sum(1, keepdims=True) / m
    dZ2 = (W3.T @ dZ3) * (Z2 > 0)
    dW2, db2 = dZ2 @ A1.T / m, dZ2.sum(1, keepdims=True) / m
    dZ1 = (W2.T @ dZ2) * (Z1 > 0)
    dW1, db1 = dZ1 @ X.T / m, dZ1.sum(1, keepdims=True) / m
    return J, dict(W1=dW1, b1=db1, W2=dW2, b2=db2, W3=dW3, b3=db3)


def _ng(X, Y, Theta1, Theta2, Theta3, lam):
    m = X.shape[1]
    ones = np.ones((1, m))
    a1 = np.vstack([ones, X]); z2 = Theta1 @ a1
    a2 = np.vstack([ones, _sigmoid(z2)]); z3 = Theta2 @ a2
    a3 = np.vstack([ones, _sigmoid(z3)]); z4 = Theta3 @ a3
    a4 = _sigmoid(z4)
    reg = sum(np.sum(t[:, 1:] ** 2) for t in (Theta1, Theta2, Theta3))
    J = _bce(a4, Y, m) + lam / (2 * m) * reg
    d4 = a4 - Y
    d3 = (Theta3.T @ d4)[1:] * a3[1:] * (1 - a3[1:])
    d2 = (Theta2.T @ d3)[1:] * a2[1:] * (1 - a2[1:])
    grads = {}
    for name, t, d, a in (("Theta3", Theta3, d4, a3), ("Theta2", Theta2, d3, a2), ("Theta1", Theta1, d2, a1)):
        g = d @ a.T / m
        g[:, 1:] += lam / m * t[:, 1:]
        grads[name] = g
    return J, grads


def _seed_question(a1, Y, Theta1, Theta2, Theta3):
    m = a1.shape[1]
    z2 = Theta1 @ a1; a2 = _sigmoid(z2)
    z3 = Theta2 @ a2; a3 = _sigmoid(z3)
    z4 = Theta3 @ a3; a4 = _sigmoid(z4)
    J = _bce(a4, Y, m)
    d4 = a4 - Y
    d3 = (Theta3.T @ d4) * a3 * (1 - a3)
    d2 = (Theta2.T @ d3) * a2 * (1 - a2)
    return J, dict(Theta3=d4 @ a3.T / m, Theta2=d3 @ a2.T / m, Theta1=d2 @ a1.T / m)


def _pytorch(X, Y, W1, b1, W2, b2):
    N = X.shape[0]
    Z1 = X @ W1.T + b1; H1 = np.maximum(Z1, 0)
    logits = H1 @ W2.T + b2
    e = np.exp(logits - logits.max(1, keepdims=True))
    P = e / e.sum(1, keepdims=True)
    J = -np.sum(Y * np.log(P)) / N
    dlogits = (P - Y) / N
    dW2, db2 = dlogits.T @ H1, dlogits.sum(0, keepdims=True)
    dZ1 = (dlogits @ W2) * (Z1 > 0)
    return J, dict(W1=dZ1.T @ X, b1=dZ1.sum(0, keepdims=True), W2=dW2, b2=db2)


def _sudeep(x0, t, W1, W2, W3):
    x1 = _sigmoid(W1 @ x0); x2 = _sigmoid(W2 @ x1); x3 = _sigmoid(W3 @ x2)
    E = 0.5 * np.sum((x3 - t) ** 2)
    d3 = (x3 - t) * x3 * (1 - x3)
    d2 = (W3.T @ d3) * x2 * (1 - x2)
    d1 = (W2.T @ d2) * x1 * (1 - x1)
    return E, dict(W3=d3 @ x2.T, W2=d2 @ x1.T, W1=d1 @ x0.T)


HAND_WRITTEN = {"vardhan": _vardhan, "dlai": _dlai, "ng": _ng, "seed-question": _seed_question,
                "pytorch": _pytorch, "sudeep": _sudeep}


def benchmark_cases():
    """[(label, model, {dimension symbol: size}, hand-written fn(values by name) -> (J, grads))]:
    every built-in model, then the six MLPs, at 784-256-128-10, m = 512."""
    import tracegrad
    cases = []
    for name, named in BUILTIN_SIZES.items():
        mod = tracegrad.load(name)
        fn = HAND_WRITTEN[name]
        cases.append((name, mod, {mod.dims[k]: v for k, v in named.items()},
                      lambda values, fn=fn: fn(**values)))
    for output in OUTPUTS:
        for convention in CONVENTIONS:
            mod = model(output, convention)
            cases.append((f"mlp {output} {convention}", mod, sizes(mod),
                          lambda values, o=output, c=convention: hand_written(o, c, values)))
    return cases
