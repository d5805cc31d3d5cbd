"""What a model, a claim or a test point may ask for; each error message states its bound."""
import sympy as sp

from tracegrad.errors import UsageError
from tracegrad.symbolic.printing import to_text
from tracegrad.symbolic.shapes import matrix_numbers

MAX_FILE_BYTES = 1_000_000
MAX_ENTRIES = 200              # names in any one table
MAX_FORWARD = 50               # forward definitions: derivation time grows fast with depth
MAX_POINT_NUMBERS = 4_000_000  # numbers in the matrices evaluated at one numeric test point
MAX_SEED = 2**64 - 1


def too_many_numbers(what, exprs, sizes):
    """Why evaluating ``exprs`` at ``sizes`` would hold more than MAX_POINT_NUMBERS numbers
    ('' when it would not); ``what`` starts the sentence."""
    total, big, count = matrix_numbers(sp.Tuple(*exprs), sizes)
    if total <= MAX_POINT_NUMBERS:
        return ""
    text = to_text(big, "numpy")
    text = text if len(text) <= 40 else text[:37] + "..."
    at = ", ".join(f"{d}={v}" for d, v in sizes.items())
    return f"{what} would hold {total} numbers ({text} alone {count}) at sizes {at}, more than {MAX_POINT_NUMBERS}"


def check_point_size(what, exprs, sizes):
    problem = too_many_numbers(what, exprs, sizes)
    if problem:
        raise UsageError(problem)
