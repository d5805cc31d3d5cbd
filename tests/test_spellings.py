"""The spellings of DESIGN §4 that people paste: numpy method forms, PyTorch forms, 1-D vectors,
comparisons that mean themselves, integer labels — each checked against numpy itself on
random integer-valued data (so exact), and the refusals that remain."""
import ast

import numpy as np
import pytest
import sympy as sp

import tracegrad
from tracegrad.errors import FormulaError, ShapeError
from tracegrad.language.formula import parse_formula, parse_value
from tracegrad.language.labels import SingleLabel
from tracegrad.language.values import LabelSymbol, Vector, VectorSymbol
from tracegrad.numeric import evaluate

R, C = 3, 4
_rng = np.random.default_rng(11)
A = _rng.integers(-5, 6, (R, C)).astype(float)
B = _rng.integers(-5, 6, (R, C)).astype(float)
B[0, :2] = A[0, :2]                         # ties: where >= and > differ
SQ = _rng.integers(1, 5, (C, C)).astype(float)
v, w = _rng.integers(-3, 4, C).astype(float), _rng.integers(-3, 4, C).astype(float)
u = _rng.integers(-3, 4, R).astype(float)
y = np.array([2, 0, 3])                      # labels of C classes, one per row of A
Y = np.eye(C)[y]
SYMBOLS = {"A": sp.MatrixSymbol("A", R, C), "B": sp.MatrixSymbol("B", R, C),
           "S": sp.MatrixSymbol("S", C, C), "v": VectorSymbol("v", 1, C),
           "w": VectorSymbol("w", 1, C), "u": VectorSymbol("u", 1, R),
           "y": LabelSymbol("y", R, C), "k": SingleLabel("k", 1, C)}
VALUES = {"A": A, "B": B, "S": SQ, "v": v[None, :], "w": w[None, :], "u": u[None, :], "y": Y,
          "k": np.eye(C)[[1]]}
NUMPY = {"A": A, "B": B, "S": SQ, "v": v, "w": w, "u": u, "y": y, "k": 1}


def value(text):
    """(the parsed value, evaluated with numpy arrays; 1-D as 1-D), and whether it is 1-D."""
    parsed = parse_value(text, SYMBOLS)
    expr = parsed.row if isinstance(parsed, Vector) else parsed
    out = np.asarray(evaluate(expr, {SYMBOLS[n]: x for n, x in VALUES.items()}), dtype=float)
    return (out.reshape(-1) if isinstance(parsed, Vector) else out), isinstance(parsed, Vector)


def numpy_value(text):
    """What numpy itself computes for the text (trusted: the test's own evaluation)."""
    scope = {"np": np, **NUMPY}
    return np.asarray(eval(text, scope), dtype=float)  # noqa: S307 — the test's own fixed texts


SAME_AS_NUMPY = [
    "A.sum(axis=1, keepdims=True)", "A.sum(0)", "A.sum()", "A.mean(axis=0)", "A.mean(1, keepdims=True)",
    "A.var(axis=0)", "A.var(axis=1, ddof=1)", "np.var(A, axis=0, keepdims=True)", "np.var(A)",
    "A.std(axis=0)", "np.std(A, axis=1, ddof=1)",
    "A.max(axis=1, keepdims=True)", "np.max(A, axis=0)", "np.max(A)", "A.max()", "np.amax(A, 1)",
    "A.dot(S)", "A.T.dot(A)", "np.dot(A, S)", "A.T.dot(B) - B.T @ A", "(A + B).sum(axis=0)",
    "np.sqrt(S)", "np.abs(A)", "np.outer(u, v)", "np.outer(v, w)", "np.zeros_like(A)", "np.ones_like(v)",
    "np.where(A > 0, A, 0)", "np.where(A > B, A, B)", "np.clip(A, -2, 3)", "np.clip(A, 0, None)",
    "np.clip(A, None, 1)", "np.maximum(A, B)", "np.minimum(A, 2)", "np.maximum(0, A)",
    "A >= 0", "A <= 1", "A == B", "A != B", "(A > 0) & (B > 0)", "(A > 0) | (B > 0)", "~(A > 0)",
    "A * (A == A.max(axis=1, keepdims=True))",
    # 1-D vectors: a row on the left of @, a column on the right, .T does nothing
    "A @ v", "v @ S", "v @ w", "v.T", "A + v", "A * v", "u[:, None] + A", "v[None, :] + A",
    "A.sum(axis=1)", "A.sum(axis=0) + v", "np.sum(A, axis=1) @ A", "v.sum()", "v.mean()",
    "np.hstack((v, w))", "np.vstack((v, w))", "np.concatenate([v, w])", "np.concatenate([A, B], axis=1)",
    "v.reshape(-1, 1) * w", "v.reshape(1, -1)", "A[0]", "A[:, 1]", "A[1, :] + v", "v[1:3]", "v[2]",
    # integer labels: one-hot algebra, exactly numpy's fancy indexing
    "A[range(3), y]", "A[np.arange(3), y]", "S[y]", "v[y]", "S[k]", "v[k]", "S[k, 0]",
    "-np.log(np.exp(A)[range(3), y] / np.exp(A).sum(axis=1)).mean()",
]


