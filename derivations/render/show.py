"""What `derive` and `compare` print: results layer by layer, steps, side-by-side verdicts."""
import json
import sys

from tracegrad.errors import TracegradError
from tracegrad.symbolic.printing import Printer, format_steps, to_text

from tracegrad.render.steps import format_path, path, recorded_forms


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
        label = x.name if style == "numpy" else pr(x)     # a name, not the numpy spelling of a 1-D value
        rows.append((label, shown if shown[0] != shown[1] else shown[:1]))
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
    """The two formula sets side by side, a column per loss; then why a verdict changes with the
    loss, in the engine's recorded steps, and where a claim holds only given a true value."""
    losses, lines = comparison.losses, []
    for model in comparison.models:
        lines.append(f"{model.name}: {model.title}  (own loss: {model.own_loss or 'as written'})")
        width = max([len(c.name) for c in model.claims] + [5])
        lines.append("  " + f"{'claim':<{width}} " + " ".join(f"{l:<8}" for l in losses) + "formula")
        for c in model.claims:
            marks = [c.verdicts[l] + ("*" if l in (c.given or {}) else "") for l in losses]
            lines.append("  " + f"{c.name:<{width}} " + " ".join(f"{v:<8}" for v in marks) + c.formula)
        lines.append("")
    lines.append("verdicts: each formula checked against the engine's derivative of the same network "
                 "with the cost replaced by the loss in the column")
    chained = chain_notes(comparison)
    if chained:
        lines += ["", "* holds given the TRUE value of the names it uses (each claim is checked on its own):"]
        lines += [f"  {n}" for n in chained]
    reasons = [(m, r) for m in comparison.models for r in m.reasons]
    if reasons:
        lines += ["", "why the verdicts differ: the engine's own steps under each loss (nothing is typed in)"]
    for model, r in reasons:
        claim = next(c for c in model.claims if c.name == r.claim)
        lines += ["", f"{model.name} {r.claim} = {claim.formula}   ({r.claim} means {r.meaning})"]
        for loss, d in r.derivations:
            lines.append(f"  {loss} ({claim.verdicts[loss]}):")
            rows = [(f"dJ/d{x.name} = ", *recorded_forms(d, x)[-1]) for x in r.upstream]
            (first, _), *rest = recorded_forms(d, r.quantity)
            head = f"dJ/d{r.quantity.name} = "
            rows += [(head, first, made_by(d, r.quantity))] + [(" " * (len(head) - 2) + "= ", e, why) for e, why in rest]
            texts = [h + to_text(e, "unicode") for h, e, _ in rows]
            width = max(map(len, texts))
            lines += [f"    {t:<{width}}  [{why}]" for t, (_, _, why) in zip(texts, rows)]
    return "\n".join(lines)


def made_by(derivation, x):
    """The rule that gave X its adjoint in the sweep, and where."""
    for step in derivation.steps:
        if step.G is not None and any(target == x for target, _ in step.results):
            return f"{step.rule.name} in {step.definition}: {step.rule.statement.split(';')[0]}"
    return "identification"


def chain_notes(comparison):
    """One line per model and set of broken links: which claims hold only given true values."""
    out = []
    for m in comparison.models:
        formulas = {c.name: c.formula for c in m.claims}
        for loss in comparison.losses:
            groups = {}
            for c in m.claims:
                if loss in (c.given or {}):
                    groups.setdefault(c.given[loss], []).append(c.name)
            for broken, names in groups.items():
                own = "; ".join(f"{b} = {formulas[b]}" for b in broken)
                out.append(f"{m.name} under {loss}: {', '.join(names)} hold given the true "
                           f"{', '.join(broken)}, whose own formula ({own}) fails under {loss}")
    return out
