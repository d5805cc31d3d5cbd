"""False-alarm and detection campaign for the gradient checker (issue 5).

False alarms: correct derived gradients of the vardhan network at random layer widths (2..11),
m in {7, 64, 512}, and three initialisations (He with random biases, zero biases, all 0.01):
target 0 `fail`.  Detection: missing 1/m, m - 1 for m, 0.2 % scaling of one block, dropped
activation derivative, transpose in a square layer — in every block, on a small net (the
checker's own coverage points) and on a 784-256-128-10 net (m = 512): target 100 %.

Run: python benchmarks/campaign.py [--cases 10000] [--seed 0] [--no-big]
"""
import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the campaigns

import tracegrad  # noqa: E402
from campaigns import checker_for, detections, false_alarms  # noqa: E402
from tracegrad.checking.points import covered_point  # noqa: E402


def summary(results):
    by_bug = Counter((r.bug, r.detected) for r in results)
    bugs = sorted({r.bug for r in results})
    return "; ".join(f"{b}: {by_bug[(b, True)]}/{by_bug[(b, True)] + by_bug[(b, False)]}" for b in bugs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-big", action="store_true")
    args = ap.parse_args()
    model = tracegrad.load("vardhan")
    t = time.perf_counter()
    verdicts = false_alarms(model, args.cases, args.seed)
    print(f"false alarms: {args.cases} correct cases in {time.perf_counter() - t:.0f} s: "
          f"{dict(verdicts)} (target: 0 fail) -> {'met' if verdicts['fail'] == 0 else 'MISSED'}")
    t = time.perf_counter()
    small = detections(model, args.seed)
    print(f"detection, small net ({time.perf_counter() - t:.0f} s): {sum(r.detected for r in small)}"
          f"/{len(small)} — {summary(small)}")
    if args.no_big:
        return
    t = time.perf_counter()
    checker = checker_for(model)
    dims = {model.dims[k]: v for k, v in dict(n0=784, n1=256, n2=128, n3=10, m=512).items()}
    square = {model.dims[k]: v for k, v in dict(n0=128, n1=128, n2=128, n3=128, m=512).items()}
    points = [covered_point(model, checker, dims, args.seed, 0, j)[0] for j in range(2)]
    squares = [covered_point(model, checker, square, args.seed, 2, j)[0] for j in range(2)]
    big = detections(model, args.seed, points=points, square=squares)
    print(f"detection, 784-256-128-10 net, m = 512 ({time.perf_counter() - t:.0f} s): "
          f"{sum(r.detected for r in big)}/{len(big)} — {summary(big)}")


if __name__ == "__main__":
    main()
