"""Whole-process times of `tracegrad check` / `compare` against `python -c "import sympy"` (issue 12 §3).

    python benchmarks/check_speed.py [--runs 5] [--profile]

Each target command and the baseline run in turn (A B A B ...), and each ratio is taken pair by
pair, so drift in the machine's speed cancels; the median ratio is reported, with wall and CPU
(user + system of the child) seconds and the load average before and after.  Targets:
`check vardhan` ≤ 2.5×, `compare ng sudeep` ≤ 3×, the 17-line batch-norm program with 23 claims
(`benchmarks/bn_makemore.py`, four of them wrong, so diagnoses run) ≤ 6×.
``--profile`` prints where the time of each command goes (cProfile, top entries by cumulative time).

SymPy's modules are byte-compiled when pip installs it; tracegrad's, in an editable install, are
compiled on first import unless PYTHONDONTWRITEBYTECODE is set (as on some CI machines), in which
case every run recompiles them from source (about 80 ms).  So that both sides start the same way,
tracegrad's modules are byte-compiled (``compileall``) before anything is timed.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import tracegrad

HERE = Path(__file__).resolve().parent
TRACEGRAD = [sys.executable, "-m", "tracegrad"]
BASELINE = [sys.executable, "-c", "import sympy"]
TARGETS = [("check vardhan", [*TRACEGRAD, "check", "vardhan"], 2.5),
           ("compare ng sudeep", [*TRACEGRAD, "compare", "ng", "sudeep"], 3.0),
           ("check bn_makemore.py (23 claims, 4 fail)", [*TRACEGRAD, "check", str(HERE / "bn_makemore.py")], 6.0)]


def timed(cmd):
    """(wall seconds, cpu seconds) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def paired(cmd, runs):
    timed(cmd), timed(BASELINE)                      # warm-up, not counted
    rows = []
    for _ in range(runs):
        a, b = timed(cmd), timed(BASELINE)
        rows.append((a, b))
    med = lambda xs: statistics.median(xs)
    return {"wall": med([a[0] for a, _ in rows]), "cpu": med([a[1] for a, _ in rows]),
            "base_wall": med([b[0] for _, b in rows]), "base_cpu": med([b[1] for _, b in rows]),
            "ratio_wall": med([a[0] / b[0] for a, b in rows]), "ratio_cpu": med([a[1] / b[1] for a, b in rows])}


def profile(cmd):
    out = subprocess.run([sys.executable, "-m", "cProfile", "-s", "cumtime", *cmd[1:]],
                         capture_output=True, text=True, check=False).stdout
    lines = [l for l in out.splitlines() if "tracegrad" in l or "wt-" in l or "cumtime" in l]
    print("\n".join(lines[:25]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    import compileall
    import tracegrad.numeric as numeric
    import tracegrad.symbolic as symbolic
    for package in (tracegrad, symbolic, numeric):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average before {os.getloadavg()}")
    print(f"{'command':<42} {'wall s':>7} {'cpu s':>6} {'sympy wall':>10} {'sympy cpu':>9} "
          f"{'× wall':>7} {'× cpu':>6} target")
    for label, cmd, target in TARGETS:
        r = paired(cmd, args.runs)
        print(f"{label:<42} {r['wall']:7.2f} {r['cpu']:6.2f} {r['base_wall']:10.2f} {r['base_cpu']:9.2f} "
              f"{r['ratio_wall']:7.2f} {r['ratio_cpu']:6.2f} ≤ {target}×")
    print(f"load average after {os.getloadavg()}  (median of {args.runs} paired runs)")
    if args.profile:
        for label, cmd, _ in TARGETS:
            print(f"\n--- profile: {label}")
            profile(cmd)


if __name__ == "__main__":
    main()
