"""Network functions as SymPy objects, and the canonical form of element-wise application.

SymPy's ``X.applyfunc(f)`` wraps ``f`` in a ``Lambda`` over a fresh ``Dummy``, so two
applications of the same function compare unequal.  The engine shares adjoints between equal
subexpressions, so every element-wise application is rebuilt over one fixed variable ``ELEMENT``.
"""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

ELEMENT = sp.Symbol("x_", real=True)     # entries of real matrices: |x|′ = sign(x)


class step(sp.Function):
    """Unit step 1[x > 0]; its derivative is 0 wherever it is defined (x ≠ 0)."""

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_positive:
            return sp.Integer(1)
        if x.is_number and x.is_nonpositive:
            return sp.Integer(0)
        return None

    def _latex(self, printer):
        return f"\\mathbb{{I}}\\left[{printer._print(self.args[0])} > 0\\right]"

    def fdiff(self, argindex=1):
        return sp.Integer(0)


class relu(sp.Function):
    """relu(x) = max(0, x);  relu′(x) = 1[x > 0]."""

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_positive:
            return x
        if x.is_number and x.is_nonpositive:
            return sp.Integer(0)
        return None

    def _latex(self, printer):
        return f"\\operatorname{{relu}}\\left({printer._print(self.args[0])}\\right)"

    def fdiff(self, argindex=1):
        return step(self.args[0])


class sigmoid(sp.Function):
    """σ(x) = 1 / (1 + e^(−x));  σ′(x) = σ(x)(1 − σ(x))."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)
        return None

    def _latex(self, printer):
        return f"\\sigma\\left({printer._print(self.args[0])}\\right)"

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class Elementwise(ElementwiseApplyFunction):
    """f(X) entry by entry over the fixed variable ``ELEMENT``: the engine's form of SymPy's
    ``X.applyfunc(f)``.  It prints as tracegrad writes it wherever SymPy prints (``str``,
    ``sp.latex``, ``pprint``, Jupyter), not as the lambda SymPy shows."""

    def _sympystr(self, printer):
        return self._written(printer, "({} > 0)", "({} >= 0)")

    def _latex(self, printer):
        return self._written(printer, "\\mathbb{{I}}\\left[{} > 0\\right]", "\\mathbb{{I}}\\left[{} \\ge 0\\right]")

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        from sympy.printing.str import StrPrinter
        return prettyForm(self._written(StrPrinter(), "1[{} > 0]", "1[{} ≥ 0]"))

    def _written(self, printer, step_form, nonnegative_form):
        """This node in the calling printer's notation: the step as 1[x > 0], any other f as
        the printer writes f(x), with the matrix (in parentheses where needed) for x."""
        body, arg = scalar_body(self), printer._print(self.expr)
        if body == step(ELEMENT):
            return step_form.format(arg)
        if body == sp.Heaviside(ELEMENT, 1):
            return nonnegative_form.format(arg)
        if not (isinstance(self.expr, sp.MatrixSymbol) or isinstance(body, sp.Function) and body.args == (ELEMENT,)):
            arg = f"({arg})"
        slot = sp.Symbol("ARGUMENT")
        return printer._print(body.xreplace({ELEMENT: slot})).replace(printer._print(slot), arg)


def elementwise(function, matrix):
    """f(X) applied entry by entry, in canonical form (a ``Lambda`` over ``ELEMENT``)."""
    if isinstance(function, sp.Lambda):
        (var,) = function.variables
        body = function.expr.xreplace({var: ELEMENT})
    else:
        body = function(ELEMENT)
    # not SymPy's constructor: on a 1×1 matrix it applies f to the matrix itself (x² gives M²)
    return sp.Basic.__new__(Elementwise, sp.Lambda(ELEMENT, body), matrix)


def scalar_body(node):
    """The scalar expression f(ELEMENT) of an element-wise application node."""
    (var,) = node.function.variables
    return node.function.expr.xreplace({var: ELEMENT})


class AlongAxis(sp.MatrixExpr):
    """An operation on a matrix along axis 0 (each column) or 1 (each row): args (A, axis)."""
    WHAT = "this operation"

    def __new__(cls, arg, axis=0):
        axis = sp.Integer(axis)
        if axis not in (0, 1):
            raise ValueError(f"{cls.WHAT} axis must be 0 (per column) or 1 (per row)")
        return super().__new__(cls, arg, axis)

    @property
    def arg(self):
        return self.args[0]

    @property
    def axis(self):
        return int(self.args[1])


class Softmax(AlongAxis):
    """softmax(A) per column (axis 0: each column sums to 1) or per row (axis 1)."""
    WHAT = "softmax"

    @property
    def shape(self):
        return self.arg.shape

    def _eval_transpose(self):
        return None

    def _entry(self, i, j, **kwargs):
        raise NotImplementedError("softmax has no closed-form entry")


def softmax(matrix, axis=0):
    """softmax(A, axis=0) normalises each column; axis=1 each row."""
    return Softmax(matrix, axis)


def canonical(expr):
    """Rebuild every element-wise application over ``ELEMENT`` so equal terms compare equal."""
    if not isinstance(expr, sp.Basic) or not expr.args:
        return expr
    if isinstance(expr, ElementwiseApplyFunction):
        return elementwise(expr.function, canonical(expr.expr))
    args = [canonical(a) for a in expr.args]
    if all(a is b for a, b in zip(args, expr.args)):
        return expr
    return expr.func(*args)


class AxisMax(AlongAxis):
    """max(A) along an axis, kept 2-D: axis 0 → the largest entry of each column (1 × c),
    axis 1 → of each row (r × 1).  Its derivative is the subgradient 1[A = max]: where two
    entries tie for the maximum the function has a kink."""
    WHAT = "max"

    @property
    def shape(self):
        rows, cols = self.arg.shape
        return (sp.Integer(1), cols) if self.axis == 0 else (rows, sp.Integer(1))

    def _entry(self, i, j, **kwargs):
        raise NotImplementedError("max along an axis has no closed-form entry")

