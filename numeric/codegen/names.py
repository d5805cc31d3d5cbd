"""Names in the generated module: the helpers it may define, the words it reserves, and
fresh identifiers for symbols, gradients and temporaries."""
import keyword
import re

HELPERS = {
    "sigmoid": '''\
def sigmoid(x):
    """Logistic function, stable for large |x|: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))''',
    "log_sigmoid": '''\
def log_sigmoid(x):
    """log σ(x) = −log(1 + e^(−x)), finite where σ(x) rounds to 0 or 1."""
    return -np.logaddexp(0, -x)''',
    "log_softmax": '''\
def log_softmax(a, axis=0):
    """log softmax(a) = a − log Σ exp(a) along axis, with the max subtracted first."""
    s = a - a.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))''',
    "relu": '''\
def relu(x):
    """max(x, 0) entry by entry."""
    return np.maximum(x, 0)''',
    "step": '''\
def step(x):
    """Unit step 1[x > 0] (the derivative of relu) as floats."""
    return (x > 0).astype(float)''',
    "softmax": '''\
def softmax(a, axis=0):
    """exp(a) normalised along axis (0: each column sums to 1), with the max subtracted."""
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)''',
}

RESERVED = set(keyword.kwlist) | set(HELPERS) | {
    "np", "values", "cache", "forward", "backward", "sum", "range", "int", "float", "abs",
    "max", "min", "len", "dict", "True", "False", "None"}


class Names:
    """Unique Python identifiers for symbols, gradients and temporaries."""

    def __init__(self):
        self.taken = set(RESERVED)

    def new(self, wanted):
        base = re.sub(r"\W", "_", wanted) or "v"
        if not base.isidentifier():
            base = f"v_{base}"
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


class Temps:
    def __init__(self, names):
        self.names, self.count = names, 0

    def new(self, wanted=None):
        if wanted is not None:
            return self.names.new(wanted)
        while True:
            self.count += 1
            if f"t{self.count}" not in self.names.taken:
                return self.names.new(f"t{self.count}")
