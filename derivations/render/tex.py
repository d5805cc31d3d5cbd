"""Prose and math for LaTeX: the project's Unicode set as LaTeX (never dropped), rule statements
with words as text and math as math, and printed expressions with their transposed fractions
parenthesised."""
import re

from tracegrad.symbolic.printing import to_text

from tracegrad.render.console import spell

TEXT_SYMBOLS = {
    "′": "$'$", "ᵀ": "$^{\\top}$", "σ": "$\\sigma$", "λ": "$\\lambda$", "δ": "$\\delta$", "Δ": "$\\Delta$",
    "Θ": "$\\Theta$", "θ": "$\\theta$", "α": "$\\alpha$", "ε": "$\\varepsilon$", "∇": "$\\nabla$",
    "∘": "$\\circ$", "⊙": "$\\odot$", "−": "$-$", "×": "$\\times$", "·": "$\\cdot$", "½": "$\\frac12$",
    "‖": "$\\|$", "≥": "$\\ge$", "≤": "$\\le$", "≠": "$\\ne$", "⇒": "$\\Rightarrow$", "→": "$\\to$",
    "∂": "$\\partial$", "Σ": "$\\Sigma$", "√": "$\\surd$", "∛": "$\\sqrt[3]{}$", "…": "\\ldots{}",
    "⋯": "$\\cdots$", "§": "\\S{}", "°": "$^{\\circ}$", "±": "$\\pm$", "’": "'", "‘": "`", "“": "``", "”": "''", "—": "---", "–": "--", "𝟏": "$\\mathbf{1}$",
}
SUPERSCRIPT = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁺⁻ᵏⁱⁿˡ", "0123456789()+-kinl"))
SUBSCRIPT = dict(zip("₀₁₂₃₄₅₆₇₈₉₍₎₊₋ᵢⱼₖₙₚ", "0123456789()+-ijknp"))
SPECIAL = {"&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_", "{": "\\{", "}": "\\}",
           "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "\\": "\\textbackslash{}",
           "<": "\\textless{}", ">": "\\textgreater{}", "|": "\\textbar{}"}


def text(s):
    """Prose for LaTeX: specials escaped, the project's Unicode as LaTeX, anything else spelled
    in ASCII (never dropped)."""
    out = []
    for run in re.findall(f"𝟏₍[^₎]*₎|[{''.join(SUPERSCRIPT)}]+|[{''.join(SUBSCRIPT)}]+|.", s, re.S):
        if run.startswith("𝟏₍"):       # the ones matrix 𝟏₍K,m₎
            out.append("$\\mathbf{1}_{(" + inline_math(run[2:-1]) + ")}$")
        elif run[0] in SUPERSCRIPT:
            out.append("$^{" + "".join(SUPERSCRIPT[c] for c in run) + "}$")
        elif run[0] in SUBSCRIPT:
            out.append("$_{" + "".join(SUBSCRIPT[c] for c in run) + "}$")
        elif run in SPECIAL:
            out.append(SPECIAL[run])
        elif run.isascii():
            out.append(run)
        else:
            out.append(TEXT_SYMBOLS.get(run) or SPECIAL.get(spell(run), spell(run)))
    return "".join(out).replace("$$", "")


def code(s):
    """A formula as typewriter text that may break after its punctuation."""
    return "\\texttt{" + re.sub(r"([(,@*+/]|\\_)", r"\1\\allowbreak{}", text(s)) + "}"


MATH_SYMBOLS = {"∘": "\\circ ", "⋯": "\\cdots ", "Σ": "\\sum ", "σ": "\\sigma ", "′": "'", "⇒": "\\Rightarrow ",
                "−": "-", "·": "\\cdot ", "≥": "\\ge ", "≠": "\\ne ", "∂": "\\partial ", "𝟏": "\\mathbf{1}",
                "…": "\\ldots ", "×": "\\times ", "ᵀ": "^{\\top}"}
OPERATORS = {"tr": "\\operatorname{tr}", "det": "\\det", "log": "\\log", "exp": "\\exp", "tanh": "\\tanh",
             "softmax": "\\operatorname{softmax}", "relu": "\\operatorname{relu}"}


def inline_math(s):
    """A piece of Unicode math (as the rules state it) in LaTeX math."""
    s = re.sub(f"[{''.join(SUBSCRIPT)}]+", lambda m: "_{" + "".join(SUBSCRIPT[c] for c in m.group()) + "}", s)
    s = re.sub(r"\^∘(\w+|\([^)]*\))", lambda m: "^{\\circ " + m.group(1) + "}", s)
    s = re.sub(f"[{''.join(SUPERSCRIPT)}]+", lambda m: "^{" + "".join(SUPERSCRIPT[c] for c in m.group()) + "}", s)
    s = re.sub(r"([A-Za-z])_([A-Za-z])_\{([^}]*)\}", r"\1_{\2_{\3}}", s)
    s = re.sub(r"([A-Za-z])_\{([^}]*)\}\^\{", r"{\1_{\2}}^{", s)
    for u, latex in MATH_SYMBOLS.items():
        s = s.replace(u, latex)
    s = re.sub(r"\b(tr|det|log|exp|tanh|softmax|relu)\b", lambda m: OPERATORS[m.group()], s)
    s = re.sub(r"(?<!:)([:;]) ", r"\1\\quad ", s)        # "N = A + B: G_A = G" reads as two statements
    return "".join(c if c.isascii() else spell(c) for c in s).replace("%", "\\%")


PROSE = re.compile(r"^[(\[]?([a-z][a-z'′.-]+|a)([):;,.\]]*)$")


def statement(s):
    """A rule's statement (Unicode prose and math) for LaTeX: words as text, math as math."""
    out, math = [], []
    for token in s.split():
        word = PROSE.match(token)
        if word and word.group(1).rstrip(".") not in OPERATORS and word.group(1) not in {"dk", "dp", "dc"}:
            if math:
                out.append("$" + inline_math(" ".join(math)) + "$")
                math = []
            out.append(text(token.replace("′", "'")))
        else:
            math.append(token)
    if math:
        out.append("$" + inline_math(" ".join(math)) + "$")
    return " ".join(out)


MAX_MATH = 2500        # characters of one formula: TeX cannot set a longer line ("Dimension too large")


def math(expr):
    """An expression in LaTeX (the printer groups a transposed fraction itself); a formula too
    long for one TeX line is replaced by a note saying so."""
    out = to_text(expr, "latex")
    if len(out) <= MAX_MATH:
        return out
    return f"\\text{{(a formula of {len(out)} characters, too long to set: see tracegrad derive)}}"


def _group_end(s, start):
    """The index of the brace closing the group that opens at ``start``."""
    depth = 0
    for k in range(start, len(s)):
        depth += {"{": 1, "}": -1}.get(s[k], 0) if s[k - 1] != "\\" else 0
        if depth == 0:
            return k
    return len(s) - 1
