"""False-alarm and detection campaigns of the gradient checker (issues 5 and 12).

False alarms: correct derived gradients at random layer widths (2..11), m in {7, 64, 512}, three
initialisations (He with random biases, zero biases — ReLU kinks —, all 0.01), spread over the
models below (sigmoid and softmax outputs, the three conventions): target 0 `fail`.
Detection: missing 1/m, m − 1 for m, 0.2 % scaling of one block, dropped activation derivative,
transpose in a square layer, wrong layer index, wrong db axis — in every block each applies to,
on small nets (the checker's own coverage points) and at 784-256-128-10, m = 512: target 100 %.

    python benchmarks/campaign.py [--cases 10000] [--seed 0] [--no-big]
"""
import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # the campaigns
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tracegrad  # noqa: E402
import nets  # noqa: E402
from campaigns import checker_for, detections, false_alarms, square_points  # noqa: E402
from tracegrad.checking.points import covered_point, square_sizes  # noqa: E402


def models():
    """(label, model): vardhan, pytorch and the six benchmark MLPs at small default widths."""
    out = [("vardhan", tracegrad.load("vardhan")), ("pytorch", tracegrad.load("pytorch"))]
    for output in nets.OUTPUTS:
        for convention in nets.CONVENTIONS:
            out.append((f"mlp {output} {convention}", nets.model(output, convention, (6, 5, 4, 3))))
    return out


def summary(results):
    by_bug = Counter((r.bug, r.detected) for r in results)
    bugs = sorted({r.bug for r in results})
    return "; ".join(f"{b}: {by_bug[(b, True)]}/{by_bug[(b, True)] + by_bug[(b, False)]}" for b in bugs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000, help="correct cases in all (split over the models)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-big", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    chosen = models()
    total, t = Counter(), time.perf_counter()
    for k, (label, model) in enumerate(chosen):
        share = args.cases // len(chosen) + (k < args.cases % len(chosen))
        verdicts = false_alarms(model, share, args.seed)
        total.update(verdicts)
        print(f"  false alarms, {label}: {share} correct cases: {dict(verdicts)}", flush=True)
    print(f"false alarms: {args.cases} correct cases in {time.perf_counter() - t:.0f} s: {dict(total)} "
          f"(target: 0 fail) -> {'met' if total['fail'] == 0 else 'MISSED'}")
    t, small = time.perf_counter(), []
    for label, model in chosen:
        found = detections(model, args.seed)
        small += found
        print(f"  detection, {label}: {sum(r.detected for r in found)}/{len(found)}", flush=True)
    print(f"detection, small nets ({time.perf_counter() - t:.0f} s): {sum(r.detected for r in small)}"
          f"/{len(small)} — {summary(small)}")
    if args.no_big:
        return
    for label, model in [("vardhan", tracegrad.load("vardhan")),
                         ("mlp softmax columns", nets.model("softmax", "columns")),
                         ("mlp sigmoid rows", nets.model("sigmoid", "rows"))]:
        t = time.perf_counter()
        checker = checker_for(model)
        dims = {model.dims[k]: v for k, v in nets.BUILTIN_SIZES.get(label, {}).items()} or nets.sizes(model)
        points = [covered_point(model, checker, dims, args.seed, 0, j)[0] for j in range(2)]
        squares = [covered_point(model, checker, square_sizes(model, dims), args.seed, 2, j)[0] for j in range(2)]
        big = detections(model, args.seed, points=points, square=squares,
                         all_square=square_points(model, checker, args.seed, dims, True))
        print(f"detection, {label} at 784-256-128-10, m = 512 ({time.perf_counter() - t:.0f} s): "
              f"{sum(r.detected for r in big)}/{len(big)} — {summary(big)}", flush=True)


if __name__ == "__main__":
    main()
