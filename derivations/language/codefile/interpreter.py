"""The statements of ``forward``, ``backward`` and their helpers, read symbolically.

Nothing runs: each statement is translated into SymPy values bound to names with numpy's
object model (arrays.py).  In ``forward`` every new value is a definition of the program, named
after its variable; in ``backward`` every new value is a placeholder symbol with a record of
the line that made it (gradients.py resolves them), so each claim knows its line.
"""
import ast
from dataclasses import dataclass

import sympy as sp

from tracegrad.errors import FormulaError, ModelError, TracegradError
from tracegrad.language import broadcast as bc
from tracegrad.language.formula import dotted
from tracegrad.language.labels import SingleLabel
from tracegrad.language.values import Condition, LabelSymbol, Shape, Vector, describe, row_of, value_of
from tracegrad.symbolic.algebra import T, add, hadamard, matmul, scale
from tracegrad.symbolic.shapes import is_matrix, same_dim

from tracegrad.language.codefile.arrays import Array, Container, Flat, Function, LabelGrid, Stack
from tracegrad.language.codefile.expressions import CodeParser

MAX_STATEMENTS = 20_000       # statements read, loops unrolled and helpers inlined
MAX_ITERATIONS = 1_000        # iterations of one loop
MAX_CALL_DEPTH = 20
MAX_DEFINITIONS = 200         # forward definitions after unrolling (a model file allows 50 lines)
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class NeedsFixedDims(Exception):
    """A loop runs over a dimension: the file is read again with that dimension fixed."""

    def __init__(self, dims, line):
        self.dims, self.line = dims, line


class _Return(Exception):
    def __init__(self, binding):
        self.binding = binding


@dataclass
class Record:
    """What made a placeholder's value: the value, the line, the variable, how, and the text."""
    value: object
    line: int
    name: str
    kind: str                 # assign | accumulate | mask | labels | scatter
    text: str


