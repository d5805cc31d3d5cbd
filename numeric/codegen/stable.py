"""What makes the generated module trainable where the textbook formulas overflow.

* Backward: an adjoint the engine's entry-wise algebra simplified once the adjoints were
  substituted (σ′ cancelling against the loss: G_Z4 = (A4 − Y)ᵀ/m) is printed in that simplified
  form, so ``dA4 = (A4 − Y)/((A4 − 1) A4)/m``, which is 0/0 at a saturated output, is never
  computed unless another gradient needs it.
* Forward: log σ(z) = −log(1 + e⁻ᶻ) and log(1 − σ(z)) = −log(1 + eᶻ) (``np.logaddexp``), and
  log softmax(a) = a − logsumexp(a): the cost stays finite when σ(z) rounds to 0 or 1.

Both are rewrites by equal values; the engine's derivation is read, never changed.
"""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from tracegrad.symbolic.algebra import T
from tracegrad.symbolic.functions import ELEMENT, Softmax, elementwise, scalar_body, sigmoid
from tracegrad.symbolic.rewrites import ENTRYWISE, SUBSTITUTE


class log_sigmoid(sp.Function):
    """log σ(x), printed as the helper of that name."""


class LogSoftmax(Softmax):
    """log softmax(A) along an axis, printed as the helper of that name."""


def simplified(derivation, x):
    """The adjoint of X to print: its named form where the engine's entry-wise algebra rewrote it
    after substituting the adjoints (a collapse the compact form cannot show), with the named
    forms of other adjoints inside it written as those adjoints again; else its compact form."""
    rules = [st.rule for st in derivation.steps if st.definition == x and st.G is None]
    if SUBSTITUTE not in rules or ENTRYWISE not in rules[rules.index(SUBSTITUTE):]:
        return derivation.adjoint(x, "compact")
    named = derivation.adjoint(x, "named")
    back = {}
    for s, G in derivation.adjoint_symbols.items():
        other = derivation.forms["named"].get(s)
        if s != x and other is not None and other != named and not other.is_Atom and not isinstance(other, sp.MatrixSymbol):
            back[other] = G
            back[T(other)] = T(G)
    return named.xreplace(back)


def stable_logs(expr, definitions):
    """``expr`` with log(A) and log(1 − A) for A = σ(Z), and log(S) for S = softmax(Z), written
    with log σ and log softmax of Z (``definitions``: {name: expression} of the forward names)."""
    def value(a):
        return definitions.get(a, a)

    def sigmoid_of(a):
        a = value(a)
        if isinstance(a, ElementwiseApplyFunction) and scalar_body(a) == sigmoid(ELEMENT):
            return a.expr
        return None

    def rewrite(node):
        if not (isinstance(node, ElementwiseApplyFunction) and scalar_body(node) == sp.log(ELEMENT)):
            return None
        arg = node.expr
        z = sigmoid_of(arg)
        if z is not None:
            return elementwise(log_sigmoid, z)
        if isinstance(arg, sp.MatAdd) and len(arg.args) == 2:
            ones = [a for a in arg.args if isinstance(a, sp.OneMatrix)]
            rest = [a for a in arg.args if isinstance(a, sp.MatMul)]
            coeff, mats = rest[0].as_coeff_matrices() if rest else (0, ())
            z = sigmoid_of(mats[0]) if ones and coeff == -1 and len(mats) == 1 else None
            if z is not None:       # log(1 − σ(z)) = log σ(−z)
                return elementwise(sp.Lambda(ELEMENT, log_sigmoid(-ELEMENT)), z)
        s = value(arg)
        if isinstance(s, Softmax) and not isinstance(s, LogSoftmax):
            return LogSoftmax(s.arg, s.axis)
        return None

    found = {}
    for node in sp.preorder_traversal(expr):
        new = rewrite(node)
        if new is not None:
            found[node] = new
    return expr.xreplace(found)
