"""The top level of a code file (DESIGN §4b), read with ``ast`` and never executed: its
docstring, its imports (numpy and torch only), its module literals and its functions.

Everything outside that subset is refused up front, before any function is read, with the
line and the construct: a hostile file cannot get anything evaluated.
"""
import ast
import warnings
from dataclasses import dataclass, field

from tracegrad.errors import ModelError

MAX_LINES = 5_000
# module literals with a meaning, and the Python type each must have
DECLARATIONS = {"SHAPES": dict, "DATA": dict, "PARAMS": list, "SIZES": dict, "MEANING": dict,
                "SOURCE": str, "SCALARS": dict, "UPSTREAM": str}
IMPORTS = {("numpy", "np"): "numpy", ("numpy", "numpy"): "numpy", ("torch", "torch"): "torch",
           ("torch.nn.functional", "F"): "torch"}
BUILTINS = {"range", "reversed", "len", "float", "int", "print", "abs", "max", "min", "sum"}
# constructs refused wherever they appear, with the reason
REFUSED = {
    ast.Lambda: "lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment expression ':='",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Starred: "a starred expression",
    ast.IfExp: "a conditional expression", ast.BoolOp: "'and'/'or'", ast.While: "a while loop",
    ast.With: "with", ast.AsyncWith: "with", ast.Try: "try", ast.Raise: "raise",
    ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Delete: "del", ast.ClassDef: "a class",
    ast.AsyncFunctionDef: "an async function", ast.AsyncFor: "an async loop",
    ast.Import: "an import inside a function", ast.ImportFrom: "an import inside a function",
    ast.Break: "break", ast.Continue: "continue", ast.Set: "a set",
}
if hasattr(ast, "TryStar"):
    REFUSED[ast.TryStar] = "try"
if hasattr(ast, "Match"):
    REFUSED[ast.Match] = "match"
STATEMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.For, ast.If, ast.Return,
              ast.Pass, ast.Assert)


@dataclass
class CodeFile:
    path: str
    source: str
    tree: ast.Module
    title: str = ""
    dialect: str | None = None          # "numpy", "torch", or None when both are imported
    declared: dict = field(default_factory=dict)    # SHAPES, DATA, ... as given
    constants: dict = field(default_factory=dict)   # other module literals
    functions: dict = field(default_factory=dict)   # name -> ast.FunctionDef

    def fail(self, node, message):
        raise ModelError(f"{self.path}: line {getattr(node, 'lineno', '?')}: {message}")


