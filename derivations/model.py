"""Model files (DESIGN §4): TOML in, a validated model out, with its forward program."""
import keyword
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import sympy as sp

from tracegrad.symbolic import Program, derive
from tracegrad.errors import ModelError, TracegradError, UsageError
from tracegrad.limits import (MAX_ENTRIES, MAX_FILE_BYTES, MAX_FORWARD, MAX_POINT_NUMBERS, MAX_SEED,  # noqa: F401
                              check_point_size)

from tracegrad.language.formula import MAX_SIZE, parse_dim, parse_value
from tracegrad.language.values import Vector, VectorSymbol, row_of
from tracegrad.checking.points import size_sets

MODELS = Path(__file__).parent / "models"
SECTIONS = {"name", "title", "source", "notes", "dims", "inputs", "params", "scalars", "sizes",
            "forward", "meaning", "claims", "loss"}
# Bounds on what a model may ask for; each error message states its bound.
VALUE_KINDS = ("real", "positive", "binary", "one-hot rows", "one-hot columns",
               "probability rows", "probability columns")


def builtin_names():
    return sorted(p.stem for p in [*MODELS.glob("*.toml"), *MODELS.glob("*.py")])


@dataclass(frozen=True, eq=False)
class Model:
    name: str
    title: str
    source: str
    path: str
    dims: dict
    symbols: dict            # name -> MatrixSymbol or Symbol (inputs, params, scalars)
    kinds: dict              # input name -> what its values may hold
    params: tuple
    sizes: dict
    program: Program
    meanings: dict           # name -> formula text
    claims: dict             # name -> formula text
    loss: dict = field(default_factory=dict)
    one_d: frozenset = frozenset()   # forward names whose values are 1-D (numpy vectors)

    @classmethod
    def from_dict(cls, data, path="<model>"):
        where = Where(path)
        unknown = set(data) - SECTIONS
        if unknown:
            raise ModelError(f"{path}: unknown section or key '{sorted(unknown)[0]}'")
        for key in ("name", "forward"):
            if key not in data:
                raise ModelError(f"{path}: missing '{key}'")
        for key in ("name", "title", "source", "notes"):
            if not isinstance(data.get(key, ""), str):
                raise ModelError(f"{path}: '{key}' must be a string")
        # The name becomes a file name (tracegrad latex writes NAME.tex).
        if not re.fullmatch(r"[\w.-]+", data["name"]):
            raise ModelError(f"{path}: name {data['name']!r} may hold only letters, digits, '_', '-' and '.'")
        dims = {}
        for d in table(data, "dims", path):
            check_name(d, path, "dims", dims)
            dims[d] = sp.Symbol(d, integer=True, positive=True)
        symbols, kinds, params = {}, {}, []
        for section in ("inputs", "params"):
            for n, spec in table(data, section, path).items():
                check_name(n, path, section, {**dims, **symbols})
                shape_text, kind = spec, "real"
                if isinstance(spec, dict):
                    extra = set(spec) - {"shape", "values"}
                    if extra or "shape" not in spec:
                        raise ModelError(f"{path}: [{section}] {n}: expected {{ shape = \"r, c\", values = \"...\" }}")
                    shape_text, kind = spec["shape"], spec.get("values", "real")
                if kind not in VALUE_KINDS:
                    raise ModelError(f"{path}: [{section}] {n}: unknown values '{kind}' (use one of: {', '.join(VALUE_KINDS)})")
                shape = where(f"[{section}] {n}", lambda: parse_shape(shape_text, dims))
                symbols[n] = matrix_symbol(n, shape)
                kinds[n] = kind
                if section == "params":
                    params.append(symbols[n])
        for n in table(data, "scalars", path):
            check_name(n, path, "scalars", {**dims, **symbols})
            symbols[n] = sp.Symbol(n, real=True)
            params.append(symbols[n])
        sizes = {}
        for n, v in table(data, "sizes", path).items():
            if n not in dims:
                raise ModelError(f"{path}: [sizes] {n}: not a dimension of this model")
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_SIZE:
                raise ModelError(f"{path}: [sizes] {n}: must be an integer from 1 to {MAX_SIZE}, got {v!r}")
            sizes[dims[n]] = v
        program, one_d = Program(), set()
        names = {**dims, **symbols}
        forward = table(data, "forward", path)
        if not forward:
            raise ModelError(f"{path}: [forward] is empty: it must end with the scalar cost")
        if len(forward) > MAX_FORWARD:
            raise ModelError(f"{path}: [forward] has {len(forward)} definitions, more than {MAX_FORWARD}")
        for n, text in forward.items():
            check_name(n, path, "forward", names)
            if not isinstance(text, str):
                raise ModelError(f"{path}: [forward] {n}: must be a formula string")
            value = where(f"[forward] {n}", lambda: parse_value(text, names))
            kind = VectorSymbol if isinstance(value, Vector) else sp.MatrixSymbol     # prints as the row it is
            symbol = where(f"[forward] {n}", lambda: program.define(n, row_of(value), kind))
            names[n] = Vector(symbol) if isinstance(value, Vector) else symbol
            if isinstance(value, Vector):
                one_d.add(n)
        where("[forward]", program.validate)
        meanings = strings(data, "meaning", path)
        claims = strings(data, "claims", path)
        for n in meanings:
            check_name(n, path, "meaning", names)
        loss = strings(data, "loss", path)
        model = cls(data["name"], data.get("title", data["name"]), data.get("source", ""),
                    path, dims, symbols, kinds, tuple(params), sizes, program, meanings, claims, loss,
                    frozenset(one_d))
        try:
            model.check_sizes()
        except UsageError as e:
            raise ModelError(f"{path}: {e}") from None
        return model

    def check_sizes(self, sizes=None):
        """The user's {dimension: size}, checked; test points must fit in memory (see points.py)."""
        sizes = dict(sizes or {})
        for d, v in sizes.items():
            name = getattr(d, "name", d)
            if name not in self.dims:
                raise UsageError(f"'{name}' is not a dimension of model '{self.name}' "
                                 f"(its dimensions: {', '.join(self.dims)})")
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or not 1 <= v <= MAX_SIZE:
                raise UsageError(f"{name} must be an integer from 1 to {MAX_SIZE}, got {v!r}")
        drawn = [s for s in self.symbols.values() if isinstance(s, sp.MatrixSymbol)]   # used or not
        for dims in size_sets(self, sizes):
            check_point_size("a test point", [self.program.expanded_cost, *drawn], dims)
        return sizes

    @cached_property
    def derivation(self):
        """Derivatives for the parameters and the real-valued inputs (not labels or targets)."""
        data = [s for n, s in self.symbols.items()
                if s not in self.params and self.kinds.get(n) == "real"]
        try:
            return derive(self.program, list(self.params) + data)
        except RecursionError:
            raise ModelError(f"{self.path}: [forward] is nested too deeply to derive") from None

    def derive(self, loss=None):
        if loss is None:
            return self.derivation
        from tracegrad.losses import swap_loss
        return derive(swap_loss(self, loss), self.derivation.wrt)

    def check(self, claims=None, loss=None, seed=0, sizes=None):
        from tracegrad.checking.claims import check_model
        if claims is not None and not (isinstance(claims, Mapping) and
                                       all(isinstance(n, str) for n in claims)):
            raise UsageError("claims must map names to formula strings, as in {'dW': 'A.T @ G'}")
        return check_model(self, claims=claims, loss=loss, seed=check_seed(seed),
                           sizes=self.check_sizes(sizes))

    def verify(self, sizes=None, seed=0):
        """Every derived gradient against complex-step derivatives: a VerifyReport."""
        from tracegrad.checking.verify import verify_model
        return verify_model(self, seed=check_seed(seed), sizes=self.check_sizes(sizes))

    def forward_names(self):
        """{name: its symbol}; a 1-D value as a Vector, so formulas read it as numpy does."""
        return {s.name: Vector(s) if s.name in self.one_d else s for s, _ in self.program.definitions}

    def __repr__(self):
        from tracegrad.render.notebook import model_repr
        return model_repr(self)

    def _repr_html_(self):
        from tracegrad.render.notebook import model_html
        return model_html(self)

    def _repr_latex_(self):
        from tracegrad.render.notebook import model_latex
        return model_latex(self)


