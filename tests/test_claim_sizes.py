"""Sizes too large for a claim (issue 11 §4, the part left open): at sizes the model's own program
fits, a claim whose values (forward names expanded) would hold more than MAX_POINT_NUMBERS numbers
at a test point is refused up front, as sizes too large for the model are: one line naming the
claim and the count against the limit, exit 2 (a UsageError in Python), computed from shapes
alone.  The boundary sizes are computed here from the claims, not written down for one model."""
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

import tracegrad
from tracegrad.checking import claims as claims_module
from tracegrad.checking.claims import Truth
from tracegrad.checking.identity import as_scalars
from tracegrad.checking.points import example_dims, size_sets
from tracegrad.errors import TracegradError, UsageError
from tracegrad.limits import MAX_POINT_NUMBERS
from tracegrad.symbolic.shapes import matrix_numbers

REFUSAL_CPU = 5          # seconds: a refusal reads the claims and counts shapes, nothing more
MODELS = ("vardhan", "ng", "dlai")


def program_fits(model, sizes):
    try:
        model.check_sizes(sizes)
        return True
    except UsageError:
        return False


def claim_values(model):
    """{name: the claim's value, forward names expanded} for every claim that can be read."""
    truth, program = Truth(model, model.derivation), model.derivation.program
    out = {}
    for name, formula in model.claims.items():
        try:
            claim, _ = as_scalars(truth.parse(formula), truth[name])
        except TracegradError:
            continue
        out[name] = program.expand(claim)
    return out


def first_too_large(model, values, sizes):
    """The first claim (in the model's order) whose values at a test point exceed the limit."""
    for name, value in values.items():
        if any(matrix_numbers(sp.Tuple(value), dims)[0] > MAX_POINT_NUMBERS for dims in size_sets(model, sizes)):
            return name
    return None


def largest(fits, hi=100_000):
    """The largest size from 1 to ``hi`` at which ``fits`` (monotone) holds."""
    lo = 1
    assert fits(lo)
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


@pytest.fixture(scope="module")
def boundaries():
    """model -> (argv sizes text just over, the first claim refused there, text just under),
    on one size for every dimension, and on the examples alone for vardhan."""
    out = {}
    for name in MODELS:
        model = tracegrad.load(name)
        values = claim_values(model)
        variants = [("all", list(model.dims))]
        if name == "vardhan":
            variants.append(("examples", sorted(d.name for d in example_dims(model))))
        for label, dims in variants:
            def at(v):
                return {d: v for d in dims}
            program = largest(lambda v: program_fits(model, at(v)))
            claims = largest(lambda v: first_too_large(model, values, at(v)) is None, hi=program)
            assert claims < program, (name, label, claims, program)    # sizes the model fits, a claim does not
            text = (lambda v: ",".join(f"{d}={v}" for d in dims))
            out[name, label] = (text(claims + 1), first_too_large(model, values, at(claims + 1)), text(claims),
                                at(claims + 1), at(claims))
    return out


def run(*argv, timeout=240):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "tracegrad", *argv], capture_output=True, text=True,
                          timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def assert_refused(done, cpu, claim, prefix=""):
    assert done.returncode == 2 and done.stdout == "", done.stdout[-400:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"tracegrad: error: {prefix}claim {claim}") and f"more than {MAX_POINT_NUMBERS}" in lines[0], lines
    assert cpu < REFUSAL_CPU, cpu


@pytest.mark.parametrize("key", [*((m, "all") for m in MODELS), ("vardhan", "examples")])
def test_check_refuses_sizes_too_large_for_a_claim(boundaries, key):
    over, claim, _, _, _ = boundaries[key]
    done, cpu = run("check", key[0], "--sizes", over)
    assert_refused(done, cpu, claim)
    count = int(done.stderr.split(" would hold ")[1].split()[0])
    assert count > MAX_POINT_NUMBERS


@pytest.mark.parametrize("key", [("vardhan", "all"), ("dlai", "all")])
def test_sizes_just_under_are_checked_as_before(boundaries, key):
    _, _, under, _, _ = boundaries[key]
    done, _ = run("check", key[0], "--sizes", under)
    assert done.returncode in (0, 1) and done.stderr == "", done.stderr
    assert "would hold" not in done.stdout and "holds" in done.stdout


def test_the_python_api_raises_the_error_check_sizes_raises(boundaries):
    _, claim, _, over, _ = boundaries["vardhan", "all"]
    model = tracegrad.load("vardhan")
    m = int(MAX_POINT_NUMBERS ** 0.5) + 1      # ones(m, m) alone is over the limit, the model fits
    with pytest.raises(UsageError) as refused:
        model.check(sizes=over)
    with pytest.raises(UsageError) as too_big_for_the_model:
        model.check_sizes({d: 100_000 for d in model.dims})
    assert type(refused.value) is type(too_big_for_the_model.value)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"claim {claim}: ") and "would hold" in message
    # the user's own claims too, and only a claim that is too large: one that fits is checked
    with pytest.raises(UsageError, match="^claim dZ4: "):
        model.check(claims={"dZ4": "ones(m, m) @ (A4 - Y).T / m / m"}, sizes={"m": m})
    report = model.check(claims={"dZ4": "(A4 - Y).T / m"}, sizes={"m": m})
    assert [r.verdict for r in report.results] == ["holds"]


def test_a_refusal_draws_no_point(monkeypatch, boundaries):
    """Nothing is drawn or evaluated before the refusal: the claims' shapes decide."""
    _, claim, _, over, _ = boundaries["ng", "all"]
    def drawn(*args, **kwargs):
        raise AssertionError("a test point was drawn")
    monkeypatch.setattr(claims_module, "covered_point", drawn)
    with pytest.raises(UsageError, match=f"^claim {claim}: "):
        tracegrad.load("ng").check(sizes=over)


def test_an_unreadable_claim_is_still_an_error_verdict():
    """Claims that cannot be read are not counted: they stay ERROR verdicts (exit 1)."""
    m = int(MAX_POINT_NUMBERS ** 0.5) + 1
    report = tracegrad.load("vardhan").check(claims={"dZ4": "A4 +", "dW4": "nosuch @ A3"}, sizes={"m": m})
    assert [r.verdict for r in report.results] == ["error", "error"]


def test_compare_refuses_a_model_whose_sizes_are_too_large_for_its_claims(boundaries, tmp_path):
    _, claim, _, over, _ = boundaries["vardhan", "examples"]
    model = tracegrad.load("vardhan")
    text = Path(model.path).read_text(encoding="utf-8")
    old = "m  = 7"
    assert old in text
    path = tmp_path / "big.toml"
    path.write_text(text.replace(old, f"m  = {over['m']}"), encoding="utf-8")
    assert program_fits(tracegrad.load(path), {})        # the model's own [sizes] fit
    done, cpu = run("compare", "sudeep", str(path))
    assert_refused(done, cpu, claim, prefix="model vardhan: ")


def test_a_code_file_claim_too_large_is_refused_naming_its_line():
    """ninja's batch-norm claims hold an n × n matrix: at n with n² over the limit, refused."""
    n = int(MAX_POINT_NUMBERS ** 0.5) + 1
    model = tracegrad.load("ninja")
    assert program_fits(model, {"n": n})
    with pytest.raises(UsageError, match=r"^claim \w+ \(line \d+\): .* more than "):
        model.check(sizes={"n": n})
    done, cpu = run("check", "ninja", "--sizes", f"n={n}")
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert "(line " in done.stderr and cpu < REFUSAL_CPU
