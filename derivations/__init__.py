"""tracegrad: derive backpropagation with trace-differential rules, and verify what people write.

    import tracegrad as tg
    model = tg.load("vardhan")          # a built-in name or a .toml model file
    model.derive()                      # the Derivation of every parameter
    model.check(claims={"dZ4": "(A4 - Y).T / m"})
    model.verify(sizes={"m": 512})

``tg.derive`` is the engine (``tracegrad.symbolic.derive``), ``tg.evaluate`` the numpy evaluator
(``tracegrad.numeric.evaluate``).  The names of ``tracegrad.api`` are imported on first use, so
``import tracegrad.symbolic`` alone needs SymPy only.
"""
__version__ = "0.2.0"

__all__ = ["__version__", "load", "builtin_names", "Model", "derive", "evaluate", "Derivation", "Step",
           "Program", "CheckReport", "ClaimResult", "VerifyReport", "TracegradError", "FormulaError",
           "ModelError", "UsageError", "ShapeError", "NoRuleError"]


def __getattr__(name):
    if name in __all__:
        from tracegrad import api
        return getattr(api, name)
    raise AttributeError(f"module 'tracegrad' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(__all__))
