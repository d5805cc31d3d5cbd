"""The product of the engine: an immutable derivation holding every step and every result."""
from dataclasses import dataclass
from types import MappingProxyType

import sympy as sp

from .algebra import T
from .errors import TracegradError

FORMS = ("compact", "named", "expanded")


@dataclass(frozen=True)
class Step:
    """One rule application: at ``node`` (within ``definition``) with adjoint ``G``, the rule
    ``rule`` gave ``results`` — pairs (target, its adjoint contribution or rewritten form)."""

    definition: sp.Basic
    node: sp.Basic
    rule: object
    G: sp.Basic
    results: tuple

    def __repr__(self):
        from .printing import step_repr
        return step_repr(self)

    def _repr_html_(self):
        from .printing import step_html
        return step_html(self)

    def _repr_latex_(self):
        from .printing import step_latex
        return step_latex(self)


@dataclass(frozen=True)
class Derivation:
    """All adjoints of a program, in three forms, and the steps that produced them.

    ``compact``: in terms of forward names and the adjoints ``G_N`` of the names that use X;
    ``named``: adjoint symbols substituted away, forward names kept (as a textbook writes it);
    ``expanded``: substituted down to inputs and parameters (what ``numeric.evaluate`` takes).

    Everything is built by ``derive`` before the derivation is returned: all three forms of
    every result and the complete step log, which holds the sweep's rule applications, the
    rewrites of the compact results and the substitutions (with their rewrites) that give the
    named forms.  Nothing is computed on access, so a derivation never changes and its steps
    do not depend on which results were read.  The named and expanded forms of a deep network
    share long tails (G_W1 holds G_Z2, which holds G_Z3, …); ``derive`` processes each shared
    subexpression once, so building all of them costs time linear in depth.
    """

    program: object
    wrt: tuple
    steps: tuple
    adjoint_symbols: MappingProxyType   # defined name -> its adjoint symbol G_N
    forms: MappingProxyType             # form -> {symbol: adjoint G (numerator layout)}

    def adjoint(self, x, form="expanded"):
        """G_X with dJ = tr(G_X dX): the numerator-layout derivative dJ/dX."""
        if form not in FORMS:
            raise TracegradError(f"unknown form '{form}': use one of {', '.join(FORMS)}")
        table = self.forms[form]
        key = self._key(x)
        if key not in table:
            raise TracegradError(f"no derivative of the cost with respect to '{x}' was derived")
        return table[key]

    def jacobian(self, x, form="expanded"):
        """dJ/dX in numerator layout (shape of Xᵀ)."""
        return self.adjoint(x, form)

    def gradient(self, x, form="expanded"):
        """∇_X J = (dJ/dX)ᵀ (shape of X)."""
        return T(self.adjoint(x, form))

    def results(self, form="expanded"):
        return dict(self.forms[form])

    def _key(self, x):
        if isinstance(x, str):
            for s in self.forms["compact"]:
                if s.name == x:
                    return s
        return x

    def __str__(self):
        from .printing import format_derivation
        return format_derivation(self)

    def __repr__(self):
        from .printing import derivation_repr
        return derivation_repr(self)

    def _repr_html_(self):
        from .printing import derivation_html
        return derivation_html(self)

    def _repr_latex_(self):
        from .printing import derivation_latex
        return derivation_latex(self)
