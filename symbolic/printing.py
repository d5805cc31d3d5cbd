"""Printers for matrix expressions and derivations: numpy (the formula language), Unicode, LaTeX.

Each is a SymPy printer (``_print_<Class>`` dispatch).  They share how a matrix expression is
laid out (``MatrixNotation``) and differ in their glyphs and in their one precedence table.
Grouping is explicit: an operand is parenthesised when it binds less tightly than its place
needs, or as tightly but by another operator — ``A @ (B * C)``, ``(A B) ∘ C`` — so no reader
has to know whether ∘ binds tighter than juxtaposition, and the numpy form, read back through
the formula language, is the expression printed.  Printers only read expressions.
"""
import re
from html import escape

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from .algebra import fewer_transposes
from .entrywise import lift
from .functions import ELEMENT, AxisMax, Softmax, relu, scalar_body, sigmoid, step

SUM, PRODUCT, UNARY, POWER, POSTFIX, ATOM = 10, 20, 30, 40, 50, 60
# the operator a printed node shows at its top -> how tightly it binds, per target syntax
PRECEDENCE = {"sum": SUM, "matmul": PRODUCT, "hadamard": PRODUCT, "divide": PRODUCT,
              "scaled": PRODUCT, "neg": UNARY, "power": POWER, "postfix": POSTFIX, "atom": ATOM}
SCALAR_KINDS = {sp.Add: "sum", sp.Mul: "scaled", sp.Pow: "power"}


GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ", "eta": "η",
         "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π",
         "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
         "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ",
         "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω"}
LATEX_LETTERS = {letter: f"\\{word}" for word, letter in GREEK.items()}


def latex_name(name):
    """W3 → W^{[3]};  G_Z4 → G_{Z^{[4]}};  Theta1 and θ1 → \\Theta^{[1]}, \\theta^{[1]}; other
    letters beyond ASCII by their code point (pdflatex sets ASCII)."""
    if name.startswith("G_"):
        return f"{{G_{{{latex_name(name[2:])}}}}}"
    match = re.fullmatch(r"(\D+?)_?(\d+)", name)
    base, index = (match.group(1), match.group(2)) if match else (name, None)
    if base in GREEK or base in LATEX_LETTERS:
        base = LATEX_LETTERS.get(base) or f"\\{base}"
    else:
        base = "".join(f"{{{LATEX_LETTERS[c]}}}" if c in LATEX_LETTERS else c if c.isascii() else f"u{ord(c):04x}"
                       for c in base)
        base = base.replace("_", "\\_")
        base = base if len(base) == 1 else f"\\mathrm{{{base}}}"
    return f"{{{base}^{{[{index}]}}}}" if index else base