def read_module(path, text):
    """The file's top level, checked: a CodeFile, or a ModelError naming the line."""
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise ModelError(f"{path}: {len(lines)} lines, more than {MAX_LINES}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=path)
    except SyntaxError as e:
        raise ModelError(f"{path}: line {e.lineno or '?'}: not valid Python: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise ModelError(f"{path}: not valid Python: {' '.join(str(e).split()) or 'nested too deeply'}") from None
    code = CodeFile(path, text, tree)
    refuse_hostile(code)
    libraries = set()
    for k, stmt in enumerate(tree.body):
        if k == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str):
            code.title = stmt.value.value.strip().splitlines()[0].strip() if stmt.value.value.strip() else ""
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            libraries |= imported(code, stmt)
        elif isinstance(stmt, ast.Assign):
            module_literal(code, stmt)
        elif isinstance(stmt, ast.FunctionDef):
            function(code, stmt)
        else:
            code.fail(stmt, f"top-level {describe(stmt)} is not allowed (a code file holds a "
                            f"docstring, imports of numpy/torch, literals and functions)")
    code.dialect = next(iter(libraries)) if len(libraries) == 1 else None
    return code


def describe(node):
    return REFUSED.get(type(node)) or {ast.If: "'if'", ast.For: "'for'", ast.Expr: "expression",
                                       ast.AugAssign: "augmented assignment"}.get(type(node), type(node).__name__)


def refuse_hostile(code):
    """Walks the whole file once: dunder names, refused constructs, decorators, and calls of
    anything but the file's functions, numpy/torch functions and a few builtins; the first
    finding in the file's order is the error."""
    from tracegrad.language.spellings import FUNCTIONS
    defined = {s.name for s in code.tree.body if isinstance(s, ast.FunctionDef)}
    found, stack = [], [(code.tree, 0)]
    while stack:
        node, depth = stack.pop()
        where = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        if depth > 200:
            found.append((*where, 0, node, "nested more than 200 levels"))
            break
        for name in (getattr(node, "id", None), getattr(node, "attr", None), getattr(node, "arg", None),
                     getattr(node, "name", None) if not isinstance(node, ast.alias) else node.name):
            if isinstance(name, str) and "__" in name:
                found.append((*where, 0, node, f"name '{name}' is not allowed (no dunder names)"))
        if type(node) in REFUSED and not (isinstance(node, (ast.Import, ast.ImportFrom)) and depth == 1):
            found.append((*where, 1, node, f"{REFUSED[type(node)]} is not allowed"))
        if isinstance(node, ast.FunctionDef):
            if node.decorator_list:
                found.append((*where, 1, node.decorator_list[0], f"a decorator on '{node.name}' is not allowed"))
            if depth > 1:
                found.append((*where, 1, node, f"a function inside a function ('{node.name}') is not allowed"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and "__" not in node.func.id and \
                node.func.id not in BUILTINS | defined | set(FUNCTIONS):
            found.append((*where, 2, node, f"call of '{node.func.id}' is not allowed (only the file's own "
                                            f"functions, numpy/torch functions and {', '.join(sorted(BUILTINS))})"))
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    if found:
        line, col, _, node, message = min(found, key=lambda f: f[:3])
        code.fail(node, message)


def imported(code, stmt):
    """The library an import brings in (numpy or torch), or a refusal."""
    if isinstance(stmt, ast.ImportFrom):
        names = [(f"{stmt.module}.{a.name}", a.asname or a.name) for a in stmt.names]
    else:
        names = [(a.name, a.asname or a.name) for a in stmt.names]
    found = set()
    for module, alias in names:
        if (module, alias) not in IMPORTS:
            what = f"'{module}'" + (f" as '{alias}'" if alias != module.split(".")[-1] else "")
            code.fail(stmt, f"import of {what} is not allowed (only import numpy as np, import torch, "
                            f"import torch.nn.functional as F)")
        found.add(IMPORTS[module, alias])
    return found


def module_literal(code, stmt):
    if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
        code.fail(stmt, "a module-level assignment binds one name to a literal")
    name = stmt.targets[0].id
    try:
        value = ast.literal_eval(stmt.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        code.fail(stmt, f"module-level '{name}' must be a literal (numbers, strings, lists, dicts): "
                        f"a code file is read, never run")
    if name in DECLARATIONS:
        if not isinstance(value, DECLARATIONS[name]):
            code.fail(stmt, f"{name} must be a {DECLARATIONS[name].__name__}")
        code.declared[name] = value
    else:
        code.constants[name] = value


def function(code, stmt):
    args = stmt.args
    if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg:
        code.fail(stmt, f"'{stmt.name}' may take plain parameters only (no *args, **kwargs, keyword-only)")
    for default in args.defaults:
        try:
            ast.literal_eval(default)
        except (ValueError, TypeError, SyntaxError):
            code.fail(default, f"a default of '{stmt.name}' must be a literal")
    for node in ast.walk(stmt):
        if isinstance(node, ast.stmt) and node is not stmt and not isinstance(node, STATEMENTS):
            code.fail(node, f"{describe(node)} is not allowed in a function")
    if stmt.name in code.functions:
        code.fail(stmt, f"function '{stmt.name}' is defined twice")
    code.functions[stmt.name] = stmt
