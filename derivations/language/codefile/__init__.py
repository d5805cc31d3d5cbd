"""Code files (DESIGN §4b): a Python file's ``forward`` and ``backward`` read with ``ast`` —
never imported, never executed — into a model whose program is the forward pass and whose
claims are the backward pass's gradients, each at its line.

    module.py       the top level: docstring, imports, literals, functions; hostile input refused
    arrays.py       numpy's object model: arrays, aliases, containers, 3-D lookups, labels
    expressions.py  the formula language over the file's names
    interpreter.py  the statements: assignments, +=, masks, labels, loops, helpers
    gradients.py    the claims, their lines, and checking them with true values pinned
"""
import re
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from tracegrad.errors import ModelError, TracegradError, UsageError
from tracegrad.language import broadcast as bc
from tracegrad.language.formula import MAX_SIZE
from tracegrad.language.labels import SingleLabel
from tracegrad.language.values import LabelSymbol, Vector, VectorSymbol, row_of
from tracegrad.model import VALUE_KINDS, Model, check_name, check_seed, matrix_symbol, parse_shape
from tracegrad.symbolic import Program
from tracegrad.symbolic.shapes import is_matrix

from tracegrad.language.codefile.arrays import Array, Container, LabelGrid
from tracegrad.language.codefile.gradients import check_code, collect
from tracegrad.language.codefile.interpreter import MAX_DEFINITIONS, Interpreter, NeedsFixedDims, _Return
from tracegrad.language.codefile.module import read_module

_LABELS = re.compile(r"(labels?) of (\w+)")


@dataclass(frozen=True, eq=False)
class CodeModel(Model):
    code_claims: dict = field(default_factory=dict)   # name -> CodeClaim
    records: dict = field(default_factory=dict)       # placeholder -> Record (interpreter.py)
    fixed: dict = field(default_factory=dict)         # dimensions unrolled at a fixed size

    def check(self, claims=None, loss=None, seed=0, sizes=None):
        if claims is not None:
            return super().check(claims, loss, seed, sizes)
        return check_code(self, loss=loss, seed=check_seed(seed), sizes=self.check_sizes(sizes))


def load_code_file(path, text):
    """The model of a code file; a ModelError naming the file, the line and the construct."""
    code = read_module(path, text)
    fixed = {}
    for _ in range(4):
        try:
            return Reading(code, fixed).model()
        except NeedsFixedDims as need:
            sizes = code.declared.get("SIZES", {})
            for d in sorted(need.dims, key=str):
                if str(d) not in sizes:
                    raise ModelError(f"{path}: line {need.line}: a loop runs over the dimension {d}: give {d} "
                                     f"a size in SIZES (it is unrolled at that size) or loop over a literal") from None
                fixed[str(d)] = sizes[str(d)]
    raise ModelError(f"{path}: loop bounds depend on each other too deeply")


