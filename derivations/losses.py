"""Loss swap: the same network with its cost replaced by a standard loss."""

from tracegrad.symbolic import Program, algebra
from tracegrad.symbolic.shapes import is_matrix
from tracegrad.symbolic.errors import TracegradError

from tracegrad.language.formula import parse_formula

LOSSES = {
    "bce": ("binary cross-entropy", "-sum(target * log(prediction) + (1 - target) * log(1 - prediction))"),
    "mse": ("squared error ½‖prediction − target‖²", "0.5 * sum((prediction - target) ** 2)"),
    "ce": ("cross-entropy −Σ target ∘ log(prediction)", "-sum(target * log(prediction))"),
}


def loss_roles(model):
    """(prediction, target) of the model's cost: from [loss], or read off the cost's definition."""
    cost_expr = model.program.definitions[-1][1]
    forward = model.forward_names()
    used = cost_expr.free_symbols
    prediction = model.loss.get("prediction") or only(
        [s.name for s in used if s.name in forward], "prediction", model)
    target = model.loss.get("target") or only(
        [s.name for s in used if s.name in model.kinds and s.name not in {p.name for p in model.params}],
        "target", model)
    return prediction, target


def only(found, role, model):
    if len(found) != 1:
        raise TracegradError(f"model '{model.name}': cannot tell the loss's {role} "
                             f"(add [loss] {role} = \"...\" to the model file)")
    return found[0]


def swap_loss(model, loss):
    """The model's program with the last line replaced by ``scale · loss(prediction, target) + extra``."""
    if loss not in LOSSES:
        raise TracegradError(f"unknown loss '{loss}': use one of {', '.join(LOSSES)}")
    prediction, target = loss_roles(model)
    forward = model.forward_names()
    names = {**model.dims, **model.symbols, **forward}
    if loss == model.loss.get("name") and "scale" not in model.loss:
        return model.program
    data_term = parse_formula(LOSSES[loss][1], {**model.dims, "prediction": names[prediction],
                                                "target": names[target]})
    scale = parse_formula(model.loss.get("scale", "1"), names)
    # the engine's constructors: SymPy's `+` and `*` of matrix expressions call doit() on the
    # whole (already canonical) network below them
    cost = algebra.scale(scale, data_term) if is_matrix(data_term) else scale * data_term
    if "extra" in model.loss:
        cost = algebra.add(cost, parse_formula(model.loss["extra"], names))
    program = Program()
    for symbol, expr in model.program.definitions[:-1]:
        program.define(symbol.name, expr)
    program.define(model.program.cost.name, cost)
    return program.validate()
