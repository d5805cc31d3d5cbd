"""Model files, published formula sets, the claims checker and the CLI."""
from .check import CheckReport, ClaimResult, check_model
from .model import Model, ModelError, builtin_names, load

__all__ = ["load", "builtin_names", "Model", "ModelError", "check_model", "CheckReport", "ClaimResult"]
