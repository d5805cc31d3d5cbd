"""Every error tracegrad raises, in one place: ``except tracegrad.TracegradError`` catches all."""
from tracegrad.symbolic.errors import NoRuleError, ShapeError, TracegradError, UsageError


class FormulaError(TracegradError):
    """A formula that cannot be read; the message says where."""


class ModelError(TracegradError):
    """A model or code file that cannot be used; the message names the file and the entry."""


__all__ = ["TracegradError", "FormulaError", "ModelError", "UsageError", "ShapeError", "NoRuleError"]
