"""Numpy-like formula strings to SymPy expressions through a strict ``ast`` whitelist.

The text is parsed with ``ast.parse(mode="eval")`` and each allowed node is translated by hand;
nothing is ever evaluated as Python.  Syntax and semantics: DESIGN.md §4 and broadcast.py.
Defaults: ``softmax(A)`` is per column (axis 0); ``sum(A)`` is 1×1; ``sum(A, axis=1)`` without
keepdims and ``ones(n)`` are rows, as numpy's 1-D results broadcast as rows.
"""
import ast
import inspect
import math
import re
import warnings

import sympy as sp

from tracegrad.language import broadcast as bc
from tracegrad.errors import FormulaError, TracegradError
from tracegrad.symbolic.functions import ELEMENT as _X, relu, sigmoid, step
from tracegrad.symbolic.shapes import is_matrix

MAX_CHARS, MAX_DEPTH, MAX_NODES, MAX_DIM_DEGREE = 10_000, 100, 5_000, 4
MAX_SIZE = 100_000             # largest explicit size, here and in --sizes and [sizes]


def _elementwise(f):
    return lambda where, a: bc.apply(f, a)


def _binary(op):
    return lambda where, a, b: bc.binary(op, a, b, where)


def _square(kind):
    return lambda where, a: bc.square(kind, a, where)


def _axis(axis, allow_none=True):
    if axis is None and allow_none:
        return None
    if isinstance(axis, (int, sp.Integer)) and int(axis) in (0, 1, -1, -2):
        return int(axis) % 2
    raise ValueError("axis must be 0 or 1")


def _dot(where, a, b):
    if is_matrix(a) and is_matrix(b):
        return bc.matmul(a, b, where)
    return bc.binary("*", a, b, where)


def _ones_shape(r, c):
    return (r, c) if c is not None else (1, r)


_ELEMENTWISE = {
    "log": sp.log, "exp": sp.exp, "tanh": sp.tanh, "sqrt": sp.sqrt, "abs": sp.Abs,
    "absolute": sp.Abs, "sigmoid": sigmoid, "relu": relu, "relu_prime": step,
    "sigmoid_prime": sp.Lambda(_X, sigmoid(_X) * (1 - sigmoid(_X))),
    "tanh_prime": sp.Lambda(_X, 1 - sp.tanh(_X) ** 2),
}

# name -> (how arguments are read, handler(where, *args, **keywords)); the handler's signature
# is the function's signature.  "sizes" arguments are dimension expressions, "blocks" may come
# as one tuple or list, "name" is grad/jac of an identifier.
FUNCTIONS = {
    "dot": ("values", _dot),
    "matmul": ("values", lambda where, a, b: bc.matmul(a, b, where)),
    "add": ("values", _binary("+")),
    "subtract": ("values", _binary("-")),
    "multiply": ("values", _binary("*")),
    "divide": ("values", _binary("/")),
    "power": ("values", lambda where, a, b: bc.power(a, b, where)),
    "square": ("values", lambda where, a: bc.power(a, sp.Integer(2), where)),
    "transpose": ("values", lambda where, a: bc.transpose(a)),
    "vstack": ("blocks", lambda where, *blocks: bc.stack(blocks, 0, where)),
    "hstack": ("blocks", lambda where, *blocks: bc.stack(blocks, 1, where)),
    "ones": ("sizes", lambda where, r, c=None: sp.OneMatrix(*_ones_shape(r, c))),
    "zeros": ("sizes", lambda where, r, c=None: sp.ZeroMatrix(*_ones_shape(r, c))),
    "eye": ("sizes", lambda where, n: sp.Identity(n)),
    "sum": ("values", lambda where, a, axis=None, keepdims=False:
            bc.total(a, _axis(axis), keepdims, where)),
    "mean": ("values", lambda where, a, axis=None, keepdims=False:
             bc.mean(a, _axis(axis), keepdims, where)),
    "softmax": ("values", lambda where, a, axis=0: bc.soft(a, _axis(axis, False), where)),
    "maximum": ("values", lambda where, a, b: bc.maximum(a, b)),
    "trace": ("values", _square("trace")),
    "inv": ("values", _square("inv")),
    "det": ("values", _square("det")),
    "logdet": ("values", _square("logdet")),
    "grad": ("name", None),
    "jac": ("name", None),
    **{name: ("values", _elementwise(f)) for name, f in _ELEMENTWISE.items()},
}
_NUMPY, _LINALG, _NOT_NUMPY = ("np", "numpy"), ("inv", "det"), ("grad", "jac")

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


