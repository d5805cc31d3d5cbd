"""Generate a standalone numpy module with ``forward`` and ``backward`` from a derivation.

``generate_module(derivation, title=None, wrt=None)`` returns the source text of a Python
module that imports only numpy:

* ``forward(values)`` computes every forward name in program order, one line per definition,
  and returns them in a dict (plus the intermediate values ``backward`` reuses).
* ``backward(values, cache=None)`` returns ``{name: ∇_X J}`` for every ``X`` of ``wrt``: the
  gradient, an array of the shape of ``X`` (a number for a scalar).  ``cache`` is what
  ``forward(values)`` returned (computed when ``None``).

Rules of the generated code:

* Backprop, read off the compact forms: each adjoint of a forward name is computed once, in
  reverse program order, from forward values and later adjoints — in the simplified form where
  the engine's entry-wise algebra collapsed it (``dZ4 = (A4 - Y) / m``; ``stable.py``), and
  only when a requested gradient needs it.  In the module ``dN`` is the
  gradient ∇_N J (shape of N), the transpose of the derivation's numerator-layout ``G_N``; the
  transpose is pushed down to the symbols (``symbolic.algebra.T``), so ``dZ1 = dA1 * step(Z1)``.
* Sizes are read off the arrays' shapes (``m = X.shape[1]``); only a size that is no whole
  side of any input or parameter has to be passed in ``values``.
* Shared subexpressions: a non-trivial subexpression used twice in a function is bound to a
  temporary ``tK`` at its first use; a forward subexpression that ``backward`` needs is kept
  by ``forward`` and read from the cache, never recomputed.
* Idioms: ``1ᵀ M`` with a row of ones prints ``M.sum(axis=0, keepdims=True)``, ``M 1`` prints
  ``M.sum(axis=1, keepdims=True)``; ``b 1ᵀ`` next to a full matrix in a sum or element-wise
  product prints ``b`` (numpy broadcasting); ``1`` there prints the number 1.
* Stable forward: ``log σ(Z)``, ``log(1 − σ(Z))`` and ``log softmax(Z)`` are printed as
  ``log_sigmoid(Z)``, ``log_sigmoid(-Z)`` and ``log_softmax(Z)``, finite where σ rounds to 0 or 1.
* Helpers (numerically stable ``sigmoid``, ``log_sigmoid``, ``relu``, ``step``, ``softmax``,
  ``log_softmax``) are defined at the top of the module only when the code uses them.

The generator is a printer: one rule per SymPy node type (``MATRIX_RULES``, ``SCALAR_RULES``),
each returning Python source text.  Nothing here evaluates or executes the generated text.
An expression with a node no rule covers raises ``TracegradError`` naming the node.
"""
from tracegrad.numeric.codegen.module import generate_module

__all__ = ["generate_module"]
