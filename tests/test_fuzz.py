"""Fuzzing every user-facing entry point: formulas through the parser, the checker and the CLI;
model files (generated, malformed and mutated built-ins) through ``load`` and ``tracegrad check``.

Whatever comes in, the API raises only TracegradError (one line) and ``main`` returns 0, 1 or 2,
never prints a traceback, and on 2 prints exactly one line on stderr.

CI runs the example counts written below (derandomized, so CI is reproducible).  For a longer
random run set TRACEGRAD_FUZZ_EXAMPLES, e.g.

    TRACEGRAD_FUZZ_EXAMPLES=100000 python3 -m pytest -q tests/test_fuzz.py

which runs that many examples per parser test and proportionally fewer (by each test's cost)
through the checker and the CLI.
"""
import io
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tracegrad
from tracegrad.checking.claims import Truth
from tracegrad.cli import main
from tracegrad.model import MODELS, builtin_names
from tracegrad.symbolic.errors import TracegradError

LONG = int(os.environ.get("TRACEGRAD_FUZZ_EXAMPLES") or 0)


def fuzz(examples, cost=1):
    """``examples`` in CI; with TRACEGRAD_FUZZ_EXAMPLES, that many divided by the test's cost."""
    # Shrinking a slow example (a full claims check) can take many minutes: report it unshrunk.
    phases = [p for p in Phase if cost == 1 or p != Phase.shrink]
    return settings(max_examples=max(examples, LONG // cost) if LONG else examples,
                    derandomize=not LONG, database=None, deadline=None, phases=phases,
                    suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------ formulas over vardhan's names

VARDHAN = tracegrad.load("vardhan")
TRUTH = Truth(VARDHAN, VARDHAN.derivation)
ONE = sp.Integer(1)
DIMS = [ONE, *VARDHAN.dims.values()]


def _shape(value):
    return tuple(value.shape) if isinstance(value, sp.MatrixExpr) else (ONE, ONE)


SHAPED = {}
for _name in [*VARDHAN.symbols, *VARDHAN.forward_names(), *VARDHAN.meanings]:
    SHAPED.setdefault(_shape(TRUTH[_name]), []).append(_name)

UNARY = ["log", "exp", "tanh", "sigmoid", "relu", "abs", "sqrt", "sigmoid_prime", "relu_prime",
         "tanh_prime", "np.exp", "np.log", "np.tanh", "np.square"]


@st.composite
def formulas(draw, shape=None, depth=3):
    """numpy-syntax formulas, mostly of the requested shape (random shapes compose badly)."""
    if shape is None:
        shape = draw(st.sampled_from(sorted(SHAPED, key=str)))
    r, c = (str(d) for d in shape)
    leaves = [*SHAPED.get(shape, []), f"ones({r}, {c})", f"np.zeros(({r}, {c}))"]
    if shape == (ONE, ONE):
        leaves += ["2", "0.5", "m", "n0 + 1", "sum(X)", "trace(W4.T @ W4)"]
    if r == c:
        leaves += [f"eye({r})"]
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves))
    sub = lambda s=shape: formulas(s, depth - 1)  # noqa: E731
    k = draw(st.sampled_from(DIMS))
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return f"{draw(sub((shape[1], shape[0])))}.T"
    if kind == 1:
        return f"{draw(st.sampled_from(UNARY))}({draw(sub())})"
    if kind in (2, 3):
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        return f"({draw(sub())} {op} {draw(sub())})"
    if kind == 4:
        return f"({draw(st.sampled_from(['2', 'm', '-1', '0.5']))} * {draw(sub())})"
    if kind == 5:
        return f"({draw(sub((shape[0], k)))} @ {draw(sub((k, shape[1])))})"
    if kind == 6:
        return f"np.dot({draw(sub((shape[0], k)))}, {draw(sub((k, shape[1])))})"
    if kind == 7 and shape[0] == ONE:
        return f"np.sum({draw(sub((k, shape[1])))}, axis=0, keepdims=True)"
    if kind == 7 and shape[1] == ONE:
        return f"sum({draw(sub((shape[0], k)))}, axis=1, keepdims=True)"
    if kind == 8:
        return f"({draw(sub())} + {draw(sub((ONE, shape[1])))})"
    if kind == 9:
        return f"({draw(sub())} {draw(st.sampled_from(['>', '<', '>=']))} 0)"
    if kind == 10:
        return f"{draw(sub())} ** {draw(st.sampled_from(['2', '0.5', '3', '-1']))}"
    if kind == 11 and shape == (ONE, ONE):
        return f"{draw(st.sampled_from(['sum', 'mean', 'trace']))}({draw(sub((k, k)))})"
    return draw(sub())


