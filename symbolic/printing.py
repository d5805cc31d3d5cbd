"""Printers for matrix expressions and derivations: plain text (numpy syntax), Unicode, LaTeX.

Printers only read expressions; nothing here changes a value.  The plain-text form is valid
input to tracegrad's formula language, so a printed result can be pasted back as a claim.
"""
import re

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from .algebra import fewer_transposes
from .entrywise import lift
from .functions import ELEMENT, AxisMax, Softmax, relu, scalar_body, sigmoid, step
from .shapes import is_matrix

SUM, PRODUCT, POWER, ATOM = 1, 2, 3, 4

STYLES = {
    "text": dict(T=".T", dot=" @ ", had=" * ", inv="inv({})", ones="ones({}, {})", eye="eye({})",
                 zero="zeros({}, {})", tr="trace({})", det="det({})", minus="-", frac="({})/({})",
                 step="({} > 0)", sigma="sigmoid({})", relu="relu({})", hpow="{}**{}", sym="{}",
                 softmax="softmax({}, axis={})", vstack="vstack({})", hstack="hstack({})", sep=", ",
                 func="{}({})"),
    "unicode": dict(T="ᵀ", dot=" ", had=" ∘ ", inv="{}⁻¹", ones="𝟏₍{},{}₎", eye="I", zero="0",
                    tr="tr({})", det="det({})", minus="−", frac="({})/({})", step="1[{} > 0]",
                    sigma="σ({})", relu="relu({})", hpow="{}^∘{}", sym="{}",
                    softmax="softmax{1}({0})", vstack="[{}]", hstack="[{}]", sep="; ", func="{}({})"),
    "latex": dict(T="^{\\top}", dot=" ", had=" \\odot ", inv="{}^{{-1}}",
                  ones="\\mathbf{{1}}_{{({},{})}}", eye="I", zero="\\mathbf{{0}}",
                  tr="\\operatorname{{tr}}\\left({}\\right)", det="\\det\\left({}\\right)",
                  minus="-", frac="\\frac{{{}}}{{{}}}", step="\\mathbb{{1}}\\left[{} > 0\\right]",
                  sigma="\\sigma\\left({}\\right)", relu="\\operatorname{{relu}}\\left({}\\right)",
                  hpow="{}^{{\\circ {}}}", sym="{}", softmax="\\operatorname{{softmax}}_{1}\\left({0}\\right)",
                  vstack="\\begin{{bmatrix}} {} \\end{{bmatrix}}", hstack="\\begin{{bmatrix}} {} \\end{{bmatrix}}",
                  sep=" \\\\ ", func="\\{}\\left({}\\right)"),
}
SCALAR_FUNCS = {"log": "log", "exp": "exp", "tanh": "tanh", "sqrt": "sqrt"}


def latex_name(name):
    """W3 → W^{[3]};  G_Z4 → G_{Z^{[4]}};  Theta1 → \\Theta^{[1]}."""
    if name.startswith("G_"):
        return f"{{G_{{{latex_name(name[2:])}}}}}"
    match = re.fullmatch(r"([A-Za-z]+?)_?(\d+)", name)
    base, index = (match.group(1), match.group(2)) if match else (name, None)
    greek = {"Theta", "theta", "delta", "Delta", "lambda", "alpha", "sigma"}
    base = f"\\{base}" if base in greek else (base if len(base) == 1 else f"\\mathrm{{{base}}}")
    return f"{{{base}^{{[{index}]}}}}" if index else base


