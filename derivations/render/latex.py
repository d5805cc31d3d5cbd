"""`tracegrad latex`: a whole derivation as a LaTeX article that compiles with pdflatex.

The document formats values computed elsewhere: the model's derivation, the derivation of one
generic layer (``layer.py``), the claims report, the verification report and the comparison
with a partner model.  Expressions come from the engine's LaTeX printer; this module sets
prose (with the Unicode the project writes) and lays out lines so that none overflows: a line
wider than the text is scaled to fit (``\\step``, ``\\fitline``).
"""
import shutil
import subprocess
import tempfile
from pathlib import Path

from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.printing import to_text

from tracegrad.render.files import replacing
from tracegrad.render.show import made_by, quantities
from tracegrad.render.steps import Chain, path, recorded_forms
from tracegrad.render.tex import MAX_MATH, code, math, statement, text

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage[T1]{fontenc}
\usepackage{lmodern,amsmath,amssymb,graphicx,longtable,booktabs,array}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{3pt}
\setlength{\emergencystretch}{3em}   % long size lists (n_hidden=13, ...) stretch rather than overflow
% The indicator 1[Z > 0]: amssymb has no blackboard 1 (bbm and dsfont are not in
% texlive-latex-recommended), so \mathbb{1} is set as a bold 1.
\let\blackboard\mathbb
\renewcommand{\mathbb}[1]{\ifx1#1\mathbf{1}\else\blackboard{#1}\fi}
% \step{math}{why}: a display line, the identity it uses flush right, on the same line when
% both fit, else below; a line wider than the text is scaled to fit.
\newsavebox{\mathbox}\newsavebox{\whybox}
\newcommand{\fitbox}[1]{\ifdim\wd#1>\linewidth\resizebox{\linewidth}{!}{\usebox{#1}}\else\usebox{#1}\fi}
\newcommand{\step}[2]{\par\noindent
  \sbox{\mathbox}{$\displaystyle #1$}\sbox{\whybox}{\small\itshape #2}%
  \ifdim\dimexpr\wd\mathbox+\wd\whybox+2em\relax<\linewidth
    \usebox{\mathbox}\hfill\usebox{\whybox}%
  \else
    \fitbox{\mathbox}\ifdim\wd\whybox>0pt\par\noindent\hfill
    \parbox{0.8\linewidth}{\raggedleft\small\itshape #2}\fi
  \fi\par}
\newcommand{\fitline}[1]{\step{#1}{}}
\newcommand{\cont}{\hspace*{2em}}
"""

def step(m, why=""):
    if len(m) > MAX_MATH:       # TeX cannot set it ("Dimension too large"), scaled or not
        m = f"\\text{{(a line of {len(m)} characters, too long to set: see tracegrad derive)}}"
    return f"\\step{{{m}}}{{{statement(why) if why else ''}}}"


def document(model, checked=None, verified=None, comparison=None, layer=None):
    """The article: the derivation of ``model``; its general layer (``layer``, a layer.Layer);
    the source's claims with their verdicts (``checked``, a CheckReport); the numeric
    verification (``verified``, a VerifyReport); and, for a model with a compare partner, why
    its formulas differ (``comparison``, a compare.Comparison)."""
    d = model.derivation
    out = [PREAMBLE, r"\begin{document}", f"\\title{{Back-propagation for {text(model.title)}}}",
           r"\author{derived by tracegrad}", r"\date{}", r"\maketitle",
           f"\\noindent Source: {text(model.source)}." if model.source else "", "",
           r"\section{The network}", "Forward definitions; the last one is the cost $J$."]
    out += [step(f"{math(s)} := {math(e)}") for s, e in d.program.definitions]
    out += [r"\section{Convention}",
            r"For a node $X$, its adjoint $G_X$ is defined by $\mathrm{d}J = \operatorname{tr}(G_X\, "
            r"\mathrm{d}X)$; then $\frac{\partial J}{\partial X} = G_X$ (numerator layout, the shape of "
            r"$X^{\top}$) and the gradient is $\nabla_X J = G_X^{\top}$ (the shape of $X$). Walking the "
            r"definitions from the last to the first, one rule per operation passes $G$ to the operands; "
            r"contributions add up where a name is used more than once. The rules used here:", "",
            r"\begin{longtable}{@{}>{\raggedright}p{0.2\linewidth}p{0.76\linewidth}@{}}", r"\toprule"]
    rules = list(dict.fromkeys(s.rule for s in d.steps))
    out += [f"{text(r.name)} & {statement(r.statement)} \\\\" for r in rules]
    out += [r"\bottomrule", r"\end{longtable}"]
    out += derivation_section(d, quantities(model))
    if layer is not None:
        out += layer_section(layer)
    out += results_section(model)
    if checked is not None and checked.results:
        out += claims_section(model, checked)
    if comparison is not None:
        out += why_section(comparison)
    if verified is not None:
        out += verification(verified, {x.name: x for x in d.wrt})
    out += [r"\end{document}", ""]
    return "\n".join(out)


def chain(blocks, heading="\\subsection*"):
    """Blocks of a hand derivation (``render.steps.path`` in the LaTeX style)."""
    out = []
    for b in blocks:
        out.append(f"{heading}{{$\\frac{{\\partial J}}{{\\partial {b.quantity}}}$}}")
        for ln in b.lines:
            body = ln.math
            out.append(step(("\\cont " if body.startswith("= ") else "") + body, ln.why))
    return out


def derivation_section(d, order):
    return [r"\section{Step-by-step derivation}",
            "Each quantity in the order the reverse sweep reaches it: $\\mathrm{d}J = \\operatorname{tr}(G\\, "
            "\\mathrm{d}N)$ at the definition that uses it, the terms moved by the identity named on the "
            "right until the quantity's own differential stands last, then identified; then the rewrites "
            "the engine recorded (each is a step of the derivation, not a typed-in result)."] + \
        chain(path(d, order, "latex"))


def layer_section(layer):
    d, names = layer.derivation, layer.names
    name = lambda x: names.get(x.name, to_text(x, "latex"))
    pr = lambda e: to_text(e, "latex", names)
    G, A = name(layer.incoming), name(layer.output)
    out = [r"\section{The general layer $l$}",
           "One layer of this network, "
           + ", ".join(f"${name(s)} := {pr(e)}$" for s, e in d.program.definitions[:-1])
           + f", derived on its own: its cost is $\\operatorname{{tr}}({G}\\, {A})$ with the incoming adjoint "
           f"${G} = \\frac{{\\partial J}}{{\\partial {A}}}$ a free symbol, so that its results are the layer's "
           f"vector-Jacobian products. Given $\\frac{{\\partial J}}{{\\partial {A}}}$ for some layer $l$:"]
    for x in d.forms["compact"]:
        compact, named = d.jacobian(x, "compact"), d.jacobian(x, "named")
        out.append(step(f"\\frac{{\\partial J}}{{\\partial {name(x)}}} = {pr(compact)}"
                        + (f" = {pr(named)}" if named != compact else "")))
    if layer.below:
        out.append(f"The adjoint passed down, $\\frac{{\\partial J}}{{\\partial {name(layer.below[0])}}}$, is the "
                   "incoming adjoint of the layer below: the recurrence runs from the output layer, whose incoming "
                   "adjoint comes from differentiating the cost, down to the first layer.")
    return out


def results_section(model):
    d = model.derivation
    out = [r"\section{Results}", r"Compact form (in terms of the adjoints $G$), then with the adjoints substituted."]
    for x in quantities(model):
        compact, named = d.jacobian(x, "compact"), d.jacobian(x, "named")
        out.append(step(f"\\frac{{\\partial J}}{{\\partial {math(x)}}} = {math(compact)}"))
        if named != compact:
            out.append(step(f"\\cont = {math(named)}"))
    out += [r"\section{Jacobian or gradient?}",
            r"The derivatives above are Jacobians in numerator layout. Gradients, used in the update "
            r"$W := W - \alpha \nabla_W J$, are their transposes:"]
    out += [step(f"\\nabla_{{{math(x)}}} J = {math(d.gradient(x, 'compact'))}") for x in d.wrt]
    return out


VERDICT = {"holds": "holds", "fails": "\\textbf{fails}", "error": "\\textbf{error}", "inconclusive": "inconclusive"}


def claims_section(model, checked):
    formulas = {r.name: r.formula for r in checked.results}
    out = [r"\section{The source's formulas}",
           "Each formula is checked against the derivation; a name it uses that another formula defines "
           "takes its true value, so each verdict is the formula's own.", "",
           r"\begin{longtable}{@{}>{\raggedright}p{0.13\linewidth}>{\raggedright}p{0.33\linewidth}p{0.48\linewidth}@{}}",
           r"\toprule name & formula & verdict \\ \midrule \endhead"]
    for r in checked.results:
        notes = [f"{VERDICT[r.verdict]}: {text(r.evidence)}"] + [text(n) for n in r.diagnosis]
        if r.suggestion:
            notes.append(f"did you mean {code(r.suggestion)}")
        if r.given:
            notes.append("holds only given the true " + ", ".join(
                f"{code(b)} (its own formula {code(formulas[b])} fails here)" for b in r.given))
        out.append(f"{code(r.name)} & {code(r.formula)} & " + r" \newline ".join(notes) + r" \\")
    return out + [r"\bottomrule", r"\end{longtable}"]


def why_section(comparison):
    out = [r"\section{Why the formulas differ}",
           "The same network, its formulas checked with the cost replaced by each loss ("
           + ", ".join(text(l) for l in comparison.losses) + ").", ""]
    for m in comparison.models:
        out += [f"\\textbf{{{text(m.name)}}}: {text(m.title)} (own loss: {text(m.own_loss or 'as written')}).", "",
                r"\begin{longtable}{@{}l" + "l" * len(comparison.losses) + r"p{0.5\linewidth}@{}}",
                "claim & " + " & ".join(text(l) for l in comparison.losses) + r" & formula \\ \midrule"]
        for c in m.claims:
            marks = [VERDICT[c.verdicts[l]] + ("$^{*}$" if l in (c.given or {}) else "") for l in comparison.losses]
            out.append(f"{code(c.name)} & " + " & ".join(marks) + f" & {code(c.formula)} \\\\")
        out += [r"\end{longtable}"]
        starred = sorted({b for c in m.claims for g in (c.given or {}).values() for b in g})
        if starred:
            out.append("$^{*}$ holds given the true " + ", ".join(code(b) for b in starred)
                       + ", whose own formula fails under that loss: the chain of these formulas breaks there.")
        for r in m.reasons:
            claim = next(c for c in m.claims if c.name == r.claim)
            out.append(f"\\subsection*{{Why {code(r.claim)} $=$ {code(claim.formula)} depends on the loss}}")
            out.append(f"{code(r.claim)} means {code(r.meaning)}. The engine's derivative of "
                       f"${math(r.quantity)}$ under each loss, step by step as recorded:")
            for loss, d in r.derivations:
                out.append(f"\\par\\medskip\\textbf{{Under {text(loss)} ({text(claim.verdicts[loss])}):}}\\par")
                for x in r.upstream:
                    e, why = recorded_forms(d, x)[-1]
                    out.append(step(f"\\frac{{\\partial J}}{{\\partial {math(x)}}} = {math(e)}", why))
                (first, _), *rest = recorded_forms(d, r.quantity)
                out.append(step(f"\\frac{{\\partial J}}{{\\partial {math(r.quantity)}}} = {math(first)}",
                                made_by(d, r.quantity)))
                out += [step(f"\\cont = {math(e)}", why) for e, why in rest]
        if m.derivation is not None:
            out += transposes(m)
    return out


def transposes(m):
    """Where the transposes of the output layer come from, in this model's own derivation: the
    chain of its last definition that uses a parameter, for each operand, then the gradient."""
    d = m.derivation
    program = d.program
    params = set(d.wrt)
    last = next((s for s, e in reversed(program.definitions[:-1]) if e.free_symbols & params), None)
    if last is None:
        return []
    expr = program.defined()[last]
    targets = sorted((e for e in expr.free_symbols if e in d.forms["compact"]), key=program.position)
    out = [f"\\subsection*{{Where the transposes in {text(m.name)}'s ${math(last)} := {math(expr)}$ come from}}",
           "The derivative of a product is read off the trace: the factor that varies is moved last by the "
           "cyclic property, and a transposed factor by $\\operatorname{tr}(P) = \\operatorname{tr}(P^{\\top})$; "
           "what stands before the differential is identified, and the gradient is its transpose."]
    for t in targets:
        out.append(f"\\par\\medskip\\textbf{{The terms in $\\mathrm{{d}}{math(t)}$:}}\\par")
        out += [step(("\\cont " if ln.math.startswith("= ") else "") + ln.math, ln.why)
                for ln in Chain(d, last, expr, t, "latex").lines]
        out.append(step(f"\\nabla_{{{math(t)}}} J = \\left(\\frac{{\\partial J}}{{\\partial {math(t)}}}\\right)^{{\\top}} "
                        f"= {math(d.gradient(t, 'compact'))}", "the gradient: the transpose of dJ/dX"))
    return out


def verification(report, symbols):
    """The section of the numeric verification (a VerifyReport) as LaTeX lines."""
    sizes = [s for i, s in enumerate(report.sizes) if s not in report.sizes[:i]]
    out = [r"\section{Numeric verification}",
           f"Complex-step directional derivatives $\\langle \\nabla J, v\\rangle$ at "
           f"{len(report.sizes)} coverage-selected points (seed {report.seed}; sizes "
           + text("; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in sizes))
           + "), each against a bound from a rounding-error model of the formula.",
           "", r"\begin{longtable}{@{}llll@{}}",
           r"\toprule gradient & verdict & worst error / bound & worst relative error \\ \midrule"]
    out += [(f"$\\nabla_{{{math(symbols[c.name])}}} J$" if c.name in symbols else "all together")
            + f" & {text(c.verdict)} & {c.worst_ratio:.2g} & {c.worst_error:.1e} \\\\"
            for c in report.checks]
    return out + [r"\bottomrule", r"\end{longtable}"]


def write_pdf(tex_path):
    """Run pdflatex on ``tex_path`` (twice, for the tables' column widths); the PDF lands beside it.
    Returns (pdf path, pdflatex's log)."""
    exe = shutil.which("pdflatex")
    if exe is None:
        raise TracegradError(f"pdflatex is not installed: wrote {tex_path} but no PDF "
                             "(install texlive-latex-base and texlive-latex-recommended)")
    tex_path = Path(tex_path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):
            result = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error",
                                     f"-output-directory={tmp}", str(tex_path)],
                                    capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                break
        pdf = Path(tmp) / (tex_path.stem + ".pdf")
        if result.returncode != 0 or not pdf.exists():
            errors = [l for l in result.stdout.splitlines() if l.startswith("!")]
            raise TracegradError(f"pdflatex failed on {tex_path}: {errors[0] if errors else 'see its log'}")
        log = (Path(tmp) / (tex_path.stem + ".log")).read_text(encoding="latin-1")
        target = tex_path.with_suffix(".pdf")
        with replacing(target) as out:
            shutil.copyfile(pdf, out)
        return target, log
