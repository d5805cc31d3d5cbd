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
from tracegrad.losses import LOSSES
from tracegrad.loading import load, loads
from tracegrad.model import MAX_FILE_BYTES, MAX_SEED, builtin_names, check_seed
from tracegrad.render.console import fit
from tracegrad.render.files import write_text

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


MODEL_HELP = ("a built-in model (see 'tracegrad list'), a TOML model file, or - to read the "
              "model file from stdin")
EXAMPLES = {
    None: ["tracegrad list", "tracegrad derive --wrt W3 --steps", "tracegrad verify",
           "tracegrad check seed-question", "tracegrad compare ng sudeep",
           "tracegrad latex --pdf", "tracegrad codegen -o net.py"],
    "list": ["tracegrad list", "tracegrad list --json"],
    "derive": ["tracegrad derive", "tracegrad derive --wrt W3 --steps",
               "tracegrad derive ng --layout gradient --format numpy", "tracegrad derive mynet.toml --json",
               "cat mynet.toml | tracegrad derive -"],
    "verify": ["tracegrad verify", "tracegrad verify ng --sizes s1=8,m=32 --seed 3",
               "tracegrad verify --plot fd.png", "tracegrad verify --json"],
    "check": ["tracegrad check seed-question", "tracegrad check ng --loss mse",
              'tracegrad check vardhan --claim "dZ4 = (A4 - Y).T / m"',
              'echo "dW4 = dZ4.T @ A3.T" | tracegrad check vardhan --claim -',
              "tracegrad check mynet.toml --json"],
    "compare": ["tracegrad compare ng sudeep", "tracegrad compare ng sudeep --loss mse --json"],
    "latex": ["tracegrad latex", "tracegrad latex seed-question -o answer.tex --pdf"],
    "codegen": ["tracegrad codegen -o vardhan_backprop.py", "tracegrad codegen ng --wrt Theta1,Theta2",
                "tracegrad codegen --wrt W1,X -o with_dX.py"],
}


def subcommand(sub, name, help, **kwargs):
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name])
    p = sub.add_parser(name, help=help, description=help, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    return p


def add_model(p, optional=True):
    if optional:
        p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"{MODEL_HELP} (default: {DEFAULT_MODEL})")
    else:
        p.add_argument("model", help=MODEL_HELP)


def add_json(p):
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of text")


def add_seed(p):
    p.add_argument("--seed", type=seed, default=0,
                   help=f"seed of the random test points, 0 to {MAX_SEED} (default: 0)")


def add_sizes(p):
    p.add_argument("--sizes", metavar="N=INT,...",
                   help="dimension sizes for numeric checks, e.g. m=512,n0=8 (default: the model's "
                        "[sizes], then small distinct sizes)")


def add_loss(p, what):
    p.add_argument("--loss", choices=tuple(LOSSES),
                   help=f"{what}: " + "; ".join(f"{k} = {v[0]}" for k, v in LOSSES.items()))


def build_parser():
    p = Parser(prog="tracegrad", description="Derive and verify backpropagation formulas.",
               epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[None]) +
               "\n\nexit codes: 0 all verified or all claims hold; 1 a check or claim fails; 2 bad input",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"tracegrad {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    add_json(subcommand(sub, "list", "built-in models, with their file paths"))
    d = subcommand(sub, "derive", "derived dJ/dX for every layer, in compact and substituted form")
    add_model(d)
    d.add_argument("--wrt", metavar="NAMES", help="comma-separated names (default: every derived quantity)")
    d.add_argument("--layout", choices=("numerator", "gradient"), default="numerator",
                   help="numerator: dJ/dX = G_X, the shape of Xᵀ; gradient: ∇X J = G_Xᵀ, the shape of X "
                        "(default: numerator)")
    d.add_argument("--expand", action="store_true",
                   help="substitute down to inputs and parameters (default: keep forward names)")
    d.add_argument("--steps", action="store_true",
                   help="show the derivation's steps: with --wrt, only those on the way from J to "
                        "those names, written as a hand derivation (default: off)")
    d.add_argument("--format", choices=("numpy", "text", "unicode", "latex", "json"), default="unicode",
                   help="numpy: the formula language, pasteable as a claim (text is an alias); unicode; "
                        "latex; json (default: unicode)")
    add_json(d)
    v = subcommand(sub, "verify", "derived gradients vs complex-step directional derivatives")
    add_model(v)
    add_sizes(v)
    add_seed(v)
    add_json(v)
    v.add_argument("--plot", metavar="FILE.png",
                   help="also draw the finite-difference error against the step size (needs matplotlib)")
    c = subcommand(sub, "check", "check a model's claims (or your own) against the derivation")
    add_model(c, optional=False)
    c.add_argument("--claim", action="append", default=[], metavar='"q = formula"',
                   help="a claim in numpy syntax, repeatable; - reads one claim a line from stdin "
                        "(default: the model's [claims])")
    add_loss(c, "swap the model's cost for this loss (default: the model's own cost)")
    add_sizes(c)
    add_seed(c)
    add_json(c)
    k = subcommand(sub, "compare", "two formula sets side by side, under each loss, and why they differ")
    add_model(k, optional=False)
    k.add_argument("model_b", metavar="model", help="the second model, read like the first")
    add_loss(k, "only this loss (default: every loss)")
    add_json(k)
    t = subcommand(sub, "latex", "the whole step-by-step derivation as a LaTeX article")
    add_model(t)
    t.add_argument("-o", "--output", metavar="FILE.tex", help="where to write it (default: MODEL.tex)")
    t.add_argument("--pdf", action="store_true", help="also run pdflatex: FILE.pdf beside FILE.tex (default: off)")
    add_seed(t)
    add_json(t)
    g = subcommand(sub, "codegen", "a standalone numpy module with forward() and backward()")
    add_model(g)
    g.add_argument("-o", "--output", metavar="FILE.py", help="where to write it (default: MODEL_backprop.py)")
    g.add_argument("--wrt", metavar="NAMES",
                   help="comma-separated names to differentiate, data inputs too if named "
                        "(default: the parameters)")
    add_json(g)
    return p


