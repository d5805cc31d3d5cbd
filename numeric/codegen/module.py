"""``generate_module``: the adjoints in backward order, forward and backward printed with their
shared subexpressions, sizes read off shapes, the docstrings, and the helpers the code uses."""
import sympy as sp

from tracegrad.numeric.codegen.base import oriented
from tracegrad.numeric.codegen.cse import children, collapse, occurrences, trivial
from tracegrad.numeric.codegen.names import HELPERS, Names, Temps
from tracegrad.numeric.codegen.printer import Printer
from tracegrad.numeric.codegen.stable import simplified, stable_logs
from tracegrad.symbolic.algebra import T
from tracegrad.symbolic.errors import TracegradError
from tracegrad.symbolic.printing import to_text


def _choose_wrt(derivation, wrt):
    if wrt is None:
        return tuple(derivation.wrt)
    chosen = []
    for x in wrt:
        match = [w for w in derivation.wrt if w == x or w.name == getattr(x, "name", x)]
        if not match:
            raise TracegradError(f"no derivative with respect to '{x}' was derived")
        chosen.append(match[0])
    return tuple(chosen)


def _dim_sources(dims, leaves):
    """{dim: (leaf, axis, solution in terms of SIZE)}: where each size is read off an array."""
    size = sp.Symbol("size_")
    out = {}
    matrices = [s for s in leaves if isinstance(s, sp.MatrixSymbol)]
    for d in dims:
        found = [(s, k, size) for s in matrices for k in (0, 1) if s.shape[k] == d]
        if not found:
            for s in matrices:
                for k in (0, 1):
                    side = sp.sympify(s.shape[k])
                    if d in side.free_symbols and side.free_symbols == {d}:
                        sol = sp.solve(sp.Eq(side, size), d)
                        if len(sol) == 1:
                            found.append((s, k, sol[0]))
        out[d] = found
    return out, size


def _wrap_dict(entries, indent):
    """A dict display split over lines of at most ~95 characters."""
    lines, line = [], indent + "return {"
    for k, (key, name) in enumerate(entries):
        item = f'"{key}": {name}' + ("," if k < len(entries) - 1 else "}")
        if len(line) + len(item) + 1 > 95 and not line.endswith("{"):
            lines.append(line.rstrip())
            line = indent + "        "
        line += item + " "
    lines.append(line.rstrip())
    return lines


def generate_module(derivation, title=None, wrt=None):
    """Source text of a standalone numpy module with ``forward`` and ``backward``.

    ``title`` names the source in the module docstring (e.g. "model 'vardhan'");
    ``wrt`` (symbols or names, default all of ``derivation.wrt``) chooses the gradients
    ``backward`` returns; adjoints no chosen gradient needs are not computed.
    """
    program = derivation.program
    defs = list(program.definitions)
    wrt = _choose_wrt(derivation, wrt)
    compact = derivation.forms["compact"]
    names = Names()
    dims = sorted(program.dimensions(), key=str)
    dimset = set(dims)
    leaves = list(program.leaves())
    for x in wrt:
        if x not in leaves:
            leaves.append(x)
    bound, kinds = {}, {}
    for s in leaves:
        bound[s] = names.new(s.name)
        kinds[bound[s]] = ("value", s)
    for d in dims:
        bound[d] = names.new(d.name)
        kinds[bound[d]] = ("dim", d)
    for s, _ in defs:
        bound[s] = names.new(s.name)
        kinds[bound[s]] = ("cache", s.name)

    # backward statements in gradient layout: dN = T(G_N) with every G_M -> dMᵀ
    grad_symbol, subs = {}, {}
    for s, _ in defs:
        G = derivation.adjoint_symbols.get(s)
        if G is None or s not in compact:
            continue
        if isinstance(s, sp.MatrixSymbol):
            grad_symbol[s] = sp.MatrixSymbol(f"\0d:{s.name}", *s.shape)
            subs[G] = sp.Transpose(grad_symbol[s])
        else:
            grad_symbol[s] = sp.Symbol(f"\0d:{s.name}")
            subs[G] = grad_symbol[s]

    def layout(expr):
        return collapse(T(collapse(sp.sympify(expr).xreplace(subs))))

    exprs = {s: layout(simplified(derivation, s)) for s in grad_symbol}
    exprs.update({x: layout(simplified(derivation, x)) for x in wrt})
    inverse = {g: s for s, g in grad_symbol.items()}
    deps = {k: {inverse[g] for g in e.free_symbols if g in inverse} for k, e in exprs.items()}
    needed, todo = set(), [d for x in wrt for d in deps[x]]
    while todo:
        s = todo.pop()
        if s not in needed:
            needed.add(s)
            todo.extend(deps[s])
    order, done = [], set()
    remaining = [s for s, _ in reversed(defs) if s in needed]
    waiting = [x for x in wrt if deps[x]]
    while remaining:
        ready = next((s for s in remaining if deps[s] <= done), None)
        if ready is None:
            raise TracegradError("the adjoints depend on each other in a cycle")
        remaining.remove(ready)
        order.append(ready)
        done.add(ready)
        for x in [x for x in waiting if deps[x] <= done]:
            waiting.remove(x)
            order.append(x)
    order += [x for x in wrt if not deps[x]]
    out_name = {}
    for k in order:
        out_name[k] = names.new(f"d{k.name}")
    for s in grad_symbol:
        if s in out_name:
            bound[grad_symbol[s]] = out_name[s]
            kinds[out_name[s]] = ("local", None)

    # forward: printed with stable logs; shared within it, or needed again by backward
    definitions = dict(defs)
    printed = [(s, stable_logs(e, definitions)) for s, e in defs]
    temps = Temps(names)
    backward_exprs = [exprs[k] for k in order]
    counts = occurrences([e for _, e in printed])
    rhs = {oriented(e) for _, e in printed}
    forced, stack = set(), list(backward_exprs)
    while stack:        # the largest forward subexpressions backward needs again
        e = stack.pop()
        key = oriented(e)
        if key in rhs:
            continue
        if key in counts and not trivial(e, dimset):
            forced.add(key)
            continue
        stack.extend(children(e))
    shared = {e for e, n in counts.items()
              if (n > 1 or e in forced) and e not in rhs and not trivial(e, dimset)}
    fwd = Printer(names, bound, shared, temps)
    for s, e in printed:
        fwd.assign(bound[s], e)
        fwd.bound.setdefault(e, bound[s])
    saved = {}
    for e, name in fwd.bound.items():
        if name not in kinds:          # a temporary of forward
            kinds[name] = ("cache", name)
            saved[e] = name

    # backward: reuse forward values, share within it
    bwd_bound = dict(bound)
    bwd_bound.update({e: bound[s] for s, e in printed if e not in bwd_bound})
    bwd_bound.update(saved)
    bcounts = occurrences(backward_exprs)
    bshared = {e for e, n in bcounts.items() if n > 1 and not trivial(e, dimset)}
    bwd = Printer(names, bwd_bound, bshared, temps)
    for k in order:
        bwd.assign(out_name[k], exprs[k])
        if k in grad_symbol:
            bwd.bound[grad_symbol[k]] = out_name[k]

    cache_names = [bound[s] for s, _ in defs] + [n for n in saved.values()]
    used_by_backward = set(bwd.used)
    returned = [(s.name, bound[s]) for s, _ in defs] + \
        [(n, n) for n in saved.values() if n in used_by_backward]

    sources, size_ = _dim_sources(dims, leaves)
    forward_text = _function(
        "forward(values)",
        ["Every forward name, in program order, from the inputs and parameters in values."] +
        (["", "Also returned, for backward to reuse: " +
          ", ".join(n for n in saved.values() if n in used_by_backward) + "."]
         if any(n in used_by_backward for n in saved.values()) else []),
        fwd, kinds, leaves, dims, sources, size_, [],
        _wrap_dict(returned, "    "))
    backward_text = _function(
        "backward(values, cache=None)",
        ["Gradients ∇_X J (the shape of X) of " + ", ".join(x.name for x in wrt) + ".",
         "",
         "cache: what forward(values) returned (computed here when None)."],
        bwd, kinds, leaves, dims, sources, size_, cache_names,
        _wrap_dict([(x.name, out_name[x]) for x in wrt], "    "),
        prologue=["    if cache is None:", "        cache = forward(values)"])

    helpers = sorted(fwd.helpers | bwd.helpers)
    parts = [_docstring(derivation, title, defs, wrt, out_name, grad_symbol), "import numpy as np", ""]
    for h in helpers:
        parts += ["", HELPERS[h], ""]
    parts += ["", forward_text, "", "", backward_text]
    return "\n".join(parts) + "\n"


