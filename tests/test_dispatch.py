"""One dispatch mechanism (symbolic/dispatch.py) for every per-class table, and no operation that
one concern knows and another does not: what the engine can differentiate, the evaluator can
compute, the rounding model can bound and the code generator can print."""
import pytest
import sympy as sp

from tracegrad.language.formula import FUNCTIONS
from tracegrad.numeric.codegen.printer import RULES as CODEGEN
from tracegrad.numeric.compile import RULES as COMPILE
from tracegrad.numeric.errorbound import RULES as BOUND
from tracegrad.symbolic.dispatch import Dispatch
from tracegrad.symbolic.rules import RULES as DIFFERENTIATION

TABLES = {"numeric compilation": COMPILE, "rounding-error model": BOUND, "code generation": CODEGEN}
# scalar functions the formula language writes (differentiated by the scalar chain rule / SymPy)
SCALAR_FUNCTIONS = [sp.log, sp.exp, sp.tanh, sp.sqrt(sp.Symbol("x")).func, sp.Abs]


def test_every_table_is_a_dispatch():
    for table in (DIFFERENTIATION, *TABLES.values()):
        assert isinstance(table, Dispatch) and len(table) > 5


@pytest.mark.parametrize("concern", TABLES)
def test_every_differentiable_operation_has_a_rule_in_every_concern(concern):
    missing = [cls.__name__ for cls in [*DIFFERENTIATION, *SCALAR_FUNCTIONS] if TABLES[concern].find(cls) is None]
    assert not missing, f"{concern} has no rule for {missing}"


def test_every_formula_function_is_known():
    assert {"relu", "sigmoid", "softmax", "log", "exp"} <= set(FUNCTIONS)


def test_dispatch_follows_the_mro():
    table = Dispatch("test", {sp.Symbol: "symbol", sp.Expr: "expr"})
    assert table(sp.Dummy("d")) == "symbol" and table(sp.Integer(2)) == "expr" and table(sp.S.true) is None
    table.register(sp.Integer)("integer")
    assert table(sp.Integer(2)) == "integer" and table.find(sp.Rational) == "expr"
    assert dict(table) == {sp.Symbol: "symbol", sp.Expr: "expr", sp.Integer: "integer"}