class Reading:
    """One reading of a code file with some dimensions fixed to integers."""

    def __init__(self, code, fixed):
        self.code, self.fixed, self.path = code, fixed, code.path

    def fail(self, message):
        raise ModelError(f"{self.path}: {message}")

    def model(self):
        self.declare()
        forward = self.entry("forward", required=True)
        backward = self.entry("backward", required=False)
        reader = Interpreter(self.code, Program(), self.fixed)
        reader.dims = dict(self.dims)
        reader.taken |= set(self.symbols) | set(self.dims)
        returned = self.run_forward(reader, forward)
        scope = dict(reader.frames[0])
        upstream = self.cost(reader, forward, backward, returned)
        claims = {}
        if backward is not None:
            reader.phase = "backward"
            reader.frames = [dict(scope)]
            reader.frames[0].update(self.backward_parameters(backward, scope, returned, upstream))
            try:
                reader.run(backward.body)
            except _Return:
                pass
            claims = collect(reader, reader.frames[0], self.forward_symbols(scope), self.meanings_given(),
                             skip={upstream.name} if upstream is not None else ())
        program = reader.program
        if len(program.definitions) > MAX_DEFINITIONS:
            self.fail(f"forward makes {len(program.definitions)} definitions after unrolling, more than {MAX_DEFINITIONS}")
        try:
            program.validate()
        except TracegradError as e:
            self.fail(f"forward: {e}")
        return self.build(program, claims, reader)

    # declarations

    def declare(self):
        d = self.code.declared
        shapes, data = d.get("SHAPES", {}), d.get("DATA", {})
        for table, kind in ((shapes, "SHAPES"), (data, "DATA"), (d.get("SCALARS", {}), "SCALARS"),
                            (d.get("MEANING", {}), "MEANING"), (d.get("SIZES", {}), "SIZES")):
            for k, v in table.items():
                if not isinstance(k, str) or (kind != "SIZES" and not isinstance(v, str)):
                    self.fail(f"{kind}: entries map names to strings, got {k!r}: {v!r}")
        names = set()
        for text in [*shapes.values(), *(m.group(2) for m in map(_LABELS.fullmatch, data.values()) if m)]:
            names |= set(re.findall(r"[A-Za-z_]\w*", text))
        constants = self.code.constants
        self.fixed.update({n: constants[n] for n in names if isinstance(constants.get(n), int)
                           and not isinstance(constants[n], bool) and n not in self.fixed})
        self.dims = {}
        for n in sorted(names):
            check_name(n, self.path, "dimension", {})
            self.dims[n] = sp.Integer(self.fixed[n]) if n in self.fixed else sp.Symbol(n, integer=True, positive=True)
        self.sizes = {}
        for n, v in d.get("SIZES", {}).items():
            if n not in self.dims:
                self.fail(f"SIZES: {n} is not a dimension of SHAPES")
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_SIZE:
                self.fail(f"SIZES: {n} must be an integer from 1 to {MAX_SIZE}, got {v!r}")
            if n not in self.fixed:
                self.sizes[self.dims[n]] = v
        self.symbols, self.kinds, self.bindings = {}, {}, {}
        for n, text in shapes.items():
            check_name(n, self.path, "SHAPES", {**self.dims, **self.symbols})
            kind = data.get(n, "real")
            try:
                shape = parse_shape(text, self.dims)
            except TracegradError as e:
                self.fail(f"SHAPES {n}: {e}")
            if _LABELS.fullmatch(kind):
                self.labels(n, shape, kind)
                continue
            if kind not in VALUE_KINDS:
                self.fail(f"DATA {n}: unknown values '{kind}' (use one of: {', '.join(VALUE_KINDS)}, "
                          f"labels of K, label of K)")
            self.symbols[n] = matrix_symbol(n, shape)
            self.kinds[n] = kind
            self.bindings[n] = self.symbols[n]
        for n, kind in data.items():
            if n not in shapes:
                match = _LABELS.fullmatch(kind)
                if not match or match.group(1) != "label":
                    self.fail(f"DATA {n}: no SHAPES entry (only a single 'label of K' needs none)")
                self.labels(n, (), kind)
        params = d.get("PARAMS")
        if params is None:
            params = [n for n in shapes if n not in data]
        for n in params:
            if not isinstance(n, str) or n not in self.symbols or n in data:
                self.fail(f"PARAMS: {n!r} is not a SHAPES entry outside DATA")
        self.params = [self.symbols[n] for n in params]
        for n in d.get("SCALARS", {}):
            check_name(n, self.path, "SCALARS", {**self.dims, **self.symbols})
            self.symbols[n] = self.bindings[n] = sp.Symbol(n, real=True)
            self.params.append(self.symbols[n])

    def labels(self, n, shape, kind):
        """Labels of K: one LabelSymbol (a row per label), or one per position when a length is
        an integer (a sequence of single labels, or labels × positions)."""
        match = _LABELS.fullmatch(kind)
        classes = self.dims[match.group(2)]
        single = match.group(1) == "label"
        if single != (len(shape) == 0):
            self.fail(f"DATA {n}: '{kind}' with shape {shape}: 'label of K' is one label, 'labels of K' a vector")
        if single:
            found = [(n, SingleLabel(n, 1, classes))]
            self.bindings[n] = found[0][1]
        elif len(shape) == 1 and not shape[0].is_Integer:
            found = [(n, LabelSymbol(n, shape[0], classes))]
            self.bindings[n] = found[0][1]
        elif len(shape) == 1:
            found = [(f"{n}_{t}", SingleLabel(f"{n}_{t}", 1, classes)) for t in range(int(shape[0]))]
            self.bindings[n] = LabelGrid(tuple(s for _, s in found), per_example=False)
        else:
            rows, positions = shape
            if not positions.is_Integer:
                raise NeedsFixedDims(positions.free_symbols, "of SHAPES")
            found = [(f"{n}_{j}", LabelSymbol(f"{n}_{j}", rows, classes)) for j in range(int(positions))]
            self.bindings[n] = LabelGrid(tuple(s for _, s in found), per_example=True)
        for name, symbol in found:
            self.symbols[name] = symbol
            self.kinds[name] = "one-hot rows"

    def meanings_given(self):
        return dict(self.code.declared.get("MEANING", {}))

    # forward and backward

    def entry(self, role, required):
        functions = self.code.functions
        if role in functions:
            return functions[role]
        found = [f for n, f in functions.items() if n.endswith(f"_{role}")]
        if len(found) == 1:
            return found[0]
        if required or found:
            self.fail(f"needs one function '{role}' (or one '*_{role}'), found "
                      f"{', '.join(n for n in functions) or 'none'}")
        return None

    def parameter(self, fn, name, default):
        if name in self.bindings:
            symbol = self.bindings[name]
            if isinstance(symbol, VectorSymbol):
                return Array(Vector(symbol))
            return Array(symbol) if isinstance(symbol, sp.MatrixSymbol) and not isinstance(symbol, LabelSymbol) \
                else symbol
        if default is not None:
            return _literal(default)
        self.code.fail(fn, f"parameter '{name}' of '{fn.name}' is not declared in SHAPES, DATA or SCALARS "
                           f"(or give it a literal default)")

    def run_forward(self, reader, fn):
        params = [a.arg for a in fn.args.args]
        defaults = dict(zip(params[len(params) - len(fn.args.defaults):], fn.args.defaults))
        for p in params:
            reader.frames[0][p] = self.parameter(fn, p, defaults.get(p))
        try:
            reader.run(fn.body)
        except _Return as done:
            return done.binding
        self.code.fail(fn, f"'{fn.name}' returns nothing: it must return the cost (or a layer's output)")

    def cost(self, reader, forward, backward, returned):
        """Define the cost: the returned scalar, or sum(G ∘ out) for a layer returning out."""
        first = returned.ordered()[0] if isinstance(returned, Container) and returned.kind != "dict" else returned
        value = first.value if isinstance(first, Array) else first
        inner = row_of(value)
        if not isinstance(inner, sp.Basic) or isinstance(value, LabelSymbol):
            self.code.fail(forward, f"'{forward.name}' must return the cost or a layer's output, not this")
        program, upstream = reader.program, None
        if is_matrix(inner) and inner.shape != (1, 1):
            name = self.code.declared.get("UPSTREAM") or (backward.args.args[0].arg if backward and backward.args.args else "dout")
            if name in self.symbols or name in self.dims:
                self.fail(f"UPSTREAM: '{name}' is already a name of the file")
            upstream = matrix_symbol(name, (inner.shape[1],)) if isinstance(value, Vector) else sp.MatrixSymbol(name, *inner.shape)
            self.symbols[name], self.kinds[name] = upstream, "upstream"
            inner = row_of(bc.total(bc.binary("*", Vector(upstream) if isinstance(value, Vector) else upstream,
                                              value, "sum(G * out)"), None, False, "sum(G * out)"))
        last = program.definitions[-1][0] if program.definitions else None
        if inner is not last:
            if not inner.free_symbols:
                self.code.fail(forward, f"the cost of '{forward.name}' does not depend on anything")
            try:
                program.define(reader.unique("J"), inner)
            except TracegradError as e:
                self.code.fail(forward, f"the cost: {e}")
        return upstream

    def backward_parameters(self, fn, scope, returned, upstream):
        params = [a.arg for a in fn.args.args]
        defaults = dict(zip(params[len(params) - len(fn.args.defaults):], fn.args.defaults))
        extra = returned.ordered()[1:] if isinstance(returned, Container) and returned.kind != "dict" else []
        frame = {}
        for k, p in enumerate(params):
            if upstream is not None and p == upstream.name:
                frame[p] = Array(Vector(upstream) if isinstance(upstream, VectorSymbol) else upstream)
            elif p in scope:
                frame[p] = scope[p]
            elif p in self.bindings or p in defaults:
                frame[p] = self.parameter(fn, p, defaults.get(p))
            elif extra:
                frame[p] = extra.pop(0)        # backward(dout, cache): what forward returned after out
            else:
                self.code.fail(fn, f"parameter '{p}' of '{fn.name}' is neither a name forward defines, "
                                   f"nor declared, nor something forward returns")
        return frame

    def forward_symbols(self, scope):
        """{variable: the name of the program symbol or declared symbol it holds}."""
        out = {n: s.name for n, s in self.symbols.items() if not isinstance(s, LabelSymbol)}
        for n, binding in scope.items():
            if isinstance(binding, Array):
                inner = row_of(binding.value)
                if isinstance(inner, (sp.MatrixSymbol, sp.Symbol)):
                    out[n] = inner.name
        return out

    # the model

    def build(self, program, claims, reader):
        stem = re.sub(r"[^\w.-]", "_", Path(self.path).stem) or "code"
        d = self.code.declared
        meanings = {n: c.meaning for n, c in claims.items()}
        one_d = frozenset(s.name for s in [row_of(b.value) for b in reader.frames[0].values() if isinstance(b, Array)
                                           and isinstance(b.value, Vector)] if isinstance(s, sp.MatrixSymbol)
                          and program.position(s) >= 0)
        model = CodeModel(stem, self.code.title or stem, d.get("SOURCE", ""), self.path, dict(
            (n, s) for n, s in self.dims.items() if n not in self.fixed), self.symbols, self.kinds,
            tuple(self.params), self.sizes, program, meanings, {n: c.formula for n, c in claims.items()},
            {}, one_d, claims, reader.records, dict(self.fixed))
        try:
            model.check_sizes()
        except UsageError as e:
            self.fail(str(e))
        return model


def _literal(node):
    import ast
    return ast.literal_eval(node)
