"""The documentation is the program's: README and docs/ sessions are real output, the function
list is generated from the parser's tables, links resolve, limits are the code's."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("regenerate", ROOT / "docs" / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)


def test_function_list_is_generated_from_the_parsers_tables():
    from tracegrad.language import formula
    page = (ROOT / "docs" / "functions.md").read_text(encoding="utf-8")
    assert page == regenerate.functions_page(), "run: python docs/regenerate.py"
    for name in formula.FUNCTIONS:
        assert f"| `{name}(" in page, name
    assert "| `A // B` | allowed |" not in page


@pytest.fixture(scope="module")
def scratch():
    with regenerate.Scratch() as s:
        yield s


@pytest.mark.parametrize("path", regenerate.session_files(), ids=lambda p: p.name)
def test_sessions_show_real_output(path, scratch):
    text = path.read_text(encoding="utf-8")
    blocks = regenerate.sessions(text)
    assert blocks or path.name != "README.md"
    for _, _, runs in blocks:
        for command, shown in runs:
            assert scratch.run(command) == shown, f"{path.name}: '$ {command}' is stale: run python docs/regenerate.py"


def test_readme_keeps_its_set_up_commands_and_points_into_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.group(1) for b in regenerate.FENCE.finditer(readme)]
    assert blocks[0] == "python3 -m pip install . && tracegrad derive\n"
    assert blocks[1] == "python3 -m pip install -e '.[test]' && python3 -m pytest -q\n"
    assert "shared/DESIGN" not in readme and "docs/model-files.md" in readme


def test_links_resolve():
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_model_file_limits_are_the_codes():
    from tracegrad.language.formula import MAX_CHARS, MAX_DEPTH, MAX_NODES, MAX_SIZE
    from tracegrad.model import MAX_ENTRIES, MAX_FILE_BYTES, MAX_FORWARD, MAX_POINT_NUMBERS
    limits = (ROOT / "docs" / "model-files.md").read_text(encoding="utf-8").split("## Limits")[1]
    for value, what in [(MAX_FILE_BYTES, "bytes"), (MAX_ENTRIES, "entries"), (MAX_FORWARD, "forward"),
                        (MAX_SIZE, ""), (MAX_POINT_NUMBERS, "numbers"), (MAX_CHARS, "characters"),
                        (MAX_NODES, "syntax"), (MAX_DEPTH, "levels")]:
        assert re.search(rf"\b{value}\b {what}".strip(), limits), (value, what)


def test_the_tutorials_model_file_is_the_one_it_shows():
    tutorial = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    shown = tutorial.split("$ cat docs/examples/mynet.toml\n")[1].split("```")[0]
    assert shown == (ROOT / "docs" / "examples" / "mynet.toml").read_text(encoding="utf-8")