class MatrixNotation:
    """How matrix expressions print in every target; a target gives ``GLYPHS`` and may change
    ``PRECEDENCE``.  Each ``_print_*`` records the operator its text shows at the top
    (``self.kinds``), which decides where its parent puts parentheses."""
    PRECEDENCE = PRECEDENCE
    GLYPHS = {}
    NON_ASSOCIATIVE = {"divide", "power"}

    def __init__(self, names=None, **settings):
        super().__init__(settings)
        self.names, self.kinds = dict(names or {}), {}

    def emit(self, expr, text, kind):
        self.kinds[expr] = kind
        return text

    def kind(self, x):
        if x in self.kinds:
            return self.kinds[x]
        if isinstance(x, sp.Number):
            return "neg" if x < 0 else "atom" if x.is_Integer else "divide"
        return next((k for cls, k in SCALAR_KINDS.items() if isinstance(x, cls)), "atom")

    def operand(self, x, place, right=False):
        """``x`` printed as an operand of an operator of kind ``place``."""
        text, kind = self._print(x), self.kind(x)
        mine, theirs = self.PRECEDENCE[kind], self.PRECEDENCE[place]
        if mine < theirs or mine == theirs and (kind != place or right and place in self.NON_ASSOCIATIVE):
            return self.GLYPHS["group"].format(text)
        return text

    def _print(self, expr, **kwargs):
        if isinstance(expr, sp.MatrixExpr) and isinstance(
                expr, (sp.MatAdd, sp.HadamardProduct, ElementwiseApplyFunction)):
            pulled = fewer_transposes(expr)
            if pulled is not expr:     # (a formula with fewer transposes)ᵀ reads better
                return self.emit(expr, self.postfix(pulled, self.GLYPHS["T"]), "postfix")
        return super()._print(expr, **kwargs)

    def postfix(self, x, mark):
        return self.operand(x, "postfix") + mark

    def power_base(self, x):
        return self.operand(x, "power", right=True)

    # matrices

    def _print_MatrixSymbol(self, x):
        return self.emit(x, self.name(x.name), "atom")

    def _print_Transpose(self, x):
        return self.emit(x, self.postfix(x.arg, self.GLYPHS["T"]), "postfix")

    def _print_MatMul(self, x):
        coeff, mats = x.as_coeff_matrices()
        kind = "matmul" if coeff == 1 else "scaled"
        body = self.GLYPHS["matmul"].join(self.operand(m, kind, right=i > 0) for i, m in enumerate(mats))
        return self.emit(x, body if coeff == 1 else self.scaled(coeff, body), kind)

    def _print_MatAdd(self, x):
        return self.emit(x, self.terms(x.args), "sum")

    def _print_HadamardProduct(self, x):
        up = [a for a in x.args if not negative_power(a)]
        down = [reciprocal(a) for a in x.args if negative_power(a)]
        if not down:
            return self.emit(x, self.GLYPHS["hadamard"].join(self.operand(a, "hadamard") for a in up), "hadamard")
        return self.emit(x, self.fraction(up, down), "divide")

    def _print_HadamardPower(self, x):
        if negative_power(x):
            return self.emit(x, self.fraction([], [reciprocal(x)]), "divide")
        text = self.GLYPHS["hpow"].format(self.power_base(x.base), self.exponent(x.exp))
        return self.emit(x, text, "power")

    def _print_ElementwiseApplyFunction(self, x):
        body, arg = scalar_body(x), x.expr
        if body in (step(ELEMENT), sp.Heaviside(ELEMENT, 1)):
            return self.emit(x, self.indicator(">" if body.func is step else "≥", arg), "atom")
        if isinstance(body, sp.Function) and body.args == (ELEMENT,):
            return self.emit(x, self.call(body.func, arg), "atom")
        var = sp.Dummy("a")
        try:
            lifted = lift(body.xreplace({ELEMENT: var}), {var: arg}, x.shape)
        except ValueError:
            lifted = x
        if lifted == x:       # no matrix form: the scalar body, applied entry by entry
            return self.emit(x, f"({self._print(body)})({self._print(arg)})", "atom")
        return self.emit(x, self._print(lifted), self.kind(lifted))

    def _print_step(self, x):
        return self.emit(x, self.indicator(">", x.args[0]), "atom")

    def _print_Heaviside(self, x):
        if len(x.args) == 2 and x.args[1] == 1:
            return self.emit(x, self.indicator("≥", x.args[0]), "atom")
        return self.emit(x, self.call(sp.Heaviside, *x.args), "atom")

    def _print_OneMatrix(self, x):
        return self.emit(x, self.GLYPHS["ones"].format(*map(self._print, x.shape)), "atom")

    def _print_ZeroMatrix(self, x):
        return self.emit(x, self.GLYPHS["zeros"].format(*map(self._print, x.shape)), "atom")

    def _print_Identity(self, x):
        return self.emit(x, self.GLYPHS["eye"].format(self._print(x.shape[0])), "atom")

    def _print_Inverse(self, x):
        return self.emit(x, self.postfix(x.arg, self.GLYPHS["inv"]), "postfix")

    def _print_MatPow(self, x):
        text = self.GLYPHS["mpow"].format(self.power_base(x.base), self.exponent(x.exp))
        return self.emit(x, text, "power")

    def _print_Softmax(self, x):
        return self.emit(x, self.GLYPHS["softmax"].format(self._print(x.arg), x.axis), "atom")

    def _print_AxisMax(self, x):
        return self.emit(x, self.GLYPHS["axismax"].format(self._print(x.arg), x.axis), "atom")

    def _print_MatrixSlice(self, x):
        rows, cols = (slice_text(s, d, self._print) for s, d in zip((x.rowslice, x.colslice), x.parent.shape))
        return self.emit(x, f"{self.operand(x.parent, 'postfix')}[{rows}, {cols}]", "postfix")

    def _print_MatrixElement(self, x):
        return self.emit(x, f"{self.operand(x.parent, 'postfix')}[{x.i}, {x.j}]", "postfix")

    def _print_BlockMatrix(self, x):
        b = x.blocks
        rows = [[self._print(b[i, j]) for j in range(b.cols)] for i in range(b.rows)]
        return self.emit(x, self.blocks(rows), "atom")

    def _print_Trace(self, x):
        return self.emit(x, self.GLYPHS["tr"].format(self._print(x.arg)), "atom")

    def _print_Determinant(self, x):
        return self.emit(x, self.GLYPHS["det"].format(self._print(x.arg)), "atom")

    # pieces

    def name(self, name):
        return self.names.get(name, name)

    def terms(self, terms):
        out = []
        for i, t in enumerate(sorted(terms, key=is_negative)):
            sign, t = ("−", negated(t)) if is_negative(t) else ("+", t)
            text = self.operand(t, "sum")
            minus = self.GLYPHS["minus"]
            out.append((minus + text if sign == "−" else text) if i == 0 else
                       f" {minus if sign == '−' else '+'} {text}")
        return "".join(out)

    def factors(self, items, glyph, right=False):
        """A numerator or denominator: one factor as an operand of '/', several joined and grouped."""
        if not items:
            return "1"
        if len(items) == 1:
            return self.operand(items[0], "divide", right=right)
        return self.GLYPHS["group"].format(glyph.join(self.operand(a, "hadamard") for a in items))

    def exponent(self, p):
        return self.operand(p, "atom") if not (isinstance(p, sp.Integer) and p >= 0) else self._print(p)