@pytest.mark.parametrize("text", SAME_AS_NUMPY)
def test_same_as_numpy(text):
    got, one_d = value(text)
    want = numpy_value(text)
    assert one_d == (want.ndim == 1), (one_d, want.shape)
    if want.ndim == 0:
        got = got.reshape(())
    assert got.shape == want.shape and np.allclose(got, want), (got, want)


# PyTorch's spellings, with PyTorch's meaning (written out here: the test does not need torch)
TORCH = [
    ("A.sum(0, keepdim=True)", A.sum(0, keepdims=True)), ("A.sum(dim=1)", A.sum(1)),
    ("torch.sum(A, 1, keepdim=True)", A.sum(1, keepdims=True)), ("A.t()", A.T),
    ("A.pow(2)", A ** 2), ("A.exp()", np.exp(A)), ("(np.abs(A) + 1).log()", np.log(np.abs(A) + 1)),
    ("torch.sigmoid(A)", 1 / (1 + np.exp(-A))), ("torch.tanh(A)", np.tanh(A)),
    ("F.softmax(A, dim=1)", np.exp(A) / np.exp(A).sum(1, keepdims=True)),
    ("torch.softmax(A, dim=0)", np.exp(A) / np.exp(A).sum(0, keepdims=True)),
    ("F.relu(A)", np.maximum(A, 0)), ("A.clamp(min=0)", np.maximum(A, 0)),
    ("torch.var(A, 0)", A.var(0, ddof=1)), ("A.var(0, keepdim=True)", A.var(0, ddof=1, keepdims=True)),
    ("A.var(0, unbiased=False)", A.var(0)), ("A.var(1, correction=0)", A.var(1)),
    ("A.max(1, keepdim=True).values", A.max(1, keepdims=True)), ("torch.max(A, 0).values", A.max(0)),
    ("F.one_hot(A.max(1).indices, num_classes=4)", np.eye(C)[A.argmax(1)]),
    ("A.mm(S)", A @ SQ), ("torch.matmul(A, S)", A @ SQ), ("A.clone()", A), ("(A > 0).float()", (A > 0) * 1.0),
]


@pytest.mark.parametrize("text, want", TORCH, ids=[t for t, _ in TORCH])
def test_torch_forms_mean_what_torch_means(text, want):
    got, one_d = value(text)
    assert one_d == (np.ndim(want) == 1)
    assert np.allclose(got.reshape(np.shape(want)), want)


def test_method_var_follows_the_library():
    """x.var(0) is biased in numpy, unbiased in PyTorch: the keywords or the file's library decide."""
    symbols = dict(SYMBOLS)
    numpy_form = parse_value("A.var(0)", symbols, dialect="numpy")
    torch_form = parse_value("A.var(0)", symbols, dialect="torch")
    point = {SYMBOLS["A"]: A}
    assert np.allclose(evaluate(numpy_form.row, point).ravel(), A.var(0))
    assert np.allclose(evaluate(torch_form.row, point).ravel(), A.var(0, ddof=1))


