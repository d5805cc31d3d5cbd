"""Regenerate the documentation from the program itself.

    python docs/regenerate.py            rewrite README.md, docs/*.md sessions and docs/functions.md
    python docs/regenerate.py --check    exit 1 (and name the drift) where a file is out of date

* A **session** is a fenced block whose first line starts with ``$ ``: each ``$ command`` is run
  (bash, in a scratch directory holding a copy of docs/, with the ``tracegrad`` of the Python
  that runs this script first on PATH) and the lines up to the next ``$`` become its output.
  Blocks that do not start with ``$ `` (set-up commands, sketches) are left as they are.
* ``docs/functions.md`` is written from the formula parser's own tables (its functions, their
  library and method spellings) and from what the parser answers for each operator and each
  refused construct.

tests/test_docs.py runs the same functions and compares, so a stale block fails the tests.
"""
import contextlib
import inspect
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


# ------------------------------------------------------------------ sessions

def session_files():
    return [ROOT / "README.md"] + sorted(p for p in DOCS.glob("*.md") if p.name != "functions.md")


def sessions(text):
    """[(start, end, [(command, output lines)])] for each session block of ``text``."""
    out = []
    for block in FENCE.finditer(text):
        body = block.group(1)
        if not body.startswith("$ "):
            continue
        runs = []
        for line in body.splitlines():
            if line.startswith("$ "):
                runs.append((line[2:], []))
            else:
                runs[-1][1].append(line)
        out.append((block.start(1), block.end(1), runs))
    return out


class Scratch:
    """A scratch directory with a copy of docs/, where session commands run."""

    def __enter__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="tracegrad-docs-"))
        shutil.copytree(DOCS, self.dir / "docs", ignore=shutil.ignore_patterns("__pycache__", "*.md"))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, command):
        """The output lines of ``command`` (stdout and stderr, as a terminal shows them).  A plain
        ``tracegrad ...`` runs in this process (the same ``main``, without a new interpreter)."""
        if re.fullmatch(r"tracegrad( [^|&;<>$`\\*?]*)?", command):
            return self.run_here(shlex.split(command)[1:])
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "COLUMNS": "100"}
        done = subprocess.run(["bash", "-c", command], cwd=self.dir, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)
        return done.stdout.rstrip("\n").splitlines()

    def run_here(self, argv):
        from tracegrad.cli import main
        out, cwd = io.StringIO(), os.getcwd()
        os.chdir(self.dir)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                main(argv)
        finally:
            os.chdir(cwd)
        return out.getvalue().rstrip("\n").splitlines()


def regenerated(text, scratch):
    """``text`` with every session's output replaced by what its commands print now."""
    pieces, last = [], 0
    for start, end, runs in sessions(text):
        body = "".join(f"$ {command}\n" + "".join(f"{line}\n" for line in scratch.run(command))
                       for command, _ in runs)
        pieces += [text[last:start], body]
        last = end
    return "".join(pieces) + text[last:]


# ------------------------------------------------------------------ functions.md

# What each function is, in a few words (the tables give the names and signatures).
MEANING = {
    "dot": "matrix product (numpy's dot)", "matmul": "matrix product, as @", "add": "a + b",
    "subtract": "a - b", "multiply": "entry-wise a * b", "divide": "entry-wise a / b",
    "power": "entry-wise a ** b", "square": "entry-wise a ** 2", "transpose": "a.T",
    "outer": "outer product of two vectors", "vstack": "blocks on top of each other",
    "hstack": "blocks side by side", "block": "a grid of blocks, as np.block",
    "concatenate": "blocks along an axis", "ones": "a matrix of ones", "zeros": "a matrix of zeros",
    "ones_like": "ones of a's shape", "zeros_like": "zeros of a's shape", "eye": "the identity",
    "sum": "sum of all entries (1×1), or along an axis", "mean": "mean, of all entries or along an axis",
    "var": "variance (biased unless ddof/unbiased say otherwise)", "std": "standard deviation",
    "max": "maximum along an axis", "amax": "maximum along an axis", "argmax": "index of the maximum",
    "softmax": "softmax per column (axis=0, the default) or per row (axis=1)",
    "log_softmax": "log of softmax (what codegen writes, as log-sum-exp)",
    "log_sigmoid": "log σ (what codegen writes, stably)", "logsigmoid": "log σ (PyTorch's name)",
    "maximum": "entry-wise maximum (maximum(0, A) is relu)", "minimum": "entry-wise minimum",
    "clip": "entry-wise clip to [lo, hi]", "where": "entry-wise choice by a condition",
    "copy": "the same value", "one_hot": "integer labels as one-hot rows", "trace": "tr(a)",
    "inv": "matrix inverse", "det": "determinant", "logdet": "log of the determinant",
    "grad": "∇X J: the derivative, in the shape of X", "jac": "dJ/dX in numerator layout: grad(X).T",
    "log": "entry-wise natural log", "exp": "entry-wise exp", "tanh": "entry-wise tanh",
    "sqrt": "entry-wise square root", "abs": "entry-wise |a|", "absolute": "entry-wise |a|",
    "sigmoid": "entry-wise 1 / (1 + exp(-a))", "relu": "entry-wise max(a, 0)",
    "relu_prime": "relu′: the step 1[a > 0]", "step": "the step 1[a > 0]",
    "sigmoid_prime": "σ′(a) = σ(a) ∘ (1 − σ(a))", "tanh_prime": "tanh′(a) = 1 − tanh(a)²",
}


