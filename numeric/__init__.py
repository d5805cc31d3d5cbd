"""numpy side of tracegrad: evaluate SymPy expressions and take numeric derivatives."""
from tracegrad.numeric.codegen import generate_module
from tracegrad.numeric.compile import CompiledExpression, compile_expression, evaluate
from tracegrad.numeric.finite import central_difference, complex_step, directional_complex_step

__all__ = ["CompiledExpression", "compile_expression", "evaluate",
           "central_difference", "complex_step", "directional_complex_step",
           "generate_module"]
