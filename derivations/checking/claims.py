"""The claims checker (DESIGN §4): is a published formula equal to the quantity it names?

Truth comes from the engine.  Meaning names referenced by a claim take their true values, so a
wrong claim is blamed on itself, not on the claims it builds on.  Evidence, strongest first:
symbolic identity, then agreement at several seeded numeric points with distinct sizes, chosen
for coverage (every ReLU unit on for some examples and off for others, no saturated output),
within the rounding bounds of both formulas (``numeric.errorbound``), not a fixed tolerance.
"""
from collections.abc import Mapping
import dataclasses
import weakref
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from tracegrad.numeric.errorbound import UNIT_ROUNDOFF
from tracegrad.numeric.gradcheck import RESOLUTION, SAFETY, NamedValues
from tracegrad.symbolic.errors import ShapeError, TracegradError, UsageError
from tracegrad.symbolic.shapes import fmt, same_shape, shape_of

from tracegrad.checking.chains import given
from tracegrad.checking.identity import as_scalars, symbolically_equal  # noqa: F401 (also for callers)
from tracegrad.checking.diagnose import diagnose
from tracegrad.language.formula import parse_formula
from tracegrad.limits import too_many_numbers
from tracegrad.checking.points import SEEDS_PER_SIZE_SET, covered_point, size_sets

RTOL = 1e-8                  # diagnoses only: the verdict itself uses rounding bounds


@dataclass(frozen=True)
class ClaimResult:
    name: str
    formula: str
    verdict: str                 # holds | fails | error | inconclusive
    evidence: str
    diagnosis: tuple = ()
    suggestion: str | None = None
    given: tuple = ()            # claims whose TRUE value a 'holds' relied on, their own formula failing
    line: int | None = None      # where a code file makes the claimed value

    def as_dict(self):
        out = {"name": self.name, "formula": self.formula, "verdict": self.verdict,
               "evidence": self.evidence, "diagnosis": list(self.diagnosis),
               "suggestion": self.suggestion, "given": list(self.given)}
        if self.line is not None:
            out["line"] = self.line
        return out

    def __repr__(self):
        from tracegrad.render.notebook import claim_repr
        return claim_repr(self)

    def _repr_html_(self):
        from tracegrad.render.notebook import claim_html
        return claim_html(self)


@dataclass(frozen=True)
class CheckReport:
    model: str
    loss: str | None
    seed: int
    sizes: tuple                 # one {dim: size} per size set
    results: tuple = field(default_factory=tuple)

    @property
    def ok(self):
        return all(r.verdict == "holds" for r in self.results)

    def as_dict(self):
        return {"model": self.model, "loss": self.loss, "seed": self.seed,
                "sizes": [{str(k): v for k, v in s.items()} for s in self.sizes],
                "results": [r.as_dict() for r in self.results]}

    def __str__(self):
        from tracegrad.render.report import format_report
        return format_report(self)

    def __repr__(self):
        from tracegrad.render.notebook import report_repr
        return report_repr(self)

    def _repr_html_(self):
        from tracegrad.render.notebook import report_html
        return report_html(self)

    def _repr_latex_(self):
        from tracegrad.render.notebook import report_latex
        return report_latex(self)


class Truth(Mapping):
    """Names a formula may use: dims, symbols, forward names, and meanings at their true values."""

    def __init__(self, model, derivation):
        self.model, self.derivation = model, derivation
        self.base = {**model.dims, **model.symbols, **model.forward_names()}
        self.meanings, self.resolving = {}, set()

    def derivative(self, kind, name):
        if name not in self.base or name in self.model.dims:
            raise TracegradError(f"{kind}({name}): '{name}' is not a symbol or forward name")
        return (self.derivation.gradient if kind == "grad" else self.derivation.jacobian)(name, "named")

    def parse(self, text):
        return parse_formula(text, self, derivative=self.derivative)

    def source(self, text):
        """What ``parse(text)`` reads, as a key: the text itself."""
        return text

    def __getitem__(self, name):
        if name in self.base:
            return self.base[name]
        if name not in self.model.meanings:
            raise KeyError(name)
        if name not in self.meanings:
            if name in self.resolving:
                raise TracegradError(f"meaning '{name}' is defined in terms of itself")
            self.resolving.add(name)
            try:
                self.meanings[name] = self.parse(self.model.meanings[name])
            except TracegradError as e:
                raise TracegradError(f"meaning '{name}': {e}") from None
            finally:
                self.resolving.discard(name)
        return self.meanings[name]

    def __contains__(self, name):
        return name in self.base or name in self.model.meanings

    def __iter__(self):
        return iter({**self.base, **self.model.meanings})

    def __len__(self):
        return len(self.base) + len(self.model.meanings)