class NumpyPrinter(MatrixNotation, StrPrinter):
    """The formula language (numpy syntax): what it prints, `tracegrad check` reads back.
    Python gives ``@``, ``*`` and ``/`` one precedence, left to right, and ``**`` binds
    tighter than a unary minus."""
    printmethod = "_numpystr"
    GLYPHS = {"group": "({})", "T": ".T", "matmul": " @ ", "hadamard": " * ", "minus": "-",
              "hpow": "{} ** {}", "mpow": "{} ** {}", "ones": "ones({}, {})", "zeros": "zeros({}, {})",
              "eye": "eye({})", "inv": "", "softmax": "softmax({}, axis={})", "tr": "trace({})",
              "axismax": "max({}, axis={}, keepdims=True)",
              "det": "det({})"}
    FUNCTIONS = {sigmoid: "sigmoid", relu: "relu", sp.Abs: "abs", sp.log: "log", sp.exp: "exp",
                 sp.tanh: "tanh"}

    def _print_Inverse(self, x):
        return self.emit(x, f"inv({self._print(x.arg)})", "atom")

    def _print_MatPow(self, x):
        if x.exp.is_Integer and 1 <= x.exp <= 8:          # a matrix power is a product here
            return self.emit(x, " @ ".join([self.operand(x.base, "matmul", right=True)] * int(x.exp)), "matmul")
        return self.emit(x, f"matrix_power({self._print(x.base)}, {self._print(x.exp)})", "atom")

    def indicator(self, relation, arg):
        return f"({self._print(arg)} {'>=' if relation == '≥' else relation} 0)"

    def call(self, f, *args):
        return f"{self.FUNCTIONS.get(f, f.__name__)}({', '.join(map(self._print, args))})"

    def _print_Abs(self, x):
        return self.emit(x, f"abs({self._print(x.args[0])})", "atom")

    def _print_Exp1(self, x):
        return self.emit(x, "exp(1)", "atom")

    def scaled(self, coeff, body):
        num, den = sp.fraction(coeff)
        sign = "-" if num.could_extract_minus_sign() else ""
        num = -num if sign else num
        top = "" if num == 1 else f"{self.operand(num, 'scaled')} * "
        bottom = "" if den == 1 else f" / {self.operand(den, 'divide', right=True)}"
        return f"{sign}{top}{body}{bottom}"

    def fraction(self, up, down):
        return f"{self.factors(up, ' * ')} / {self.factors(down, ' * ', right=True)}"

    def blocks(self, rows):
        if len(rows) == 1:
            return f"hstack({', '.join(rows[0])})"
        if all(len(r) == 1 for r in rows):
            return f"vstack({', '.join(r[0] for r in rows)})"
        return "vstack(" + ", ".join(f"hstack({', '.join(r)})" for r in rows) + ")"