TOKENS = [*VARDHAN.symbols, *VARDHAN.forward_names(), *VARDHAN.meanings, *VARDHAN.dims,
          "0", "1", "-1", "2", "0.5", "1e308", "10**9", "@", "+", "-", "*", "/", "**", "(", ")",
          "[", "]", ":", ",", ".T", ".", "sum", "np.sum", "np", "numpy", "np.linalg.inv", "log",
          "exp", "relu", "sigmoid", "softmax", "maximum", "trace", "inv", "det", "vstack",
          "hstack", "ones", "eye", "grad", "jac", "axis=0", "axis=1", "keepdims=True", ">", "==",
          "lambda", "for", "in", "if", "else", "__class__", "__import__", "os", "system",
          "'echo hi'", "not", "and", "~", "//", ":=", "*", "**", "{", "}", "f'", "\\", "#", ";",
          "\n", "\t", "\x00", "é", "∘", "ᵀ", "True", "None", "...", "yield", "await", "import"]

token_soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30).flatmap(
    lambda ts: st.sampled_from(["", " "]).map(lambda sep: sep.join(ts)))


@st.composite
def mutated(draw):
    """A valid formula with one to three random edits of its text."""
    text = draw(formulas())
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        edit = draw(st.integers(0, 3))
        if edit == 0:
            text = text[:i] + text[j:]
        elif edit == 1:
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        elif edit == 2:
            text = text[:i] + text[i:j] * draw(st.integers(2, 50)) + text[j:]
        else:
            text = text[:i] + draw(st.characters()) + text[j:]
    return text


malformed = st.one_of(token_soup, st.text(max_size=100),
                      st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=100),
                      mutated())
any_formula = st.one_of(formulas(), malformed)


def one_line(message):
    assert message and "\n" not in message and "Traceback" not in message, repr(message)


def parses_or_refuses(text):
    try:
        value = TRUTH.parse(text)
    except TracegradError as e:
        one_line(str(e))
    else:
        assert isinstance(value, sp.Basic)


@fuzz(500)
@given(formulas())
def test_parser_grammar(text):
    parses_or_refuses(text)


@fuzz(400)
@given(token_soup)
def test_parser_token_soup(text):
    parses_or_refuses(text)


@fuzz(400)
@given(st.text(max_size=200))
def test_parser_random_text(text):
    parses_or_refuses(text)


@fuzz(400)
@given(mutated())
def test_parser_mutated(text):
    parses_or_refuses(text)


@fuzz(5)
@given(st.lists(formulas(), min_size=20, max_size=20))
def test_grammar_mostly_parses(texts):
    """The grammar is worth its name: most of what it writes is a well-shaped formula."""
    ok = 0
    for text in texts:
        try:
            TRUTH.parse(text)
            ok += 1
        except TracegradError:
            pass
    assert ok >= len(texts) // 2, texts


# ------------------------------------------------------------------ the checker and the CLI

MEANINGS = sorted(VARDHAN.meanings)



@st.composite
def claims(draw):
    name = draw(st.sampled_from([*MEANINGS, *MEANINGS, "J", "nosuch"]))
    shape = _shape(TRUTH[name]) if name in MEANINGS else None
    return name, draw(st.one_of(formulas(shape), formulas(shape), malformed))


@fuzz(40, cost=200)
@given(claims())
def test_checker(claim):
    name, text = claim
    try:
        report = VARDHAN.check(claims={name: text})
    except TracegradError as e:
        one_line(str(e))
        return
    (result,) = report.results
    assert result.verdict in ("holds", "fails", "error", "inconclusive")
    one_line(result.evidence)
    assert str(report).startswith("model vardhan")
    json.dumps(report.as_dict())


