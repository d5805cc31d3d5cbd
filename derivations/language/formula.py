"""Numpy-like formula strings to SymPy expressions through a strict ``ast`` whitelist.

The text is parsed with ``ast.parse(mode="eval")`` and each allowed node is translated by hand;
nothing is ever evaluated as Python.  Syntax and semantics: DESIGN.md §4, broadcast.py, and the
tables of spellings.py.  Defaults: ``softmax(A)`` is per column (axis 0); ``sum(A)`` is 1×1;
``sum(A, axis=1)`` without keepdims and ``ones(n)`` are 1-D, which broadcast as rows.
The code-file reader (codefile/) subclasses ``Parser`` for the names and forms of a program.
"""
import ast
import inspect
import math
import re
import warnings

import sympy as sp

from tracegrad.errors import FormulaError
from tracegrad.language import broadcast as bc
from tracegrad.language.labels import index_by_labels
from tracegrad.language.spellings import (FUNCTIONS, KEYWORD_ALIASES, KEYWORD_KINDS, METHODS,
                                          NAMESPACES, REFUSED_METHODS, TORCH_KEYWORDS)
from tracegrad.language.values import (ArgMax, Condition, LabelSymbol, MaxPair, Shape, Vector,
                                       VectorSymbol, describe, row_of, value_of)
from tracegrad.symbolic.shapes import is_matrix

__all__ = ["FUNCTIONS", "MAX_SIZE", "Parser", "parse_formula", "parse_value", "parse_dim"]

MAX_CHARS, MAX_DEPTH, MAX_NODES, MAX_DIM_DEGREE = 10_000, 100, 5_000, 4
MAX_SIZE = 100_000             # largest explicit size, here and in --sizes and [sizes]

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
           ast.MatMult: "@", ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<",
           ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&"}
_COMPARISONS = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==",
                ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in",
                ast.NotIn: "not in"}