class _Parser:
    def __init__(self, text, names, derivative=None):
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
        self.names, self.derivative = names, derivative

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
            raise FormulaError(f"syntax error at {where}: {e.msg}") from None
        except (RecursionError, MemoryError):
            raise FormulaError("formula is nested too deeply to parse") from None
        except ValueError as e:
            raise FormulaError(f"syntax error: {e}") from None
        stack, count = [(tree.body, 1)], 0
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
        return tree.body

    def run(self, translate):
        body = self.parse()
        try:
            return translate(body)
        except (RecursionError, MemoryError):
            raise FormulaError("formula is too deep or too large to build") from None

    # expressions

    def translate(self, node):
        visit = getattr(self, "visit_" + type(node).__name__, None)
        if visit is None:
            self.fail(node, f"{_REFUSED.get(type(node), type(node).__name__)} is not allowed")
        try:
            return visit(node)
        except (ValueError, ArithmeticError, NotImplementedError) as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            self.fail(node, f"{reason} in '{self.segment(node)}'")

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
        if node.id in self.names:
            value = self.names[node.id]
            if isinstance(value, sp.MatrixBase) and not isinstance(value, sp.MatrixExpr):
                return sp.ImmutableMatrix(value)
            return sp.sympify(value, strict=True)
        if node.id in FUNCTIONS:
            self.fail(node, f"function '{node.id}' must be called, as in {node.id}(...)")
        if node.id in _NUMPY:
            self.fail(node, f"'{node.id}' may only prefix a function, as in np.sum(A)")
        self.fail(node, f"unknown name '{node.id}'")

    def visit_Attribute(self, node):
        if "__" in node.attr:
            self.fail(node, f"attribute '{node.attr}' is not allowed")
        if node.attr == "T":
            return bc.transpose(self.translate(node.value))
        self.fail(node, f"attribute '.{node.attr}' is not allowed (only .T and np. functions)")

    def visit_BinOp(self, node):
        op = _BINOPS.get(type(node.op), type(node.op).__name__)
        if op in ("//", "%", "<<", ">>", "|", "^", "&"):
            self.fail(node, f"operator '{op}' is not allowed")
        a, b, where = self.translate(node.left), self.translate(node.right), self.segment(node)
        if op == "@":
            return bc.matmul(a, b, where)
        return bc.power(a, b, where) if op == "**" else bc.binary(op, a, b, where)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.USub):
            return bc.negate(self.translate(node.operand))
        if isinstance(node.op, ast.UAdd):
            return self.translate(node.operand)
        self.fail(node, f"operator '{'not' if isinstance(node.op, ast.Not) else '~'}' "
                        f"is not allowed")

    def visit_Compare(self, node):
        if len(node.ops) > 1:
            self.fail(node, "chained comparisons are not allowed")
        op = _COMPARISONS[type(node.ops[0])]
        if op not in (">", ">=", "<", "<=", "==", "!="):
            self.fail(node, f"comparison '{op}' is not allowed (only >, >=, <, <=, ==, !=)")
        a, b = self.translate(node.left), self.translate(node.comparators[0])
        return bc.compare(op, a, b, self.segment(node))

    def visit_Subscript(self, node):
        target, index = self.translate(node.value), node.slice
        items = list(index.elts) if isinstance(index, ast.Tuple) else [index]
        if len(items) == 1 and isinstance(items[0], ast.Slice):
            items.append(ast.Slice())
        slices = [isinstance(item, ast.Slice) for item in items]
        if len(items) != 2 or slices[0] != slices[1]:
            self.fail(node, "subscripts must be two slices, as in A[1:, :], or two integers, "
                            "as in A[0, 0]")
        where = self.segment(node)
        if not slices[0]:
            return bc.element(target, self.dim(items[0]), self.dim(items[1]), where)
        for item in items:
            if item.step is not None and self.dim(item.step) != 1:
                self.fail(item.step, "slice steps are not allowed")
        rows, cols = ((self.bound(s.lower), self.bound(s.upper)) for s in items)
        return bc.slice_(target, rows, cols, where)

    def visit_Call(self, node):
        name = self.function_name(node.func)
        mode, handler = FUNCTIONS[name]
        keywords = {}
        for keyword in node.keywords:
            if keyword.arg not in ("axis", "keepdims"):
                self.fail(keyword, f"keyword '{keyword.arg or '**'}' is not allowed "
                                   f"(only axis= and keepdims=)")
            keywords[keyword.arg] = self.keyword(keyword)
        if mode == "name":
            return self.derivative_of(node, name)
        args = node.args
        if mode != "values" and len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = args[0].elts
        values = [self.size(a) if mode == "sizes" else self.translate(a) for a in args]
        try:
            inspect.signature(handler).bind(None, *values, **keywords)
        except TypeError as e:
            self.fail(node, f"wrong arguments for {name}(): {e}")
        return handler(self.segment(node), *values, **keywords)

    def function_name(self, func):
        parts, node = [], func
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            self.fail(func, "only functions and np.<function> may be called")
        parts.insert(0, node.id)
        for part in parts:
            self.check_name(func, part)
        name = parts[-1]
        if len(parts) == 1 and name in FUNCTIONS:
            return name
        if len(parts) == 1 and name in self.names:
            self.fail(func, f"'{name}' is not a function")
        if parts[0] in _NUMPY and (len(parts) == 2 and name in FUNCTIONS and name not in
                                   _NOT_NUMPY or parts[1:] == ["linalg", name] and name in _LINALG):
            return name
        self.fail(func, f"unknown function '{'.'.join(parts)}'")

    def keyword(self, keyword):
        value = keyword.value
        if keyword.arg == "keepdims":
            if not (isinstance(value, ast.Constant) and isinstance(value.value, bool)):
                self.fail(value, "keepdims must be True or False")
            return value.value
        if isinstance(value, ast.Constant) and value.value is None:
            return None
        sign = 1
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            sign, value = -1, value.operand
        if not (isinstance(value, ast.Constant) and type(value.value) is int):
            self.fail(value, "axis must be 0 or 1")
        return sign * value.value

    def derivative_of(self, node, kind):
        if self.derivative is None:
            self.fail(node, f"{kind}() is not available here")
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            self.fail(node, f"{kind}() takes one name, as in {kind}(W1)")
        self.check_name(node.args[0], node.args[0].id)
        return self.derivative(kind, node.args[0].id)

    # dimension expressions: integers, dimension names, + - *

    def dim(self, node):
        return sp.expand(self._dim(node)[0])

    def _dim(self, node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return sp.Integer(node.value), 0
        if isinstance(node, ast.Name):
            value = self.visit_Name(node)
            if not isinstance(value, (sp.Symbol, sp.Integer)):
                self.fail(node, f"'{node.id}' is not a dimension")
            return value, int(value.is_Symbol)
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

    def size(self, node):
        value = self.dim(node)
        if value.is_number and not 0 < value <= MAX_SIZE:
            self.fail(node, f"size must be positive and at most {MAX_SIZE}, got {value}")
        return value

    def bound(self, node):
        return None if node is None else self.dim(node)


def parse_formula(text, names, *, derivative=None):
    """A formula's SymPy value: a matrix expression, or a scalar expression.

    ``names`` maps identifiers to MatrixSymbols, Symbols or built expressions;
    ``derivative(kind, name)`` answers ``grad(name)`` / ``jac(name)`` (kind "grad" or "jac").
    Raises FormulaError, or ShapeError for shapes that do not compose.
    """
    parser = _Parser(text, names, derivative)
    return parser.run(parser.translate)


def parse_dim(text, dims):
    """A dimension such as ``"D + 1"`` or ``3`` as an expanded integer-valued SymPy expression."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    parser = _Parser(text, dims)
    return parser.run(parser.size)
