"""A model is a straight-line program: named definitions over symbols, ending in a scalar."""
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .errors import ShapeError, TracegradError
from .algebra import substitute
from .functions import canonical
from .shapes import fmt, is_matrix, shape_of


class Program:
    """Ordered definitions ``name := expression``; the last one is the scalar cost.

    Each defined name is a ``MatrixSymbol`` (or a ``Symbol`` for a scalar definition), so later
    definitions, and derived formulas, can refer to it the way a hand derivation does.
    """

    def __init__(self, definitions=()):
        self._definitions = []
        for symbol, expr in definitions:
            self._add(symbol, expr)

    @classmethod
    def of(cls, cost, name="J"):
        """A program of one line, ``J := cost``, or ``cost`` itself if it is a Program."""
        if isinstance(cost, Program):
            return cost
        program = cls()
        program.define(name, cost)
        return program

    def define(self, name, expr):
        """Append ``name := expr`` and return the symbol that stands for it."""
        expr = as_scalar_where_needed(canonical(sp.sympify(expr)))
        shape = shape_of(expr)
        symbol = sp.MatrixSymbol(name, *shape) if shape else sp.Symbol(name)
        self._add(symbol, expr)
        return symbol

    def _add(self, symbol, expr):
        if any(s.name == symbol.name for s, _ in self._definitions):
            raise TracegradError(f"'{symbol.name}' is defined twice")
        shape_of(expr)
        self._definitions.append((symbol, expr))

    @property
    def definitions(self):
        return tuple(self._definitions)

    @property
    def cost(self):
        return self._definitions[-1][0]

    def expansions(self):
        """{name: its definition substituted down to inputs and parameters}."""
        out, memo = {}, {}
        for symbol, expr in self._definitions:
            out[symbol] = substitute(expr, out, memo)
        return out

    def expand(self, expr):
        """``expr`` with every defined name replaced by its full expansion."""
        return expr.xreplace(self.expansions())

    def position(self, symbol):
        """Where ``symbol`` is defined (inputs count as before everything)."""
        for i, (s, _) in enumerate(self._definitions):
            if s == symbol:
                return i
        return -1

    def defined(self):
        return {s: e for s, e in self._definitions}

    def leaves(self):
        """Symbols that are used but not defined, in order of first use; dimension symbols excluded."""
        defined, dims, seen = self.defined(), self.dimensions(), {}
        for _, expr in self._definitions:
            for s in sorted(expr.free_symbols, key=str):
                if s not in defined and s not in dims and s not in seen:
                    seen[s] = None
        return list(seen)

    def dimensions(self):
        dims = set()
        for symbol, expr in self._definitions:
            for m in expr.atoms(sp.MatrixSymbol) | ({symbol} if is_matrix(symbol) else set()):
                for d in m.shape:
                    dims |= sp.sympify(d).free_symbols
        return dims

    def validate(self):
        """Names used before definition and a cost that is not scalar are errors."""
        seen = set()
        names = {s for s, _ in self._definitions}
        for symbol, expr in self._definitions:
            early = [s.name for s in expr.free_symbols & names if s not in seen]
            if early:
                raise TracegradError(f"'{symbol.name}' uses {early[0]} before it is defined")
            seen.add(symbol)
        shape = shape_of(self.cost)
        if shape is not None and shape != (1, 1):
            raise ShapeError(f"the cost '{self.cost.name}' must be a scalar or 1×1, not {fmt(shape)}")
        return self

    def __str__(self):
        return "\n".join(f"{s} := {e}" for s, e in self._definitions)


def as_scalar_where_needed(expr):
    """A 1×1 matrix used inside scalar arithmetic becomes its single entry M[0, 0]."""
    if not isinstance(expr, sp.Basic) or not expr.args:
        return expr
    args = [as_scalar_where_needed(a) for a in expr.args]
    if isinstance(expr, sp.Expr) and not is_matrix(expr) and \
            not isinstance(expr, (MatrixElement, sp.Trace, sp.Determinant)):
        args = [entry(a) if is_matrix(a) else a for a in args]
    if all(a is b for a, b in zip(args, expr.args)):
        return expr
    return expr.func(*args)


def entry(matrix):
    shape = shape_of(matrix)
    if shape != (1, 1):
        raise ShapeError(f"a {fmt(shape)} matrix '{matrix}' is used as a scalar")
    return MatrixElement(matrix, 0, 0)