_REFUSED = {ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
            ast.DictComp: "comprehension", ast.GeneratorExp: "comprehension",
            ast.JoinedStr: "f-string", ast.FormattedValue: "f-string",
            ast.NamedExpr: "assignment expression ':='", ast.Starred: "starred argument",
            ast.BoolOp: "'and'/'or'", ast.IfExp: "conditional expression", ast.Dict: "dict",
            ast.Set: "set", ast.Tuple: "tuple", ast.List: "list", ast.Slice: "slice",
            ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield"}
_NOT_COUNTED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
_LIBRARIES = {path[0] for path in NAMESPACES}
_RANGES = {("range",), ("np", "arange"), ("numpy", "arange"), ("torch", "arange")}
# Octave/MATLAB spellings people paste, and their numpy forms
OCTAVE = [(re.compile(r"[\w)\]]'"), "Octave's A' is written A.T in numpy"),
          (re.compile(r"\.[*/^]"), "Octave's .* ./ .^ are written * / ** in numpy")]


def dotted(node):
    """["np", "linalg", "inv"] for np.linalg.inv, or None when not a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    return [node.id, *parts] if isinstance(node, ast.Name) else None


class Parser:
    """Translates the ``ast`` of numpy-like expressions; ``names`` maps identifiers to values,
    ``derivative(kind, name)`` answers grad/jac, ``dialect`` ("numpy", "torch" or None) decides
    the method forms whose meaning differs between the libraries (``A.var(0)``)."""

    def __init__(self, text, names, derivative=None, dialect=None):
        if not isinstance(text, str):
            raise FormulaError(f"a formula must be a string, got {type(text).__name__}")
        if len(text) > MAX_CHARS:
            raise FormulaError(f"formula is longer than {MAX_CHARS} characters")
        self.source = text.lstrip()
        # Positions are reported in the caller's text, before leading whitespace was removed.
        prefix = re.split(r"\r\n|\r|\n", text[:len(text) - len(self.source)])
        self.shift_lines, self.shift_col = len(prefix) - 1, len(prefix[-1])
        self.lines = re.split(r"\r\n|\r|\n", self.source)
        self.multiline = len(re.split(r"\r\n|\r|\n", text.strip())) > 1
        self.names, self.derivative, self.dialect = names, derivative, dialect

    # positions and errors

    def position(self, line, col):
        if line == 1:
            col += self.shift_col
        line += self.shift_lines
        return f"line {line}, column {col}" if self.multiline else f"column {col}"

    def at(self, node):
        text = self.lines[min(node.lineno, len(self.lines)) - 1]
        col = len(text.encode("utf-8")[:node.col_offset].decode("utf-8", "replace")) + 1
        return self.position(node.lineno, col)

    def fail(self, node, message):
        raise FormulaError(f"{message} at {self.at(node)}")

    def segment(self, node):
        text = " ".join((ast.get_source_segment(self.source, node) or "").split())
        return text if len(text) <= 60 else text[:57] + "..."

    # parsing and resource bounds

    def parse(self):
        depth = 0
        for i, char in enumerate(self.source):
            depth += (char in "([{") - (char in ")]}")
            if depth > MAX_DEPTH:
                lines = re.split(r"\r\n|\r|\n", self.source[:i + 1])
                where = self.position(len(lines), len(lines[-1]))
                raise FormulaError(f"brackets nest deeper than {MAX_DEPTH} levels at {where}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(self.source, mode="eval")
        except SyntaxError as e:
            where = self.position(e.lineno or 1, max(e.offset or 1, 1))
            hint = next((f" ({h})" for pattern, h in OCTAVE if pattern.search(self.source)), "")
            raise FormulaError(f"syntax error at {where}: {e.msg}{hint}") from None
        except (RecursionError, MemoryError):
            raise FormulaError("formula is nested too deeply to parse") from None
        except ValueError as e:
            raise FormulaError(f"syntax error: {e}") from None
        self.bounded(tree.body)
        return tree.body

    def bounded(self, root):
        """Refuses more than MAX_NODES parts, deeper than MAX_DEPTH, and any dunder name."""
        stack, count = [(root, 1)], 0
        while stack:
            node, depth = stack.pop()
            count += 1
            if count > MAX_NODES:
                raise FormulaError(f"formula has more than {MAX_NODES} parts")
            if depth > MAX_DEPTH:
                self.fail(node, f"formula nests deeper than {MAX_DEPTH} levels "
                                f"(long operator chains count as nesting)")
            name = getattr(node, "id", None) or getattr(node, "attr", None) or ""
            if "__" in name:
                self.fail(node, f"name '{name}' is not allowed")
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                         if not isinstance(child, _NOT_COUNTED))

    def run(self, translate):
        body = self.parse()
        try:
            return translate(body)
        except (RecursionError, MemoryError):
            raise FormulaError("formula is too deep or too large to build") from None

    # expressions

    def translate(self, node):
        """The value of ``node`` as it is: possibly a Condition, a max pair, a shape."""
        visit = getattr(self, "visit_" + type(node).__name__, None)
        if visit is None:
            self.fail(node, f"{_REFUSED.get(type(node), type(node).__name__)} is not allowed")
        try:
            return visit(node)
        except (ValueError, ArithmeticError, NotImplementedError) as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            self.fail(node, f"{reason} in '{self.segment(node)}'")

    def value(self, node, found=None):
        """The arithmetic value of ``node`` (translated already: ``found``): a scalar, a
        matrix or a 1-D vector."""
        raw = self.translate(node) if found is None else found
        found = value_of(raw)
        if isinstance(found, (Shape, ArgMax)):
            self.fail(node, f"'{self.segment(node)}' is {describe(found)}, not an array")
        if isinstance(raw, LabelSymbol):
            self.fail(node, f"'{self.segment(node)}' holds integer labels: they can index "
                            f"(P[range(N), y], C[y]) or be one-hot encoded, not be computed with")
        if not isinstance(found, (sp.Basic, Vector)):
            self.fail(node, f"'{self.segment(node)}' is {describe(found)}, not an array")
        return found

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool) or value is None:
            self.fail(node, f"{value} is not allowed")
        if isinstance(value, int):
            return sp.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail(node, "number out of range")
            text = repr(value)
            digits = text.split("e")[0].replace(".", "").lstrip("0")
            return sp.Rational(text) if len(digits) <= 12 else sp.Float(value)
        kind = "strings" if isinstance(value, (str, bytes)) else f"{type(value).__name__} values"
        self.fail(node, f"{kind} are not allowed")

    def check_name(self, node, name):
        if "__" in name:
            self.fail(node, f"name '{name}' is not allowed")

    def visit_Name(self, node):
        self.check_name(node, node.id)
        return self.lookup(node, node.id)

    def lookup(self, node, name):
        if name in self.names:
            value = self.names[name]
            if isinstance(value, sp.MatrixBase) and not isinstance(value, sp.MatrixExpr):
                return sp.ImmutableMatrix(value)
            if isinstance(value, VectorSymbol):
                return Vector(value)
            return value if isinstance(value, (Vector, Condition)) else sp.sympify(value, strict=True)
        if name in FUNCTIONS:
            self.fail(node, f"function '{name}' must be called, as in {name}(...)")
        if any(path[0] == name for path in NAMESPACES):
            self.fail(node, f"'{name}' may only prefix a function, as in {name}.sum(A)")
        self.fail(node, f"unknown name '{name}'")

    def visit_Attribute(self, node):
        if "__" in node.attr:
            self.fail(node, f"attribute '{node.attr}' is not allowed")
        path = dotted(node)
        if path and path[0] not in self.names and any(tuple(path[:k]) in NAMESPACES for k in (1, 2, 3)):
            self.fail(node, f"attribute '.{node.attr}' of {'.'.join(path[:-1])} is not allowed "
                            f"(only its functions, called)")
        target = self.translate(node.value)
        if node.attr == "T":
            return bc.transpose(self.value(node.value, target))
        if node.attr == "shape":
            inner = row_of(target)
            if not is_matrix(inner):
                self.fail(node, f"'{self.segment(node.value)}' has no shape (a scalar)")
            return Shape((target.length,) if isinstance(target, Vector) else tuple(inner.shape))
        if node.attr in ("values", "indices") and isinstance(target, MaxPair):
            return target.values if node.attr == "values" else target.indices
        self.fail(node, f"attribute '.{node.attr}' is not allowed (only .T, .shape, and "
                        f".values/.indices of a max along an axis)")

    def visit_BinOp(self, node):
        op = _BINOPS.get(type(node.op), type(node.op).__name__)
        if op in ("&", "|"):
            a, b = self.condition(node.left), self.condition(node.right)
            return (bc.conjunction if op == "&" else bc.disjunction)(a, b, self.segment(node))
        if op in ("//", "%", "<<", ">>", "^"):
            hint = " (use ** for powers)" if op == "^" else ""
            self.fail(node, f"operator '{op}' is not allowed{hint}")
        a, b, where = self.value(node.left), self.value(node.right), self.segment(node)
        if op == "@":
            return bc.matmul(a, b, where)
        return bc.power(a, b, where) if op == "**" else bc.binary(op, a, b, where)

    def condition(self, node):
        found = self.translate(node)
        if not isinstance(found, Condition):
            self.fail(node, f"'{self.segment(node)}' is not a comparison: '&', '|' and '~' "
                            f"combine conditions such as (Z > 0)")
        return found

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.USub):
            return bc.negate(self.value(node.operand))
        if isinstance(node.op, ast.UAdd):
            return self.value(node.operand)
        if isinstance(node.op, ast.Invert):
            return bc.negation(self.condition(node.operand))
        self.fail(node, "operator 'not' is not allowed (use ~ on a comparison)")

    def visit_Compare(self, node):
        if len(node.ops) > 1:
            self.fail(node, "chained comparisons are not allowed")
        op = _COMPARISONS[type(node.ops[0])]
        if op in ("is", "is not", "in", "not in"):
            self.fail(node, f"comparison '{op}' is not allowed (only > >= < <= == !=)")
        a, b = self.value(node.left), self.value(node.comparators[0])
        return bc.compare(op, a, b, self.segment(node))

    def visit_Subscript(self, node):
        return self.subscript(node, self.translate(node.value))

    def subscript(self, node, target):
        index = node.slice
        items = list(index.elts) if isinstance(index, ast.Tuple) else [index]
        where = self.segment(node)
        if isinstance(target, Shape):
            if len(items) != 1:
                self.fail(node, "a shape takes one index, as in X.shape[0]")
            k = self.dim(items[0])
            if not (k.is_Integer and -len(target.dims) <= k < len(target.dims)):
                self.fail(node, f"'{where}': the shape has {len(target.dims)} entries")
            return target.dims[int(k)]
        labelled = self.labelled(node, target, items)
        if labelled is not None:
            return labelled
        target = self.value(node.value, target)
        if isinstance(target, Vector):
            return self.vector_index(node, target, items)
        if len(items) == 1 and not isinstance(items[0], ast.Slice):
            items.append(ast.Slice())          # A[i] is row i, as in numpy
        if len(items) == 1:
            items.append(ast.Slice())
        slices = [isinstance(item, ast.Slice) for item in items]
        if len(items) != 2:
            self.fail(node, "subscripts of a matrix take two parts, as in A[1:, :] or A[0, 0]")
        if slices == [True, True]:
            return self.cut(target, items, where)
        if slices == [False, False]:
            return bc.element(target, self.dim(items[0]), self.dim(items[1]), where)
        # one integer and one slice: a row or a column, 1-D as in numpy
        k = self.dim(items[slices.index(False)])
        whole = self.cut(target, [ast.Slice() if s else None for s in slices], where,
                         fixed={slices.index(False): k})
        return Vector(whole if slices[1] else bc.transpose(whole))

    def cut(self, target, items, where, fixed=None):
        bounds = []
        for axis, item in enumerate(items):
            if fixed and axis in fixed:
                k = fixed[axis]
                lo = bc._bound(k, bc._shape(target)[axis], 0, target, where)
                bounds.append((lo, lo + 1))
                continue
            if item.step is not None and self.dim(item.step) != 1:
                self.fail(item.step, "slice steps are not allowed")
            bounds.append((self.bound(item.lower), self.bound(item.upper)))
        return bc.slice_(target, *bounds, where)

    def vector_index(self, node, v, items):
        """v[i] (an entry), v[a:b], v[:, None] (a column), v[None, :] (a row)."""
        where = self.segment(node)
        nones = [isinstance(i, ast.Constant) and i.value is None or
                 dotted(i) in (["np", "newaxis"], ["numpy", "newaxis"]) for i in items]
        if len(items) == 2 and any(nones) and not all(nones):
            other = items[nones.index(False)]
            if not (isinstance(other, ast.Slice) and other.lower is other.upper is other.step is None):
                self.fail(node, "only v[:, None] and v[None, :] add an axis to a 1-D vector")
            return v.row if nones[0] else bc.transpose(v.row)
        if len(items) != 1:
            self.fail(node, f"'{where}' indexes a 1-D vector with {len(items)} indices")
        (item,) = items
        if isinstance(item, ast.Slice):
            if item.step is not None and self.dim(item.step) != 1:
                self.fail(item.step, "slice steps are not allowed")
            return Vector(bc.slice_(v.row, (None, None), (self.bound(item.lower), self.bound(item.upper)), where))
        return bc.element(v.row, sp.Integer(0), self.dim(item), where)

    def labelled(self, node, target, items):
        """Indexing by integer labels as one-hot algebra, or None when no label is involved."""
        looked = []
        for item in items:
            path = dotted(item.func) if isinstance(item, ast.Call) else None
            if path and tuple(path) in _RANGES and not item.keywords and len(item.args) == 1:
                looked.append(("range", self.size(item.args[0])))
            elif isinstance(item, (ast.Name, ast.Subscript, ast.Attribute)):
                found = self.translate(item)
                looked.append(("labels", found) if isinstance(found, LabelSymbol) else ("other", item))
            else:
                looked.append(("other", item))
        if not any(kind == "labels" for kind, _ in looked):
            if any(kind == "range" for kind, _ in looked):
                self.fail(node, "range(...) indexes only with integer labels, as in P[range(N), y]")
            return None
        resolved = [(kind, x) if kind != "other" else ("number", self.dim(x)) for kind, x in looked]
        try:
            return index_by_labels(value_of(target), resolved)
        except ValueError as e:
            self.fail(node, f"{e} in '{self.segment(node)}'")

    def visit_Call(self, node):
        path = dotted(node.func)
        if path and len(path) == 1:
            return self.call_name(node, path[0])
        if path and path[0] in _LIBRARIES and path[0] not in self.names:
            table = NAMESPACES.get(tuple(path[:-1]), {})
            if path[-1] not in table:
                self.fail(node.func, f"unknown function '{'.'.join(path)}'")
            library = "torch" if path[0] in ("torch", "F") else "numpy"
            return self.apply(node, path[-1], table[path[-1]], [], library=library)
        if not isinstance(node.func, ast.Attribute):
            self.fail(node.func, "only functions, np.<function> and methods may be called")
        method = node.func.attr
        self.check_name(node.func, method)
        if method in REFUSED_METHODS:
            self.fail(node.func, REFUSED_METHODS[method])
        if method in ("reshape", "view"):
            return self.reshape(node, self.translate(node.func.value))
        if method not in METHODS:
            self.fail(node.func, f"unknown method '.{method}()'")
        receiver = self.translate(node.func.value)
        return self.apply(node, method, METHODS[method], [receiver], library=None)

    def call_name(self, node, name):
        if name in FUNCTIONS:
            return self.apply(node, name, FUNCTIONS[name], [], library=None)
        if name in self.names:
            self.fail(node.func, f"'{name}' is not a function")
        self.fail(node.func, f"unknown function '{name}'")

    def apply(self, node, name, spec, leading, library):
        """Calls a function of the tables with the call's arguments read as the mode says."""
        mode, handler = spec
        keywords, torch_style = {}, False
        for keyword in node.keywords:
            canonical = KEYWORD_ALIASES.get(keyword.arg, keyword.arg)
            if canonical not in KEYWORD_KINDS or canonical not in inspect.signature(handler).parameters:
                allowed = sorted(k for k in inspect.signature(handler).parameters if k in KEYWORD_KINDS)
                self.fail(keyword, f"keyword '{keyword.arg or '**'}' is not allowed for {name}()"
                                   + (f" (only {', '.join(a + '=' for a in allowed)})" if allowed else ""))
            keywords[canonical] = self.keyword(keyword, KEYWORD_KINDS[canonical])
            torch_style |= keyword.arg in TORCH_KEYWORDS
        if mode == "name":
            return self.derivative_of(node, name)
        if "dialect" in inspect.signature(handler).parameters:
            keywords["dialect"] = library or ("torch" if torch_style else self.dialect)
        args = list(node.args)
        for arg in args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "starred argument is not allowed")
        if mode == "blocks":
            blocks = args[0].elts if args and isinstance(args[0], (ast.Tuple, ast.List)) else args
            rest = args[1:] if blocks is not args else []
            values = [[self.value(b) for b in blocks], *(self.translate(a) for a in rest)]
        elif mode == "grid":
            if len(args) != 1 or not isinstance(args[0], (ast.List, ast.Tuple)):
                self.fail(node, f"{name}() takes one list of rows, as in {name}([[A, B], [C, D]])")
            rows = [r.elts if isinstance(r, (ast.List, ast.Tuple)) else [r] for r in args[0].elts]
            if not all(isinstance(r, (ast.List, ast.Tuple)) for r in args[0].elts):
                rows = [[r for r in args[0].elts]]
            values = [[[self.value(b) for b in row] for row in rows]]
        elif mode == "sizes":
            values = self.sizes(args)
        else:
            read = self.translate if mode == "raw" else self.value
            optional = [p.default is None for p in inspect.signature(handler).parameters.values()][1 + len(leading):]
            values = [None if isinstance(a, ast.Constant) and a.value is None and k < len(optional) and optional[k]
                      else read(a) for k, a in enumerate(args)]
        values = [x if mode == "raw" else self.value(node.func.value, x) for x in leading] + values
        try:
            inspect.signature(handler).bind(None, *values, **keywords)
        except TypeError as e:
            self.fail(node, f"wrong arguments for {name}(): {e}")
        return handler(self.segment(node), *values, **keywords)

    def sizes(self, args):
        """Sizes: integers and dimensions, one tuple of them, or a shape (np.ones(X.shape))."""
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = args[0].elts
        if len(args) == 1 and isinstance(args[0], (ast.Attribute, ast.Name)):
            found = self.translate(args[0])
            if isinstance(found, Shape):
                return list(found.dims)
        return [self.size(a) for a in args]

    def reshape(self, node, a):
        """A.reshape / A.view between the forms of one vector: 1-D, a row, a column (-1 fills in)."""
        if node.keywords:
            self.fail(node.keywords[0], "reshape takes the new shape only")
        a = self.value(node.func.value, a)
        wanted = self.reshape_sizes(node.args)
        inner = row_of(a)
        if not is_matrix(inner) or 1 not in inner.shape:
            self.fail(node, f"'{self.segment(node)}': only vectors are reshaped (a {describe(a)} "
                            f"matrix has no reshape that is not a transpose)")
        n = inner.shape[1] if inner.shape[0] == 1 else inner.shape[0]
        row = inner if inner.shape[0] == 1 else bc.transpose(inner)
        shapes = {(-1,): Vector(row), (n,): Vector(row), (1, -1): row, (1, n): row,
                  (-1, 1): bc.transpose(row), (n, 1): bc.transpose(row)}
        for shape, result in shapes.items():
            if len(shape) == len(wanted) and all(sp.expand(x - y) == 0 for x, y in zip(shape, wanted)):
                return result
        self.fail(node, f"cannot reshape {describe(a)} to {tuple(wanted)}")

    def reshape_sizes(self, args):
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = args[0].elts
        return [sp.Integer(-1) if isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.USub) and
                isinstance(a.operand, ast.Constant) and a.operand.value == 1 else self.size(a) for a in args]

    def keyword(self, keyword, kind):
        value = keyword.value
        if kind == "bool":
            if not (isinstance(value, ast.Constant) and isinstance(value.value, bool)):
                self.fail(value, f"{keyword.arg} must be True or False")
            return value.value
        if kind == "value":
            return None if isinstance(value, ast.Constant) and value.value is None else self.value(value)
        if kind == "size":
            return self.size(value)
        if isinstance(value, ast.Constant) and value.value is None and kind == "axis":
            return None
        sign = 1
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            sign, value = -1, value.operand
        if not (isinstance(value, ast.Constant) and type(value.value) is int):
            self.fail(value, "axis must be 0 or 1" if kind == "axis" else f"{keyword.arg} must be an integer")
        return sign * value.value

    def derivative_of(self, node, kind):
        if self.derivative is None:
            self.fail(node, f"{kind}() is not available here")
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            self.fail(node, f"{kind}() takes one name, as in {kind}(W1)")
        self.check_name(node.args[0], node.args[0].id)
        return self.derivative(kind, node.args[0].id)

    # dimension expressions: integers, dimension names, + - *, X.shape[k], len(X)

    def dim(self, node):
        return sp.expand(self._dim(node)[0])

    def _dim(self, node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return sp.Integer(node.value), 0
        if isinstance(node, (ast.Name, ast.Subscript, ast.Call)):
            value = self.dimension_value(node)
            if not (isinstance(value, (sp.Symbol, sp.Integer)) or
                    isinstance(value, sp.Expr) and value.is_integer and not value.has(sp.MatrixSymbol)):
                self.fail(node, f"'{self.segment(node)}' is not a dimension")
            return value, int(bool(value.free_symbols))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value, degree = self._dim(node.operand)
            return (-value if isinstance(node.op, ast.USub) else value), degree
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            (a, da), (b, db) = self._dim(node.left), self._dim(node.right)
            if isinstance(node.op, ast.Mult):
                if da + db > MAX_DIM_DEGREE:
                    self.fail(node, f"size has degree above {MAX_DIM_DEGREE}")
                return a * b, da + db
            return (a + b if isinstance(node.op, ast.Add) else a - b), max(da, db)
        self.fail(node, f"'{self.segment(node)}' is not allowed in a size "
                        f"(only integers, dimension names, +, - and *)")

    def dimension_value(self, node):
        if isinstance(node, ast.Call):
            path = dotted(node.func)
            if path == ["len"] and len(node.args) == 1 and not node.keywords:
                inner = row_of(self.value(node.args[0]))
                if not is_matrix(inner):
                    self.fail(node, f"len() of a scalar in '{self.segment(node)}'")
                return inner.shape[1] if isinstance(self.value(node.args[0]), Vector) else inner.shape[0]
            self.fail(node, f"'{self.segment(node)}' is not allowed in a size "
                            f"(only integers, dimension names, +, - and *)")
        if isinstance(node, ast.Subscript) and not (isinstance(node.value, ast.Attribute) and node.value.attr == "shape"):
            self.fail(node, f"'{self.segment(node)}' is not allowed in a size "
                            f"(only integers, dimension names, +, - and *)")
        return self.translate(node)

    def size(self, node):
        value = self.dim(node)
        if value.is_number and not 0 < value <= MAX_SIZE:
            self.fail(node, f"size must be positive and at most {MAX_SIZE}, got {value}")
        return value

    def bound(self, node):
        return None if node is None else self.dim(node)


def parse_value(text, names, *, derivative=None, dialect=None):
    """A formula's value as the language reads it: a 1-D vector stays a ``Vector``."""
    parser = Parser(text, names, derivative, dialect)
    return parser.run(parser.value)


def parse_formula(text, names, *, derivative=None):
    """A formula's SymPy value: a matrix expression (a 1-D vector as its 1 × n row), or a scalar.

    ``names`` maps identifiers to MatrixSymbols, Symbols or built expressions;
    ``derivative(kind, name)`` answers ``grad(name)`` / ``jac(name)`` (kind "grad" or "jac").
    Raises FormulaError, or ShapeError for shapes that do not compose.
    """
    return row_of(parse_value(text, names, derivative=derivative))


def parse_dim(text, dims):
    """A dimension such as ``"D + 1"`` or ``3`` as an expanded integer-valued SymPy expression."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    parser = Parser(text, dims)
    return parser.run(parser.size)
