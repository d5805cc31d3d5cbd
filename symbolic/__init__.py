"""The trace-differential engine: derive any scalar program of matrix operations, step by step."""
from .derivation import Derivation, Step
from .errors import NoRuleError, ShapeError, TracegradError
from .functions import Softmax, elementwise, relu, sigmoid, softmax, step
from .program import Program
from .rules import RULES, Rule
from .sweep import derive

__all__ = ["derive", "Derivation", "Step", "Program", "Rule", "RULES", "sigmoid", "relu", "step",
           "softmax", "Softmax", "elementwise", "TracegradError", "ShapeError", "NoRuleError"]
