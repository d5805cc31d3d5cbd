"""The one dispatch mechanism of tracegrad's per-class tables: differentiation rules, numeric
compilation, the rounding-error model and code generation each keep a ``Dispatch``.

A node gets the rule registered for the nearest class in its type's MRO (``sp.Dummy`` uses the
rule of ``sp.Symbol``, ``sp.log`` that of ``sp.Function`` unless it has its own), found once per
type.  The table reads as a mapping ``{class: rule}``, so a test can compare what two concerns
cover.
"""
from collections.abc import Mapping


class Dispatch(Mapping):
    """Rules by class for one concern (``concern`` names it in errors and tests)."""

    def __init__(self, concern, rules=None):
        self.concern = concern
        self._rules, self._found = {}, {}
        self.update(rules or {})

    def register(self, *classes):
        """Decorator: the rule for instances of ``classes``."""
        def add(rule):
            self.update(dict.fromkeys(classes, rule))
            return rule
        return add

    def update(self, rules):
        self._rules.update(rules)
        self._found.clear()

    def find(self, cls):
        """The rule for instances of ``cls``, or None."""
        if cls not in self._found:
            self._found[cls] = next((self._rules[c] for c in cls.__mro__ if c in self._rules), None)
        return self._found[cls]

    def __call__(self, node):
        return self.find(type(node))

    def __getitem__(self, cls):
        return self._rules[cls]

    def __iter__(self):
        return iter(self._rules)

    def __len__(self):
        return len(self._rules)

    def __repr__(self):
        return f"Dispatch({self.concern!r}, {len(self)} classes)"
