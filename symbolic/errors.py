"""The one exception family of tracegrad: every user-facing failure is a TracegradError."""


class TracegradError(Exception):
    """Base class; its message is one line that names the problem and where it is."""

    def __init__(self, message=""):
        # Messages quote names and formulas, and those may hold line breaks.
        super().__init__(" ".join(str(message).split()))


class ShapeError(TracegradError):
    """Shapes that do not compose; the message names the node and both shapes."""


class NoRuleError(TracegradError):
    """An operation the engine has no rule for (never a silent 0 or a guess)."""


class UsageError(TracegradError):
    """An argument that cannot be used: an unknown option, a size or seed out of range."""