class Printer:
    def __init__(self, style="unicode", names=None):
        self.s = STYLES[style]
        self.style = style
        self.names = names or {}

    def __call__(self, expr):
        return self.p(expr)[0]

    def p(self, x):
        """(text, precedence) of x."""
        if is_matrix(x):
            pulled = fewer_transposes(x)
            if isinstance(x, (sp.MatAdd, sp.HadamardProduct, ElementwiseApplyFunction)) and pulled is not x:
                return self.wrap(pulled, POWER) + self.s["T"], POWER
            return self.matrix(x)
        return self.scalar(x)

    def wrap(self, x, level):
        text, prec = self.p(x)
        return f"({text})" if prec < level else text

    def name(self, symbol):
        name = symbol.name
        if name in self.names:
            return self.names[name]
        return latex_name(name) if self.style == "latex" else name

    def matrix(self, x):
        s = self.s
        if isinstance(x, sp.MatrixSymbol):
            return self.name(x), ATOM
        if isinstance(x, sp.Transpose):
            return self.wrap(x.arg, ATOM) + s["T"], POWER
        if isinstance(x, sp.MatMul):
            coeff, mats = x.as_coeff_matrices()
            body = s["dot"].join(self.wrap(m, PRODUCT + (m is not mats[-1])) for m in mats)
            return self.coefficient(coeff, body)
        if isinstance(x, sp.MatAdd):
            return self.sum(x.args)
        if isinstance(x, sp.HadamardProduct):
            num = [a for a in x.args if not negative_power(a)]
            den = [sp.HadamardPower(a.base, -a.exp) if a.exp != -1 else a.base for a in x.args if negative_power(a)]
            top = s["had"].join(self.wrap(a, PRODUCT + 1) for a in num) if num else "1"
            if not den:
                return top, PRODUCT
            bottom = s["had"].join(self.wrap(a, PRODUCT + 1) for a in den)
            if self.style == "latex":
                return s["frac"].format(top, bottom), ATOM
            return f"{self.wrap_text(top, len(num) > 1)} / {self.wrap_text(bottom, len(den) > 1)}", PRODUCT
        if isinstance(x, sp.HadamardPower):
            if x.exp == -1:
                return (s["frac"].format("1", self(x.base)), ATOM) if self.style == "latex" else \
                    (f"1 / {self.wrap(x.base, ATOM)}", PRODUCT)
            return s["hpow"].format(self.wrap(x.base, ATOM), self(x.exp)), POWER
        if isinstance(x, ElementwiseApplyFunction):
            return self.elementwise(x)
        if isinstance(x, sp.OneMatrix):
            return s["ones"].format(*[self(d) for d in x.shape]), ATOM
        if isinstance(x, sp.Identity):
            return (s["eye"].format(self(x.shape[0])) if self.style == "text" else s["eye"]), ATOM
        if isinstance(x, sp.ZeroMatrix):
            return s["zero"].format(*[self(d) for d in x.shape]), ATOM
        if isinstance(x, sp.Inverse):
            return s["inv"].format(self.wrap(x.arg, ATOM) if self.style != "text" else self(x.arg)), POWER
        if isinstance(x, sp.MatPow):
            return f"{self.wrap(x.base, ATOM)}{'**' if self.style == 'text' else '^'}{self(x.exp)}", POWER
        if isinstance(x, Softmax):
            return s["softmax"].format(self(x.arg), x.axis), ATOM
        if isinstance(x, sp.MatrixSlice):
            return f"{self.wrap(x.parent, ATOM)}[{slice_text(x.rowslice, x.parent.shape[0])}, " \
                   f"{slice_text(x.colslice, x.parent.shape[1])}]", ATOM
        if isinstance(x, sp.BlockMatrix):
            b = x.blocks
            if b.cols == 1:
                return s["vstack"].format(s["sep"].join(self(b[i, 0]) for i in range(b.rows))), ATOM
            rows = [(", " if self.style != "latex" else " & ").join(self(b[i, j]) for j in range(b.cols))
                    for i in range(b.rows)]
            if b.rows == 1:
                return (s["hstack"].format(rows[0])), ATOM
            return s["vstack"].format(s["sep"].join(f"hstack({r})" if self.style == "text" else r for r in rows)), ATOM
        if isinstance(x, AxisMax):          # max along an axis, kept 2-D (codefile work)
            inner = self(x.arg)
            return {"text": f"np.max({inner}, axis={x.axis}, keepdims=True)", "unicode": f"max{'₀₁'[x.axis]}({inner})",
                    "latex": f"\\max_{{{x.axis}}}\\left({inner}\\right)"}[self.style], ATOM
        raise TypeError(f"cannot print {type(x).__name__}")

    def wrap_text(self, text, needed):
        return f"({text})" if needed else text

    def elementwise(self, x):
        body, arg = scalar_body(x), x.expr
        known = {sigmoid: "sigma", relu: "relu", step: "step"}
        if isinstance(body, sp.Function) and body.args == (ELEMENT,):
            if body.func in known:
                return self.s[known[body.func]].format(self(arg)), ATOM
            name = body.func.__name__
            return self.s["func"].format(SCALAR_FUNCS.get(name, name), self(arg)), ATOM
        var = sp.Dummy("a")
        try:
            return self.p(lift(body.xreplace({ELEMENT: var}), {var: arg}, x.shape))
        except ValueError:
            return f"({body})({self(arg)})", ATOM

    def sum(self, terms):
        out = []
        for i, t in enumerate(sorted(terms, key=negative_first_key)):
            text, prec = self.p(-t if is_negative(t) else t)
            text = f"({text})" if prec <= SUM else text
            if i == 0:
                out.append(f"{self.s['minus']}{text}" if is_negative(t) else text)
            else:
                out.append(f" {self.s['minus'] if is_negative(t) else '+'} {text}")
        return "".join(out), SUM

    def coefficient(self, coeff, body):
        if coeff == 1:
            return body, PRODUCT
        if coeff == -1:
            return f"{self.s['minus']}{body}", PRODUCT
        num, den = sp.fraction(coeff)
        sign = self.s["minus"] if num.could_extract_minus_sign() else ""
        num = -num if sign else num
        if self.style == "latex":
            c = self.s["frac"].format(self(num), self(den)) if den != 1 else self.wrap(num, PRODUCT)
            return f"{sign}{c} {body}", PRODUCT
        if den == 1:
            return f"{sign}{self.wrap(num, POWER)}{' * ' if self.style == 'text' else ' '}{body}", PRODUCT
        top = "" if num == 1 else f"{self.wrap(num, POWER)} * "
        if self.style == "text":
            return f"{sign}{top}{body} / {self.wrap(den, POWER)}", PRODUCT
        return f"{sign}({self(num)}/{self(den)}) {body}", PRODUCT

    def scalar(self, x):
        x = sp.sympify(x)
        if isinstance(x, sp.Symbol):
            return (latex_name(x.name) if self.style == "latex" else x.name), ATOM
        if isinstance(x, sp.Trace):
            return self.s["tr"].format(self(x.arg)), ATOM
        if isinstance(x, sp.Determinant):
            return self.s["det"].format(self(x.arg)), ATOM
        if isinstance(x, MatrixElement):
            return f"{self.wrap(x.parent, ATOM)}[{x.i}, {x.j}]", ATOM
        if x.is_Integer or x.is_Float:
            return (str(x), ATOM) if x >= 0 else (f"{self.s['minus']}{-x}", SUM)
        if x.is_Rational:
            return (self.s["frac"].format(x.p, x.q) if self.style == "latex" else f"{x.p}/{x.q}"), PRODUCT
        if isinstance(x, sp.Add):
            return self.sum(x.args)
        if isinstance(x, sp.Mul):
            num, den = sp.fraction(x)
            if den != 1:
                if self.style == "latex":
                    return self.s["frac"].format(self(num), self(den)), ATOM
                return f"{self.wrap(num, PRODUCT)} / {self.wrap(den, POWER)}", PRODUCT
            coeff, rest = x.as_coeff_Mul()
            body = (" * " if self.style == "text" else " ").join(self.wrap(a, PRODUCT + 1) for a in sp.Mul.make_args(rest))
            return self.coefficient(coeff, body)
        if isinstance(x, sp.Pow):
            op = "**" if self.style == "text" else "^"
            exp = f"{{{self(x.exp)}}}" if self.style == "latex" else self.wrap(x.exp, ATOM)
            return f"{self.wrap(x.base, ATOM)}{op}{exp}", POWER
        if isinstance(x, sp.Function):
            name = {sigmoid: "sigma", relu: "relu", step: "step"}.get(x.func)
            args = ", ".join(self(a) for a in x.args)
            if name:
                return self.s[name].format(args), ATOM
            fname = x.func.__name__
            return self.s["func"].format(SCALAR_FUNCS.get(fname, fname), args), ATOM
        return str(x), ATOM


