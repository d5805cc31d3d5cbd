"""A model is a straight-line program: named definitions over symbols, ending in a scalar."""
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .algebra import matrix_product, rebuild, submatrix, substitute
from .entrywise import lift
from .errors import NoRuleError, ShapeError, TracegradError
from .functions import canonical
from .shapes import fmt, is_matrix, shape_of


class Program:
    """Ordered definitions ``name := expression``; the last one is the scalar cost.

    Each defined name is a ``MatrixSymbol`` (or a ``Symbol`` for a scalar definition), so later
    definitions, and derived formulas, can refer to it the way a hand derivation does.
    """

    def __init__(self, definitions=()):
        self._definitions, self._expansions = [], None
        for symbol, expr in definitions:
            self._add(symbol, expr)

    @classmethod
    def of(cls, cost, name="J"):
        """``cost`` itself if it is a Program, else the program ``J := cost`` — a deep expression
        cut into definitions t1, t2, … of bounded height, so that every walk of the engine stays
        shallow and linear in depth (the expanded results do not show the cut)."""
        if isinstance(cost, Program):
            return cost
        program = cls()
        *pieces, (_, top) = cut(sp.sympify(cost), name)
        for piece, expr in pieces:
            program.define(piece, expr)
        program.define(name, top)
        return program

    def define(self, name, expr, matrix_class=sp.MatrixSymbol):
        """Append ``name := expr`` and return the symbol that stands for it (a ``matrix_class``
        for a matrix: a caller's subclass can carry how it prints)."""
        expr = as_scalar_where_needed(canonical(without_index_sums(sp.sympify(expr))))
        shape = shape_of(expr)
        symbol = matrix_class(name, *shape) if shape else sp.Symbol(name)
        self._add(symbol, expr)
        return symbol

    def _add(self, symbol, expr):
        if any(s.name == symbol.name for s, _ in self._definitions):
            raise TracegradError(f"'{symbol.name}' is defined twice")
        shape_of(expr)
        self._definitions.append((symbol, expr))
        self._expansions = None

    @property
    def definitions(self):
        return tuple(self._definitions)

    @property
    def cost(self):
        return self._definitions[-1][0]

    def expansions(self):
        """{name: its definition substituted down to inputs and parameters}."""
        if self._expansions is None:
            out, memo = {}, {}
            for symbol, expr in self._definitions:
                out[symbol] = substitute(expr, out, memo)
            self._expansions = out
        return dict(self._expansions)

    def expand(self, expr):
        """``expr`` with every defined name replaced by its full expansion."""
        return substitute(expr, self.expansions())

    @property
    def expanded_cost(self):
        """The cost as one expression over inputs and parameters."""
        return self.expand(self.cost)

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


def without_index_sums(expr):
    """SymPy writes an entry of a product, (A B)[i, j], as a Sum over dummy indices: each such
    Sum becomes the matrix product it stands for, or an error naming it (never a stray index)."""
    if not expr.has(sp.Sum):
        return expr

    def convert(total):
        bound = {v for v, *_ in total.limits}
        if not any(e.free_symbols & bound for e in total.atoms(MatrixElement)):
            return total            # a sum of scalars, not of matrix entries
        found = entrywise_sum(total)
        if found is None:
            # SymPy's array-expression converter: imported here, as it costs 30 ms at start-up
            from sympy.tensor.array.expressions import convert_array_to_matrix, convert_indexed_to_array
            try:
                found = convert_array_to_matrix(convert_indexed_to_array(total))
            except Exception:       # SymPy's converter fails in many ways on what it cannot read
                found = None
        if isinstance(found, sp.MatrixExpr) and found.shape == (1, 1):
            found = MatrixElement(found, 0, 0)
        if found is None or found.has(sp.Sum) or found.free_symbols & bound:
            raise NoRuleError(f"no rule for the sum over matrix entries '{total}': write it as a "
                              "matrix product (SymPy writes an entry of a product, (A*B)[0, 0], this way)")
        return found
    return expr.replace(lambda e: isinstance(e, sp.Sum), convert)


def entrywise_sum(total):
    """Σᵢⱼ g(M₁[i, j], M₂[i, j], …) over whole rows and columns = 1ᵀ g(M₁, M₂, …) 1 (an index
    held fixed selects that row or column), or None when ``total`` is not of that form."""
    ranges = {v: (lo, hi) for v, lo, hi in total.limits}
    roles, parts = [None, None], {}
    for e in total.function.atoms(MatrixElement):
        cuts = []
        for k, (index, size) in enumerate(zip((e.i, e.j), shape_of(e.parent))):
            if index in ranges:
                if roles[k] not in (None, index) or ranges[index] != (0, size - 1):
                    return None
                roles[k] = index
                cuts.append((0, size))
            elif index.is_Integer:
                cuts.append((index, index + 1))
            else:
                return None
        parts[e] = submatrix(e.parent, *cuts)
    if set(r for r in roles if r is not None) != set(ranges) or len(set(map(shape_of, parts.values()))) != 1:
        return None
    shape = shape_of(next(iter(parts.values())))
    dummies = {e: sp.Dummy(f"e{i}") for i, e in enumerate(parts)}
    try:
        body = lift(total.function.xreplace(dummies), {d: parts[e] for e, d in dummies.items()}, shape)
    except ValueError:
        return None
    rows, cols = shape
    factors = ([sp.OneMatrix(1, rows)] if rows != 1 else []) + [body] + ([sp.OneMatrix(cols, 1)] if cols != 1 else [])
    return MatrixElement(matrix_product(factors) if len(factors) > 1 else body, 0, 0)


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


MAX_HEIGHT = 12      # levels of one definition when a deep expression is cut


def cut(expr, name):
    """[(tₖ, subexpression), …, (name, top)]: ``expr`` with every matrix subexpression that would
    be more than MAX_HEIGHT levels above the symbols (or the last cut) named, bottom-up.

    Iterative, and by object identity: a deep expression SymPy built may not even be hashed yet
    (hashing it would recurse to the symbols).  Bodies of lambdas and sums are left whole."""
    taken, stack = {name}, [expr]
    while stack:
        x = stack.pop()
        if isinstance(x, (sp.Symbol, sp.MatrixSymbol)):
            taken.add(x.name)
        stack.extend(a for a in x.args if isinstance(a, sp.Basic))
    count, pieces, done, keep = 0, [], {}, []
    stack = [(expr, False)]
    while stack:
        x, ready = stack.pop()
        if id(x) in done:
            continue
        opaque = not x.args or isinstance(x, (sp.Lambda, sp.Sum))
        if not ready and not opaque:
            stack.append((x, True))
            stack.extend((a, False) for a in x.args if id(a) not in done)
            continue
        keep.append(x)          # ids stay valid while the objects live
        if opaque:
            done[id(x)] = (x, 0)
            continue
        args, heights = zip(*(done[id(a)] for a in x.args))
        new, height = rebuild(x, list(args)), 1 + max(heights)
        if height >= MAX_HEIGHT and x is not expr and is_matrix(new) and not isinstance(new, sp.MatrixBase):
            count += 1
            while f"t{count}" in taken:
                count += 1
            pieces.append((f"t{count}", new))
            new, height = sp.MatrixSymbol(f"t{count}", *shape_of(new)), 0
        done[id(x)] = (new, height)
    return pieces + [(name, done[id(expr)][0])]