def _function(signature, doc, printer, kinds, leaves, dims, sources, size_, cache_order, ret,
              prologue=()):
    used = set(printer.used)
    dims_used = [d for d in dims if kinds.get(printer.bound.get(d)) and printer.bound[d] in used]
    dim_lines, extra_leaves = [], set()
    for d in dims_used:
        options = sources[d]
        if options:
            # prefer an array the function reads anyway
            s, k, sol = next((o for o in options if printer.bound[o[0]] in used), options[0])
            extra_leaves.add(s)
            p = Printer(printer.names, {size_: f"{printer.bound[s]}.shape[{k}]"}, set(), None)
            dim_lines.append(f"    {printer.bound[d]} = {p.size(sol).text}")
        else:
            dim_lines.append(f'    {printer.bound[d]} = values["{d.name}"]')
    lines = [f"def {signature}:", f'    """{doc[0]}'] + \
        [f"    {line}".rstrip() for line in doc[1:]] + ['    """' if len(doc) > 1 else None]
    if len(doc) == 1:
        lines = lines[:-1]
        lines[-1] += '"""'
    lines += list(prologue)
    for s in leaves:
        name = printer.bound[s]
        if name in used or s in extra_leaves:
            lines.append(f'    {name} = values["{s.name}"]')
    lines += dim_lines
    for name in cache_order:
        if name in used:
            key = kinds[name][1]
            lines.append(f'    {name} = cache["{key}"]')
    lines += [f"    {line}" for text in printer.lines for line in text.split("\n")]
    lines += ret
    return "\n".join(lines)


def _docstring(derivation, title, defs, wrt, out_name, grad_symbol):
    source = title or "a tracegrad derivation"
    eqs = []
    for s, e in defs:
        eqs.append(f"    {s.name} = {to_text(e, 'unicode')}")
    lines = [
        f'"""Forward and backward pass of {source}, generated by tracegrad.',
        "",
        "Forward equations (program order; the last is the scalar cost):",
        "",
        *eqs,
        "",
        "Convention: values maps every input and parameter name to a 2-D numpy array (a scalar",
        "to a number); sizes are read off the arrays' shapes.  forward(values) returns every",
        "forward name; backward(values, cache) returns the gradient ∇_X J = (∂J/∂X)ᵀ, of the",
        "shape of X, for X in: " + ", ".join(x.name for x in wrt) + ".",
        "Inside backward, dN is ∇_N J (the shape of N): the transpose of the derivation's",
        "numerator-layout adjoint G_N, so each line is one step of backpropagation.",
        "",
        "Generated code: change the model and generate again rather than editing this file.",
        '"""',
    ]
    return "\n".join(lines)