@pytest.mark.parametrize("text, message", [
    ("A'", "Octave's A' is written A.T"), ("A .* B", r"Octave's \.\* \./ \.\^ are written"),
    ("A ./ B", r"written \* / \*\*"), ("A ^ 2", "use \\*\\* for powers"),
    ("A & B", "not a comparison"), ("~A", "not a comparison"), ("y + 1", "integer labels"),
    ("A.detach()", "stops gradients"), ("A.reshape(4, 3)", "only vectors are reshaped"),
    ("A.foo()", r"unknown method '\.foo\(\)'"), ("torch.foo(A)", "unknown function 'torch.foo'"),
    ("np.where(A, A, B)", "needs a comparison"), ("A[range(3), v]", "range"),
    ("A.var(0, ddof=R)", "ddof must be an integer"), ("np.max(A, 1).indices", "argmax indices, not an array"),
    ("A.shape", "a shape, not an array"), ("A.sum(keepdim=True, dtype=1)", "keyword 'dtype'"),
    ("A.argmax(1) + 1", "argmax indices"), ("v.sum(axis=1)", "only axis 0"),
    ("F.one_hot(v, 4)", "one_hot takes integer labels"), ("np.clip(A, 3, 1)", "above its upper"),
])
def test_refused(text, message):
    with pytest.raises((FormulaError, ShapeError), match=message) as err:
        parse_formula(text, SYMBOLS)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["v @ A", "A @ u", "np.outer(A, v)", "np.hstack((v, A))"])
def test_one_d_shape_errors(text):
    with pytest.raises(ShapeError):
        parse_formula(text, SYMBOLS)


def test_comparisons_mean_themselves_on_ties():
    """On integer data ties are common: >= is not >, == and != are indicators."""
    for op in (">", ">=", "<", "<=", "==", "!="):
        got, _ = value(f"A {op} B")
        assert np.array_equal(got, numpy_value(f"A {op} B"))
    assert np.any(A == B), "the data must hold ties for this test to mean anything"


def test_names_are_free_unless_called(tmp_path):
    """A target called T, variables called grad and sum: DESIGN §4 allows every name not called."""
    path = tmp_path / "names.toml"
    path.write_text("""
name = "names"
[dims]
n = "inputs"
m = "examples"
[inputs]
x = "n, m"
T = "1, m"
[params]
grad = "1, n"
[sizes]
n = 3
m = 4
[forward]
sum = "grad @ x"
J = "0.5 * sum((sum - T) ** 2) / m"
[meaning]
dgrad = "grad(grad)"
[claims]
dgrad = "(sum - T) @ x.T / m"
""", encoding="utf-8")
    report = tracegrad.load(str(path)).check()
    assert [r.verdict for r in report.results] == ["holds"], str(report)


def test_one_d_parameter_in_a_model_file(tmp_path):
    path = tmp_path / "oned.toml"
    path.write_text("""
name = "oned"
[dims]
N = "examples"
D = "inputs"
[inputs]
X = "N, D"
[params]
w = "D"
b = "D"
[sizes]
N = 5
D = 3
[forward]
h = "X @ w"
J = "0.5 * sum(h ** 2) + sum(b * b)"
[meaning]
dw = "grad(w)"
db = "grad(b)"
[claims]
dw = "X.T @ h"
db = "2 * b"
""", encoding="utf-8")
    m = tracegrad.load(str(path))
    assert isinstance(m.symbols["w"], VectorSymbol) and m.symbols["w"].shape == (1, m.dims["D"])
    assert [r.verdict for r in m.check().results] == ["holds", "holds"]


def _assignments(source, function):
    """(target, value node, expression text) of each plain assignment in a generated function."""
    tree = ast.parse(source)
    body = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == function).body
    for stmt in body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            yield stmt.targets[0].id, stmt.value, ast.get_source_segment(source, stmt.value)


@pytest.mark.parametrize("name", ["vardhan", "ng", "sudeep", "dlai", "pytorch"])
def test_codegen_output_is_pasteable(name):
    """Every expression codegen writes parses back, and the gradients it builds equal the
    derived ones (the printer's own spellings: .sum(axis=1, keepdims=True), np.block, …)."""
    from tracegrad.checking.points import draw_points
    from tracegrad.numeric.codegen import generate_module
    m = tracegrad.load(name)
    source = generate_module(m.derivation)
    names, computed, parsed = {**m.dims, **m.symbols}, {}, 0
    for function in ("forward", "backward"):
        for target, node, text in _assignments(source, function):
            if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) in ("values", "cache"):
                key = node.slice.value
                names[target] = m.symbols[key] if node.value.id == "values" else computed[key]
                continue
            names[target] = parse_formula(f"({text})", names)
            computed[target] = names[target]
            parsed += 1
    assert parsed >= 5
    point = draw_points(m, 0)[0]
    for x in m.derivation.wrt:
        if isinstance(x, sp.MatrixSymbol):
            got = evaluate(names[f"d{x.name}"], point)
            assert np.allclose(got, evaluate(m.derivation.gradient(x), point)), x
