"""The general layer l: one hidden layer of a model derived on its own.

Its definitions are kept, the layer below it becomes a free input, and the cost is
J = tr(G_A A) with A the layer's output and G_A, the incoming adjoint dJ/dA, a free symbol.
The results are the layer's vector-Jacobian products — the recurrence of the Vardhan note's
§3.1.6 (given dJ/dA[l]: dJ/dZ[l], dJ/dW[l], dJ/db[l] and dJ/dA[l−1], the next layer's incoming
adjoint), derived rather than typed.
"""
import re
from dataclasses import dataclass

import sympy as sp

from tracegrad.symbolic import Derivation, Program, derive
from tracegrad.symbolic.printing import latex_name


@dataclass(frozen=True)
class Layer:
    derivation: Derivation
    output: sp.MatrixSymbol       # A[l]
    incoming: sp.MatrixSymbol     # G_A[l], free
    below: tuple                  # what the layer reads from the layers below (A[l−1])
    names: dict                   # symbol name -> LaTeX with the layer index l (W3 -> W^{[l]})


def layers(model):
    """The definitions before the cost, cut where a definition uses a parameter."""
    params, out = set(model.params), []
    for symbol, expr in model.program.definitions[:-1]:
        if expr.free_symbols & params or not out:
            out.append([])
        out[-1].append((symbol, expr))
    return out


def generic_layer(model):
    """The last hidden layer of ``model`` derived on its own (None for a one-layer model)."""
    cut = layers(model)
    if len(cut) < 2:
        return None
    definitions = cut[-2]
    output = definitions[-1][0]
    if not isinstance(output, sp.MatrixSymbol):
        return None
    incoming = sp.MatrixSymbol(f"G_{output.name}", output.shape[1], output.shape[0])
    program = Program()
    for symbol, expr in definitions:
        program.define(symbol.name, expr)
    program.define("J", sp.Trace(incoming * output))
    defined = {s for s, _ in definitions}
    below = tuple(s for s in program.leaves() if s not in model.params and s != incoming and s not in defined)
    params = [s for s in program.leaves() if s in model.params]
    d = derive(program, params + list(below))
    return Layer(d, output, incoming, below, layer_names(d, output))


def layer_names(d, output):
    """LaTeX names with the output's layer index k written l (k − 1 as l−1, k + 1 as l+1)."""
    match = re.fullmatch(r"[A-Za-z]+?_?(\d+)", output.name)
    if not match:
        return {}
    k = int(match.group(1))
    symbols = {s.name for s, _ in d.program.definitions} | {s.name for s in d.program.leaves()} | \
        {g.name for g in d.adjoint_symbols.values()}
    out = {}
    for name in symbols:
        text = latex_name(name)
        for index, shown in ((k - 1, "l-1"), (k, "l"), (k + 1, "l+1")):
            text = text.replace(f"[{index}]", f"[{shown}]")
        out[name] = text
    return out
