"""`tracegrad latex`: a whole derivation as a LaTeX article that compiles with pdflatex."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.printing import Printer

from tracegrad.render.show import quantities

SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉ᵢⱼₖₙₚ₊₋", "0123456789ijknp+-"))
SUPERSCRIPTS = dict(zip("ᵀ⁻¹ᵏⁱⁿ⁽⁾∘", ["\\top ", "-", "1", "k", "i", "n", "(", ")", "\\circ "]))
SYMBOLS = {"∘": "\\circ ", "⋯": "\\cdots ", "Σ": "\\sum ", "σ": "\\sigma ", "′": "'",
           "⇒": "\\Rightarrow ", "−": "-", "·": "\\cdot ", "≥": "\\ge ", "≠": "\\ne ",
           "∂": "\\partial ", "𝟏": "\\mathbf{1}", "…": "\\ldots ", "ₖ": "_k"}
MATH_WORDS = {"det", "log", "exp", "tanh", "softmax", "relu"}
SPECIAL = {"&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_", "{": "\\{", "}": "\\}",
           "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "\\": "\\textbackslash{}"}


def text(s):
    """Plain text escaped for LaTeX."""
    return "".join(SPECIAL.get(c, c) for c in s if ord(c) < 128)


def statement(s):
    """A rule's Unicode statement as inline math."""
    s = re.sub(f"[{''.join(SUBSCRIPTS)}]+", lambda m: "_{" + "".join(SUBSCRIPTS[c] for c in m.group()) + "}", s)
    s = re.sub("[ᵀ⁻¹ᵏⁱⁿ⁽⁾]+|\\^∘", lambda m: "^{" + "".join(SUPERSCRIPTS.get(c, "") for c in m.group()) + "}", s)
    s = re.sub(r"G_([A-Za-z])_\{([^}]*)\}", r"G_{\1_{\2}}", s)
    s = re.sub(r"([A-Za-z])_\{([^}]*)\}\^\{", r"{\1_{\2}}^{", s)
    for u, latex in SYMBOLS.items():
        s = s.replace(u, latex)
    s = re.sub(r"(?<![\\a-zA-Z{])([a-z]{3,}(?:[- ][a-z]+)*)",
               lambda m: m.group() if m.group() in MATH_WORDS else f"\\text{{ {m.group()} }}", s)
    return "".join(c for c in s if ord(c) < 128).replace("%", "\\%")