def run(argv):
    """main(argv) in-process: (code, stdout, stderr), with the CLI's promises asserted."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    out, err = out.getvalue(), err.getvalue()
    assert code in (0, 1, 2), (argv, code)
    assert "Traceback" not in err, err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("tracegrad: error: "), err
        assert not out
    elif "--json" in argv:
        json.loads(out)
    return code, out, err


SIZE_TEXTS = st.one_of(
    st.lists(st.tuples(st.sampled_from([*VARDHAN.dims, "q", "", "m "]),
                       st.sampled_from(["1", "2", "3", "7", "0", "-1", "1.5", "x", "", "10**9",
                                        "1000000", "٣", "²", "0x10", "+3", " 4"])),
             max_size=4).map(lambda ps: ",".join(f"{n}={v}" for n, v in ps)),
    st.text(max_size=20))
OPTIONS = st.lists(st.one_of(
    st.just(["--json"]),
    st.tuples(st.just("--loss"), st.sampled_from(["bce", "mse", "ce", "nll", ""])).map(list),
    st.tuples(st.just("--sizes"), SIZE_TEXTS).map(list),
    st.tuples(st.just("--seed"), st.one_of(st.integers(-10, 2**70).map(str),
                                           st.sampled_from(["x", "", "1e3", "0.5", "٣"]))).map(list),
), max_size=3).map(lambda groups: [a for g in groups for a in g])


@fuzz(25, cost=300)
@given(claims(), OPTIONS)
def test_cli_claim(claim, options):
    name, text = claim
    run(["check", "vardhan", "--claim", f"{name} = {text}", *options])


# ------------------------------------------------------------------ model files

def toml_value(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"


def toml_key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def to_toml(data):
    """TOML text for a dict of the kinds the strategies below make (tables one level deep)."""
    top = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [f"\n[{toml_key(k)}]\n" + "".join(f"{toml_key(n)} = {toml_value(x)}\n" for n, x in v.items())
              for k, v in data.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "".join(tables)


ACTIVATIONS = ["sigmoid", "relu", "tanh", "np.exp", "softmax"]
COSTS = ["0.5 * sum(({A} - Y) ** 2)", "-sum(Y * log({A}) + (1 - Y) * log(1 - {A})) / m",
         "-sum(Y * log({A}))", "sum({A}) / m", "mean({A} * {A})"]
VALUES = ["real", "positive", "binary", "one-hot columns", "probability columns"]


@st.composite
def networks(draw):
    """A valid model file as a dict: a random dense net with columns as examples."""
    layers = draw(st.integers(1, 3))
    dims = {f"n{i}": f"units {i}" for i in range(layers + 1)} | {"m": "examples"}
    params, forward, meaning = {}, {}, {}
    previous = "X"
    for i in range(1, layers + 1):
        transposed = draw(st.booleans())
        params[f"W{i}"] = f"n{i - 1}, n{i}" if transposed else f"n{i}, n{i - 1}"
        params[f"b{i}"] = f"n{i}, 1"
        weight = f"W{i}.T" if transposed else f"W{i}"
        forward[f"Z{i}"] = f"{weight} @ {previous} + b{i}"
        forward[f"A{i}"] = f"{draw(st.sampled_from(ACTIVATIONS))}(Z{i})"
        meaning[f"dZ{i}"] = draw(st.sampled_from([f"grad(Z{i})", f"jac(Z{i})", f"m * grad(Z{i})"]))
        meaning[f"dW{i}"] = draw(st.sampled_from([f"grad(W{i})", f"jac(W{i})"]))
        previous = f"A{i}"
    forward["J"] = draw(st.sampled_from(COSTS)).format(A=previous)
    names = [*params, *forward, *meaning, "X", "Y", "m"]
    claim_texts = st.one_of(
        st.lists(st.sampled_from([*names, *"+-*/@()", ".T", "1", "2", "sum(", ")", "np.dot("]),
                 min_size=1, max_size=8).map(" ".join),
        st.sampled_from([f"{previous} - Y", f"({previous} - Y) / m", "dZ1 @ X.T", "X @ dZ1",
                         "dZ1.T @ X.T", "dW1.T"]))
    claims = {n: draw(claim_texts) for n in draw(st.lists(st.sampled_from(sorted(meaning)),
                                                          max_size=3, unique=True))}
    data = {"name": "fuzz", "title": "generated", "dims": dims,
            "inputs": {"X": "n0, m", "Y": {"shape": f"n{layers}, m",
                                           "values": draw(st.sampled_from(VALUES))}},
            "params": params, "forward": forward, "meaning": meaning, "claims": claims}
    if draw(st.booleans()):
        data["sizes"] = {d: draw(st.integers(1, 6)) for d in dims}
    return data


SECTIONS = ["name", "title", "source", "dims", "inputs", "params", "scalars", "sizes", "forward",
            "meaning", "claims", "loss", "extra"]
junk_keys = st.one_of(st.sampled_from(["X", "W1", "Z1", "J", "m", "n0", "sum", "grad", "np", "T",
                                       "__class__", "_x", "1a", "", "a b", "a\nb", "\r", "shape",
                                       "values"]),
                      st.text(max_size=6))
junk_scalars = st.one_of(st.integers(-2**70, 2**70), st.floats(), st.booleans(),
                         st.sampled_from(["", "n0, m", "m", "1, 1", "0, 1", "100000, 100000",
                                          "sum(X)", "X @ X.T", "grad(W1)", "__import__('os')",
                                          "real", "binary", "J", "A1", "n0 + 1, m", "-1, m"]),
                         st.text(max_size=12))
junk_values = st.recursive(junk_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(junk_keys, inner, max_size=3)), max_leaves=6)


@st.composite
def broken_networks(draw):
    """A valid model file with one to three structural changes."""
    data = draw(networks())
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(SECTIONS))
        change = draw(st.integers(0, 3))
        if change == 0:
            data.pop(section, None)
        elif change == 1 or not isinstance(data.get(section), dict) or not data[section]:
            data[section] = draw(junk_values)
        elif change == 2:
            data[section][draw(junk_keys)] = draw(junk_values)
        else:
            table = data[section]
            key = draw(st.sampled_from(sorted(table)))
            table[draw(junk_keys)] = table.pop(key)
    return data


BUILTIN_TEXTS = {name: (MODELS / f"{name}.toml").read_text(encoding="utf-8") for name in builtin_names()
                 if (MODELS / f"{name}.toml").exists()}           # ninja is a code file (.py)


@st.composite
def mutated_builtins(draw):
    """A built-in model file with one to three random line or character edits."""
    lines = BUILTIN_TEXTS[draw(st.sampled_from(sorted(BUILTIN_TEXTS)))].splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        edit = draw(st.integers(0, 6))
        if edit == 0:
            del lines[i]
        elif edit == 1:
            lines.insert(j, lines[i])
        elif edit == 2:
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == 3 and "=" in lines[i]:
            key = lines[i].split("=")[0]
            lines[i] = f"{key}= {toml_value(draw(st.one_of(junk_scalars, formulas())))}"
        elif edit == 4 and "=" in lines[i]:
            lines[i] = f"{draw(junk_keys.map(toml_key))} ={lines[i].split('=', 1)[1]}"
        elif edit == 5:
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + draw(st.text(max_size=3)) + lines[i][k + 1:]
        elif edit == 6 and lines[i].startswith("["):
            lines[i] = f"[{draw(st.sampled_from(SECTIONS))}]"
    return "\n".join(lines) + "\n"


model_texts = st.one_of(networks().map(to_toml), broken_networks().map(to_toml),
                        mutated_builtins(), st.text(max_size=200))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def write(folder, text):
    path = folder / "model.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return str(path)


def loads_or_refuses(path):
    try:
        model = tracegrad.load(path)
    except tracegrad.ModelError as e:
        one_line(str(e))
        assert str(e).startswith(path), str(e)
        return None
    return model


@fuzz(400, cost=10)
@given(st.one_of(model_texts, st.binary(max_size=200)))
def test_load(folder, text):
    loads_or_refuses(write(folder, text))


@fuzz(50, cost=20)
@given(networks())
def test_load_generated(folder, data):
    """The generator's untouched networks are valid models."""
    assert loads_or_refuses(write(folder, to_toml(data))) is not None


@fuzz(15, cost=300)
@given(model_texts)
def test_cli_check_model_file(folder, text):
    run(["check", write(folder, text)])


ARGV_TOKENS = ["list", "derive", "verify", "check", "sudeep", "vardhan", "nosuch", "", "-",
               "--wrt", "W1", "W1,b9", ",", "--layout", "gradient", "sideways", "--expand",
               "--steps", "--format", "json", "text", "pdf", "--json", "--seed", "3", "-1", "x",
               "--sizes", "m=2", "m=0", "n0=100000,m=100000", "--claim", "delta3 = x3 - t",
               "dE_dW1 = delta1 @ x0.T", "= 1", "--loss", "mse", "nll", "--", "--no-such-option",
               "\x00", "é"]    # not --help (argparse exits 0 by design), not --plot (writes a file)


@fuzz(60, cost=100)
@given(st.lists(st.sampled_from(ARGV_TOKENS), max_size=7))
def test_cli_arguments(argv):
    run(argv)
