"""What `derive` and `compare` print: results layer by layer, steps, side-by-side verdicts."""
import json
import sys

from tracegrad.errors import TracegradError
from tracegrad.symbolic.printing import Printer, format_steps

from tracegrad.render.steps import format_path, path


def quantities(model, wrt=None):
    """Defined names last-first, each followed by the inputs and parameters it consumes first."""
    d = model.derivation
    available = d.forms["compact"]
    rank = {x: i for i, x in enumerate([*model.params, *d.wrt])}    # parameters, then data
    order, placed = [], set()
    for symbol, expr in reversed(model.program.definitions[:-1]):
        if symbol in available:
            order.append(symbol)
        for leaf in sorted(expr.free_symbols, key=lambda s: rank.get(s, len(rank))):
            if leaf in available and leaf not in placed and leaf not in model.program.defined():
                order.append(leaf)
                placed.add(leaf)
    for leaf in available:
        if leaf not in order:
            order.append(leaf)
    if wrt:
        known = {s.name: s for s in order}
        missing = [w for w in wrt if w not in known]
        if missing:
            raise TracegradError(f"--wrt: no derivative of the cost with respect to '{missing[0]}' "
                                 f"(known: {', '.join(known)})")
        order = [known[w] for w in wrt]
    return order


def show_derivation(model, wrt, layout, expand, steps, fmt):
    d = model.derivation
    style = "unicode" if fmt == "json" else fmt
    pr = Printer(style)
    pick = (lambda x, form: d.jacobian(x, form)) if layout == "numerator" else \
        (lambda x, form: d.gradient(x, form))
    forms = ("compact", "expanded") if expand else ("compact", "named")
    rows = []
    for x in quantities(model, wrt):
        shown = [pr(pick(x, f)) for f in forms]
        rows.append((pr(x), shown if shown[0] != shown[1] else shown[:1]))
    blocks = path(d, quantities(model, wrt), style) if steps and wrt else None
    if fmt == "json":
        data = {"model": model.name, "layout": layout,
                "results": {name: dict(zip(forms, texts)) for name, texts in rows}, "steps": len(d.steps)}
        if blocks is not None:
            data["path"] = [{"quantity": b.quantity, "lines": [{"math": l.math, "why": l.why} for l in b.lines]}
                            for b in blocks]
        return json.dumps(data, indent=2, ensure_ascii=False)
    head = "dJ/d{} " if layout == "numerator" else "∇{} J "
    if fmt == "latex":
        head = "\\frac{{\\partial J}}{{\\partial {}}} " if layout == "numerator" else "\\nabla_{{{}}} J "
    lines = [f"{model.title}",
             "layout: " + ("numerator (dJ/dX = G, dJ = tr(G dX); shape of Xᵀ)" if layout == "numerator"
                           else "gradient (∇X J = Gᵀ; shape of X)")]
    for name, texts in rows:
        label = head.format(name)
        lines.append(f"{label}= {texts[0]}")
        for t in texts[1:]:
            lines.append(f"{'':<{len(label)}}= {t}")
    if blocks is not None:
        lines += ["", format_path(blocks, f"Steps on the way from J to {', '.join(wrt)} "
                                          "(numerator layout: dJ = tr(G dX) ⇒ dJ/dX = G):")]
    elif steps:
        lines += ["", format_steps(d, style)]
    return "\n".join(lines)


def progress(message):
    """A status line on a terminal's stderr (never in pipes or logs: output stays byte-identical)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{message}" if message else "\r\033[K")
        sys.stderr.flush()


def format_comparison(comparison):
    """The two formula sets side by side, a column per loss."""
    losses, lines = comparison.losses, []
    for model in comparison.models:
        lines.append(f"{model.name}: {model.title}  (own loss: {model.own_loss or 'as written'})")
        width = max([len(c.name) for c in model.claims] + [5])
        lines.append("  " + f"{'claim':<{width}} " + " ".join(f"{l:<8}" for l in losses) + "formula")
        for c in model.claims:
            lines.append("  " + f"{c.name:<{width}} " + " ".join(f"{c.verdicts[l]:<8}" for l in losses) + c.formula)
        lines.append("")
    lines.append("verdicts: each formula checked against the engine's derivative of the same network "
                 "with the cost replaced by the loss in the column")
    return "\n".join(lines)
