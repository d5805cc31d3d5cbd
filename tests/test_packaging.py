"""Every package directory is listed in pyproject.toml, so `pip install .` (not editable) ships it."""
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_package_is_installed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for top in ("symbolic", "numeric", "derivations") for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    models = ROOT / "derivations" / "models"
    assert "derivations.models" in listed and any(models.glob("*.toml"))