class Interpreter:
    def __init__(self, code, program, fixed):
        self.code, self.program, self.fixed = code, program, fixed
        self.parser = CodeParser(self)
        self.frames, self.calls, self.count = [{}], [], 0
        self.phase, self.records, self.taken, self.lines = "forward", {}, set(), {}
        self.line, self.dims = 0, {}

    # names

    def fail(self, node, message):
        self.code.fail(node, message)

    def binding(self, node, name, missing_ok=False):
        for scope in (self.frames[-1], self.code.functions, self.code.constants, self.dims):
            if name in scope:
                found = scope[name]
                return Function(found) if isinstance(found, ast.FunctionDef) else found
        if missing_ok:
            return None
        if name in ("np", "numpy", "torch", "F"):
            self.parser.fail(node, f"'{name}' may only prefix a function, as in {name}.sum(A)")
        self.parser.fail(node, f"unknown name '{name}' (not a parameter, a variable assigned "
                               f"before this line, or a module literal)")

    def scope(self):
        return self.frames[-1]

    # expressions

    def evaluate(self, node):
        """The binding ``node`` denotes: an existing array for a name (an alias), a new array for
        an expression, or a container, condition, shape, labels, 3-D array as they are."""
        if isinstance(node, ast.Name):
            return self.binding(node, node.id)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            found = self.binding(node.func, node.func.id, missing_ok=True)
            if isinstance(found, Function):
                return self.inline(node, found, binding=True)
        if isinstance(node, ast.Subscript):
            base = self.parser.translate(node.value) if not isinstance(node.value, ast.Name) \
                else self.binding(node.value, node.value.id)
            if isinstance(base, Container):
                key = self.parser.key(node.slice)
                if key in base.items:
                    return base.items[key]
        try:
            value = self.parser.translate(node)
        except FormulaError as e:
            raise ModelError(f"{self.code.path}: {e}") from None
        made = self.fresh(value)
        if isinstance(made, Array):
            made.source = node
        return made

    def fresh(self, value):
        inner = row_of(value)
        if is_matrix(inner) or (isinstance(inner, sp.Expr) and not isinstance(value, (LabelSymbol,))):
            array = Array(value)
            array.fresh = True
            return array
        return value

    def value(self, node):
        try:
            return self.parser.value(node)
        except FormulaError as e:
            raise ModelError(f"{self.code.path}: {e}") from None

    # statements

    def run(self, statements):
        for stmt in statements:
            self.count += 1
            if self.count > MAX_STATEMENTS:
                self.fail(stmt, f"more than {MAX_STATEMENTS} statements after unrolling loops and "
                                f"inlining helpers")
            self.line = stmt.lineno
            try:
                self.statement(stmt)
            except (TracegradError, _Return, NeedsFixedDims):
                raise
            except (RecursionError, MemoryError):
                self.fail(stmt, "too deeply nested to read")

    def statement(self, stmt):
        if isinstance(stmt, (ast.Pass, ast.Assert)):
            return
        if isinstance(stmt, ast.Expr):
            return self.expression_statement(stmt)
        if isinstance(stmt, ast.Assign):
            binding = self.evaluate(stmt.value)
            for target in stmt.targets:
                self.assign(target, binding, stmt)
            return
        if isinstance(stmt, ast.AnnAssign):
            if stmt.value is None:
                return
            return self.assign(stmt.target, self.evaluate(stmt.value), stmt)
        if isinstance(stmt, ast.AugAssign):
            return self.augment(stmt)
        if isinstance(stmt, ast.For):
            return self.loop(stmt)
        if isinstance(stmt, ast.If):
            return self.run(stmt.body if self.static_test(stmt.test) else stmt.orelse)
        if isinstance(stmt, ast.Return):
            raise _Return(None if stmt.value is None else self.evaluate(stmt.value))
        self.fail(stmt, f"{type(stmt).__name__} is not allowed in a function")

    def expression_statement(self, stmt):
        node = stmt.value
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return                                      # a docstring
        path = dotted(node.func) if isinstance(node, ast.Call) else None
        if path == ["print"]:
            return
        if path in (["np", "add", "at"], ["numpy", "add", "at"]):
            return self.add_at(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "index_add_":
            return self.index_add(node)
        self.fail(stmt, "an expression statement does nothing here (only print, np.add.at and "
                        "index_add_ are read)")

    def assign(self, target, binding, stmt):
        if isinstance(target, ast.Name):
            return self.bind(target.id, binding, stmt)
        if isinstance(target, (ast.Tuple, ast.List)):
            items = self.unpack(target, binding, stmt)
            for t, b in zip(target.elts, items):
                self.assign(t, b, stmt)
            return
        if isinstance(target, ast.Subscript):
            return self.set_item(target, binding, stmt, None)
        self.fail(stmt, f"assignment to {describe_target(target)} is not allowed")

    def unpack(self, target, binding, stmt):
        if isinstance(binding, Container) and binding.kind != "dict":
            items = binding.ordered()
        elif isinstance(binding, Shape):
            items = list(binding.dims)
        else:
            self.fail(stmt, f"cannot unpack {describe(value_of(getattr(binding, 'value', binding)))} "
                            f"into {len(target.elts)} names")
        if len(items) != len(target.elts):
            self.fail(stmt, f"{len(items)} values unpacked into {len(target.elts)} names")
        return items

    def bind(self, name, binding, stmt, key=None):
        """``name = binding`` (``key``: an item of the container ``name``)."""
        if isinstance(binding, Array) and getattr(binding, "fresh", False):
            binding.fresh = False
            label = name if key is None else item_name(name, key)
            source = getattr(binding, "source", None)
            text = " ".join((ast.get_source_segment(self.code.source, source) or "").split()) if source \
                else self.text(stmt)
            self.made(label, binding, stmt, "assign", text)
        if key is None:
            self.scope()[name] = binding
            self.lines[name] = getattr(stmt, "lineno", self.line)

    def made(self, name, array, stmt, kind, text):
        """A new value of ``array`` (from ``name``): a definition in forward, a placeholder in backward."""
        value = array.value
        inner = row_of(value)
        if self.phase == "forward":
            if isinstance(inner, (sp.MatrixSymbol, sp.Symbol)) or not inner.free_symbols or \
                    isinstance(inner, (sp.ZeroMatrix, sp.OneMatrix)):
                return
            if len(self.program.definitions) >= MAX_DEFINITIONS:
                self.fail(stmt, f"forward makes more than {MAX_DEFINITIONS} definitions after unrolling loops")
            try:
                symbol = self.program.define(self.unique(name), inner)
            except TracegradError as e:
                self.fail(stmt, str(e))
        else:
            shape = inner.shape if is_matrix(inner) else None
            symbol = sp.MatrixSymbol(self.unique(f"{name}@{stmt.lineno}"), *shape) if shape \
                else sp.Symbol(self.unique(f"{name}@{stmt.lineno}"))
            self.records[symbol] = Record(inner, stmt.lineno, name, kind, text)
        array.value = Vector(symbol) if isinstance(value, Vector) else symbol

    def unique(self, name):
        """A name no definition, placeholder or declared symbol has (hs, hs_2, hs_3, …)."""
        found, k = name, 1
        while found in self.taken:
            k += 1
            found = f"{name}_{k}"
        self.taken.add(found)
        return found

    def text(self, stmt):
        value = getattr(stmt, "value", None)
        return " ".join((ast.get_source_segment(self.code.source, value) or "").split()) if value else ""

    def name_of(self, node):
        """The variable a target denotes: ``hs[t]`` at t = 2 is hs_2."""
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Subscript) and isinstance(self.evaluate(node.value), Container):
            return item_name(self.name_of(node.value), self.parser.key(node.slice))
        return self.target_name(node)

    def statement_text(self, stmt):
        return " ".join((ast.get_source_segment(self.code.source, stmt) or "").split())

    def target_name(self, target):
        return " ".join((ast.get_source_segment(self.code.source, target) or "").split())

    # in-place changes

    def augment(self, stmt):
        op = _OPS.get(type(stmt.op))
        if op is None:
            self.fail(stmt, f"augmented assignment '{type(stmt.op).__name__}' is not allowed (only += -= *= /=)")
        if isinstance(stmt.target, ast.Subscript):
            return self.set_item(stmt.target, self.evaluate(stmt.value), stmt, op)
        if not isinstance(stmt.target, ast.Name):
            self.fail(stmt, f"augmented assignment to {describe_target(stmt.target)} is not allowed")
        name = stmt.target.id
        current = self.binding(stmt.target, name)
        rhs = self.value(stmt.value)
        where = self.target_name(stmt)
        old = current.value if isinstance(current, Array) else current
        new = self.combine(stmt, op, old, rhs, where)
        if isinstance(current, Array) and is_matrix(row_of(old)):
            self.change(current, name, new, stmt, "accumulate", self.statement_text(stmt))
        else:                                  # a scalar: numpy rebinds, nothing else changes
            self.bind(name, self.fresh(new), stmt)

    def combine(self, stmt, op, old, rhs, where):
        try:
            new = bc.binary(op, value_of(old), rhs, where)
        except (TracegradError, ValueError) as e:
            self.fail(stmt, str(e))
        before, after = row_of(value_of(old)), row_of(new)
        if is_matrix(before) and not (is_matrix(after) and all(same_dim(a, b) for a, b in zip(before.shape, after.shape))):
            self.fail(stmt, f"'{where}' would change the array's shape from {describe(old)} to {describe(new)}")
        return new

    def change(self, array, name, new, stmt, kind, text):
        array.value = new
        self.made(name, array, stmt, kind, text)

    def set_item(self, target, binding, stmt, op):
        """x[...] = v or x[...] op= v: an item of a container, a mask, labels."""
        base = self.evaluate(target.value)
        where = self.target_name(stmt)
        if isinstance(base, Container):
            key = self.parser.key(target.slice)
            if op is None:
                base.items[key] = binding
                if isinstance(binding, Array) and getattr(binding, "fresh", False):
                    self.bind(self.name_of(target.value), binding, stmt, key=key)
                return
            if key not in base.items or not isinstance(base.items[key], Array):
                self.fail(stmt, f"'{where}': no array at {key!r} to change")
            item = base.items[key]
            new = self.combine(stmt, op, item.value, value_of(self.as_value(stmt, binding)), where)
            return self.change(item, item_name(self.name_of(target.value), key), new, stmt, "accumulate",
                               self.statement_text(stmt))
        if not isinstance(base, Array) or not is_matrix(row_of(base.value)):
            self.fail(stmt, f"item assignment to {describe(value_of(getattr(base, 'value', base)))} is not allowed")
        name = self.name_of(target.value)
        index = self.parser.translate(target.slice) if not isinstance(target.slice, ast.Tuple) else None
        value = value_of(self.as_value(stmt, binding))
        if isinstance(index, Condition):
            text = self.statement_text(stmt)
            return self.change(base, name, self.masked(stmt, base.value, index, value, op), stmt,
                               "mask", text)
        selector, spread = self.selected(stmt, target, base.value, value)
        x = base.value
        try:
            placed = hadamard(selector, spread)
            if op is None:
                new = add(hadamard(row_of(x), bc.negation(Condition(selector)).value), placed)
            elif op in "+-":
                new = add(row_of(x), placed if op == "+" else scale(-1, placed))
            else:
                self.fail(stmt, f"'{op}=' on labelled entries is not allowed (only =, += and -=)")
        except (TracegradError, ValueError) as e:
            self.fail(stmt, str(e))
        self.change(base, name, Vector(new) if isinstance(x, Vector) else new, stmt, "labels",
                    self.statement_text(stmt))

    def as_value(self, stmt, binding):
        found = binding.value if isinstance(binding, Array) else binding
        if not isinstance(value_of(found), (sp.Basic, Vector)):
            self.fail(stmt, f"the value assigned is {describe(found)}, not an array or a number")
        return found

    def masked(self, stmt, x, condition, value, op):
        """x[c] = v is x ∘ (1 − c) + c ∘ v; x[c] += v is x + c ∘ v (and so on for -= *= /=)."""
        where = self.target_name(stmt)
        try:
            chosen = bc.binary("*", condition.value, value, where)
            if op is None:
                kept = bc.binary("*", x, bc.negation(condition).value, where)
                return self.combine(stmt, "+", kept, chosen, where) if chosen != 0 else kept
            if op in "+-":
                return self.combine(stmt, op, x, chosen, where)
            factor = bc.binary("+", bc.negation(condition).value, bc.binary(op, condition.value, value, where)
                               if op == "*" else bc.binary("/", condition.value, value, where), where)
            return self.combine(stmt, "*", x, factor, where)
        except (TracegradError, ValueError) as e:
            self.fail(stmt, str(e))

    def selected(self, stmt, target, x, value):
        """(S, V): the 0/1 matrix of the entries ``target`` picks by labels, and the value
        assigned spread over x's shape (numpy's fancy indexing as one-hot algebra)."""
        items = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
        found = [self.parser.translate(i) if not self.is_range(i) else "range" for i in items]
        inner, is_vector = row_of(x), isinstance(x, Vector)
        rows, cols = inner.shape
        if len(found) == 2 and found[0] == "range" and isinstance(found[1], LabelSymbol) \
                and not isinstance(found[1], SingleLabel):
            y = found[1]
            if not all(same_dim(a, b) for a, b in zip(inner.shape, y.shape)):
                self.fail(stmt, f"labels of shape {describe(y)} index an array of shape {describe(x)}")
            return y, bc.expand_to(column_of(value), rows, cols)
        if len(found) in (1, 2) and isinstance(found[0], SingleLabel):
            k = found[0]
            if len(found) == 2 and not (isinstance(found[1], sp.Basic) and found[1] == 0 and cols == 1):
                self.fail(stmt, "a single label indexes a column as c[k, 0]")
            if is_vector:
                return k, bc.expand_to(row_of(value), 1, cols)
            if same_dim(cols, 1):
                return T(k), bc.expand_to(value, rows, 1)
            return matmul(T(k), sp.OneMatrix(1, cols)), bc.expand_to(row_of(value), rows, cols)
        if len(found) == 1 and isinstance(found[0], LabelSymbol):
            self.fail(stmt, "x[y] = v or x[y] += v with labels that may repeat writes each row once "
                            "(numpy buffers it): use np.add.at(x, y, v) to accumulate")
        self.fail(stmt, f"item assignment '{self.target_name(target)}' is not allowed (only masks x[c] = v, "
                        f"labels x[range(N), y], containers, and np.add.at)")

    def is_range(self, node):
        return isinstance(node, ast.Call) and tuple(dotted(node.func) or ()) in \
            {("range",), ("np", "arange"), ("numpy", "arange"), ("torch", "arange")}

    def add_at(self, node):
        """np.add.at(x, labels, v): x + Σ (one-hot of the labels)ᵀ v, repeated labels adding up."""
        if len(node.args) != 3 or node.keywords:
            self.fail(node, "np.add.at takes (array, labels, values)")
        base = self.evaluate(node.args[0])
        labels = self.parser.translate(node.args[1])
        values = self.parser.translate(node.args[2])
        if isinstance(labels, LabelGrid) and isinstance(values, Stack):
            pairs = list(zip(labels.positions, values.blocks))
        elif isinstance(labels, LabelSymbol) and not isinstance(values, (Stack, Container)):
            pairs = [(labels, row_of(value_of(values)))]
        else:
            self.fail(node, "np.add.at needs labels and matching values (C[y] rows, or C[Xb] positions)")
        self.scatter(node, base, pairs, "np.add.at")

    def index_add(self, node):
        """x.index_add_(0, labels.view(-1), v.view(-1, d)): the same as np.add.at."""
        if len(node.args) != 3 or node.keywords:
            self.fail(node, "index_add_ takes (0, labels, values)")
        base = self.evaluate(node.func.value)
        axis = self.parser.dim(node.args[0])
        labels, values = (self.parser.translate(a) for a in node.args[1:])
        if axis != 0:
            self.fail(node, "index_add_ along axis 0 only")
        if isinstance(labels, Flat) and isinstance(values, Flat) and len(labels.parts) == len(values.parts):
            pairs = list(zip(labels.parts, values.parts))
        elif isinstance(labels, LabelSymbol) and is_matrix(row_of(value_of(values))):
            pairs = [(labels, row_of(value_of(values)))]
        else:
            self.fail(node, "index_add_ needs labels and values flattened the same way")
        self.scatter(node, base, pairs, "index_add_")

    def scatter(self, node, base, pairs, what):
        if not isinstance(base, Array) or not is_matrix(row_of(base.value)):
            self.fail(node, f"{what} adds into an array")
        x = row_of(base.value)
        total = x
        for labels, values in pairs:
            if isinstance(base.value, Vector):
                part = matmul(values, labels)               # 1-D: Σᵢ vᵢ e(yᵢ)
            else:
                part = matmul(T(labels), values)
            if not all(same_dim(a, b) for a, b in zip(part.shape, x.shape)):
                self.fail(node, f"{what}: the values add up to {describe(part)}, the array is {describe(x)}")
            total = add(total, part)
        new = Vector(total) if isinstance(base.value, Vector) else total
        self.change(base, self.target_name(node.args[0] if what == "np.add.at" else node.func.value),
                    new, node, "scatter", self.statement_text(node))

    # control flow

    def loop(self, stmt):
        if stmt.orelse:
            self.fail(stmt, "for ... else is not allowed")
        if not isinstance(stmt.target, ast.Name):
            self.fail(stmt, "a loop variable is one name")
        for k in self.iterations(stmt.iter):
            self.scope()[stmt.target.id] = sp.Integer(k)
            self.run(stmt.body)

    def iterations(self, node):
        """The values of a loop over range(...) / reversed(range(...)), known before running."""
        path = dotted(node.func) if isinstance(node, ast.Call) else None
        if path == ["reversed"] and len(node.args) == 1:
            return list(reversed(self.iterations(node.args[0])))
        if path != ["range"] or node.keywords or not 1 <= len(node.args) <= 3:
            self.fail(node, "a loop runs over range(...) or reversed(range(...)) (while loops, and "
                            "loops over arrays, cannot be unrolled)")
        bounds = []
        for arg in node.args:
            try:
                value = self.parser.dim(arg)
            except FormulaError as e:
                raise ModelError(f"{self.code.path}: {e}") from None
            if value.free_symbols:
                raise NeedsFixedDims({d for d in value.free_symbols}, node.lineno)
            bounds.append(int(value))
        steps = range(*bounds)
        if len(steps) > MAX_ITERATIONS:
            self.fail(node, f"a loop of {len(steps)} iterations, more than {MAX_ITERATIONS}")
        return list(steps)

    def static_test(self, test):
        found = value_of(self.parser.translate(test))
        if isinstance(found, sp.Basic) and found.is_number and not is_matrix(found):
            return bool(found != 0)
        self.fail(test, "an 'if' must be decided before running (on loop variables and literals), "
                        "not on array values")

    # helpers

    def inline(self, node, function, binding=False):
        fn = function.node
        if fn.name in self.calls:
            self.fail(node, f"recursion: '{fn.name}' calls itself")
        if len(self.calls) >= MAX_CALL_DEPTH:
            self.fail(node, f"helpers nest deeper than {MAX_CALL_DEPTH} calls")
        frame = self.arguments(node, fn)
        self.frames.append({})
        self.calls.append(fn.name)
        try:
            for name, found in frame.items():
                self.bind(name, found, fn)
            self.run(fn.body)
            result = None
        except _Return as done:
            result = done.binding
        finally:
            self.frames.pop()
            self.calls.pop()
        if binding:
            return result
        if result is None:
            self.fail(node, f"'{fn.name}' returns nothing")
        return result.value if isinstance(result, Array) else result

    def arguments(self, node, fn):
        params = [a.arg for a in fn.args.args]
        defaults = dict(zip(params[len(params) - len(fn.args.defaults):], fn.args.defaults))
        if len(node.args) > len(params):
            self.fail(node, f"'{fn.name}' takes {len(params)} arguments, got {len(node.args)}")
        frame = {p: self.evaluate(a) for p, a in zip(params, node.args)}
        for keyword in node.keywords:
            if keyword.arg not in params or keyword.arg in frame:
                self.fail(keyword, f"'{fn.name}' has no parameter '{keyword.arg}' left to give")
            frame[keyword.arg] = self.evaluate(keyword.value)
        for p in params:
            if p not in frame:
                if p not in defaults:
                    self.fail(node, f"'{fn.name}' needs its parameter '{p}'")
                frame[p] = ast.literal_eval(defaults[p])
        return frame


def item_name(container, key):
    """The name of a container's item: hs[2] is hs_2, hs[-1] hs_m1, grads['W1'] grads_W1."""
    return f"{container}_{key if not isinstance(key, int) or key >= 0 else f'm{-key}'}"


def column_of(value):
    """A value assigned to one entry per row: a scalar, or a 1-D vector / column of them."""
    inner = row_of(value)
    if isinstance(value, Vector):
        return T(inner)
    return inner


def describe_target(node):
    return {ast.Attribute: "an attribute", ast.Starred: "a starred name"}.get(type(node), type(node).__name__)
