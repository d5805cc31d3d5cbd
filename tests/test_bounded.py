"""Bounded work (issue 11 §4): every command on input within the documented limits finishes
within 30 s on a quiet machine, or refuses in one line (exit 2) saying what was too large.
Subprocesses, as a user runs them; the timeouts are generous (a shared CI machine under load),
the CPU time the test asserts is the promise itself."""
import resource
import subprocess
import sys
import time

import pytest

LIMIT_CPU = 30          # seconds of CPU (user + system) per command: the 30 s promise


def run(*argv, timeout=240):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tracegrad", *argv], capture_output=True, text=True,
                          timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return done, cpu, time.perf_counter() - start


@pytest.mark.parametrize("argv", [
    ("verify", "vardhan", "--sizes", "m=70000"),          # near the largest accepted m (≈ 70 000)
    ("check", "vardhan", "--sizes", "m=12000"),           # issue 11: a claim's ones(m, m) at m = 12000
    ("verify", "pytorch", "--sizes", "N=60000"),
])
def test_big_accepted_sizes_finish(argv):
    done, cpu, wall = run(*argv)
    assert done.returncode == 0, (argv, done.stdout[-400:], done.stderr)
    assert done.stderr == "" and "inconclusive" not in done.stdout
    assert cpu < LIMIT_CPU, (argv, cpu, wall)


@pytest.mark.parametrize("argv, words", [
    (("verify", "vardhan", "--sizes", "m=100000"), "more than 4000000"),
    (("check", "vardhan", "--sizes", "m=100000"), "more than 4000000"),
    (("verify", "pytorch", "--sizes", "N=100000"), "more than 4000000"),
    (("verify", "attention", "--sizes", "N=1000,D=1000,dk=1000,dv=1000"), "more than 4000000"),
    (("check", "vardhan", "--sizes", "m=100001"), "m must be from 1 to 100000"),
])
def test_too_large_is_one_line_exit_2(argv, words):
    done, cpu, _ = run(*argv)
    assert done.returncode == 2 and done.stdout == "", (argv, done.stdout[-300:])
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and cpu < 10


def test_a_claim_too_large_at_accepted_sizes_says_so_in_one_line():
    """A claim whose own intermediates exceed the limit at sizes the model accepts is refused up
    front naming the claim and its size (exit 2), computed in no time: nothing is allocated
    (tests/test_claim_sizes.py finds such sizes for the models' own claims)."""
    done, cpu, _ = run("check", "vardhan", "--sizes", "m=12000", "--claim", "dZ4 = ones(m, m) @ (A4 - Y).T / m / m")
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stdout
    assert done.stderr.startswith("tracegrad: error: claim dZ4: ") and "more than 4000000" in done.stderr
    assert "Traceback" not in done.stderr and cpu < 10
