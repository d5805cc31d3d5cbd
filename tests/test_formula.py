"""derivations.formula: numpy-like formula strings to SymPy, through a strict whitelist."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.language.formula import FormulaError, parse_dim, parse_formula
from tracegrad.symbolic.errors import ShapeError, TracegradError
from tracegrad.symbolic.functions import Softmax, elementwise, relu, sigmoid, step

N, D, H, K = sp.symbols("N D H K", integer=True, positive=True)
reg = sp.Symbol("reg")
X, Y = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("Y", N, K)
W1, b1 = sp.MatrixSymbol("W1", D, H), sp.MatrixSymbol("b1", 1, H)
c1, o = sp.MatrixSymbol("c1", N, 1), sp.MatrixSymbol("o", 1, 1)
S = sp.MatrixSymbol("S", H, H)
NAMES = dict(N=N, D=D, H=H, K=K, reg=reg, X=X, Y=Y, W1=W1, b1=b1, c1=c1, o=o, S=S)


def f(text, **kw):
    return parse_formula(text, NAMES, **kw)


def ones(r, c):
    return sp.OneMatrix(r, c)


# numeric checks at concrete sizes, against numpy computed by hand

A3, B3, R3, Q3, C3 = (sp.MatrixSymbol(n, *s) for n, s in
                      [("A", (3, 4)), ("B", (3, 4)), ("r", (1, 4)), ("q", (3, 1)), ("C", (3, 3))])
_rng = np.random.default_rng(7)
VALUES = {A3: _rng.integers(1, 9, (3, 4)), B3: _rng.integers(1, 9, (3, 4)),
          R3: _rng.integers(1, 9, (1, 4)), Q3: _rng.integers(1, 9, (3, 1)),
          C3: _rng.integers(1, 9, (3, 3)) + 9 * np.eye(3, dtype=int)}
NUM_NAMES = {"A": A3, "B": B3, "r": R3, "q": Q3, "C": C3, "s": sp.Integer(2), "n": sp.Integer(3)}
a, b, r, q, C = (VALUES[m].astype(float) for m in (A3, B3, R3, Q3, C3))


def numeric(expr):
    expr = expr.xreplace({m: sp.ImmutableMatrix(v) for m, v in VALUES.items()})
    if isinstance(expr, sp.MatrixExpr):
        return np.array(sp.N(expr.as_explicit().doit()), dtype=float)
    return float(sp.N(expr.doit()))


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


NUMPY_CASES = [
    ("A + q", a + q), ("A + r", a + r), ("q + r", q + r), ("A - 2", a - 2), ("2 - A", 2 - a),
    ("A * r", a * r), ("q * A", q * a), ("A / q", a / q), ("2 / A", 2 / a), ("A / s", a / 2),
    ("A ** 2", a ** 2), ("-A", -a), ("A @ A.T", a @ a.T), ("np.dot(A, A.T)", a @ a.T),
    ("np.dot(s, A)", 2 * a), ("np.matmul(C, A)", C @ a), ("A.T", a.T), ("np.transpose(A)", a.T),
    ("sum(A)", a.sum().reshape(1, 1)), ("np.sum(A, axis=0)", a.sum(axis=0)[None, :]),
    ("np.sum(A, axis=1, keepdims=True)", a.sum(axis=1, keepdims=True)),
    ("np.sum(A, axis=1)", a.sum(axis=1)[None, :]), ("B + np.sum(A, axis=1, keepdims=True)",
                                                    b + a.sum(axis=1, keepdims=True)),
    ("mean(A)", a.mean().reshape(1, 1)), ("np.mean(A, axis=0)", a.mean(axis=0)[None, :]),
    ("mean(A, axis=1, keepdims=True)", a.mean(axis=1, keepdims=True)),
    ("A[1:, :]", a[1:, :]), ("A[:, :-1]", a[:, :-1]), ("A[0:2, 1:]", a[0:2, 1:]),
    ("A[-2:, -3:-1]", a[-2:, -3:-1]), ("A[1:][:, 2:]", a[1:][:, 2:]), ("A[1, -1]", a[1, -1]),
    ("vstack(A, r)", np.vstack((a, r))), ("np.vstack((A, r, r))", np.vstack((a, r, r))),
    ("np.hstack([A, q])", np.hstack([a, q])), ("hstack(vstack(A, B), vstack(B, A))",
                                               np.hstack((np.vstack((a, b)), np.vstack((b, a))))),
    ("ones(n, 2) + zeros((n, 2))", np.ones((3, 2))), ("np.eye(n) @ C", C),
    ("np.ones((1, n)) @ q", np.ones((1, 3)) @ q),
    ("trace(C)", np.trace(C)), ("np.trace(C)", np.trace(C)), ("det(C)", np.linalg.det(C)),
    ("np.linalg.det(C)", np.linalg.det(C)), ("inv(C) @ C", np.eye(3)),
    ("np.linalg.inv(C)", np.linalg.inv(C)), ("logdet(C @ C.T)", np.log(np.linalg.det(C @ C.T))),
    ("log(A)", np.log(a)), ("np.exp(-A)", np.exp(-a)), ("tanh(A / 9)", np.tanh(a / 9)),
    ("sqrt(A)", np.sqrt(a)), ("abs(3 - A)", np.abs(3 - a)), ("np.abs(3 - A)", np.abs(3 - a)),
    ("sigmoid(A - 5)", np_sigmoid(a - 5)), ("relu(A - 5)", np.maximum(a - 5, 0)),
    ("maximum(0, A - 5)", np.maximum(0, a - 5)), ("np.maximum(A - 5, 0.0)", np.maximum(a - 5, 0)),
    ("(A > 5)", (a > 5).astype(float)), ("A - 4.5 >= 0", (a >= 4.5).astype(float)),
    ("A < 5", (a < 5).astype(float)), ("5 > A", (a < 5).astype(float)),
    ("A > r", (a > r).astype(float)),
    ("sigmoid_prime(A - 5)", np_sigmoid(a - 5) * (1 - np_sigmoid(a - 5))),
    ("relu_prime(A - 5)", (a > 5).astype(float)), ("tanh_prime(A / 9)", 1 - np.tanh(a / 9) ** 2),
    ("np.add(A, q)", a + q), ("np.subtract(A, r)", a - r), ("np.multiply(A, B)", a * b),
    ("np.divide(A, B)", a / b), ("np.square(A)", a ** 2), ("np.power(A, 3)", a ** 3),
    ("numpy.log(A)", np.log(a)), ("A * 0.5 + 1e-3", a * 0.5 + 1e-3), ("2 ** 3 * A", 8 * a),
    ("-sum(B * log(A / 9)) / n + 0.5 * s * sum(A * A)",
     (-(b * np.log(a / 9)).sum() / 3 + 0.5 * 2 * (a * a).sum()).reshape(1, 1)),
    ("sum(A) + 1", a.sum().reshape(1, 1) + 1), ("A + sum(A)", a + a.sum()),
    ("A[0, 0] * A", a[0, 0] * a), ("log(A[0, 0]) + s", np.log(a[0, 0]) + 2),
]


@pytest.mark.parametrize("text, expected", NUMPY_CASES, ids=[c[0] for c in NUMPY_CASES])
def test_numpy_semantics(text, expected):
    value = numeric(parse_formula(text, NUM_NAMES))
    assert np.shape(value) == np.shape(expected)
    assert np.allclose(value, expected)


# symbolic shapes and forms


@pytest.mark.parametrize("text, shape", [
    ("X @ W1 + b1", (N, H)), ("W1.T @ X.T + ones(H, 1)", (H, N)), ("X + c1", (N, D)),
    ("c1 + b1", (N, H)), ("X + o", (N, D)), ("o * 2", (1, 1)), ("sum(X, axis=0)", (1, D)),
    ("np.sum(X, axis=1)", (1, N)), ("sum(X, axis=1, keepdims=True)", (N, 1)), ("sum(X)", (1, 1)),
    ("vstack(ones(1, N), X.T)", (D + 1, N)), ("hstack(X, c1)", (N, D + 1)),
    ("X[1:, :-1]", (N - 1, D - 1)), ("X[:, 1:3]", (N, 2)), ("ones(D + 1, 2*H)", (D + 1, 2 * H)),
    ("ones(N)", (1, N)), ("eye(H)", (H, H)), ("softmax(Y)", (N, K)), ("X / N", (N, D)),
])
def test_shapes(text, shape):
    assert f(text).shape == shape


def test_broadcasting_is_explicit():
    assert f("X @ W1 + b1") == X * W1 + ones(N, 1) * b1
    assert f("X + c1") == X + c1 * ones(1, D)
    assert f("X + o") == X + ones(N, 1) * o * ones(1, D)
    assert f("X + 2") == X + 2 * ones(N, D)
    assert f("X * c1") == sp.hadamard_product(X, c1 * ones(1, D))
    assert f("reg * X") == reg * X
    assert f("X / Y[:, 0:D]") == sp.hadamard_product(X, sp.HadamardPower(Y[:, 0:D], -1))
    assert f("2 / X") == 2 * sp.HadamardPower(X, -1)
    assert f("X / N") == X / N
    assert f("X ** 2") == sp.HadamardPower(X, 2)
    assert f("N ** 2") == N ** 2
    assert f("np.sum(X, axis=1)") == (X * ones(D, 1)).T
    assert f("sum(X)") == ones(1, N) * X * ones(D, 1)
    assert f("mean(X, axis=0)") == ones(1, N) * X / N


def test_zero_results_keep_their_shape():
    assert f("X - X") == sp.ZeroMatrix(N, D)
    assert f("0 * X") == sp.ZeroMatrix(N, D)
    assert f("X + 0") == X
    assert f("sum(X) - sum(X)") == sp.ZeroMatrix(1, 1)


def test_elementwise_nodes_are_canonical():
    assert f("log(X)") == elementwise(sp.log, X)
    assert f("log(X)") == f("np.log(X)")
    assert f("sigmoid(X)") == elementwise(sigmoid, X)
    assert f("relu(X)") == f("maximum(0, X)") == f("np.maximum(X, 0)") == elementwise(relu, X)
    assert f("X > 0") == f("relu_prime(X)") == elementwise(step, X)
    assert f("X < 0") == elementwise(step, -X)
    x = sp.Symbol("t")
    assert f("sigmoid_prime(X)") == elementwise(sp.Lambda(x, sigmoid(x) * (1 - sigmoid(x))), X)
    assert f("tanh_prime(X)") == elementwise(sp.Lambda(x, 1 - sp.tanh(x) ** 2), X)


def test_scalars_stay_scalars():
    assert f("log(reg)") == sp.log(reg)
    assert f("sigmoid(reg) + relu(reg)") == sigmoid(reg) + relu(reg)
    assert f("relu(-2) + relu(0.5)") == sp.Rational(1, 2)
    assert f("reg ** 2 / N") == reg ** 2 / N
    assert f("0.5") == sp.Rational(1, 2) and f("1e-3") == sp.Rational(1, 1000)
    assert f("X[0, 0] * 2") == 2 * X[0, 0]
    big = sp.MatrixSymbol("Q", 9, 9)  # the entry of a 9×9 inverse must not be computed
    assert parse_formula("inv(Q)[0, -1]", {"Q": big}) == MatrixElement(sp.Inverse(big), 0, 8)
    assert f("reg.T") == reg
    assert f("sum(reg)") == reg


def test_matrix_functions():
    assert f("trace(S)") == sp.Trace(S)
    assert f("inv(S)") == f("np.linalg.inv(S)") == sp.Inverse(S)
    assert f("det(S)") == sp.Determinant(S)
    assert f("logdet(S)") == sp.log(sp.Determinant(S))
    assert f("softmax(Y)") == Softmax(Y, 0)
    assert f("softmax(Y, axis=1)") == f("softmax(Y, axis=-1)") == Softmax(Y, 1)
    assert f("eye(H)") == sp.Identity(H) and f("np.zeros((N, D))") == sp.ZeroMatrix(N, D)


def test_grad_and_jac_use_the_callback():
    calls = []

    def derivative(kind, name):
        calls.append((kind, name))
        return sp.MatrixSymbol(f"{kind}_{name}", *W1.shape)

    value = f("N * grad(W1) + jac(W1)", derivative=derivative)
    assert calls == [("grad", "W1"), ("jac", "W1")]
    assert value.shape == W1.shape
    with pytest.raises(FormulaError, match="not available"):
        f("grad(W1)")
    with pytest.raises(FormulaError, match="one name"):
        f("grad(W1.T)", derivative=derivative)


def test_parse_dim():
    dims = {"D": D, "H": H, "n0": sp.Symbol("n0")}
    assert parse_dim("D + 1", dims) == D + 1
    assert parse_dim("n0", dims) == sp.Symbol("n0")
    assert parse_dim("3", dims) == 3 and parse_dim(3, dims) == 3
    assert parse_dim("2*H", dims) == 2 * H
    assert parse_dim("(D + 1)*(D - 1)", dims) == D ** 2 - 1
    for bad, message in [("D / 2", "not allowed in a size"), ("0", "positive"),
                         ("2 - 5", "positive"),
                         ("D ** 2", "not allowed in a size"), ("x", "unknown name 'x'"),
                         ("D*D*D*D*D", "degree"), ("D +", "syntax error"), (True, "string")]:
        with pytest.raises(FormulaError, match=message):
            parse_dim(bad, dims)


# errors


def test_shape_error_messages():
    W, Z = sp.MatrixSymbol("W1", 5, 3), sp.MatrixSymbol("X", 4, 7)
    with pytest.raises(ShapeError) as err:
        parse_formula("W1.T @ X", {"W1": W, "X": Z})
    assert str(err.value) == ("shapes (3, 5) and (4, 7) do not compose in 'W1.T @ X' "
                              "(matrix product)")
    with pytest.raises(ShapeError, match=r"\(N, D\) and \(N, K\) do not broadcast in 'X \+ Y'"):
        f("X + Y")


@pytest.mark.parametrize("text", [
    "X @ X", "X * Y", "X - W1", "b1 + X", "trace(X)", "inv(X)", "vstack(X, W1)", "hstack(X, Y.T)",
    "X @ 2", "np.matmul(2, X)", "X ** X", "softmax(reg)", "sum(reg, axis=0)", "X[N:, :]",
    "X[2:1, :]", "ones(1, 3)[0, 5]", "X[N + 1:, :]", "ones(2, 2)[N:, :]", "eye(3)[0, D]",
])
def test_shape_errors(text):
    with pytest.raises(ShapeError):
        f(text)


def test_error_position_and_single_line():
    with pytest.raises(FormulaError) as err:
        f("relu(X @ W1) + W5")
    assert str(err.value) == "unknown name 'W5' at column 16"
    with pytest.raises(FormulaError) as err:
        f("  X +* W1")
    assert str(err.value).startswith("syntax error at column 6")
    with pytest.raises(FormulaError) as err:
        f("(X @ W1\n + W5)")
    assert str(err.value) == "unknown name 'W5' at line 2, column 4"
    assert f("  X.T  ") == X.T


@pytest.mark.parametrize("text, message", [
    ("W5", "unknown name 'W5'"), ("foo(X)", "unknown function 'foo'"), ("X(1)", "not a function"),
    ("np.foo(X)", "unknown function 'np.foo'"), ("np.linalg.svd(S)", "unknown function"),
    ("np.grad(X)", "unknown function"), ("np", "prefix"), ("sum", "must be called"),
    ("X.shape", "is a shape, not an array"), ("np.pi", "attribute '.pi'"),
    ("X.T.__class__", "not allowed"), ("__import__('os')", "'__import__' is not allowed"),
    ("X.__dict__", "'__dict__' is not allowed"),
    ("().__class__.__bases__", "is not allowed"), ("[x for x in y]", "comprehension"),
    ("{x: 1}", "dict"), ("lambda: 1", "lambda"), ('f"{W1}"', "f-string"), ("'abc'", "strings"),
    ("(a := 1)", "':='"), ("*a", "syntax error"), ("sum(*X)", "starred"), ("sum(**X)", "'\\*\\*'"),
    ("sum(X, dtype=float)", "keyword 'dtype'"), ("sum(X, axis=2)", "axis must be 0 or 1"),
    ("sum(X, axis=N)", "axis must be 0 or 1"), ("sum(X, keepdims=1)", "keepdims must be"),
    ("log(X, axis=0)", "keyword 'axis' is not allowed for log"), ("log(X, X)", "wrong arguments"),
    ("import os", "syntax error"), ("X; X", "syntax error"), ("X // 2", "operator '//'"),
    ("X % 2", "'%'"), ("X & X", "'&'"), ("X | X", "'|'"), ("X ^ X", "'\\^'"), ("X << 1", "'<<'"),
    ("~X", "'~'"), ("not X", "'not'"), ("X and X", "'and'/'or'"), ("0 < X < 1", "chained"),
    ("X is X", "'is'"), ("X in X", "'in'"), ("True", "True is not allowed"), ("None", "None"),
    ("X if reg else X", "conditional"), ("(X, X)", "tuple"), ("[X]", "list"), ("{X}", "set"),
    ("1j", "complex"), ("1e999", "out of range"), ("1 / 0", "division by zero"),
    ("X / 0", "division by zero"), ("log(0)", "undefined"), ("9 ** 9 ** 9", "too large"),
    ("X[0, 0, 0]", "two parts"), ("X[::2, :]", "steps"),
    ("X[..., 0]", "not allowed in a size"), ("X[X:, :]", "not a dimension"),
    ("ones(0, 2)", "positive"), ("ones(D / 2, 1)", "not allowed in a size"),
    ("grad(W1)", "not available"), ("", "syntax error"),
    ("X\0", "syntax error"), (7, "must be a string"),
    ("vstack()", "at least one"), ("np.hstack(())", "at least one"), ("sum()", "wrong arguments"),
])
def test_refused(text, message):
    with pytest.raises(FormulaError, match=message) as err:
        f(text)
    assert "\n" not in str(err.value)


def test_injection_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    for text in [f"__import__('os').system('touch {marker}')",
                 f"[__import__('os').system('touch {marker}') for _ in X]",
                 f"(lambda: __import__('os').system('touch {marker}'))()",
                 f"np.sum(open('{marker}', 'w'))", f"exec('open(\"{marker}\", \"w\")')"]:
        with pytest.raises(FormulaError):
            f(text)
    assert not marker.exists()


@pytest.mark.parametrize("text, message", [
    ("(" * 500 + "X" + ")" * 500, "nest deeper than 100"),
    ("-" * 5000 + "X", "nest"),
    ("X" + " + X" * 150, "nests deeper than 100"),
    ("X" + ".T" * 150, "nests deeper than 100"),
    ("log(" * 120 + "X" + ")" * 120, "nest deeper than 100"),
    ("X + " * 2600 + "X", "longer than 10000"),
    ("hstack(" + ",".join(["-X"] * 3300) + ")", "more than 5000"),
])
def test_resource_bounds(text, message):
    with pytest.raises(FormulaError, match=message):
        f(text)


def _nested_stacks(levels):
    text = "X"
    for k in range(levels):
        text = f"vstack(hstack({text}, ones(N + {k}, 1)), ones(1, D + {k + 1}))"
    return text


def test_nested_stacks_are_bounded():
    assert f(_nested_stacks(4)).shape == (N + 4, D + 4)
    with pytest.raises(FormulaError, match="nest deeper than 8"):
        f(_nested_stacks(5))


def test_deep_but_allowed():
    assert f("-" * 98 + "X").shape == (N, D)
    assert f("log(" * 49 + "X" + ")" * 49).shape == (N, D)
    assert f("vstack(" * 40 + "X" + ", X)" * 40).shape == (41 * N, D)


# fuzzing: only TracegradError may escape, always one line

TOKENS = ["X", "Y", "W1", "b1", "c1", "o", "S", "N", "reg", "0", "1", "-1", "2", "0.5", "@", "+",
          "-", "*", "/", "**", "(", ")", "[", "]", ":", ",", ".T", "sum", "np.sum", "mean", "log",
          "exp", "relu", "sigmoid", "softmax", "maximum", "trace", "inv", "det", "logdet",
          "vstack", "hstack", "ones", "eye", "np.dot", "np.linalg.inv", "grad", "jac",
          "axis=0", "axis=1", "keepdims=True", ">", "<", "==", "lambda", "for", "in", "__class__",
          "not", "and", "'s'", "~", "//", ":=", "*", "X[1:, :]", "X[0, 0]", "(X, Y)"]


def _derivative(kind, name):
    value = NAMES.get(name)
    if not isinstance(value, sp.MatrixExpr):
        raise FormulaError(f"no derivative of {name!r}")
    return sp.MatrixSymbol(f"G_{name}", *(value.shape if kind == "grad" else value.shape[::-1]))


def _only_formula_errors(text):
    try:
        value = parse_formula(text, NAMES, derivative=_derivative)
    except TracegradError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert isinstance(value, sp.Basic)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=80))
def test_random_text(text):
    _only_formula_errors(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30), st.sampled_from(["", " "]))
def test_token_soup(tokens, sep):
    _only_formula_errors(sep.join(tokens))


def _grammar():
    leaves = st.sampled_from(["X", "Y", "W1", "b1", "c1", "o", "S", "N", "reg", "0", "2", "0.5"])
    unary = ["-{}", "{}.T", "log({})", "relu({})", "sum({})", "np.sum({}, axis=1)",
             "sum({}, axis=0, keepdims=True)", "mean({}, axis=1)", "softmax({}, axis=1)",
             "trace({})", "inv({})", "({} > 0)", "{}[1:, :]", "{}[:, :-1]", "{}[0, 0]",
             "sigmoid_prime({})", "grad(W1) + {}", "maximum(0, {})"]
    binary = ["({} @ {})", "({} + {})", "({} - {})", "({} * {})", "({} / {})", "({} ** 2)",
              "vstack({}, {})", "np.hstack(({}, {}))", "np.dot({}, {})"]

    def extend(inner):
        return st.one_of(
            st.tuples(st.sampled_from(unary), inner).map(lambda p: p[0].format(p[1])),
            st.tuples(st.sampled_from(binary), inner, inner).map(
                lambda p: p[0].format(p[1], p[2])))

    return st.recursive(leaves, extend, max_leaves=12)


@FUZZ
@given(_grammar())
def test_random_formulas(text):
    _only_formula_errors(text)