class UnicodePrinter(MatrixNotation, StrPrinter):
    """Mathematical notation in Unicode: juxtaposition for the matrix product, ∘ for the
    Hadamard product, ᵀ, 𝟏₍r,c₎ for a matrix of ones, 1[z > 0] for a step."""
    printmethod = "_unicodestr"
    GLYPHS = {"group": "({})", "T": "ᵀ", "matmul": " ", "hadamard": " ∘ ", "minus": "−",
              "hpow": "{}^∘{}", "mpow": "{}^{}", "ones": "𝟏₍{},{}₎", "zeros": "0₍{},{}₎", "eye": "I₍{}₎",
              "inv": "⁻¹", "softmax": "softmax{1}({0})", "axismax": "max{1}({0})", "tr": "tr({})", "det": "det({})"}
    FUNCTIONS = {sigmoid: "σ", relu: "relu"}

    def indicator(self, relation, arg):
        return f"1[{self._print(arg)} {relation} 0]"

    def call(self, f, *args):
        return f"{self.FUNCTIONS.get(f, f.__name__)}({', '.join(map(self._print, args))})"

    def scaled(self, coeff, body):
        num, den = sp.fraction(coeff)
        sign = "−" if num.could_extract_minus_sign() else ""
        num = -num if sign else num
        if den == 1:
            return f"{sign}{body}" if num == 1 else f"{sign}{self.operand(num, 'scaled')} {body}"
        return f"{sign}({self._print(num)}/{self._print(den)}) {body}"

    def fraction(self, up, down):
        return f"{self.factors(up, ' ∘ ')} / {self.factors(down, ' ∘ ', right=True)}"

    def blocks(self, rows):
        return "[" + "; ".join(", ".join(r) for r in rows) + "]"

    # scalars in the same notation as the matrices around them

    def _print_Symbol(self, x):
        return self.emit(x, self.name(x.name), "atom")

    def _print_Add(self, x, order=None):
        return self.emit(x, self.terms(x.args), "sum")

    def _print_Mul(self, x):
        num, den = sp.fraction(x)
        if den != 1:
            return self.emit(x, f"{self.operand(num, 'divide')} / {self.operand(den, 'divide', right=True)}", "divide")
        coeff, rest = x.as_coeff_Mul()
        body = " ".join(self.operand(a, "scaled") for a in sp.Mul.make_args(rest))
        if coeff == 1:
            return self.emit(x, body, "scaled")
        return self.emit(x, self.scaled(coeff, body), "scaled")

    def _print_Rational(self, x):
        sign = "−" if x < 0 else ""
        return self.emit(x, f"{sign}{abs(x.p)}/{x.q}", "divide" if not sign else "neg")

    def _print_Integer(self, x):
        return self.emit(x, f"−{-x}" if x < 0 else str(x), "neg" if x < 0 else "atom")

    def _print_Pow(self, x, rational=False):
        if x.exp == sp.S.Half:
            return self.emit(x, "√" + self.operand(x.base, "atom"), "atom")
        if x.exp.is_Rational and x.exp < 0:
            return self.emit(x, f"1 / {self.operand(1 / x, 'divide', right=True)}", "divide")
        return self.emit(x, f"{self.operand(x.base, 'power', right=True)}^{self.exponent(x.exp)}", "power")

    def _print_Function(self, x):
        return self.emit(x, self.call(x.func, *x.args), "atom")


