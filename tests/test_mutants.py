"""Mutation campaign over the claims checker (issue 11 §2).

Every published claim of every built-in model, and every derived gradient printed as a formula,
is mutated the way people slip: an operand transposed or not, operands swapped, a factor
dropped or added (1/m, 2, a dimension), a layer index moved, a dimension exchanged, a
comparison flipped, an axis changed.  An oracle of its own decides what each mutant IS: it
evaluates mutant and truth at a point it draws itself (other sizes, other seed).  Then the
checker's verdict is pinned: a mutant that differs is `fails` (or `error` when it cannot be read
at all), an equivalent rewrite `holds`.  `inconclusive` is allowed only where the oracle's own
values are not finite.  The kill rate is printed with ``pytest -s``.
"""
import ast
import dataclasses
import random
import re

import numpy as np
import pytest
import sympy as sp

import tracegrad
from tracegrad.model import MODELS
from tracegrad.checking.claims import Checker
from tracegrad.checking.points import draw_point
from tracegrad.errors import TracegradError
from tracegrad.numeric import evaluate
from tracegrad.symbolic.printing import to_text

PER_FORMULA = 10         # mutants sampled per formula (seeded)
ORACLE_SIZES = (11, 7, 5, 13, 3, 9, 4, 6, 8, 10)


def mutants(text, names, dims):
    """Every single-slip mutant of a formula's text (unparsed from its ast)."""
    tree = ast.parse(text, mode="eval")
    nodes = list(ast.walk(tree))
    out = []

    def variant(i, make):
        copy = ast.parse(text, mode="eval")
        target = list(ast.walk(copy))[i]
        replaced = make(target)
        if replaced is None:
            return
        for parent in ast.walk(copy):
            for field, value in ast.iter_fields(parent):
                if value is target:
                    setattr(parent, field, replaced)
                elif isinstance(value, list) and any(v is target for v in value):
                    setattr(parent, field, [replaced if v is target else v for v in value])
        if copy.body is target:
            copy.body = replaced
        out.append(ast.unparse(copy))

    for i, node in enumerate(nodes):
        if isinstance(node, ast.Name) and node.id in names and node.id not in dims:
            variant(i, lambda n: ast.Attribute(n, "T", ast.Load()))
            match = re.fullmatch(r"(.*?)(\d+)", node.id)
            if match:
                for k in (int(match.group(2)) - 1, int(match.group(2)) + 1):
                    if f"{match.group(1)}{k}" in names:
                        variant(i, lambda n, k=k: ast.Name(f"{match.group(1)}{k}", ast.Load()))
        if isinstance(node, ast.Name) and node.id in dims:
            for other in dims:
                if other != node.id:
                    variant(i, lambda n, o=other: ast.Name(o, ast.Load()))
        if isinstance(node, ast.Attribute) and node.attr == "T":
            variant(i, lambda n: n.value)
        if isinstance(node, ast.BinOp):
            variant(i, lambda n: ast.BinOp(n.right, n.op, n.left))
            if isinstance(node.op, (ast.Mult, ast.Div, ast.MatMult)):
                variant(i, lambda n: n.left)
                variant(i, lambda n: n.right if not isinstance(n.op, ast.Div) else None)
            for op, factor in ((ast.Mult, ast.Constant(2)), (ast.Div, ast.Name(dims[0], ast.Load()))):
                variant(i, lambda n, op=op, f=factor: ast.BinOp(n, op(), f))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):   # equivalent: (Yᵀ Xᵀ)ᵀ
            variant(i, lambda n: ast.Attribute(ast.BinOp(ast.Attribute(n.right, "T", ast.Load()), ast.MatMult(),
                                                         ast.Attribute(n.left, "T", ast.Load())), "T", ast.Load()))
            if isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.MatMult):   # (A B) C = A (B C)
                variant(i, lambda n: ast.BinOp(n.left.left, ast.MatMult(), ast.BinOp(n.left.right, ast.MatMult(), n.right)))
        if isinstance(node, ast.Compare):
            flip = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt}
            variant(i, lambda n: ast.Compare(n.left, [flip.get(type(n.ops[0]), ast.Gt)()], n.comparators))
        if isinstance(node, ast.keyword) and node.arg == "axis" and isinstance(node.value, ast.Constant):
            variant(i, lambda n: ast.keyword("axis", ast.Constant(1 - n.value.value)))
    return [m for m in dict.fromkeys(out) if m != text]


