"""The claims of a code file's backward pass (DESIGN §4b) and how they are checked.

Every value backward makes is a placeholder with a record (interpreter.py).  A claim is the
final value of a ``d``-name (``dW1``: grad(W1)), of an item ``grads["W1"]``, or of a MEANING
name; it is reported at the line that made that value.  Checking a claim expands its
placeholders, except those of other claims, which take their true values: an error is pinned
to the claim that makes it (DESIGN §4).
"""
import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass

import sympy as sp

from tracegrad.checking.claims import Checker, CheckReport, Truth
from tracegrad.symbolic.algebra import T, substitute
from tracegrad.symbolic.shapes import is_matrix, same_dim

from tracegrad.language.values import Vector, row_of
from tracegrad.language.codefile.arrays import Array, Container


@dataclass(frozen=True)
class CodeClaim:
    name: str
    meaning: str              # a formula over the file's names: grad(W1), or MEANING's text
    formula: str              # what the code wrote, for the report
    value: object             # a placeholder, a symbol, or an expression over placeholders
    line: int
    one_d: bool = False
    before_mask: "CodeClaim | None" = None   # the value before an in-place mask read afterwards


def collect(reader, scope, forward_symbols, meanings, skip=()):
    """The claims among the bindings of backward's ``scope``: {name: CodeClaim}."""
    found, seen = {}, {}
    for name, binding in scope.items():
        target = claimed(name, forward_symbols, meanings)
        if target is not None and isinstance(binding, Array) and name not in skip:
            found[name] = make(reader, name, target, binding)
            seen[id(binding)] = name
    for container, binding in scope.items():
        if not isinstance(binding, Container) or binding.kind != "dict":
            continue
        for key, item in binding.items.items():
            if isinstance(key, str) and key in forward_symbols and isinstance(item, Array) \
                    and id(item) not in seen:
                name = f"{container}['{key}']"
                found[name] = make(reader, name, f"grad({forward_symbols[key]})", item)
    return found


def claimed(name, forward_symbols, meanings):
    """The meaning of a claim named ``name``, or None for a helper."""
    if name in meanings:
        return meanings[name]
    if name.startswith("d") and name[1:] in forward_symbols:
        return f"grad({forward_symbols[name[1:]]})"
    return None


def make(reader, name, meaning, array, value=None):
    """The claim of ``array``'s final value (or of ``value``, one of its placeholders)."""
    whole = array.value if value is None else value
    inner = row_of(whole)
    record = reader.records.get(inner)
    if record is None:
        line, formula = reader.lines.get(name, reader.line), str(inner)
    else:
        line, formula = record.line, history(reader, inner)
    before = None
    if value is None and record is not None and record.kind == "mask" and read_later(reader, inner):
        # dh[h <= 0] = 0, then dW1 = X.T @ dh: after the mask dh may be the gradient of the
        # relu's argument; the value before the mask is checked too
        earlier = inner
        while earlier is not None and reader.records[earlier].kind == "mask":
            earlier = previous(reader, earlier)
        if earlier is not None:
            before = make(reader, name, meaning, array, Vector(earlier) if isinstance(whole, Vector) else earlier)
    return CodeClaim(name, meaning, formula, inner, line, isinstance(whole, Vector), before)


def history(reader, placeholder):
    """How the code made a value: its statements in order, repeats counted
    (``np.zeros_like(W); dW += x.T @ d (×3)``)."""
    texts = []
    while placeholder is not None:
        texts.append(reader.records[placeholder].text)
        placeholder = previous(reader, placeholder)
    out = []
    for text in reversed(texts):
        if out and out[-1][0] == text:
            out[-1][1] += 1
        else:
            out.append([text, 1])
    return "; ".join(t if k == 1 else f"{t} (×{k})" for t, k in out)


def previous(reader, placeholder):
    """The earlier value of the same variable that ``placeholder``'s value was made from."""
    record = reader.records[placeholder]
    for s in getattr(row_of(record.value), "free_symbols", ()):
        if s in reader.records and reader.records[s].name == record.name:
            return s
    return None


