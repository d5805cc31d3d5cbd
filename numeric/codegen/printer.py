"""The printer: one function body, each node printed by its rule (``MATRIX_RULES``,
``SCALAR_RULES``), shared subexpressions bound to temporaries at their first use."""
import sympy as sp

from tracegrad.numeric.codegen.base import ATOM, LINE, Code, fail, is_matrix, oriented, wrap
from tracegrad.numeric.codegen.matrix_rules import MATRIX_RULES
from tracegrad.numeric.codegen.scalar_rules import SCALAR_RULES
from tracegrad.symbolic.algebra import T
from tracegrad.symbolic.dispatch import Dispatch

RULES = Dispatch("code generation", {**MATRIX_RULES, **SCALAR_RULES})


class Printer:
    """Prints one function body: statements in ``lines``, names it reads in ``used``.

    ``bound``: expression -> Python name already available (symbols, forward values, earlier
    results); ``shared``: expressions to bind to a temporary at their first use.
    """

    def __init__(self, names, bound, shared, temps):
        self.names, self.bound, self.shared, self.temps = names, dict(bound), set(shared), temps
        self.lines, self.used, self.helpers = [], [], set()
        self.env = {}        # Lambda variable or Sum index -> Code

    def use(self, name):
        if name not in self.used:
            self.used.append(name)
        return Code(name)

    def __call__(self, expr):
        expr = sp.sympify(expr)
        if expr in self.env:
            return self.env[expr]
        local = bool(self.env) and bool(expr.free_symbols & self.env.keys())
        if not local and expr in self.bound:
            return self.use(self.bound[expr])
        if not local and is_matrix(expr) and T(expr) in self.bound:
            return Code(f"{self.use(self.bound[T(expr)]).text}.T")
        if not local and oriented(expr) in self.shared and oriented(expr) != expr:
            return Code(f"{wrap(self(oriented(expr)), ATOM)}.T")
        code = _rule(expr)(self, expr)
        if not local and oriented(expr) in self.shared:
            name = self.temps.new()
            self.line(name, code)
            self.bound[expr] = name
            return self.use(name)
        return code

    def assign(self, name, expr):
        self.line(name, self(expr))

    def line(self, name, code):
        line = f"{name} = {code.text}"
        if len(line) > LINE - 4 and len(code.pieces) > 1:   # break a long sum before + / -
            pad = " " * (len(name) + 4)
            line = f"{name} = ({code.pieces[0]}" + "".join(
                f"\n{pad}{piece}" for piece in code.pieces[1:]) + ")"
        self.lines.append(line)

    def helper(self, name, *args):
        self.helpers.add(name)
        return Code(f"{name}({', '.join(a.text for a in args)})")

    def call(self, fn, *args):
        return Code(f"{fn}({', '.join(a.text for a in args)})")

    def size(self, expr):
        """An integer size or index: integer arithmetic stays int, anything else is int(...)."""
        expr = sp.sympify(expr)
        code = self(expr)
        if all(isinstance(a, (sp.Add, sp.Mul, sp.Symbol, sp.Integer)) or
               (isinstance(a, sp.Pow) and a.exp.is_Integer and a.exp >= 0)
               for a in sp.preorder_traversal(expr)):
            return code
        return Code(f"int({code.text})")

    def scalar(self, expr):
        """``expr`` used as a number: a matrix argument (1×1) gives its single entry."""
        code = self(expr)
        if getattr(expr, "is_Matrix", False):
            return Code(f"{wrap(code, ATOM)}[0, 0]")
        return code


def _rule(expr):
    found = RULES(expr)
    if found is None:
        raise fail(expr)
    return found
