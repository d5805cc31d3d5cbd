"""tracegrad against the usual ways of checking a hand-written backward pass, on the benchmark MLPs
(benchmarks/nets.py: softmax or sigmoid output, three conventions):

    torch fast    torch.autograd.gradcheck(fast_mode=True) on a torch.autograd.Function whose
                  backward is the hand-written numpy one
    torch slow    the same, fast_mode=False (every entry by finite differences)
    jax           jax.test_util.check_grads(order=1, modes=["rev"]) on a jax.custom_vjp whose
                  backward is the hand-written one (in jax.numpy), float64
    autograd      HIPS autograd's gradient of the forward, np.allclose to the hand-written one

Three tables: time at 784-256-128-10, m = 512, as a ratio to one hand-written forward+backward
(torch slow at a small size: at full size it needs two forward passes per parameter); false alarms
on correct backwards at random small points, a third of them with ReLU pre-activations exactly 0
(kinks: zero biases and some zero inputs); detections of the planted bugs (nets.BUGS, in layer 2)
on nets whose layer 2 is square and whose batch is as wide (so that every bug type-checks).
tracegrad's rows come from its own campaigns (tests/campaigns.py: bugs planted in the derived
gradients). The peers are optional (`pip install -e '.[bench]'`); a missing one is skipped.

    python benchmarks/peers.py [--cases 30] [--seed 0] [--skip-time]
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import nets  # noqa: E402
from tracegrad.checking.points import draw_point  # noqa: E402


def values_of(model, dims, rng):
    point = draw_point(model, dims, rng)
    return {s.name: v for s, v in point.items() if isinstance(v, np.ndarray)}


def params(values):
    return [k for k in sorted(values) if k[0] in "Wb"]


def torch_check(output, convention, values, bug, fast):
    import torch
    names = params(values)

    class Net(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *ps):
            vals = {**values, **{n: p.detach().numpy() for n, p in zip(names, ps)}}
            J, grads = nets.hand_written(output, convention, vals, bug)
            ctx.grads = grads
            return torch.tensor(float(J), dtype=torch.float64)

        @staticmethod
        def backward(ctx, g):
            return tuple(g * torch.from_numpy(np.ascontiguousarray(ctx.grads[n])) for n in names)
    ps = [torch.tensor(values[n], dtype=torch.float64, requires_grad=True) for n in names]
    try:
        return bool(torch.autograd.gradcheck(Net.apply, ps, fast_mode=fast, raise_exception=False))
    except (RuntimeError, ValueError):        # a shape the check cannot compare
        return False


def jax_check(output, convention, values, bug):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads
    jax.config.update("jax_enable_x64", True)
    names = params(values)
    data = {k: jnp.asarray(v) for k, v in values.items() if k not in names}

    @jax.custom_vjp
    def f(ps):
        return nets.forward(output, convention, {**data, **ps}, jnp)[0]

    def f_fwd(ps):
        return f(ps), ps

    def f_bwd(ps, g):
        _, grads = nets.hand_written(output, convention, {**data, **ps}, bug, xp=jnp)
        return ({n: g * grads[n] for n in names},)
    f.defvjp(f_fwd, f_bwd)
    try:
        check_grads(f, ({n: jnp.asarray(values[n]) for n in names},), order=1, modes=["rev"])
        return True
    except (AssertionError, TypeError, ValueError):
        return False


def autograd_check(output, convention, values, bug):
    import autograd.numpy as anp
    from autograd import grad
    names = params(values)
    data = {k: v for k, v in values.items() if k not in names}
    truth = grad(lambda ps: nets.forward(output, convention, {**data, **ps}, anp)[0])({n: values[n] for n in names})
    _, hand = nets.hand_written(output, convention, values, bug)
    return all(hand[n].shape == truth[n].shape and np.allclose(hand[n], truth[n]) for n in names)


def _installed():
    """The optional peers that import here: {module name: True}."""
    found = {}
    try:
        import torch  # noqa: F401
        found["torch"] = True
    except ImportError:
        pass
    try:
        import jax  # noqa: F401
        found["jax"] = True
    except ImportError:
        pass
    try:
        import autograd  # noqa: F401
        found["autograd"] = True
    except ImportError:
        pass
    return found


def available():
    tools, found = {}, _installed()
    for name, module, fn in (("torch fast", "torch", lambda o, c, v, b: torch_check(o, c, v, b, True)),
                             ("torch slow", "torch", lambda o, c, v, b: torch_check(o, c, v, b, False)),
                             ("jax", "jax", jax_check), ("autograd", "autograd", autograd_check)):
        if module in found:
            tools[name] = fn
        else:
            print(f"  {name}: {module} is not installed, skipped (pip install -e '.[bench]')")
    return tools


def median(f, repeat=5):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def timing(tools, seed):
    print(f"time at 784-256-128-10, m = 512, / one hand-written forward+backward (load "
          f"{os.getloadavg()[0]:.1f}):")
    print(f"  {'net':<20}" + "".join(f"{t:>12}" for t in ["hand ms", "tracegrad", *tools]))
    for output in nets.OUTPUTS:
        for convention in nets.CONVENTIONS:
            model = nets.model(output, convention)
            values = values_of(model, nets.sizes(model), np.random.default_rng([seed, 1]))
            base = median(lambda: nets.hand_written(output, convention, values))
            sizes = {d.name: v for d, v in nets.sizes(model).items()}
            model.verify(sizes=sizes, seed=seed)
            row = [base * 1e3, median(lambda: model.verify(sizes=sizes, seed=seed), 3) / base]
            for name, fn in tools.items():
                if name == "torch slow":
                    row.append(np.nan)
                    continue
                row.append(median(lambda: fn(output, convention, values, None), 1) / base)
            print(f"  {output + ' ' + convention:<20}" + f"{row[0]:12.1f}" + "".join(
                f"{r:11.1f}x" if np.isfinite(r) else f"{'(see below)':>12}" for r in row[1:]))
    if "torch slow" in tools:
        model = nets.model("softmax", "columns", (20, 16, 12, 10))
        values = values_of(model, nets.sizes(model, (20, 16, 12, 10), 32), np.random.default_rng([seed, 2]))
        base = median(lambda: nets.hand_written("softmax", "columns", values))
        slow = median(lambda: tools["torch slow"]("softmax", "columns", values, None), 1)
        print(f"  torch slow at 20-16-12-10, m = 32 (646 parameters): {slow / base:.0f}x a hand-written pass; "
              f"at full size it needs 2 × 235,146 forward passes")


def kinked(values, rng):
    """Zero biases and a few zero input examples: some pre-activations are exactly 0."""
    out = dict(values)
    for k in out:
        if k.startswith("b"):
            out[k] = np.zeros_like(out[k])
    X = out["X"].copy()
    rows = X.shape[0] > X.shape[1]      # rows are examples when X is (m, n0) ... either way, zero a few
    idx = rng.choice(min(X.shape), 2, replace=False)
    if rows:
        X[idx, :] = 0.0
    else:
        X[:, idx] = 0.0
    out["X"] = X
    return out


def false_alarms(tools, cases, seed):
    from collections import Counter
    print(f"false alarms on correct backwards ({cases} random small points per net, every third with ReLU kinks):")
    counts = {t: Counter() for t in tools}
    for k in range(cases):
        rng = np.random.default_rng([seed, 3, k])
        output, convention = nets.OUTPUTS[k % 2], nets.CONVENTIONS[(k // 2) % 3]
        widths = tuple(int(w) for w in rng.integers(3, 10, 4))
        model = nets.model(output, convention, widths)
        values = values_of(model, nets.sizes(model, widths, int(rng.choice([7, 16, 64]))), rng)
        if k % 3 == 2:
            values = kinked(values, rng)
        for name, fn in tools.items():
            counts[name]["ok" if fn(output, convention, values, None) else "false alarm"] += 1
    for name, c in counts.items():
        print(f"  {name:<12} {c['false alarm']} false alarms of {cases}")


def detection(tools, seed):
    print("detections of the planted bugs (layer 2 square, batch as wide: 20-12-12-10 and m = 12, and "
          "m - 1 / 0.2 % also at 784-256-128-10, m = 512):")
    found = {t: {} for t in tools}
    for output in nets.OUTPUTS:
        for convention in nets.CONVENTIONS:
            model = nets.model(output, convention, (20, 12, 12, 10))
            values = values_of(model, nets.sizes(model, (20, 12, 12, 10), 12), np.random.default_rng([seed, 4]))
            for bug in nets.BUGS:
                for name, fn in tools.items():
                    hit = not fn(output, convention, values, bug)
                    found[name].setdefault(bug, []).append(hit)
    print(f"  {'bug':<32}" + "".join(f"{t:>12}" for t in tools))
    for bug in nets.BUGS:
        print(f"  {bug:<32}" + "".join(f"{sum(found[t][bug]):>9}/{len(found[t][bug]):<2}" for t in tools))
    fast = {t: fn for t, fn in tools.items() if t != "torch slow"}
    print(f"  at 784-256-128-10, m = 512:" + "".join(f"{t:>12}" for t in fast))
    for bug in ("m - 1 for m", "0.2% scaling"):
        hits = {t: 0 for t in fast}
        for output in nets.OUTPUTS:
            for convention in nets.CONVENTIONS:
                model = nets.model(output, convention)
                values = values_of(model, nets.sizes(model), np.random.default_rng([seed, 5]))
                for name, fn in fast.items():
                    hits[name] += not fn(output, convention, values, bug)
        print(f"  {bug:<32}" + "".join(f"{hits[t]:>9}/6 " for t in fast))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-time", action="store_true")
    args = ap.parse_args()
    tools = available()
    if not args.skip_time:
        timing(tools, args.seed)
    detection(tools, args.seed)
    false_alarms(tools, args.cases, args.seed)


if __name__ == "__main__":
    main()
