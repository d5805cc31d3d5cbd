"""The public API of DESIGN §3, as ``tracegrad.<name>``."""
from tracegrad.checking.claims import CheckReport, ClaimResult
from tracegrad.checking.verify import VerifyReport
from tracegrad.errors import FormulaError, ModelError, NoRuleError, ShapeError, TracegradError, UsageError
from tracegrad.loading import load
from tracegrad.model import Model, builtin_names
from tracegrad.numeric import evaluate
from tracegrad.symbolic import Derivation, Program, Step, derive

__all__ = ["load", "builtin_names", "Model", "derive", "evaluate", "Derivation", "Step", "Program",
           "CheckReport", "ClaimResult", "VerifyReport", "TracegradError", "FormulaError", "ModelError",
           "UsageError", "ShapeError", "NoRuleError"]