def read_later(reader, placeholder):
    """Whether a value of another variable was made from ``placeholder``."""
    own = reader.records[placeholder].name
    return any(placeholder in row_of(r.value).free_symbols for r in reader.records.values()
               if r.name != own and hasattr(row_of(r.value), "free_symbols"))


class Resolver:
    """Expands placeholders to the values that made them; other claims' values are true values."""

    def __init__(self, records, claims, truth):
        self.records, self.truth = records, truth
        # a value masked in place and read afterwards is read as written: which gradient it is
        # depends on the mask (dh[h <= 0] = 0 makes dh the gradient of relu's argument)
        self.claim_of = {c.value: c.name for c in claims.values() if c.value in records and c.before_mask is None}
        self.memo = {}

    def expression(self, claim):
        return self.expand(claim.value, claim.name)

    def expand(self, value, own):
        placeholders = [s for s in getattr(value, "free_symbols", ()) if s in self.records]
        if not placeholders:
            return value
        rule = {}
        for p in placeholders:
            other = self.claim_of.get(p)
            if other is not None and other != own:
                rule[p] = self.oriented(self.truth[other], p)
            else:
                key = (p, own)
                if key not in self.memo:
                    self.memo[key] = self.expand(self.records[p].value, own)
                rule[p] = self.memo[key]
        return substitute(value, rule)

    @staticmethod
    def oriented(true, placeholder):
        """A true value as the placeholder holds it: a 1-D claim is a row."""
        if is_matrix(true) and is_matrix(placeholder) and true.shape != placeholder.shape:
            return T(true)
        return true


class CodeTruth(Truth):
    """The Truth of a code file: a claim's formula text stands for the value the code made."""

    def __init__(self, model, derivation):
        super().__init__(model, derivation)
        self.pending = None

    def parse(self, text):
        if self.pending is not None and text == self.pending[0]:
            return self.pending[1]
        return super().parse(text)

    def source(self, text):
        if self.pending is not None and text == self.pending[0]:
            return self.pending
        return text

    @contextmanager
    def reading(self, formula, value):
        """While inside, ``formula`` stands for ``value`` (the claim being checked)."""
        self.pending = (formula, value)
        try:
            yield
        finally:
            self.pending = None


def check_code(model, loss=None, seed=0, sizes=None):
    """Every claim of a code model, each reported at its line."""
    checker = Checker(model, loss, seed, sizes)
    truth = checker.truth = CodeTruth(model, checker.derivation)
    resolver = Resolver(model.records, model.code_claims, truth)
    for claim in model.code_claims.values():        # sizes too large for a claim: refused up front
        with truth.reading(claim.formula, value_of(truth, resolver, claim)):
            checker.refuse_too_large({claim.name: claim.formula}, f" (line {claim.line})")
    results = []
    for claim in model.code_claims.values():
        result = check_one(checker, truth, resolver, claim)
        if result.verdict != "holds" and claim.before_mask is not None:
            earlier = check_one(checker, truth, resolver, claim.before_mask)
            if earlier.verdict == "holds":
                note = (f"{claim.name} holds at line {earlier.line}, before the in-place mask at line "
                        f"{claim.line}; from there on it is the gradient the following lines use")
                result = dataclasses.replace(earlier, diagnosis=(note,))
        results.append(result)
    return CheckReport(model.name, loss, seed, tuple(checker.size_sets()), tuple(results))


def value_of(truth, resolver, claim):
    """The value the code made for ``claim``, as it is compared with the truth."""
    expr = resolver.expression(claim)
    true = truth[claim.name]
    if claim.one_d and is_matrix(true) and is_matrix(expr) and true.cols == 1 and expr.rows == 1 \
            and same_dim(true.rows, expr.cols):
        expr = T(expr)              # a 1-D value against a column: entry by entry
    return expr


def check_one(checker, truth, resolver, claim):
    with truth.reading(claim.formula, value_of(truth, resolver, claim)):
        result = checker.check(claim.name, claim.formula)
    return dataclasses.replace(result, line=claim.line)
