"""How tracegrad's objects show in a notebook: a short repr, and HTML and LaTeX that carry
what the terminal report carries (verdicts, evidence, diagnoses, suggestions).

The objects' ``__repr__``/``_repr_html_``/``_repr_latex_`` delegate here.  HTML sets
expressions with the Unicode printer (it shows without MathJax); LaTeX with the LaTeX printer.
"""
from html import escape

from tracegrad.symbolic.printing import to_text

from tracegrad.render.tex import math, text

STYLE = "border-collapse:collapse;text-align:left;vertical-align:top"
CELL = "padding:2px 8px;text-align:left;vertical-align:top"


def table(head, rows):
    """An HTML table; ``rows`` hold HTML already."""
    out = [f'<table style="{STYLE}"><tr>' + "".join(f'<th style="{CELL}">{escape(h)}</th>' for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f'<td style="{CELL}">{c}</td>' for c in row) + "</tr>" for row in rows]
    return "".join(out) + "</table>"


def lines_html(lines):
    return "<br>".join(escape(line) for line in lines)


# ------------------------------------------------------------------ checks

def counts(results, verdicts=("holds", "fails", "error", "inconclusive")):
    return ", ".join(f"{n} {v}" for v in verdicts if (n := sum(r.verdict == v for r in results)))


def claim_notes(r):
    """Evidence, diagnosis and suggestion of one claim, as lines of text."""
    return [f"{r.verdict}: {r.evidence}", *(f"- {n}" for n in r.diagnosis),
            *([f"did you mean: {r.name} = {r.suggestion}"] if r.suggestion else [])]


def claim_repr(r):
    return f"ClaimResult({r.name} = {r.formula!r}: {r.verdict})"


def claim_html(r):
    return table(["claim", "verdict"], [[f"<code>{escape(r.name)} = {escape(r.formula)}</code>",
                                         lines_html(claim_notes(r))]])


def report_repr(report):
    loss = f", loss={report.loss!r}" if report.loss else ""
    return f"CheckReport(model={report.model!r}{loss}, seed={report.seed}: {counts(report.results) or 'no claims'})"


def report_html(report):
    loss = f" under loss {escape(report.loss)}" if report.loss else ""
    head = f"<p><b>model {escape(report.model)}</b>{loss} (seed {report.seed}): {escape(counts(report.results))}</p>"
    return head + table(["claim", "formula", "verdict"],
                        [[f"<code>{escape(r.name)}</code>", f"<code>{escape(r.formula)}</code>",
                          lines_html(claim_notes(r))] for r in report.results])


def report_latex(report):
    rows = [f"\\texttt{{{text(r.name)}}} = \\texttt{{{text(r.formula)}}} & "
            + " \\\\ & ".join(f"\\text{{{text(n)}}}" for n in claim_notes(r)) for r in report.results]
    return "$$\\begin{array}{ll}" + " \\\\ ".join(rows) + "\\end{array}$$"


# ------------------------------------------------------------------ verification

def verify_repr(report):
    passed = sum(c.verdict == "pass" for c in report.checks)
    return f"VerifyReport(model={report.model!r}, seed={report.seed}: {passed} of {len(report.checks)} pass)"


def check_notes(c):
    return [f"{c.verdict}: worst error/bound {c.worst_ratio:.2g}, relative error {c.worst_error:.1e} "
            f"({c.directions} directions)", *([c.reason] if c.reason else []),
            *(f"entry {i}: derived {a:.6g}, true {b:.6g}" for i, a, b in c.worst_entries)]


def verify_html(report):
    sizes = [s for i, s in enumerate(report.sizes) if s not in report.sizes[:i]]
    head = (f"<p><b>model {escape(report.model)}</b>: derived gradients vs complex-step directional derivatives "
            f"(seed {report.seed}; {len(report.sizes)} points, sizes "
            + escape("; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in sizes)) + ")</p>")
    return head + table(["gradient", "verdict"], [[escape(f"∇{c.name}"), lines_html(check_notes(c))]
                                                  for c in report.checks])


def verify_latex(report):
    rows = [f"\\nabla_{{\\text{{{text(c.name)}}}}} & " + " \\\\ & ".join(f"\\text{{{text(n)}}}" for n in check_notes(c))
            for c in report.checks]
    return "$$\\begin{array}{ll}" + " \\\\ ".join(rows) + "\\end{array}$$"


# ------------------------------------------------------------------ models and derivations

def model_repr(model):
    d = model.program.definitions
    return (f"Model({model.name!r}: {model.title}; {len(d)} definitions, "
            f"parameters {', '.join(p.name for p in model.params)})")


def model_html(model):
    rows = [[f"<code>{escape(s.name)}</code>", escape(":= " + to_text(e, "unicode"))] for s, e in model.program.definitions]
    claims = [[f"<code>{escape(n)}</code>", f"<code>{escape(f)}</code>"] for n, f in model.claims.items()]
    return (f"<p><b>{escape(model.name)}</b>: {escape(model.title)}</p>"
            + (f"<p>Source: {escape(model.source)}</p>" if model.source else "")
            + table(["name", "definition"], rows)
            + (f"<p>{len(claims)} claims (check them with <code>model.check()</code>):</p>"
               + table(["claim", "formula"], claims) if claims else ""))


def model_latex(model):
    rows = [f"{math(s)} &:= {math(e)}" for s, e in model.program.definitions]
    return "$$\\begin{aligned}" + " \\\\ ".join(rows) + "\\end{aligned}$$"