class TracegradLatexPrinter(MatrixNotation, LatexPrinter):
    """LaTeX: ``\\odot`` for the Hadamard product, ``^{\\top}``, ``\\frac`` for quotients (a group
    of its own, but parenthesised under a ᵀ), 𝕀[z > 0] for a step, the note's names (W^{[3]});
    scalars as SymPy's LatexPrinter sets them."""
    PRECEDENCE = {**PRECEDENCE, "fraction": POWER}
    printmethod = "_tracegrad_latex"
    GLYPHS = {"group": "\\left({}\\right)", "T": "^{\\top}", "matmul": " ", "hadamard": " \\odot ",
              "minus": "-", "hpow": "{}^{{\\circ {}}}", "mpow": "{}^{{{}}}", "ones": "\\mathbf{{1}}_{{({},{})}}",
              "zeros": "\\mathbf{{0}}_{{({},{})}}", "eye": "I_{{{}}}", "inv": "^{-1}",
              "softmax": "\\operatorname{{softmax}}_{1}\\left({0}\\right)", "axismax": "\\max_{1}\\left({0}\\right)",
              "tr": "\\operatorname{{tr}}\\left({}\\right)", "det": "\\det\\left({}\\right)"}
    FUNCTIONS = {sigmoid: "\\sigma", relu: "\\operatorname{relu}", sp.log: "\\log", sp.exp: "\\exp",
                 sp.tanh: "\\tanh", sp.Abs: "\\operatorname{abs}"}

    def power_base(self, x):
        text = super().power_base(x)
        # Aᵀ as a base: TeX refuses a second superscript, so the base is one group
        return f"{{{text}}}" if self.kind(x) == "postfix" and text.endswith("}") else text

    def __init__(self, names=None, **settings):
        super().__init__(names, **settings)

    def name(self, name):
        return self.names.get(name, latex_name(name))

    def _print_Symbol(self, x, style="plain"):
        return self.emit(x, self.name(x.name), "atom")

    def indicator(self, relation, arg):
        mark = ">" if relation == ">" else "\\ge"
        return f"\\mathbb{{I}}\\left[{self._print(arg)} {mark} 0\\right]"

    def call(self, f, *args):
        name = self.FUNCTIONS.get(f, f"\\operatorname{{{f.__name__}}}")
        return f"{name}\\left({', '.join(map(self._print, args))}\\right)"

    def scaled(self, coeff, body):
        num, den = sp.fraction(coeff)
        sign = "-" if num.could_extract_minus_sign() else ""
        num = -num if sign else num
        if den == 1 and num == 1:
            return f"{sign}{body}"
        c = f"\\frac{{{self._print(num)}}}{{{self._print(den)}}}" if den != 1 else self.operand(num, "scaled")
        return f"{sign}{c} {body}"

    def fraction(self, up, down):
        part = lambda items: self._print(items[0]) if len(items) == 1 else \
            " \\odot ".join(self.operand(a, "hadamard") for a in items) if items else "1"
        return f"\\frac{{{part(up)}}}{{{part(down)}}}"

    def kind(self, x):
        kind = super().kind(x)      # \frac{…}{…} groups itself, but a ᵀ on it would sit on the bar
        return "fraction" if kind == "divide" and x in self.kinds else kind

    def blocks(self, rows):
        return "\\begin{bmatrix} " + " \\\\ ".join(" & ".join(r) for r in rows) + " \\end{bmatrix}"

    def _print_sigmoid(self, x):
        return self.emit(x, self.call(sigmoid, x.args[0]), "atom")

    def _print_relu(self, x):
        return self.emit(x, self.call(relu, x.args[0]), "atom")


PRINTERS = {"numpy": NumpyPrinter, "text": NumpyPrinter, "unicode": UnicodePrinter,
            "latex": TracegradLatexPrinter}


class Printer:
    """``Printer(style)(expr)``: text of ``expr`` in ``style`` (numpy — alias text —, unicode, latex)."""

    def __init__(self, style="unicode", names=None):
        self.style, self.names = style, names

    def __call__(self, expr):
        return PRINTERS[self.style](self.names).doprint(sp.sympify(expr))


