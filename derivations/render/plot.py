"""`tracegrad verify --plot FILE.png`: central-difference error against step size, per parameter.

The curve is V-shaped: truncation error falls as h², round-off error grows as ε/h.  The step
the checker would choose, ∛ε·max(1, |θ|), is marked.  Needs the optional matplotlib.
"""
import numpy as np
import sympy as sp

from tracegrad.numeric import compile_expression
from tracegrad.numeric.gradcheck import Landscape
from tracegrad.symbolic.errors import TracegradError

from tracegrad.checking.points import covered_point, size_sets
from tracegrad.render.files import replacing

STEPS = np.logspace(-13, -1, 37)


def error_curves(model, seed=0, sizes=None):
    """{parameter: relative errors of central differences at each step in STEPS}."""
    d = model.derivation
    full_cost = d.program.expanded_cost
    cost = compile_expression(full_cost)
    params = [x for x in d.wrt if isinstance(x, sp.MatrixSymbol)]
    gradients = {x: compile_expression(d.gradient(x)) for x in params}

    # a covered point: no dead layer that would make a slope zero
    point = covered_point(model, Landscape(full_cost), size_sets(model, sizes)[0], seed, 0, 0)[0]
    curves = {}
    for k, x in enumerate(params):
        v = np.random.default_rng([seed, 7, k]).normal(size=point[x].shape)
        exact = float(np.sum(np.asarray(gradients[x](point)) * v))
        along = lambda h: float(np.real(cost({**point, x: point[x] + h * v})).item())
        errors = [abs((along(h) - along(-h)) / (2 * h) - exact) / max(abs(exact), 1e-300) for h in STEPS]
        curves[x.name] = np.maximum(errors, 1e-17)
    return curves


def plot(model, path, seed=0, sizes=None):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TracegradError("--plot needs matplotlib: pip install 'tracegrad[plot]'") from None
    curves = error_curves(model, seed, sizes)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, errors in curves.items():
        ax.loglog(STEPS, errors, label=name, lw=1.2)
    chosen = np.cbrt(np.finfo(float).eps)
    ax.axvline(chosen, color="k", ls="--", lw=1)
    ax.text(chosen * 1.2, ax.get_ylim()[1] / 10, "chosen step ∛ε", fontsize=8)
    ax.set_xlabel("step h")
    ax.set_ylabel("relative error of the central difference")
    ax.set_title(f"{model.name}: finite-difference error against step (seed {seed})")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
