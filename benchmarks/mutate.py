"""AST mutation testing of one source file: do the given tests fail when the code is wrong?

    python benchmarks/mutate.py FILE --tests "tests/test_a.py tests/test_b.py"
                                [--sample 60] [--seed 0] [--timeout SECONDS] [--list] [--json OUT]
                                [--only 12,40]      # re-run given mutants (a report's #numbers)

Each mutant changes one thing in FILE:

    constant      a number n becomes n + 1 (0 → 1, 1 → 2, floats × 2), True ↔ False
    comparison    < ↔ <=, > ↔ >=, == ↔ !=, in ↔ not in, is ↔ is not
    arithmetic    + ↔ −, * ↔ /, ** → *, // → /, % → *, unary −x → x; and ↔ or; not x → x
    return        return X → return None
    arguments     f(a, b, ...) → f(b, a, ...)
    statement     a statement inside a function body deleted (replaced by ``pass``)

Docstrings, other strings, imports and decorators are left alone.  All candidates are listed in
source order; ``--sample N`` draws N of them with ``--seed``.  For each mutant the tests run in a
fresh ``python -m pytest -x -q`` whose import system serves the mutated text for FILE (the file on
disk is never touched, so other work in the tree can go on).  Verdicts:

    killed     the tests fail (or run past ``--timeout``, reported as timeout)
    survived   every test passes: either a missing test or an equivalent mutant (judge by hand)
    invalid    the mutant does not compile, or unparses to the original code

The tests are first run on the unmutated file (they must pass); the default timeout is three
times that run, at least 30 s.  The kill rate is killed / (killed + survived).  Survivors are
listed with their line and change, to be triaged: a survivor that changes no behaviour is
equivalent; any other one wants a test (re-run it with ``--only``).  Mutant numbers depend only
on FILE's text, so a sample is reproducible while the file is unchanged.  Run on demand, never
in the test suite.  Example (the figures in BENCHMARKS.md):

    python benchmarks/mutate.py numeric/errorbound.py \
        --tests "tests/test_errorbound.py tests/test_gradcheck.py tests/test_numeric.py"
"""
import argparse
import ast
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BOOT = r"""
import importlib.abc, importlib.util, os, sys
target, mutant = os.path.realpath(sys.argv[1]), sys.argv[2]
source = open(mutant, encoding="utf-8").read()

class Loader(importlib.abc.SourceLoader):
    def __init__(self, path):
        self.path = path
    def get_filename(self, fullname):
        return self.path
    def get_data(self, path):
        if os.path.realpath(path) == target:
            if os.environ.get("MUTANT_LOADED"):
                open(os.environ["MUTANT_LOADED"], "w").close()
            return source.encode("utf-8")
        with open(path, "rb") as f:
            return f.read()

class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target_=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target_)
            if spec is not None:
                break
        else:
            return None
        if spec.origin and os.path.exists(spec.origin) and os.path.realpath(spec.origin) == target:
            spec.loader = Loader(spec.origin)
        return spec

sys.dont_write_bytecode = True
sys.meta_path.insert(0, Finder())
import pytest
sys.exit(pytest.main(sys.argv[3:]))
"""

SWAP_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAP_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult,
              ast.FloorDiv: ast.Div, ast.Mod: ast.Mult}


@dataclass
class Mutant:
    index: int
    line: int
    kind: str
    change: str
    verdict: str = ""
    seconds: float = 0.0


def docstrings(tree):
    """ids of the Constant nodes that are docstrings."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def sites(tree):
    """[(node path, kind, describe, apply)]: every mutation of ``tree``, in source order.
    ``apply(node)`` mutates a deep copy's node in place (or returns a replacement)."""
    skip = docstrings(tree)
    found = []
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                in_function.add(id(sub))
    decorators = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                  for d in node.decorator_list for sub in ast.walk(d)}
    for node in ast.walk(tree):
        if id(node) in decorators or isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and id(node) not in skip:
            v = node.value
            if isinstance(v, bool):
                found.append((node, line, "constant", f"{v} → {not v}", lambda n: setattr(n, "value", not n.value)))
            elif isinstance(v, int):
                found.append((node, line, "constant", f"{v} → {v + 1}", lambda n: setattr(n, "value", n.value + 1)))
            elif isinstance(v, float):
                found.append((node, line, "constant", f"{v} → {v * 2}", lambda n: setattr(n, "value", n.value * 2)))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in SWAP_COMPARE:
                    new = SWAP_COMPARE[type(op)]
                    found.append((node, line, "comparison", f"{type(op).__name__} → {new.__name__}",
                                  lambda n, k=k, new=new: n.ops.__setitem__(k, new())))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAP_BINOP:
            new = SWAP_BINOP[type(node.op)]
            found.append((node, line, "arithmetic", f"{type(node.op).__name__} → {new.__name__}",
                          lambda n, new=new: setattr(n, "op", new())))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            found.append((node, line, "arithmetic", f"{type(node.op).__name__} x → x", lambda n: n.operand))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            found.append((node, line, "arithmetic", f"{type(node.op).__name__} → {new.__name__}",
                          lambda n, new=new: setattr(n, "op", new())))
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and \
                not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            found.append((node, line, "arguments", "first two arguments swapped",
                          lambda n: n.args.__setitem__(slice(0, 2), [n.args[1], n.args[0]])))
        if isinstance(node, ast.Return) and node.value is not None and \
                not (isinstance(node.value, ast.Constant) and node.value.value is None):
            found.append((node, line, "return", "return X → return None",
                          lambda n: setattr(n, "value", ast.Constant(None))))
        if isinstance(node, ast.stmt) and id(node) in in_function and \
                not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)) and \
                not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            found.append((node, line, "statement", f"{type(node).__name__} deleted", lambda n: ast.Pass()))
    found.sort(key=lambda s: (s[1], s[2], s[3]))
    return found


