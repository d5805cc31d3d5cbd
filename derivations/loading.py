"""Reading a model: a built-in name, a model file (TOML, ``model.py``) or a code file (Python
read with ``ast``, ``language/codefile``) — the one place that knows both formats."""
import tomllib
from pathlib import Path

from tracegrad.errors import ModelError
from tracegrad.language.codefile import load_code_file
from tracegrad.limits import MAX_FILE_BYTES
from tracegrad.model import MODELS, Model, builtin_names


def load(name_or_path):
    """A built-in model by name, a model file (.toml) or a code file (.py) by path."""
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise ModelError(f"a model is a built-in name or a file path, got {name_or_path!r}")
    path = Path(name_or_path)
    try:
        for suffix in (".toml", ".py"):
            if not path.suffix and (MODELS / f"{name_or_path}{suffix}").exists():
                path = MODELS / f"{name_or_path}{suffix}"
        if not path.exists():
            known = ", ".join(builtin_names())
            raise ModelError(f"no model '{name_or_path}': not a file, and not a built-in model ({known})")
        if not path.is_file():
            raise ModelError(f"{path}: {'a directory' if path.is_dir() else 'not a regular file'}, not a model file")
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return loads(raw, str(path))


def loads(raw, path="<stdin>"):
    """A model from the bytes of a model file: a code file if ``path`` ends in .py, else TOML
    (``path`` names it in errors)."""
    if len(raw) > MAX_FILE_BYTES:
        raise ModelError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    if str(path).endswith(".py"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ModelError(f"{path}: not UTF-8 text (byte {e.start})") from None
        return load_code_file(str(path), text)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ModelError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ModelError(f"{path}: not valid TOML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise ModelError(f"{path}: not valid TOML: nested too deeply") from None
    return Model.from_dict(data, path)
