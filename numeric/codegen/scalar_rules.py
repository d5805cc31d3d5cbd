"""Printing rules for scalar nodes, also element-wise bodies (a variable stands for an array).

One rule per SymPy node type in ``SCALAR_RULES``: ``rule(printer, expr) -> Code``.
"""
import sympy as sp
from sympy.logic.boolalg import BooleanFalse, BooleanTrue

from tracegrad.numeric.codegen.base import ADD, ATOM, MUL, POW, UNARY, Code, fail, wrap
from tracegrad.numeric.codegen.stable import log_sigmoid
from tracegrad.symbolic.functions import relu, sigmoid, step


def symbol(p, e):
    if e in p.bound:
        return p.use(p.bound[e])
    raise fail(e, "unknown symbol")


def _number(p, e):
    if e in (sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise fail(e, "not a finite number")
    if e.is_Integer:
        return Code(str(int(e)), ATOM if e >= 0 else UNARY)
    if e.is_Rational:
        text = f"{abs(int(e.p))} / {int(e.q)}"
        return Code(f"-{text}" if e < 0 else text, MUL)
    value = float(e)
    return Code(repr(value), ATOM if value >= 0 else UNARY)


def _constant(p, e):
    named = {sp.pi: "np.pi", sp.E: "np.e"}
    return Code(named.get(e, repr(float(e))))


def _mul(p, e):
    coeff = e.as_coeff_Mul()[0]
    if coeff.could_extract_minus_sign():
        inner = p(-e)  # -a * b and -a / b equal -(a * b) and -(a / b) exactly
        if inner.prec == MUL:
            return Code(f"-{inner.text}", MUL)
        return Code(f"-{wrap(inner, UNARY)}", UNARY)
    num, den = sp.fraction(e, exact=True)
    nums = sp.Mul.make_args(num)
    dens = sp.Mul.make_args(den)
    text = " * ".join([wrap(p.scalar(nums[0]), MUL)] +
                      [wrap(p.scalar(a), UNARY) for a in nums[1:]])
    if den != 1:
        dtext = " * ".join(wrap(p.scalar(a), UNARY) for a in dens)
        text += f" / {dtext if len(dens) == 1 else f'({dtext})'}"
    return Code(text, MUL)



def _negative(x):
    if isinstance(x, sp.MatMul):
        return x.as_coeff_matrices()[0].could_extract_minus_sign()
    return not getattr(x, "is_Matrix", False) and x.could_extract_minus_sign()


def sum_text(p, terms):
    """a + b - c: negative terms are printed as subtraction, a positive term first."""
    terms = sorted(terms, key=_negative)  # stable: only moves negative terms back
    first = terms[0]
    out = p(first)
    pieces = [out.text if out.prec >= ADD else f"({out.text})"]
    for t in terms[1:]:
        if _negative(t):
            pieces.append(f"- {wrap(p(-t), ADD + 1)}")
        else:
            pieces.append(f"+ {wrap(p(t), ADD + 1)}")
    return Code(" ".join(pieces), ADD, tuple(pieces))


def _add(p, e):
    return sum_text(p, list(e.as_ordered_terms()))


def _pow(p, e):
    base, k = e.base, e.exp
    if base == sp.E:
        return p.call("np.exp", p.scalar(k))
    if k == sp.S.Half:
        return p.call("np.sqrt", p.scalar(base))
    if k.is_Number and k < 0:
        return Code(f"1 / {wrap(p(base ** -k), UNARY)}", MUL)
    return Code(f"{wrap(p.scalar(base), ATOM)} ** {wrap(p.scalar(k), UNARY)}", POW)


def _function(fn):
    return lambda p, e: p.call(fn, *(p.scalar(a) for a in e.args))


def _helper(name):
    return lambda p, e: p.helper(name, p.scalar(e.args[0]))


def _nary(fn):
    def rule(p, e):
        codes = [p.scalar(a) for a in e.args]
        out = codes[0]
        for c in codes[1:]:
            out = p.call(fn, out, c)
        return out
    return rule


def _compare(op):
    return lambda p, e: Code(f"np.where({wrap(p.scalar(e.lhs), ADD)} {op} "
                             f"{wrap(p.scalar(e.rhs), ADD)}, 1.0, 0.0)")


def _piecewise(p, e):
    out = Code("np.nan")  # SymPy's value where no condition holds
    for expr, cond in reversed(e.args):
        if cond == sp.true:
            out = p.scalar(expr)
        else:
            out = p.call("np.where", p.scalar(cond), p.scalar(expr), out)
    return out


def _heaviside(p, e):
    h0 = e.args[1] if len(e.args) > 1 else sp.S.Half
    return p.call("np.heaviside", p.scalar(e.args[0]), p.scalar(h0))


SCALAR_RULES = {
    sp.Symbol: symbol,
    sp.Number: _number,
    sp.NumberSymbol: _constant,
    type(sp.I): lambda p, e: Code("1j"),
    BooleanTrue: lambda p, e: Code("True"),
    BooleanFalse: lambda p, e: Code("False"),
    sp.Add: _add,
    sp.Mul: _mul,
    sp.Pow: _pow,
    sp.log: _function("np.log"),
    sp.exp: _function("np.exp"),
    sp.sin: _function("np.sin"),
    sp.cos: _function("np.cos"),
    sp.tan: _function("np.tan"),
    sp.sinh: _function("np.sinh"),
    sp.cosh: _function("np.cosh"),
    sp.tanh: _function("np.tanh"),
    sp.asin: _function("np.arcsin"),
    sp.acos: _function("np.arccos"),
    sp.atan: _function("np.arctan"),
    sp.floor: _function("np.floor"),
    sp.ceiling: _function("np.ceil"),
    sp.Abs: _function("np.abs"),
    sp.sign: _function("np.sign"),
    sp.re: _function("np.real"),
    sp.im: _function("np.imag"),
    sp.Max: _nary("np.maximum"),
    sp.Min: _nary("np.minimum"),
    sp.StrictGreaterThan: _compare(">"),
    sp.GreaterThan: _compare(">="),
    sp.StrictLessThan: _compare("<"),
    sp.LessThan: _compare("<="),
    sp.Equality: _compare("=="),
    sp.Unequality: _compare("!="),
    sp.And: _nary("np.logical_and"),
    sp.Or: _nary("np.logical_or"),
    sp.Not: _function("np.logical_not"),
    sp.Piecewise: _piecewise,
    sp.KroneckerDelta: lambda p, e: _compare("==")(p, sp.Eq(*e.args[:2], evaluate=False)),
    sp.Heaviside: _heaviside,
    sigmoid: _helper("sigmoid"),
    relu: _helper("relu"),
    step: _helper("step"),
    log_sigmoid: _helper("log_sigmoid"),
}