def check_seed(seed):
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"the seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return int(seed)


class Where:
    """Runs a step of loading and names the file and entry in any error."""

    def __init__(self, path):
        self.path = path

    def __call__(self, entry, fn):
        try:
            return fn()
        except TracegradError as e:
            raise ModelError(f"{self.path}: {entry}: {e}") from None


def table(data, key, path):
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ModelError(f"{path}: [{key}] must be a table")
    if len(value) > MAX_ENTRIES:
        raise ModelError(f"{path}: [{key}] has {len(value)} entries, more than {MAX_ENTRIES}")
    return value


def strings(data, key, path):
    out = table(data, key, path)
    for n, v in out.items():
        if not isinstance(v, str):
            raise ModelError(f"{path}: [{key}] {n}: must be a string")
    return dict(out)


LIBRARIES = {"np", "numpy", "torch"}     # prefixes of the functions formulas call


def check_name(n, path, section, taken):
    """A name may be anything that is not called (DESIGN §4): ``T``, ``grad`` and ``sum`` are
    fine, since a function is only ever a name that is called."""
    if not n.isidentifier() or n.startswith("_") or keyword.iskeyword(n):
        raise ModelError(f"{path}: [{section}] '{n}' is not a valid name")
    if n in LIBRARIES:
        raise ModelError(f"{path}: [{section}] '{n}' shadows the library of that name")
    if n in taken:
        raise ModelError(f"{path}: [{section}] '{n}' is already defined")


def parse_shape(text, dims):
    """"rows, cols" (2-D) or "n" (1-D: numpy's vector, held as a 1 × n row)."""
    if not isinstance(text, str) or text.count(",") > 1:
        raise TracegradError(f"shape must be \"rows, cols\" or \"length\" (1-D), got {text!r}")
    return tuple(parse_dim(part.strip(), dims) for part in text.split(","))


def matrix_symbol(name, shape):
    """The symbol of a declared shape: a VectorSymbol (1 × n) for a 1-D shape."""
    return VectorSymbol(name, 1, shape[0]) if len(shape) == 1 else sp.MatrixSymbol(name, *shape)