def negative_power(a):
    return isinstance(a, sp.HadamardPower) and a.exp.is_number and a.exp < 0


def reciprocal(a):
    """B for B^∘−1, B^∘p for B^∘−p."""
    return a.base if a.exp == -1 else sp.HadamardPower(a.base, -a.exp)


def is_negative(t):
    if isinstance(t, sp.MatMul):
        return t.as_coeff_matrices()[0].could_extract_minus_sign()
    return isinstance(t, sp.Expr) and not isinstance(t, sp.MatrixExpr) and t.could_extract_minus_sign()


def negated(t):
    """−t of a term with a negative coefficient, built directly: SymPy's ``-A`` re-evaluates the
    whole tree below (``doit``), which made printing a large expression quadratic."""
    if not isinstance(t, sp.MatMul):
        return -t
    coeff, mats = t.as_coeff_matrices()
    if coeff == -1:
        return mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return sp.MatMul(-coeff, *mats)


def slice_text(sl, size, show=str):
    """``a:b`` of a slice, the bounds that are the defaults left out, each printed by ``show``."""
    start, stop, _ = sl
    a = "" if start == 0 else show(start)
    b = "" if sp.simplify(stop - size) == 0 else show(stop)
    return f"{a}:{b}"


def to_text(expr, style="numpy", names=None):
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


# notebooks: Derivation and Step show a short repr, and HTML (Unicode, no MathJax needed) or LaTeX

def derivation_repr(d):
    return (f"Derivation(cost {d.program.cost.name}, wrt {', '.join(str(x) for x in d.wrt)}; "
            f"{len(d.forms['compact'])} results, {len(d.steps)} steps)")


def derivation_html(d):
    pr, rows = Printer("unicode"), []
    for x in d.forms["compact"]:
        compact, named = d.jacobian(x, "compact"), d.jacobian(x, "named")
        shown = [pr(compact)] + ([pr(named)] if named != compact else [])
        rows.append(f"<tr><td>{escape(f'dJ/d{x}')}</td><td>" + "<br>".join("= " + escape(t) for t in shown)
                    + "</td></tr>")
    return ("<p>numerator layout: dJ/dX = G_X with dJ = tr(G_X dX); ∇X J = G_Xᵀ</p>"
            '<table style="text-align:left">' + "".join(rows) + "</table>")


def derivation_latex(d):
    pr = Printer("latex")
    rows = [f"\\frac{{\\partial J}}{{\\partial {pr(x)}}} &= {pr(d.jacobian(x, 'named'))}" for x in d.forms["compact"]]
    return "$$\\begin{aligned}" + " \\\\ ".join(rows) + "\\end{aligned}$$"


def step_repr(s):
    return f"Step([{s.definition}] {s.rule.name} at {to_text(s.node, 'unicode')})"


def step_lines(s):
    pr = Printer("unicode")
    lines = [f"[{s.definition}] {s.rule.name}: {s.rule.statement}"]
    if s.G is not None:
        lines.append(f"at N = {pr(s.node)},  G = {pr(s.G)}")
        return lines + [f"⇒ G[{pr(t)}] = {pr(v)}" for t, v in s.results]
    return lines + [pr(s.node)] + [f"= {pr(v)}" for _, v in s.results]


def step_html(s):
    return "<p>" + "<br>".join(escape(line) for line in step_lines(s)) + "</p>"


def step_latex(s):
    pr = Printer("latex")
    if s.G is not None:
        rows = [f"N &= {pr(s.node)},\\quad G = {pr(s.G)}"]
        rows += [f"\\Rightarrow G_{{{pr(t)}}} &= {pr(v)}" for t, v in s.results]
    else:
        rows = [f"{pr(s.node)} &= {pr(v)}" for _, v in s.results]
    name = re.sub(r"([_&%$#{}])", r"\\\1", s.rule.name)
    return f"$$\\text{{{name}}}\\quad\\begin{{aligned}}" + " \\\\ ".join(rows) + "\\end{aligned}$$"