def signature(name, spec):
    mode, handler = spec
    if handler is None:
        return f"{name}(name)"
    params = list(inspect.signature(handler).parameters.values())[1:]      # after "where"
    shown = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            shown.append(f"*{p.name}")
        elif p.default is p.empty:
            shown.append(p.name)
        else:
            shown.append(f"{p.name}={p.default!r}")
    return f"{name}({', '.join(shown)})"


def namespaces(f):
    """{prefix path: {spelling: spec}}: the parser's library tables."""
    if hasattr(f, "NAMESPACES"):
        return f.NAMESPACES
    numpy = {n: s for n, s in f.FUNCTIONS.items() if n not in f._NOT_NUMPY}
    linalg = {n: f.FUNCTIONS[n] for n in f._LINALG}
    return {**{(p,): numpy for p in f._NUMPY}, **{(p, "linalg"): linalg for p in f._NUMPY}}


def spellings(name, spec, tables):
    return [".".join((*path, alias)) for path, table in tables.items()
            for alias, other in table.items() if other is spec or alias == name]


def answers(f, formulas):
    """What the parser says to each formula: 'allowed', or its error message."""
    import sympy as sp
    names = {"A": sp.MatrixSymbol("A", 2, 2), "B": sp.MatrixSymbol("B", 2, 2)}
    out = {}
    for text in formulas:
        try:
            f.parse_formula(text, names)
            out[text] = "allowed"
        except Exception as e:       # the parser's own message is the documentation
            out[text] = str(e)
    return out


def row(*cells):
    """A Markdown table row (a | inside a cell is escaped)."""
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def functions_page():
    from tracegrad.language import formula as f
    tables = namespaces(f)
    methods = getattr(f, "METHODS", {})
    lines = ["# Functions and spellings in formulas", "",
             "Generated by `docs/regenerate.py` from the formula parser's own tables "
             "(`tracegrad.language.formula`); `tests/test_docs.py` fails when this page and the "
             "tables differ. Formulas are numpy-like text (DESIGN §4, [model files](model-files.md)); "
             "nothing in them is ever run as Python.", "",
             "## Functions", "",
             "| function | meaning | also written |", "|---|---|---|"]
    for name, spec in f.FUNCTIONS.items():
        also = spellings(name, spec, tables) + [f"A.{m}(…)" for m, other in methods.items()
                                                 if other is spec or m == name]
        lines.append(row(f"`{signature(name, spec)}`", MEANING.get(name, ""),
                         ", ".join(f"`{a}`" for a in dict.fromkeys(also))))
    extra = sorted({(path, alias) for path, table in tables.items() for alias in table
                    if alias not in f.FUNCTIONS})
    if extra:
        lines += ["", "Library spellings with their own names: "
                  + ", ".join(f"`{'.'.join((*path, alias))}`" for path, alias in extra) + "."]
    refused = getattr(f, "REFUSED_METHODS", {})
    if refused:
        lines += ["", "## Refused methods", "", "| method | why |", "|---|---|"]
        lines += [row(f"`.{m}()`", why) for m, why in refused.items()]
    ops = ["A @ B", "A * B", "A / B", "A + B", "A - B", "A ** 2", "-A", "A.T", "A[1:, :]", "A[0, 0]",
           "A > B", "A >= B", "A < B", "A <= B", "A == B", "A != B", "A // B", "A % B", "A & B", "A | B", "~A"]
    lines += ["", "## Operators", "", "What the parser answers for each operator:", "",
              "| formula | answer |", "|---|---|"]
    lines += [row(f"`{t}`", a) for t, a in answers(f, ops).items()]
    constructs = ["lambda: A", "[A for A in A]", "f'{A}'", "(a := A)", "A if A else B", "A and B",
                  "{'a': A}", "(A, B)", "__import__('os')", "A.shape", "open('x')"]
    lines += ["", "## Refused constructs", "", "| formula | answer |", "|---|---|"]
    lines += [row(f"`{t}`", a) for t, a in answers(f, constructs).items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main

def targets():
    """{path: its text as it should be now}."""
    out = {DOCS / "functions.md": functions_page()}
    with Scratch() as scratch:
        for path in session_files():
            out[path] = regenerated(path.read_text(encoding="utf-8"), scratch)
    return out


def main(argv):
    stale = []
    for path, text in targets().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if '--check' in argv else 'rewrote'}: {path.relative_to(ROOT)}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
