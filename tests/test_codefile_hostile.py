"""Code files are read, never run: hostile files are refused with one line naming the line and
the construct, and nothing in them is executed (a file that would create a marker file leaves
no marker).  The reader is fuzzed like the model-file reader (derandomized hypothesis)."""
import io
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tracegrad
from tracegrad.cli import main

from codefiles import STYLES

HEADER = 'import numpy as np\nSHAPES = {"X": "N, D", "W": "D, K"}\nDATA = {"X": "real"}\nSIZES = {"N": 3, "D": 2, "K": 2}\n'
FORWARD = "def forward(X, W):\n    Z = X @ W\n    return np.sum(Z * Z)\n"


def hostile(marker):
    touch = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "import os": (f"import os\nos.system('touch {marker}')\n" + HEADER + FORWARD, "line 1: import of 'os'"),
        "import subprocess in a function": (HEADER + f"def forward(X, W):\n    import subprocess\n    return np.sum(X @ W)\n",
                                            "line 6: an import inside a function"),
        "from os import": ("from os import system\n" + HEADER + FORWARD, "import of 'os.system'"),
        "numpy under another name": ("import numpy as nmp\n" + FORWARD, "import of 'numpy' as 'nmp'"),
        "open": (HEADER + f"def forward(X, W):\n    {touch}\n    return np.sum(X @ W)\n", "call of 'open'"),
        "exec": (HEADER + f"def forward(X, W):\n    exec({touch!r})\n    return np.sum(X @ W)\n", "call of 'exec'"),
        "eval at top level": (HEADER + f"Y = eval({touch!r})\n" + FORWARD, "call of 'eval'"),
        "attribute walk": (HEADER + "def forward(X, W):\n    k = ().__class__.__bases__[0].__subclasses__()\n    return np.sum(X @ W)\n",
                           "is not allowed (no dunder names)"),
        "dunder import": (HEADER + "def forward(X, W):\n    m = __import__('os')\n    return np.sum(X @ W)\n",
                          "name '__import__' is not allowed"),
        "decorator": (HEADER + "def deco(f):\n    return f\n@deco\ndef forward(X, W):\n    return np.sum(X @ W)\n",
                      "a decorator on 'forward'"),
        "while True": (HEADER + "def forward(X, W):\n    while True:\n        X = X + 1\n    return np.sum(X @ W)\n",
                       "line 6: a while loop is not allowed"),
        "lambda": (HEADER + "def forward(X, W):\n    f = lambda a: a\n    return np.sum(f(X) @ W)\n", "lambda is not allowed"),
        "class": (HEADER + "class Net:\n    pass\n" + FORWARD, "line 5: a class is not allowed"),
        "comprehension": (HEADER + "def forward(X, W):\n    a = [x for x in X]\n    return np.sum(X @ W)\n",
                          "a comprehension is not allowed"),
        "recursion": (HEADER + "def f(X):\n    return f(X)\ndef forward(X, W):\n    return np.sum(f(X) @ W)\n",
                      "recursion: 'f' calls itself"),
        "huge unroll": (HEADER + "def forward(X, W):\n    s = X @ W\n    for t in range(1000000):\n        s = s + 1\n    return np.sum(s)\n",
                        "a loop of 1000000 iterations, more than 1000"),
        "nested unroll": (HEADER + "def forward(X, W):\n    s = X @ W\n    for a in range(900):\n        for b in range(900):\n            pass\n    return np.sum(s)\n",
                          "more than 20000 statements"),
        "many definitions": (HEADER + "def forward(X, W):\n    s = X @ W\n    for a in range(900):\n        s = s + 1\n    return np.sum(s)\n",
                             "more than 200 definitions"),
        "try": (HEADER + "def forward(X, W):\n    try:\n        pass\n    except Exception:\n        pass\n    return np.sum(X @ W)\n",
                "try is not allowed"),
        "with": (HEADER + f"def forward(X, W):\n    with open('x') as f:\n        pass\n    return np.sum(X @ W)\n", "with is not allowed"),
        "global": (HEADER + "def forward(X, W):\n    global Z\n    return np.sum(X @ W)\n", "global is not allowed"),
        "module-level code": (HEADER + "W0 = np.zeros((2, 2))\n" + FORWARD, "module-level 'W0' must be a literal"),
        "if main": (HEADER + FORWARD + "if __name__ == '__main__':\n    forward(1, 2)\n", "name '__name__' is not allowed"),
        "f-string": (HEADER + "def forward(X, W):\n    print(f'{X}')\n    return np.sum(X @ W)\n", "an f-string is not allowed"),
        "getattr": (HEADER + "def forward(X, W):\n    g = getattr(np, 'sum')\n    return np.sum(X @ W)\n", "call of 'getattr'"),
        "star args": (HEADER + "def forward(*args):\n    return 1\n", "plain parameters only"),
        "branch on data": (HEADER + "def forward(X, W):\n    if np.sum(X) > 0:\n        X = -X\n    return np.sum(X @ W)\n",
                           "an 'if' must be decided before running"),
        "loop over an array": (HEADER + "def forward(X, W):\n    s = 0\n    for x in X:\n        s = s + 1\n    return s\n",
                               "a loop runs over range"),
        "detach": (HEADER + "def forward(X, W):\n    return np.sum((X @ W).detach())\n", "detach() stops gradients"),
        "repeated labels +=": ('import numpy as np\nSHAPES = {"y": "N", "C": "K, D", "X": "N, D"}\nDATA = {"y": "labels of K", "X": "real"}\n'
                               'def forward(y, C, X):\n    return np.sum(C[y] * X)\n'
                               'def backward(y, C, X):\n    dC = np.zeros_like(C)\n    dC[y] += X\n',
                               "use np.add.at"),
        "not Python": ("def forward(:\n", "line 1: not valid Python"),
        "loop over a dimension without a size": (HEADER.replace('SIZES = {"N": 3, "D": 2, "K": 2}\n', "")
                                                 + "def forward(X, W):\n    s = X @ W\n    for t in range(D):\n        s = s + 1\n    return np.sum(s)\n",
                                                 "give D a size in SIZES"),
    }


