"""What the printer and its rule tables share: printed Python (``Code``), precedence and
parenthesising, the error for an uncovered node, and the orientation of a matrix expression."""
from dataclasses import dataclass

import sympy as sp

from tracegrad.symbolic.algebra import T, transposes
from tracegrad.symbolic.errors import TracegradError

# precedence of the printed Python expression (higher binds tighter)
CMP, ADD, MUL, UNARY, POW, ATOM = 30, 50, 60, 70, 80, 100
LINE = 99   # longest generated line before a sum is broken over lines


@dataclass(frozen=True)
class Code:
    """Python source of an expression and its precedence."""
    text: str
    prec: int = ATOM
    pieces: tuple = ()   # a sum's terms with their signs, where a long line may break


def fail(node, why="no code generation rule for this node"):
    return TracegradError(f"cannot generate code for {type(node).__name__} ({node}): {why}")


def wrap(code, prec):
    """Parenthesise ``code`` unless it binds at least as tightly as ``prec``."""
    return code.text if code.prec >= prec else f"({code.text})"


def is_matrix(x):
    return bool(getattr(x, "is_Matrix", False))


def oriented(x):
    """One representative of {X, Xᵀ} (fewer transposes, then SymPy's order): a value and its
    transpose are shared as one."""
    if not is_matrix(x) or isinstance(x, sp.MatrixSymbol):
        return x
    return min(x, T(x), key=lambda y: (transposes(y), sp.default_sort_key(y)))