def mutate(tree, site_index):
    """Source text of ``tree`` with mutation number ``site_index`` applied."""
    fresh = copy.deepcopy(tree)
    target, _, _, _, apply = sites(fresh)[site_index]
    replacement = apply(target)
    if replacement is not None:
        for parent in ast.walk(fresh):
            for field, value in ast.iter_fields(parent):
                if value is target:
                    setattr(parent, field, replacement)
                elif isinstance(value, list) and any(v is target for v in value):
                    value[[i for i, v in enumerate(value) if v is target][0]] = ast.copy_location(replacement, target)
    return ast.unparse(ast.fix_missing_locations(fresh))


def run_tests(target, source, tests, timeout, cwd):
    """(verdict, seconds, whether the tests imported the mutated file at all)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False, encoding="utf-8") as f:
        f.write(source)
    marker = f.name + ".loaded"
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", BOOT, str(target), f.name, "-x", "-q", "-p", "no:cacheprovider",
                               *tests], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout,
                              env={**os.environ, "MUTANT_LOADED": marker})
        verdict = "survived" if done.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        verdict = "timeout"
    finally:
        os.unlink(f.name)
    loaded = os.path.exists(marker)
    if loaded:
        os.unlink(marker)
    return verdict, time.perf_counter() - start, loaded


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--tests", required=True, help="pytest arguments, e.g. 'tests/test_x.py -k bound'")
    ap.add_argument("--sample", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--only", help="comma-separated mutant numbers (#n in a report) to run instead of a sample")
    ap.add_argument("--list", action="store_true", help="list the sampled mutants and stop")
    ap.add_argument("--json", help="write every mutant and its verdict to this file")
    args = ap.parse_args()
    target = Path(args.file).resolve()
    original = target.read_text(encoding="utf-8")
    tree = ast.parse(original)
    baseline_text = ast.unparse(tree)
    candidates = sites(tree)
    chosen = sorted(random.Random(args.seed).sample(range(len(candidates)), min(args.sample, len(candidates))))
    if args.only:
        chosen = sorted(int(i) for i in args.only.split(","))
    mutants = [Mutant(i, candidates[i][1], candidates[i][2], candidates[i][3]) for i in chosen]
    print(f"{target}: {len(candidates)} candidate mutants, {len(mutants)} sampled (seed {args.seed})")
    if args.list:
        for m in mutants:
            print(f"  #{m.index} line {m.line}: {m.kind}: {m.change}")
        return 0
    tests, cwd = args.tests.split(), Path.cwd()
    verdict, seconds, loaded = run_tests(target, baseline_text, tests, None, cwd)
    if verdict != "survived":
        print(f"the tests fail on the unmutated file ({seconds:.0f} s): fix them first")
        return 2
    if not loaded:
        print(f"the tests never import {target} (an installed copy rather than this file?)")
        return 2
    timeout = args.timeout or max(30.0, 3 * seconds)
    print(f"unmutated: tests pass in {seconds:.1f} s; timeout per mutant {timeout:.0f} s")
    for k, m in enumerate(mutants, 1):
        try:
            text = mutate(tree, m.index)
            compile(text, str(target), "exec")
        except (SyntaxError, ValueError, TypeError):
            text = None
        if text is None or text == baseline_text:
            m.verdict = "invalid"
        else:
            m.verdict, m.seconds, _ = run_tests(target, text, tests, timeout, cwd)
        print(f"  [{k}/{len(mutants)}] #{m.index} line {m.line} {m.kind}: {m.change}: {m.verdict} "
              f"({m.seconds:.0f} s)", flush=True)
    counts = {v: sum(m.verdict == v for m in mutants) for v in ("killed", "timeout", "survived", "invalid")}
    live = counts["killed"] + counts["timeout"] + counts["survived"]
    rate = (counts["killed"] + counts["timeout"]) / live if live else 1.0
    print(f"killed {counts['killed']}, timeout {counts['timeout']}, survived {counts['survived']}, "
          f"invalid {counts['invalid']}: kill rate {rate:.1%} of {live} compiled mutants")
    for m in mutants:
        if m.verdict == "survived":
            print(f"  survivor #{m.index} line {m.line}: {m.kind}: {m.change}   | "
                  f"{original.splitlines()[m.line - 1].strip()[:90]}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(m) for m in mutants], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
