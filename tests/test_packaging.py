"""One import package, `tracegrad` (DESIGN §2–§3): the wheel holds nothing else, the public API
and the four entry points work, every package directory ships, and no module imports another
that imports it back."""
import ast
import pathlib
import subprocess
import sys
import tomllib
import zipfile

import pytest

import tracegrad

ROOT = pathlib.Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
FOLDERS = {top: name for name, top in SETUPTOOLS["package-dir"].items()}   # folder -> import name


def module_name(path):
    """The import name of a source file of the checkout, e.g. derivations/checking/claims.py."""
    rel = path.relative_to(ROOT)
    parts = [FOLDERS[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    return ".".join(p for p in parts if p != "__init__")


def sources():
    return [p for top in FOLDERS for p in (ROOT / top).rglob("*.py")]


def test_every_package_directory_is_installed():
    listed = set(SETUPTOOLS["packages"])
    found = {module_name(p) for p in sources() if p.name == "__init__.py"}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "tracegrad.models" in listed and any((ROOT / "derivations" / "models").glob("*.toml"))


def test_the_wheel_holds_only_tracegrad(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("tracegrad-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"tracegrad", f"tracegrad-{tracegrad.__version__}.dist-info"}
    for must in ("tracegrad/__main__.py", "tracegrad/symbolic/rules.py", "tracegrad/numeric/compile.py",
                 "tracegrad/models/vardhan.toml", "tracegrad/checking/claims.py"):
        assert must in names
    meta = zipfile.ZipFile(wheel).read(f"tracegrad-{tracegrad.__version__}.dist-info/METADATA").decode()
    assert f"Version: {tracegrad.__version__}" in meta and "License-Expression: MIT" in meta
    assert "Author: The tracegrad developers" in meta and "Classifier:" in meta and "Keywords:" in meta


def test_the_public_api():
    import tracegrad as tg
    from tracegrad.numeric import evaluate
    from tracegrad.symbolic import derive
    assert tg.derive is derive and tg.evaluate is evaluate
    model = tg.load("vardhan")
    assert isinstance(model, tg.Model) and set(tg.builtin_names()) >= {"vardhan", "ng"}
    assert model.derive() is model.derivation and isinstance(model.derivation, tg.Derivation)
    assert isinstance(model.check(claims={"dZ4": "(A4 - Y).T / m"}), tg.CheckReport)
    for error in ("FormulaError", "ModelError", "UsageError", "ShapeError", "NoRuleError"):
        assert issubclass(getattr(tg, error), tg.TracegradError)
    with pytest.raises(AttributeError):
        tg.no_such_name
    assert set(tg.__all__) <= set(dir(tg))


def test_the_version_has_one_source():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text
    assert tomllib.loads(text)["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "tracegrad.__version__"


@pytest.mark.parametrize("argv, out", [(["--version"], f"tracegrad {tracegrad.__version__}"),
                                       ([], "usage: tracegrad"), (["--help"], "usage: tracegrad")])
def test_entry_points(argv, out):
    for cmd in (["tracegrad"], [sys.executable, "-m", "tracegrad"]):
        done = subprocess.run(cmd + argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith(out) and not done.stderr


def test_symbolic_needs_only_sympy():
    done = subprocess.run([sys.executable, "-c", "import sys, tracegrad.symbolic; "
                           "print(sorted(m for m in ('numpy', 'tracegrad.numeric', 'tracegrad.model') "
                           "if m in sys.modules))"], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def imports_of(path):
    """Every tracegrad module a file imports, at the top or inside a function."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("tracegrad")}


def test_no_import_cycles():
    modules = {module_name(p): p for p in sources()}
    graph = {m: {i for i in imports_of(p) if i in modules and i != m} for m, p in modules.items()}
    # a package's __init__ is imported with any of its modules: only real module edges count
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", "import cycle: " + " -> ".join(path + [m])
        state[m] = "open"
        for i in sorted(graph[m]):
            visit(i, path + [m])
        state[m] = "done"
    for m in sorted(graph):
        visit(m, [])


def test_layers_point_one_way():
    """symbolic imports only SymPy; numeric may use symbolic; the rest sits on top."""
    for p in sources():
        name, deps = module_name(p), imports_of(p)
        if name.startswith("tracegrad.symbolic"):
            assert all(d.startswith("tracegrad.symbolic") for d in deps), (name, deps)
        elif name.startswith("tracegrad.numeric"):
            assert all(d.startswith(("tracegrad.symbolic", "tracegrad.numeric")) for d in deps), (name, deps)