def negative_power(a):
    return isinstance(a, sp.HadamardPower) and a.exp.is_number and a.exp < 0


def is_negative(t):
    if isinstance(t, sp.MatMul):
        return t.as_coeff_matrices()[0].could_extract_minus_sign()
    return isinstance(t, sp.Expr) and not is_matrix(t) and t.could_extract_minus_sign()


def negative_first_key(t):
    return is_negative(t)


def slice_text(sl, size):
    start, stop, _ = sl
    a = "" if start == 0 else str(start)
    b = "" if sp.simplify(stop - size) == 0 else str(stop)
    return f"{a}:{b}"


def to_text(expr, style="text", names=None):
    return Printer(style, names)(expr)


def format_steps(d, style="unicode"):
    """Every rule application in order, each naming its rule and stating it."""
    pr = Printer(style)
    lines = ["Steps (dJ = tr(G dN) at each node N; each rule gives the G of N's operands):"]
    for k, s in enumerate(d.steps, 1):
        lines.append(f"  {k:>3}. [{s.definition}] {s.rule.name}: {s.rule.statement}")
        if s.G is not None:
            lines.append(f"       at N = {pr(s.node)},  G = {pr(s.G)}")
            lines += [f"       ⇒ G[{pr(target)}] = {pr(value)}" for target, value in s.results]
        else:
            lines.append(f"       {pr(s.node)}")
            lines += [f"       = {pr(value)}" for _, value in s.results]
    return "\n".join(lines)


def format_derivation(d, style="unicode"):
    """Every result (compact and with adjoints substituted), then the steps."""
    pr = Printer(style)
    lines = ["Results (dJ/dX = G_X in numerator layout; ∇X = G_Xᵀ):"]
    for x in d.forms["compact"]:
        compact, named = d.jacobian(x, "compact"), d.jacobian(x, "named")
        lines.append(f"  dJ/d{pr(x)} = {pr(compact)}")
        if named != compact:
            lines.append(f"  {'':>{len(pr(x)) + 4}} = {pr(named)}")
    return "\n".join(lines) + "\n" + format_steps(d, style)