def read_model(name):
    """A model by name or path; ``-`` reads a TOML model file from stdin."""
    if name != "-":
        return load(name)
    stdin = getattr(sys.stdin, "buffer", sys.stdin)
    raw = stdin.read(MAX_FILE_BYTES + 1) if stdin is not None else b""
    return loads(raw.encode("utf-8") if isinstance(raw, str) else raw, "<stdin>")


def read_claims(texts):
    """{name: formula} from --claim values; ``-`` stands for the lines of stdin."""
    lines = []
    for text in texts:
        if text.strip() == "-":
            lines += [l for l in sys.stdin.read().splitlines() if l.strip() and not l.lstrip().startswith("#")]
        else:
            lines.append(text)
    claims = {}
    for text in lines:
        name, eq, formula = text.partition("=")
        if not eq or not name.strip().isidentifier() or not formula.strip():
            raise UsageError(f"--claim: expected \"name = formula\", got '{text}'")
        if name.strip() in claims:
            raise UsageError(f"--claim: {name.strip()} is claimed twice")
        claims[name.strip()] = formula.strip()
    return claims


def show(args, data, text):
    """One JSON document with --json, else the text."""
    print(json.dumps(data, indent=2) if args.json else text)


def main(argv=None):
    fit(sys.stdout)
    fit(sys.stderr)
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:      # --help and --version have printed their text
            return done.code or 0
        if args.command is None:
            parser.print_help()
            return 0
        stdin_users = [getattr(args, a, None) for a in ("model", "model_b")].count("-") + \
            sum(c.strip() == "-" for c in getattr(args, "claim", []))
        if stdin_users > 1:
            raise UsageError("stdin (-) can hold one model or the claims, not both")
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
    models = [(name, load(name)) for name in builtin_names()]
    show(args, [{"name": n, "title": m.title, "path": m.path} for n, m in models],
         "\n".join(f"{n:<14} {m.title}\n{'':<14} {m.path}" for n, m in models))
    return 0


def names_of(text):
    return [w.strip() for w in text.split(",")] if text else None


def cmd_derive(args):
    from tracegrad.render.show import show_derivation
    model = read_model(args.model)
    fmt = "json" if args.json else args.format
    print(show_derivation(model, names_of(args.wrt), args.layout, args.expand, args.steps, fmt))
    return 0


def cmd_verify(args):
    from tracegrad.checking.verify import verify_model
    model = read_model(args.model)
    sizes = model_sizes(model, args.sizes)
    if args.plot:
        output_file("--plot", args.plot, ".png")
    report = verify_model(model, seed=args.seed, sizes=sizes)
    show(args, report.as_dict(), report)
    if args.plot:
        from tracegrad.render.plot import plot
        plot(model, args.plot, args.seed, sizes)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_check(args):
    from tracegrad.render.report import format_report
    model = read_model(args.model)
    claims = read_claims(args.claim) if args.claim else None
    report = model.check(claims=claims, loss=args.loss, seed=args.seed, sizes=model_sizes(model, args.sizes))
    show(args, report.as_dict(), format_report(report))
    return 0 if report.ok else 1


def cmd_compare(args):
    from tracegrad.checking.compare import compare
    from tracegrad.render.show import format_comparison, progress
    comparison = compare(read_model(args.model), read_model(args.model_b), args.loss, progress)
    show(args, comparison.as_dict(), format_comparison(comparison))
    return 0 if comparison.ok else 1


def cmd_latex(args):
    from tracegrad.render.latex import document, write_pdf
    model = read_model(args.model)
    path = output_file("-o", args.output or f"{model.name}.tex", ".tex")
    from tracegrad.layer import generic_layer
    checked = model.check(seed=args.seed) if model.claims else None
    write_text(path, document(model, checked, model.verify(seed=args.seed), partner_comparison(model),
                              generic_layer(model)))
    if args.pdf:
        write_pdf(path)
    pdf = f"{path[:-4]}.pdf" if args.pdf else None
    wrote = [path] + ([pdf] if pdf else [])
    show(args, {"tex": path, "pdf": pdf}, "\n".join(f"wrote {w}" for w in wrote))
    return 0


def partner_comparison(model):
    """The comparison a model's document explains in its "Why" section, if it has a partner."""
    from tracegrad.checking.compare import compare, partner
    other = partner(model.name)
    return compare(load(other[0]), load(other[1])) if other else None


def cmd_codegen(args):
    from tracegrad.numeric.codegen import generate_module
    model = read_model(args.model)
    path = output_file("-o", args.output or f"{model.name.replace('-', '_')}_backprop.py", ".py")
    wrt = names_of(args.wrt) or list(model.params)
    text = generate_module(model.derivation, title=f"model '{model.name}': {model.title}", wrt=wrt)
    write_text(path, text)
    show(args, {"module": path, "wrt": [getattr(x, "name", x) for x in wrt]}, f"wrote {path}")
    return 0


COMMANDS = {"list": cmd_list, "derive": cmd_derive, "verify": cmd_verify, "check": cmd_check,
            "compare": cmd_compare, "latex": cmd_latex, "codegen": cmd_codegen}

if __name__ == "__main__":
    sys.exit(main())