CASES = sorted(hostile("MARKER"))


@pytest.mark.parametrize("case", CASES)
def test_hostile_file_is_refused_and_nothing_runs(tmp_path, case):
    marker = tmp_path / "ran"
    text, words = hostile(marker)[case]
    path = tmp_path / "net.py"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(tracegrad.ModelError) as err:
        tracegrad.load(str(path))
    message = str(err.value)
    assert message.startswith(str(path)) and words in message and "\n" not in message, message
    out, errors = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(errors):
        code = main(["check", str(path)])
    assert code == 2 and errors.getvalue().count("\n") == 1 and "Traceback" not in errors.getvalue()
    assert not marker.exists(), "something in the file was executed"


def test_every_refusal_names_a_line(tmp_path):
    """Each refusal of a construct inside the file says where (the file-level ones excepted)."""
    for case, (text, words) in hostile(tmp_path / "ran").items():
        path = tmp_path / "f.py"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(tracegrad.ModelError) as err:
            tracegrad.load(str(path))
        assert "line " in str(err.value), (case, str(err.value))


# ---------------------------------------------------------------- fuzzing the reader

def fuzz(examples):
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    phases=[p for p in Phase if p != Phase.shrink], suppress_health_check=list(HealthCheck))


TOKENS = ["X", "W", "Z", "N", "D", "t", "dZ", "dW", "h", "np.sum", "np.maximum", "np.zeros_like", ".T", ".copy()",
          "@", "+", "-", "*", "/", "**", "+=", "-=", "=", "(", ")", "[", "]", ":", ",", "0", "1", "2",
          "range", "for", "in", "if", "return", "def", "\n", "\n    ", "\n        ", "axis=0", "keepdims=True",
          "X.shape[0]", "h[h <= 0] = 0", "__class__", "open('x')", "import os", "lambda", "while", "{}", "[]",
          "hs[t]", "len(X)", "reversed(", "grads['W']", "np.add.at(", "y", "C[y]", "'", "\"", "#", "\\"]


WORDS = ["X", "W1", "W2", "b1", "h", "dh", "N", "D", "H", "t", "0", "1", "2", "sum", "mean", "max", "T",
         "copy", "view", "shape", "axis", "keepdims", "range", "len", "reversed", "y", "Yb", "C", "np",
         "torch", "F", "dout", "cache", "grads", "hs", "xs", "reg", "eps", "var", "sqrt", "exp", "log"]


@st.composite
def mutated_styles(draw):
    """A style file with a few line- and token-level edits."""
    lines = STYLES[draw(st.sampled_from(sorted(STYLES)))].splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.integers(0, 6))
        words = list(re.finditer(r"\b\w+\b", lines[i]))
        if edit >= 5 and words:               # one word for another: mostly still Python
            w = draw(st.sampled_from(words))
            lines[i] = lines[i][:w.start()] + draw(st.sampled_from(WORDS)) + lines[i][w.end():]
        elif edit == 0:
            del lines[i]
        elif edit == 1:
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif edit == 2:
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + draw(st.sampled_from(TOKENS)) + lines[i][k:]
        elif edit == 3:
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + lines[i][k + draw(st.integers(1, 6)):]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


code_texts = st.one_of(mutated_styles(), st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join),
                       st.text(max_size=200), st.sampled_from([HEADER + FORWARD]))


def loads_or_refuses(path):
    try:
        return tracegrad.load(str(path))
    except tracegrad.TracegradError as e:
        message = str(e)
        assert message and "\n" not in message and "Traceback" not in message, repr(message)
        return None


@fuzz(250)
@given(code_texts)
def test_fuzz_load(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "net.py"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    loads_or_refuses(path)


@fuzz(12)
@given(mutated_styles())
def test_fuzz_cli_check(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "net.py"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["check", str(path)])
    assert code in (0, 1, 2) and "Traceback" not in err.getvalue()
    if code == 2:
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("tracegrad: error: ")