class Checker:
    """Checks claims of one model under one loss at fixed seeded points."""

    def __init__(self, model, loss=None, seed=0, sizes=None, explain=True, points=None):
        self.model, self.loss, self.seed, self.explain = model, loss, seed, explain
        self.derivation = derived(model, loss)
        self.program = self.derivation.program
        self.truth = Truth(model, self.derivation)
        if points is None:
            self.dim_sets = size_sets(model, sizes)     # the points are drawn when first needed
        else:
            self.points = points
            self.dim_sets = distinct_dims(model, points)
        self.readings, self.sizes_of = {}, {}

    @cached_property
    def named(self):
        """Claims and true values are formulas over the forward names: each is evaluated, and
        bounded, from the names' values at the point (as its author computes it)."""
        return NamedValues(self.program.cost, self.program.definitions)

    @cached_property
    def points(self):
        """The seeded test points, SEEDS_PER_SIZE_SET per size set, each chosen for coverage."""
        return [covered_point(self.model, self.named, dims, self.seed, k, j)[0]
                for k, dims in enumerate(self.dim_sets) for j in range(SEEDS_PER_SIZE_SET)]

    @cached_property
    def states(self):
        """The named program's state at each point: the inputs and every name's value and ε."""
        return self.named.states(self.points)

    def too_large(self, expr):
        """Why evaluating ``expr`` at a test point would allocate too much ('' when it would not);
        counted from the shapes alone, before any point is drawn."""
        if expr not in self.sizes_of:
            full = self.program.expand(expr)
            self.sizes_of[expr] = next(filter(None, (too_many_numbers("the formula's values", [full], dims)
                                                     for dims in self.dim_sets)), "")
        return self.sizes_of[expr]

    def read(self, name, formula):
        """``(claim, truth, error)``: the claim and its meaning's true value as they are compared,
        or ``error``, the ClaimResult of a claim that cannot be read (``truth`` is then given
        when a diagnosis may explain it: its shapes do not compose).  Read once per claim: the
        check up front (``refuse_too_large``) and the verdict share it."""
        key = (name, self.truth.source(formula))
        if key not in self.readings:
            self.readings[key] = self._read(name, formula)
        return self.readings[key]

    def _read(self, name, formula):
        if name not in self.model.meanings:
            return None, None, ClaimResult(name, formula, "error", f"'{name}' has no [meaning] in the model")
        try:
            truth = self.truth[name]
        except TracegradError as e:
            return None, None, ClaimResult(name, formula, "error", str(e))
        try:
            claim = self.truth.parse(formula)
        except ShapeError as e:
            return None, truth, ClaimResult(name, formula, "error", str(e))
        except TracegradError as e:
            return None, None, ClaimResult(name, formula, "error", str(e))
        claim, truth = as_scalars(claim, truth)
        return claim, truth, None

    def refuse_too_large(self, claims, where=""):
        """A UsageError naming the first of ``claims`` ({name: formula}) whose values at a test
        point would hold more than MAX_POINT_NUMBERS numbers: the sizes are too large for that
        claim, as ``Model.check_sizes`` refuses sizes too large for the model.  Shapes only:
        nothing is drawn or evaluated.  A claim that cannot be read is left to ``check``."""
        for name, formula in claims.items():
            claim, _, error = self.read(name, formula)
            problem = "" if error else self.too_large(claim)
            if problem:
                raise UsageError(f"claim {name}{where}: {problem}")

    def under(self, loss):
        """A checker of the same model at the same points with the cost swapped to ``loss``."""
        return Checker(self.model, loss, self.seed, explain=False, points=self.points)

    def measured(self, expr):
        """(value, rounding bound) of ``expr`` (over the forward names) at every point."""
        return [tuple(np.asarray(v, dtype=float) for v in out) for out in self.named.measure([expr], self.states)]

    def measured_both(self, a, b):
        """``measured`` of two expressions, compiled together (they share most of their terms)."""
        out = [tuple(np.asarray(v, dtype=float) for v in o) for o in self.named.measure([a, b], self.states)]
        return [o[:2] for o in out], [o[2:] for o in out]

    def values(self, expr):
        """The value of ``expr`` at every point (for diagnoses, which need no bounds)."""
        return [np.asarray(v, dtype=float) for (v,) in self.named.values([expr], self.states)]

    def within_rounding(self, a, b):
        """'yes', 'no', or 'unclear' for two lists of (value, bound): equal up to rounding?

        'yes' needs every difference within the rounding bound AND a bound tight enough to
        resolve a real difference (≤ RESOLUTION of the value): a loose bound — a noisy term
        that is zero in exact arithmetic, a saturated output — could hide a wrong formula.
        'no' needs a difference beyond the bound that the bound resolves (or beyond it a
        hundredfold).  Anything else is 'unclear', never 'yes'."""
        verdict = "yes"
        for (x, ex), (y, ey) in zip(a, b):
            if x.shape != y.shape:
                return "no"
            if not all(np.all(np.isfinite(v)) for v in (x, y, ex, ey)):
                verdict = "unclear"
                continue
            tolerance = SAFETY * UNIT_ROUNDOFF * (ex + ey)
            gap = np.abs(x - y)
            loose = np.max(tolerance, initial=0) > RESOLUTION * np.max(np.abs(y), initial=0)
            if np.any(gap > tolerance) and (not loose or np.any(gap > 100 * tolerance)):
                return "no"
            if loose or np.any(gap > tolerance):
                verdict = "unclear"
        return verdict

    def agree(self, a, b):
        """'yes', 'no', or 'unclear' (a value is not finite) for two lists of point values."""
        for x, y in zip(a, b):
            if x.shape != y.shape:
                return "no"
            if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
                return "unclear"
            if np.max(np.abs(x - y), initial=0) > RTOL * max(1.0, np.max(np.abs(y), initial=0)):
                return "no"
        return "yes"

    def check(self, name, formula, explain=None):
        """The verdict on ``name = formula``; a diagnosis of a failing (or, when its shapes do not
        compose, unreadable) claim unless ``explain`` is False (default: the checker's own)."""
        explain = self.explain if explain is None else explain
        claim, truth, error = self.read(name, formula)
        if error is not None:
            return error if truth is None else self.explained(error, None, truth, explain)
        too_large = self.too_large(claim)       # kept for callers that did not refuse up front
        if too_large:
            return ClaimResult(name, formula, "error", too_large)
        if not same_shape(shape_of(claim), shape_of(truth)) and not shape_of(claim) == shape_of(truth) is None:
            return self.fails(name, formula, claim, truth, explain,
                              f"shape mismatch: the formula is {fmt(shape_of(claim))}, "
                              f"{name} is {fmt(shape_of(truth))}")
        # With a diagnosis the evidence is the strongest found (symbolic first).  Without one
        # (compare, a diagnosis verifying its candidates) the numeric test goes first and the
        # symbolic one runs only when it does not say 'yes': the verdict is the same either way.
        if explain and symbolically_equal(self.program, claim, truth):
            return ClaimResult(name, formula, "holds", "symbolic identity")
        verdict = self.within_rounding(*self.measured_both(claim, truth))
        if not explain and verdict != "yes" and symbolically_equal(self.program, claim, truth):
            return ClaimResult(name, formula, "holds", "symbolic identity")
        if verdict == "yes":
            sizes = "; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in self.size_sets())
            return ClaimResult(name, formula, "holds",
                               f"numeric: equal within rounding at {len(self.points)} covered random points "
                               f"(seed {self.seed}; sizes {sizes})")
        if verdict == "unclear":
            return ClaimResult(name, formula, "inconclusive",
                               "a value is not finite, or rounding is too large to decide, at a test point")
        return self.fails(name, formula, claim, truth, explain, "values differ")

    def fails(self, name, formula, claim, truth, explain, first):
        return self.explained(ClaimResult(name, formula, "fails", first), claim, truth, explain)

    def explained(self, result, claim, truth, explain):
        """``result`` with a diagnosis added (never a changed verdict); a diagnosis that cannot
        be computed (a value too large, a rule missing) is left out."""
        if not explain:
            return result
        try:
            notes, suggestion = diagnose(self, result.name, result.formula, claim, truth)
        except TracegradError:
            return result
        return dataclasses.replace(result, diagnosis=tuple(notes), suggestion=suggestion)

    def size_sets(self):
        return [{d.name: v for d, v in dims.items()} for dims in distinct_dims(self.model, self.dim_sets)]


def distinct_dims(model, points):
    """The size sets of ``points`` (or of size sets), in order, each once: {dimension: size}."""
    seen = []
    for p in points:
        dims = {d: v for d, v in p.items() if d in model.dims.values()}
        if dims not in seen:
            seen.append(dims)
    return seen


_DERIVED = weakref.WeakKeyDictionary()


def derived(model, loss):
    """``model.derive(loss)``, derived once per model and loss (compare and the loss-swap
    diagnosis ask for the same derivations again)."""
    table = _DERIVED.setdefault(model, {})
    if loss not in table:
        table[loss] = model.derive(loss)
    return table[loss]


def check_model(model, claims=None, loss=None, seed=0, sizes=None, explain=True):
    """Every claim's verdict (``explain``: with diagnoses of those that fail or cannot be read)."""
    checker = Checker(model, loss, seed, sizes, explain=explain)
    claims = model.claims if claims is None else dict(claims)
    checker.refuse_too_large(claims)
    results = tuple(checker.check(n, f) for n, f in claims.items())
    chains = given(model, results)
    results = tuple(dataclasses.replace(r, given=chains.get(r.name, ())) for r in results)
    return CheckReport(model.name, loss, seed, tuple(checker.size_sets()), results)
