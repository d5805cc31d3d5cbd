"""The tracegrad command line (DESIGN §5).  ``main(argv) -> exit code``: 0 all verified or all
claims hold, 1 a check or claim fails, 2 bad input (one line on stderr, never a traceback)."""
import argparse
import json
import os
import re
import sys

from tracegrad import __version__
from tracegrad.errors import TracegradError, UsageError

from tracegrad.language.formula import MAX_SIZE
from tracegrad.model import MAX_SEED, builtin_names, check_seed, load

DEFAULT_MODEL = "vardhan"


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_sizes(text):
    sizes = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, value = (p.strip() for p in part.partition("="))
        if not name.isidentifier() or not re.fullmatch(r"-?[0-9]+", value):
            raise UsageError(f"expected NAME=INT, got '{part}'")
        if name in sizes:
            raise UsageError(f"{name} is given twice")
        if len(value) > 7 or not 1 <= int(value) <= MAX_SIZE:
            raise UsageError(f"{name} must be from 1 to {MAX_SIZE}, got {value}")
        sizes[name] = int(value)
    return sizes


def seed(text):
    try:
        return check_seed(int(text) if re.fullmatch(r"[0-9]{1,20}", text.strip()) else None)
    except UsageError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got '{text}'") from None


def model_sizes(model, text):
    try:
        return model.check_sizes(parse_sizes(text))
    except UsageError as e:
        raise UsageError(f"--sizes: {e}") from None


def output_file(option, path, suffix):
    if not path.endswith(suffix):
        raise UsageError(f"{option}: the output file must end in {suffix}, got '{path}'")
    if "\0" in path:
        raise UsageError(f"{option}: a file name cannot hold a NUL byte")
    return path


def build_parser():
    p = Parser(prog="tracegrad", description="Derive and verify backpropagation formulas.")
    p.add_argument("--version", action="version", version=f"tracegrad {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    sub.add_parser("list", help="built-in models")
    d = sub.add_parser("derive", help="derived dJ/dX for every layer")
    d.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    d.add_argument("--wrt", help="comma-separated names (default: all)")
    d.add_argument("--layout", choices=("numerator", "gradient"), default="numerator")
    d.add_argument("--expand", action="store_true", help="substitute down to inputs and parameters")
    d.add_argument("--steps", action="store_true", help="show every rule application")
    d.add_argument("--format", choices=("numpy", "text", "unicode", "latex", "json"), default="unicode",
                   help="numpy: the formula language, pasteable as a claim (text is an alias)")
    v = sub.add_parser("verify", help="derived gradients vs complex-step derivatives")
    v.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    v.add_argument("--sizes")
    v.add_argument("--seed", type=seed, default=0)
    v.add_argument("--json", action="store_true")
    v.add_argument("--plot", metavar="FILE.png", help="draw finite-difference error against step size")
    c = sub.add_parser("check", help="check a model's claims (or your own)")
    c.add_argument("model")
    c.add_argument("--claim", action="append", default=[], help='"q = formula" (repeatable)')
    c.add_argument("--loss", choices=("bce", "mse", "ce"))
    c.add_argument("--sizes")
    c.add_argument("--seed", type=seed, default=0)
    c.add_argument("--json", action="store_true")
    k = sub.add_parser("compare", help="two formula sets side by side, under each loss")
    k.add_argument("model_a")
    k.add_argument("model_b")
    k.add_argument("--loss", choices=("bce", "mse", "ce"))
    k.add_argument("--json", action="store_true")
    t = sub.add_parser("latex", help="whole step-by-step derivation as a LaTeX article")
    t.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    t.add_argument("-o", "--output", help="FILE.tex (default: MODEL.tex)")
    t.add_argument("--pdf", action="store_true", help="also run pdflatex")
    t.add_argument("--seed", type=seed, default=0)
    g = sub.add_parser("codegen", help="a standalone numpy forward/backward module")
    g.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    g.add_argument("-o", "--output", help="FILE.py (default: MODEL_backprop.py)")
    g.add_argument("--wrt", help="comma-separated names (default: parameters and real inputs)")
    return p


def main(argv=None):
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:      # --help and --version have printed their text
            return done.code or 0
        if args.command is None:
            parser.print_help()
            return 0
        return COMMANDS[args.command](args)
    except TracegradError as e:
        print(f"tracegrad: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except RecursionError:
        print("tracegrad: error: input too deeply nested", file=sys.stderr)
        return 2
    except MemoryError:
        print("tracegrad: error: out of memory (sizes too large?)", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`tracegrad verify | head`): nothing more to say, and no traceback
        # when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("tracegrad: interrupted", file=sys.stderr)
        return 2


def cmd_list(args):
    for name in builtin_names():
        print(f"{name:<14} {load(name).title}")
    return 0


def cmd_derive(args):
    from tracegrad.render.show import show_derivation
    model = load(args.model)
    wrt = [w.strip() for w in args.wrt.split(",")] if args.wrt else None
    print(show_derivation(model, wrt, args.layout, args.expand, args.steps, args.format))
    return 0


def cmd_verify(args):
    from tracegrad.checking.verify import verify_model
    model = load(args.model)
    sizes = model_sizes(model, args.sizes)
    if args.plot:
        output_file("--plot", args.plot, ".png")
    report = verify_model(model, seed=args.seed, sizes=sizes)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report)
    if args.plot:
        from tracegrad.render.plot import plot
        plot(model, args.plot, args.seed, sizes)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_check(args):
    model = load(args.model)
    claims = None
    if args.claim:
        claims = {}
        for text in args.claim:
            name, eq, formula = text.partition("=")
            if not eq or not name.strip().isidentifier() or not formula.strip():
                raise UsageError(f"--claim: expected \"name = formula\", got '{text}'")
            if name.strip() in claims:
                raise UsageError(f"--claim: {name.strip()} is claimed twice")
            claims[name.strip()] = formula.strip()
    report = model.check(claims=claims, loss=args.loss, seed=args.seed, sizes=model_sizes(model, args.sizes))
    print(json.dumps(report.as_dict(), indent=2) if args.json else report)
    return 0 if report.ok else 1


def cmd_compare(args):
    from tracegrad.checking.compare import compare
    from tracegrad.render.show import format_comparison, progress
    comparison = compare(load(args.model_a), load(args.model_b), args.loss, progress)
    print(json.dumps(comparison.as_dict(), indent=2) if args.json else format_comparison(comparison))
    return 0 if comparison.ok else 1


def cmd_latex(args):
    from tracegrad.render.latex import document, write_pdf
    model = load(args.model)
    path = output_file("-o", args.output or f"{model.name}.tex", ".tex")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(document(model, model.check(seed=args.seed) if model.claims else None,
                             model.verify(seed=args.seed)))
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
    print(f"wrote {path}")
    if args.pdf:
        write_pdf(path)
        print(f"wrote {path[:-4]}.pdf")
    return 0


def cmd_codegen(args):
    from tracegrad.numeric.codegen import generate_module
    model = load(args.model)
    path = output_file("-o", args.output or f"{model.name.replace('-', '_')}_backprop.py", ".py")
    wrt = [w.strip() for w in args.wrt.split(",")] if args.wrt else None
    text = generate_module(model.derivation, title=f"model '{model.name}': {model.title}", wrt=wrt)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
    print(f"wrote {path}")
    return 0


COMMANDS = {"list": cmd_list, "derive": cmd_derive, "verify": cmd_verify, "check": cmd_check,
            "compare": cmd_compare, "latex": cmd_latex, "codegen": cmd_codegen}

if __name__ == "__main__":
    sys.exit(main())