def document(model, checked=None, verified=None):
    """The article: the derivation of ``model``, the source's claims with their verdicts
    (``checked``, a CheckReport) and the numeric verification (``verified``, a VerifyReport)."""
    d = model.derivation
    pr = elided(Printer("latex"))
    out = [r"\documentclass[10pt]{article}", r"\usepackage[margin=2cm]{geometry}",
           r"\usepackage{amsmath,amssymb}", r"\allowdisplaybreaks", r"\begin{document}",
           f"\\title{{Back-propagation for {text(model.title)}}}",
           r"\author{derived by tracegrad}", r"\date{}", r"\maketitle",
           f"\\noindent Source: {text(model.source)}.", "",
           r"\section{The network}", r"Forward definitions; the last one is the cost $J$.",
           r"\begin{align*}"]
    out += [f"{pr(s)} &:= {pr(e)} \\\\" for s, e in d.program.definitions]
    out += [r"\end{align*}",
            r"\section{Convention}",
            r"For a node $X$, its adjoint $G_X$ is defined by $dJ = \operatorname{tr}(G_X\, dX)$; then "
            r"$\frac{\partial J}{\partial X} = G_X$ (numerator layout, the shape of $X^{\top}$) and the "
            r"gradient is $\nabla_X J = G_X^{\top}$ (the shape of $X$). Walking the definitions from "
            r"the last to the first, one rule per operation passes $G$ to the operands; "
            r"contributions add up where a name is used more than once.",
            r"\section{Step-by-step derivation}"]
    current = None
    for k, s in enumerate(d.steps, 1):
        if s.definition != current:
            current = s.definition
            out.append(f"\\subsection*{{In the definition of ${pr(current)}$}}")
        out.append(f"\\paragraph{{{k}. {text(s.rule.name)}.}} ${statement(s.rule.statement)}$")
        if s.G is not None:
            out.append(r"\begin{align*}")
            out.append(f"N &= {pr(s.node)}, \\qquad G = {pr(s.G)} \\\\")
            out += [f"\\Rightarrow G_{{{pr(t)}}} &= {pr(v)} \\\\" for t, v in s.results]
            out.append(r"\end{align*}")
        else:
            out.append(r"\begin{align*}")
            out += [f"{pr(s.node)} &= {pr(v)} \\\\" for _, v in s.results]
            out.append(r"\end{align*}")
    out += [r"\section{Results}", r"Compact form (in terms of the adjoints $G$), then with the "
            r"adjoints substituted.", r"\begin{align*}"]
    for x in quantities(model):
        compact, named = d.jacobian(x, "compact"), d.jacobian(x, "named")
        out.append(f"\\frac{{\\partial J}}{{\\partial {pr(x)}}} &= {pr(compact)} \\\\")
        if named != compact:
            out.append(f"&= {pr(named)} \\\\")
    out += [r"\end{align*}", r"\section{Jacobian or gradient?}",
            r"The derivatives above are Jacobians in numerator layout. Gradients, used in the update "
            r"$W := W - \alpha \nabla_W J$, are their transposes:", r"\begin{align*}"]
    out += [f"\\nabla_{{{pr(x)}}} J &= {pr(d.gradient(x, 'compact'))} \\\\" for x in d.wrt]
    out += [r"\end{align*}"]
    if checked is not None and checked.results:
        out += [r"\section{The source's formulas}", r"\begin{tabular}{lll}", r"name & formula & verdict \\ \hline"]
        out += [f"\\texttt{{{text(r.name)}}} & \\texttt{{{text(r.formula)}}} & {text(r.verdict)} \\\\"
                for r in checked.results]
        out += [r"\end{tabular}"]
    if verified is not None:
        out += verification(verified, pr, {x.name: x for x in d.wrt})
    out += [r"\end{document}", ""]
    return "\n".join(out)


MAX_MATH = 2500        # characters of one formula: TeX cannot set a longer line ("Dimension too large")


def elided(printer):
    """The printer, with a formula too long for one TeX line replaced by a note saying so."""
    def pr(expr):
        out = printer(expr)
        if len(out) <= MAX_MATH:
            return out
        return f"\\text{{(a formula of {len(out)} characters, too long to set: see tracegrad derive)}}"
    return pr


def verification(report, pr, symbols):
    """The section of the numeric verification (a VerifyReport) as LaTeX lines."""
    sizes = [s for i, s in enumerate(report.sizes) if s not in report.sizes[:i]]
    out = [r"\section{Numeric verification}",
            f"Complex-step directional derivatives $\\langle \\nabla J, v\\rangle$ at "
            f"{len(report.sizes)} coverage-selected points (seed {report.seed}; sizes "
            + text("; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in sizes))
            + "), each against a bound from a rounding-error model of the formula.",
            "", r"\begin{tabular}{llll}",
            r"gradient & verdict & worst error / bound & worst relative error \\ \hline"]
    out += [(f"$\\nabla_{{{pr(symbols[c.name])}}} J$" if c.name in symbols else "all together")
            + f" & {c.verdict} & {c.worst_ratio:.2g} & {c.worst_error:.1e} \\\\"
            for c in report.checks]
    return out + [r"\end{tabular}"]


def write_pdf(tex_path):
    """Run pdflatex on ``tex_path``; the PDF lands beside it."""
    exe = shutil.which("pdflatex")
    if exe is None:
        raise TracegradError(f"pdflatex is not installed: wrote {tex_path} but no PDF "
                             "(install texlive-latex-base and texlive-latex-recommended)")
    tex_path = Path(tex_path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error",
                                 f"-output-directory={tmp}", str(tex_path)],
                                capture_output=True, text=True, timeout=300)
        pdf = Path(tmp) / (tex_path.stem + ".pdf")
        if result.returncode != 0 or not pdf.exists():
            errors = [l for l in result.stdout.splitlines() if l.startswith("!")]
            raise TracegradError(f"pdflatex failed on {tex_path}: {errors[0] if errors else 'see its log'}")
        target = tex_path.with_suffix(".pdf")
        shutil.copy(pdf, target)
        return target, result.stdout
