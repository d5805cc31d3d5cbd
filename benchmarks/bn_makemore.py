"""A 17-line batch-norm network, makemore style (Bessel's n - 1, counts * counts_sum**-1), 23 claims, 4 wrong."""
SHAPES = {"x": "n, d", "Y": "n, k", "W1": "d, h", "b1": "1, h", "g": "1, h", "beta": "1, h",
          "W2": "h, k", "b2": "1, k"}
DATA = {"x": "real", "Y": "one-hot rows"}
SIZES = {"n": 8, "d": 4, "h": 5, "k": 3}


def forward(x, Y, W1, b1, g, beta, W2, b2):
    hpre = x @ W1 + b1
    mu = 1 / n * hpre.sum(0, keepdims=True)
    diff = hpre - mu
    diff2 = diff**2
    var = 1 / (n - 1) * diff2.sum(0, keepdims=True)
    var_inv = (var + 1e-5)**-0.5
    raw = diff * var_inv
    hact = g * raw + beta
    hid = np.tanh(hact)
    logits = hid @ W2 + b2
    counts = np.exp(logits)
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logp = np.log(probs)
    nll = -np.sum(Y * logp)
    loss = nll / n
    return loss


def backward(x, Y, W1, b1, g, beta, W2, b2):
    dnll = 1 / n
    dlogp = -Y / n
    dprobs = dlogp / probs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdims=True)
    dcounts_sum = -counts_sum**-2 * dcounts_sum_inv
    dcounts = counts_sum_inv * dprobs
    dlogits = counts * dcounts
    dW2 = hid.T @ dlogits
    db2 = dlogits.sum(1, keepdims=True)
    dhid = dlogits @ W2.T
    dhact = (1 - hid**2) * dhid
    dg = (diff * dhact).sum(0, keepdims=True)
    dbeta = dhact.sum(0, keepdims=True)
    draw = g * dhact
    dvar_inv = (diff * draw).sum(0, keepdims=True)
    dvar = -0.5 * (var + 1e-5)**-1.5 * dvar_inv
    ddiff2 = 1 / n * np.ones_like(diff2) * dvar
    ddiff = var_inv * draw + 2 * diff * ddiff2
    dmu = -ddiff.sum(0, keepdims=True)
    dhpre = ddiff + 1 / n * dmu
    dW1 = x.T @ dhpre
    db1 = dhpre.sum(0, keepdims=True)
    dx = dhpre @ W1.T
    return dW1