class Oracle:
    """What a formula is, by evaluation at a point the checker never sees."""

    def __init__(self, checker, seed=99):
        model = checker.model
        dims = {d: ORACLE_SIZES[k % len(ORACLE_SIZES)] for k, d in enumerate(model.dims.values())}
        for d, v in model.sizes.items():         # fixed model sizes (e.g. one example) stay fixed
            if v == 1:
                dims[d] = 1
        self.checker = checker
        self.point = draw_point(model, dims, np.random.default_rng(seed))

    def value(self, expr):
        with np.errstate(all="ignore"):
            return np.asarray(evaluate(self.checker.program.expand(expr), self.point), dtype=float)

    def judge(self, name, text):
        """'error' (cannot be read), 'fails' (differs), 'holds' (equivalent) or 'unknown'."""
        try:
            claim, truth = self.checker.truth.parse(text), self.checker.truth[name]
        except TracegradError:
            return "error"
        from tracegrad.checking.claims import as_scalars
        claim, truth = as_scalars(claim, truth)
        a, b = self.value(claim), self.value(truth)
        if a.shape != b.shape:
            return "fails"
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            return "unknown"
        scale = max(1.0, float(np.max(np.abs(b), initial=0)))
        return "holds" if np.allclose(a, b, rtol=1e-7, atol=1e-9 * scale) else "fails"


def campaign(checker, formulas):
    """(tally, wrong verdicts) for every sampled mutant of every (name, formula)."""
    oracle, rng = Oracle(checker), random.Random(0)
    names = set(checker.truth)
    dims = list(checker.model.dims)
    tally, wrong = {"killed": 0, "alive": 0, "equivalent held": 0, "equivalent": 0, "unknown": 0}, []
    for name, text in formulas:
        pool = mutants(text, names, dims)
        for m in rng.sample(pool, min(PER_FORMULA, len(pool))):
            truth = oracle.judge(name, m)
            verdict = checker.check(name, m).verdict
            if truth == "unknown":
                tally["unknown"] += 1
            elif truth == "holds":
                tally["equivalent"] += 1
                tally["equivalent held"] += verdict == "holds"
                if verdict != "holds":
                    wrong.append((name, m, truth, verdict))
            else:
                killed = verdict == truth or (truth == "fails" and verdict == "error" and
                                              "do not compose" in checker.check(name, m).evidence)
                tally["killed" if killed else "alive"] += 1
                if not killed:
                    wrong.append((name, m, truth, verdict))
    return tally, wrong


def report(label, tally):
    total = tally["killed"] + tally["alive"]
    print(f"\n{label}: {tally['killed']} of {total} non-equivalent mutants killed; "
          f"{tally['equivalent held']} of {tally['equivalent']} equivalent ones hold; {tally['unknown']} unknown")


# gradients that are 0 in exact arithmetic: every mutant that scales them is equivalent, and the
# checker's verdict on them is pure cancellation (inconclusive)
ZERO_GRADIENTS = {("ninja", "b1")}         # b1 feeds batch norm, which subtracts the batch mean

# models given as model files: a code file's claims are statement histories, not one formula
MODEL_FILES = [p.stem for p in sorted(MODELS.glob("*.toml"))]


@pytest.mark.parametrize("name", MODEL_FILES)
def test_mutated_published_claims(name):
    model = tracegrad.load(name)
    checker = Checker(model, explain=False)
    tally, wrong = campaign(checker, list(model.claims.items()))
    report(f"{name} claims", tally)
    assert not wrong, wrong[:5]
    assert tally["killed"] >= 10


@pytest.mark.parametrize("name", tracegrad.builtin_names())
def test_mutated_derived_results(name):
    """Each gradient the engine derives, printed (numpy), as a claim about grad(x) — then mutated."""
    base = tracegrad.load(name)
    d = base.derivation
    wanted = [x for x in d.wrt if isinstance(x, sp.MatrixSymbol) and (name, x.name) not in ZERO_GRADIENTS]
    meanings = {f"grad_{x.name}": f"grad({x.name})" for x in wanted}
    model = dataclasses.replace(base, meanings={**base.meanings, **meanings}, claims={})
    checker = Checker(model, explain=False)
    formulas = [(f"grad_{x.name}", to_text(d.gradient(x, "named"), "numpy")) for x in wanted]
    for n, f in formulas:                       # the printed result itself holds
        assert checker.check(n, f).verdict == "holds", (n, f)
    tally, wrong = campaign(checker, formulas)
    report(f"{name} derived", tally)
    assert not wrong, wrong[:5]
